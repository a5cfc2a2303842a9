import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { AlertTopic } from '../alert-topic';
import { assetBucketName } from '../asset-bucket';
import { ComfyUiLaunchTemplate } from '../comfyui-launch-template';
import type { EnvironmentConfig } from '../config/load';
import type { GpuAllowance } from '../cost/gpu-allowance';
import { GpuAutoStopSetting } from '../gpu-auto-stop-setting';
import { GpuBootstrap } from '../gpu-bootstrap';
import { GpuControl } from '../gpu-control';
import { GpuInstanceRole } from '../gpu-instance-role';
import { COMFYUI_PORT, GpuNetwork } from '../gpu-network';
import { GpuSpotFleet } from '../gpu-spot-fleet';
import { SpotInterruptionAlerts } from '../spot-interruption-alerts';

export interface GpuStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  /** The month's GPU allowance and Spot prices for the budget guard (lib/app.ts measures it). */
  readonly gpuAllowance: GpuAllowance;
}

/** Minutes between output syncs to generated/ (and once more at shutdown or interruption). */
const OUTPUT_SYNC_MINUTES = 5;

/** The stateless GPU tier: network, instance role, launch template, Spot Fleet, interruption alerts and the gateway's control function. */
export class GpuStack extends Stack {
  readonly instanceRole: GpuInstanceRole;
  readonly network: GpuNetwork;
  readonly spotFleet: GpuSpotFleet;
  readonly alerts: AlertTopic;
  readonly bootstrap: GpuBootstrap;
  readonly control: GpuControl;

  constructor(scope: Construct, id: string, props: GpuStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { appName, envName, account, gpu } = config;
    const bucketName = assetBucketName(appName, envName, account);
    // By name, not by export: the stateful stack stays free to change (see assetBucketName).
    const assetBucket = s3.Bucket.fromBucketName(this, 'AssetBucket', bucketName);

    this.instanceRole = new GpuInstanceRole(this, 'InstanceRole', { assetBucket });
    this.network = new GpuNetwork(this, 'Network', {
      vpcCidr: config.network.vpcCidr,
      azCount: config.network.azCount,
      comfyuiIngressCidr: config.network.comfyuiIngressCidr,
      removalPolicy: config.removalPolicy,
    });
    this.bootstrap = new GpuBootstrap(this, 'Bootstrap', {
      removalPolicy: config.removalPolicy,
      settings: {
        APP_NAME: appName,
        ENV_NAME: envName,
        AWS_REGION: this.region,
        ASSET_BUCKET: bucketName,
        COMFYUI_PORT: String(COMFYUI_PORT),
        IDLE_MINUTES: String(gpu.idleMinutes),
        IDLE_GPU_UTIL_PERCENT: String(gpu.idleGpuUtilizationPercent),
        BOOT_GRACE_MINUTES: String(gpu.bootGraceMinutes),
        METRIC_NAMESPACE: gpuMetricNamespace(appName),
        LOG_GROUP: `/${appName.toLowerCase()}/${envName}/gpu`,
        OUTPUT_SYNC_MINUTES: String(OUTPUT_SYNC_MINUTES),
        LINK_KEY_PARAMETER: this.instanceRole.allowLinkKeyRead(config),
        AUTO_STOP_PARAMETER: new GpuAutoStopSetting(this, 'AutoStop', { names: config, instanceRole: this.instanceRole }).parameterName,
      },
    });
    this.instanceRole.allowBootstrapDownload(this.bootstrap.scripts, this.bootstrap.imageContext);
    this.instanceRole.allowHostTelemetry(this.bootstrap.logGroup, gpuMetricNamespace(appName));

    const template = new ComfyUiLaunchTemplate(this, 'LaunchTemplate', {
      amiParameter: gpu.amiParameter,
      rootVolumeGb: gpu.rootVolumeGb,
      instanceProfile: this.instanceRole.instanceProfile,
      securityGroup: this.network.securityGroup,
      userData: this.bootstrap.userData,
      name: `${appName}-${envName}-comfyui`,
    });
    this.spotFleet = new GpuSpotFleet(this, 'SpotFleet', {
      launchTemplate: template.launchTemplate,
      instanceRole: this.instanceRole.role,
      instanceTypes: gpu.instanceTypes,
      subnets: this.network.vpc.publicSubnets,
      initialCapacity: gpu.initialCapacity,
      maxSpotPriceUsd: gpu.maxSpotPriceUsd,
      tags: { App: appName, Environment: envName, CostCenter: config.costCenter },
    });
    this.instanceRole.allowLeavingFleet(this.spotFleet.fleet.ref, this.spotFleet.fleetArn);

    this.alerts = new AlertTopic(this, 'Alerts', { alertEmail: config.alertEmail });
    new SpotInterruptionAlerts(this, 'SpotInterruptions', {
      fleetId: this.spotFleet.fleet.ref,
      topic: this.alerts.topic,
      envName,
      removalPolicy: config.removalPolicy,
    });

    this.control = new GpuControl(this, 'Control', {
      appName,
      envName,
      fleetId: this.spotFleet.fleet.ref,
      fleetArn: this.spotFleet.fleetArn,
      assetBucket,
      maxInstances: gpu.maxInstances,
      allowance: props.gpuAllowance,
      removalPolicy: config.removalPolicy,
    });

    // Outputs are the ops commands' way to find resources (never hard-coded names).
    new CfnOutput(this, 'SpotFleetRequestId', { value: this.spotFleet.fleet.ref });
    new CfnOutput(this, 'InstanceRoleArn', { value: this.instanceRole.role.roleArn });
    new CfnOutput(this, 'AlertTopicArn', { value: this.alerts.topic.topicArn });
    new CfnOutput(this, 'ComfyUiPort', { value: String(COMFYUI_PORT) });
    new CfnOutput(this, 'HostLogGroup', { value: this.bootstrap.logGroup.logGroupName });
    new CfnOutput(this, 'GpuMetricNamespace', { value: gpuMetricNamespace(appName) });
    new CfnOutput(this, 'GpuControlFunctionName', { value: this.control.function.functionName });
    new CfnOutput(this, 'GatewayCredentialSecretArn', { value: this.control.credentialSecret.secretArn });
    // What the function budgets with, for `gpu status` and `gpu start` (the same ledger, priced the same).
    new CfnOutput(this, 'GpuAllowanceUsd', { value: String(props.gpuAllowance.allowanceUsd) });
    new CfnOutput(this, 'GpuSpotPricesUsd', { value: JSON.stringify(props.gpuAllowance.spotPrices) });
  }
}

/** The CloudWatch namespace of the GPU host's own metrics (idle minutes, idle-shutdown actions). */
export function gpuMetricNamespace(appName: string): string {
  return `${appName}/Gpu`;
}
