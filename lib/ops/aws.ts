import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { COST_EXPLORER_REGION } from '../cost/report';

/** The AWS clients the ops commands use, all in the environment's region. */
export interface AwsClients {
  readonly ec2: EC2Client;
  readonly cloudFormation: CloudFormationClient;
  readonly cloudWatch: CloudWatchClient;
  readonly s3: S3Client;
  readonly secretsManager: SecretsManagerClient;
}

export type AwsClientFactory = (region: string) => AwsClients;

/**
 * Clients configured only by the standard SDK environment (AWS_PROFILE, AWS_ACCESS_KEY_ID,
 * AWS_ENDPOINT_URL, ...), except the region, which comes from the environment's config:
 * the stacks live there whatever AWS_REGION says.
 */
export const createAwsClients: AwsClientFactory = (region) => ({
  ec2: new EC2Client({ region }),
  cloudFormation: new CloudFormationClient({ region }),
  cloudWatch: new CloudWatchClient({ region }),
  s3: new S3Client({ region }),
  secretsManager: new SecretsManagerClient({ region }),
});

/** AWS publishes the billing metrics (AWS/Billing) in us-east-1 only, whatever the environment's region. */
export const BILLING_METRICS_REGION = 'us-east-1';

/** The account-level clients of `doctor` (beyond AwsClients), from the same standard SDK environment. */
export interface AccountClients {
  readonly sts: STSClient;
  readonly iam: IAMClient;
  readonly ssm: SSMClient;
  readonly serviceQuotas: ServiceQuotasClient;
  /** CloudWatch in BILLING_METRICS_REGION, where AWS/Billing EstimatedCharges is published. */
  readonly billingCloudWatch: CloudWatchClient;
  /** Cost Explorer, whose one endpoint is in COST_EXPLORER_REGION. */
  readonly costExplorer: CostExplorerClient;
  destroy(): void;
}

export function createAccountClients(region: string): AccountClients {
  const clients = {
    sts: new STSClient({ region }),
    iam: new IAMClient({ region }),
    ssm: new SSMClient({ region }),
    serviceQuotas: new ServiceQuotasClient({ region }),
    billingCloudWatch: new CloudWatchClient({ region: BILLING_METRICS_REGION }),
    costExplorer: new CostExplorerClient({ region: COST_EXPLORER_REGION }),
  };
  return { ...clients, destroy: () => Object.values(clients).forEach((c) => c.destroy()) };
}
