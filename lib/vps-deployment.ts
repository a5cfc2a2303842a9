import { CustomResource, Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as lambdaTypes from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EnvironmentConfig } from './config/load';
import { assetObjectReadStatement } from './asset-access';
import { gatewayCredentialSecretName } from './gpu-control-names';
import { acknowledge, managedPolicyFinding, wildcardResourceFinding } from './nag';
import { SmallFunction } from './small-function';
import { renderBundle, requiredSecrets } from './vps/bundle';
import { bundleSettingsFor } from './vps/bundle-settings';
import { VPS_DEPLOYMENT_TYPE, type VpsResourceProperties } from './vps/custom-resource/properties';
import { GATE_LAMBDA_TIMEOUT_SECONDS } from './vps/gate-budget';
import { removalPolicyOf } from './removal';

export interface VpsDeploymentProps {
  readonly config: EnvironmentConfig;
}

/**
 * The VPS stack as a CloudFormation resource: `cdk diff` shows a new bundle
 * hash, `cdk deploy` pushes it over SSH (pinned host key), a failed health gate
 * fails the update and CloudFormation rolls back to the previous release, and
 * `cdk destroy` tears it down. Its properties carry the bundle hash, host,
 * fingerprint and secret ARNs; secret values stay in Secrets Manager.
 */
export class VpsDeployment extends Construct {
  readonly resource: CustomResource;
  readonly appSecrets: secretsmanager.Secret;
  readonly release: string;

  constructor(scope: Construct, id: string, props: VpsDeploymentProps) {
    super(scope, id);
    const { config } = props;
    const vps = config.vps;
    const destroy = config.removalPolicy === 'destroy';
    const settings = bundleSettingsFor(config);
    const bundle = renderBundle(settings);
    this.release = bundle.hash;

    const bundleFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'aiassets-vps-bundle-')), 'bundle.json');
    fs.writeFileSync(bundleFile, JSON.stringify(bundle));
    const bundleAsset = new s3assets.Asset(this, 'Bundle', { path: bundleFile });

    // One random seed; the handler derives every .env value from it (lib/vps/app-secrets.ts).
    this.appSecrets = new secretsmanager.Secret(this, 'AppSecrets', {
      description: `${config.appName} ${config.envName}: seed of the VPS stack's passwords and keys`,
      generateSecretString: { secretStringTemplate: '{}', generateStringKey: 'seed', passwordLength: 64, excludePunctuation: true },
      removalPolicy: removalPolicyOf(config.removalPolicy),
    });
    acknowledge(this.appSecrets, {
      id: 'AwsSolutions-SMG4',
      reason: 'Not rotated automatically: PostgreSQL sets its role passwords only when the data volume is created, so a rotated seed would lock the services out; rotation is a manual maintenance task (README, Secrets: ALTER ROLE and re-encrypted n8n/Sim credentials).',
    });
    const sshKey = secretsmanager.Secret.fromSecretNameV2(this, 'SshKey', vps.sshKeySecretName);
    // Created by the Gpu stack (lib/gpu-control.ts); named, not exported, so either stack can be replaced.
    const gatewayCredential = secretsmanager.Secret.fromSecretNameV2(this, 'GatewayCredential', gatewayCredentialSecretName(config));

    const handler = (name: string, description: string) => {
      const fn = new SmallFunction(this, name, {
        code: 'vps-deployment',
        handler: `index.${name === 'OnEvent' ? 'onEvent' : 'isComplete'}`,
        timeout: Duration.seconds(GATE_LAMBDA_TIMEOUT_SECONDS),
        description,
        environment: {},
        removalPolicy: config.removalPolicy,
      });
      sshKey.grantRead(fn.role);
      gatewayCredential.grantRead(fn.role);
      this.appSecrets.grantRead(fn.role);
      fn.allow(assetObjectReadStatement('ReadBundle', bundleAsset));
      return fn;
    };
    const onEvent = handler('OnEvent', 'VPS deployment: uploads the release and starts the image pull, or tears down');
    const isComplete = handler('IsComplete', 'VPS deployment: waits for the pull, then runs the health-gated deploy');

    const logRemoval = removalPolicyOf(config.removalPolicy);
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: onEvent.function,
      isCompleteHandler: isComplete.function,
      queryInterval: Duration.seconds(30),
      // The pull is killed after 25 minutes and the last run takes at most 15: the waiter gives
      // up within CloudFormation's one hour for a custom resource, never after it.
      totalTimeout: Duration.minutes(40),
      logGroup: new logs.LogGroup(this, 'ProviderLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: logRemoval }),
    });
    acknowledgeProviderFramework(provider, [onEvent.function, isComplete.function]);

    const properties: VpsResourceProperties = {
      AppName: config.appName,
      EnvName: config.envName,
      Host: vps.host,
      Port: String(vps.sshPort),
      User: vps.deployUser,
      HostKeySha256: vps.hostKeySha256 ?? '',
      BundleHash: bundle.hash,
      BundleBucket: bundleAsset.s3BucketName,
      BundleKey: bundleAsset.s3ObjectKey,
      SshKeySecretArn: sshKey.secretArn,
      AppSecretsArn: this.appSecrets.secretArn,
      SecretNames: requiredSecrets(settings),
      GatewayCredentialSecretArn: gatewayCredential.secretArn,
      BaseDir: vps.baseDir,
      KeepReleases: String(vps.releasesToKeep),
      ConvergeTimeoutSeconds: String(vps.convergeTimeoutSeconds),
      RemoveVolumesOnDelete: String(destroy),
    };
    this.resource = new CustomResource(this, 'Deployment', {
      serviceToken: provider.serviceToken,
      resourceType: VPS_DEPLOYMENT_TYPE,
      properties: { ...properties },
    });
  }
}

/**
 * Findings on the resources CDK's Provider framework creates for us (its
 * framework functions, their roles and the waiter state machine), which we
 * cannot shape: each acknowledged with why it is acceptable.
 */
function acknowledgeProviderFramework(provider: cr.Provider, handlers: lambdaTypes.IFunction[]): void {
  const framework = ['framework-onEvent', 'framework-isComplete', 'framework-onTimeout'].map((id) => provider.node.findChild(id) as lambda.Function);
  const invokable = [...handlers, ...framework.slice(1)];
  for (const fn of framework) {
    acknowledge(fn.role!, {
      id: managedPolicyFinding('service-role/AWSLambdaBasicExecutionRole'),
      reason: 'CDK Provider framework function: the AWS managed policy only lets it write its own CloudWatch logs.',
    });
    acknowledge(
      fn.role!.node.findChild('DefaultPolicy'),
      ...invokable.map((target) => ({
        id: wildcardResourceFinding(provider, `${target.functionArn}:*`),
        reason: 'CDK Provider framework: may invoke the versions and aliases (":*") of this provider\'s own handler functions only.',
      })),
    );
  }
  const waiter = provider.node.findChild('waiter-state-machine');
  acknowledge(
    waiter.node.findChild('Role').node.findChild('DefaultPolicy'),
    ...framework.slice(1).map((target) => ({
      id: wildcardResourceFinding(provider, `${target.functionArn}:*`),
      reason: 'CDK Provider waiter: may invoke the versions and aliases of the framework isComplete/onTimeout functions only.',
    })),
  );
  acknowledge(waiter, {
    id: 'AwsSolutions-SF1',
    reason: 'Waiter logging is off: CDK would grant its role logs:* on every resource to turn it on, and each deploy step is already logged by the handler functions in their own log groups.',
  });
  acknowledge(waiter, {
    id: 'AwsSolutions-SF2',
    reason: 'The waiter only polls isComplete every 30 seconds; X-Ray tracing adds cost and no insight the handler logs do not give.',
  });
}
