import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

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
