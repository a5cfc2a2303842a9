import { Aws, Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import * as path from 'node:path';
import { COMFYUI_CONTAINER_USER, COMFYUI_IMAGE_DIR } from './comfyui-image';
import { removalPolicyOf, type RemovalSetting } from './removal';

/** Where the GPU scripts live in the repo; CDK zips the folder into a versioned S3 asset. */
export const GPU_SCRIPTS_DIR = path.join(__dirname, '..', 'assets', 'user-data');

/** The KEY=VALUE settings written to /etc/comfyui/comfyui.env (the contract with assets/user-data). */
export interface GpuHostSettings {
  readonly APP_NAME: string;
  readonly ENV_NAME: string;
  readonly AWS_REGION: string;
  readonly ASSET_BUCKET: string;
  readonly COMFYUI_PORT: string;
  readonly IDLE_MINUTES: string;
  readonly IDLE_GPU_UTIL_PERCENT: string;
  readonly BOOT_GRACE_MINUTES: string;
  readonly METRIC_NAMESPACE: string;
  readonly LOG_GROUP: string;
  readonly OUTPUT_SYNC_MINUTES: string;
  /** SSM String parameter holding the gateway's SSH public key, which link-access.sh authorizes (`unset` until registered). */
  readonly LINK_KEY_PARAMETER: string;
  /** SSM String parameter with the run-time idle threshold (`gpu autostop`), which idle-watcher.sh reads each minute. */
  readonly AUTO_STOP_PARAMETER: string;
}

/** Local name of the image built from assets/comfyui/ (tagged with the build context's hash). */
export const COMFYUI_IMAGE_NAME = 'aiassets/comfyui';

/** The settings GpuBootstrap adds itself: where the image's build context is and what it is called. */
export interface ComfyUiImageSettings {
  /** The local image name, tagged with the build context's content hash. */
  readonly COMFYUI_IMAGE: string;
  /** The build context's content hash: the image cache key (cache/comfyui/<hash>.tar.zst). */
  readonly COMFYUI_IMAGE_HASH: string;
  /** s3:// URI of the zipped build context. */
  readonly COMFYUI_CONTEXT_URI: string;
  /** The container's user and group id (lib/comfyui-image.ts): owns output/, input/ and user/. */
  readonly COMFYUI_UID: string;
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
  /** The ComfyUI image's build context; its hash names the image and its cache object. */
  readonly imageContext: s3assets.Asset;
  /** Where the CloudWatch agent ships the units' logs (created here so it has a retention). */
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: GpuBootstrapProps) {
    super(scope, id);
    // settings.LOG_GROUP is the readable start of the name; the stack's id completes it. Retained
    // (prod) groups outlive a teardown, so a fixed name would make the next deploy fail with
    // "already exists" (and the agent may recreate a deleted group before its instance is gone).
    this.logGroup = new logs.LogGroup(this, 'HostLogs', {
      logGroupName: `${props.settings.LOG_GROUP}/${Fn.select(2, Fn.split('/', Aws.STACK_ID))}`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: removalPolicyOf(props.removalPolicy),
    });
    this.scripts = new s3assets.Asset(this, 'Scripts', { path: GPU_SCRIPTS_DIR, exclude: ['*.md'] });
    this.imageContext = new s3assets.Asset(this, 'ComfyUiImageContext', { path: COMFYUI_IMAGE_DIR, exclude: ['*.md'] });
    const hash = this.imageContext.assetHash;
    const image: ComfyUiImageSettings = {
      COMFYUI_IMAGE: `${COMFYUI_IMAGE_NAME}:${hash.slice(0, 16)}`,
      COMFYUI_IMAGE_HASH: hash,
      COMFYUI_CONTEXT_URI: `s3://${this.imageContext.s3BucketName}/${this.imageContext.s3ObjectKey}`,
      COMFYUI_UID: String(COMFYUI_CONTAINER_USER.uid),
    };
    const env = Object.entries({ ...props.settings, LOG_GROUP: this.logGroup.logGroupName, ...image }).map(([key, value]) => `${key}=${value}`);
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
