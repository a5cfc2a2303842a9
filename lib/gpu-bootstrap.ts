import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import * as path from 'node:path';
import { removalPolicyOf, type RemovalSetting } from './removal';

/** Where the GPU scripts live in the repo; CDK zips the folder into a versioned S3 asset. */
export const GPU_SCRIPTS_DIR = path.join(__dirname, '..', 'assets', 'user-data');

/** The KEY=VALUE settings written to /etc/comfyui/comfyui.env (the contract with assets/user-data). */
export interface GpuHostSettings {
  readonly APP_NAME: string;
  readonly ENV_NAME: string;
  readonly AWS_REGION: string;
  readonly ASSET_BUCKET: string;
  readonly COMFYUI_IMAGE: string;
  readonly COMFYUI_PORT: string;
  readonly IDLE_MINUTES: string;
  readonly IDLE_GPU_UTIL_PERCENT: string;
  readonly BOOT_GRACE_MINUTES: string;
  readonly METRIC_NAMESPACE: string;
  readonly LOG_GROUP: string;
  readonly OUTPUT_SYNC_MINUTES: string;
}

export interface GpuBootstrapProps {
  readonly settings: GpuHostSettings;
  readonly removalPolicy: RemovalSetting;
}

/**
 * The GPU's user data: a short bootstrap that writes the host settings, fetches
 * the versioned scripts from a CDK asset and runs their installer. Keeping the
 * scripts out of user data keeps it far below EC2's 16 KB limit, and a script
 * change only produces a new launch-template version.
 */
export class GpuBootstrap extends Construct {
  readonly userData: ec2.UserData;
  readonly scripts: s3assets.Asset;
  /** Where the CloudWatch agent ships the units' logs (created here so it has a retention). */
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: GpuBootstrapProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'HostLogs', {
      logGroupName: props.settings.LOG_GROUP,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: removalPolicyOf(props.removalPolicy),
    });
    this.scripts = new s3assets.Asset(this, 'Scripts', { path: GPU_SCRIPTS_DIR, exclude: ['*.md'] });
    const env = Object.entries(props.settings).map(([key, value]) => `${key}=${value}`);
    this.userData = ec2.UserData.forLinux();
    this.userData.addCommands(
      'set -euo pipefail',
      'install -d -m 0755 /etc/comfyui /opt/comfyui',
      "cat > /etc/comfyui/comfyui.env <<'ENV'",
      ...env,
      'ENV',
      `aws s3 cp --only-show-errors --region ${props.settings.AWS_REGION} s3://${this.scripts.s3BucketName}/${this.scripts.s3ObjectKey} /opt/comfyui/bootstrap.zip`,
      'rm -rf /opt/comfyui/bootstrap',
      'python3 -m zipfile -e /opt/comfyui/bootstrap.zip /opt/comfyui/bootstrap',
      'bash /opt/comfyui/bootstrap/install.sh',
    );
  }
}
