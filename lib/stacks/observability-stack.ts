import { CfnResource, Lazy, Stack, type StackProps } from 'aws-cdk-lib';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { assetBucketName } from '../asset-bucket';
import type { EnvironmentConfig } from '../config/load';
import { CostBudget } from '../cost-budget';
import { GpuAlarms } from '../gpu-alarms';
import { GpuDashboard } from '../gpu-dashboard';
import { GpuMetrics } from '../gpu-metrics';
import { referencedResource, replacementFingerprint } from '../replacement-fingerprint';
import { gpuMetricNamespace } from './gpu-stack';

export interface ObservabilityStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  readonly fleetId: string;
  readonly alertTopic: sns.ITopic;
}

/** Metadata key of the Gpu stack's replacement fingerprint on every resource here. */
export const GPU_FINGERPRINT_METADATA = 'aiassets:gpuReplacementFingerprint';

/** Dashboard, alarms and budget of one environment. */
export class ObservabilityStack extends Stack {
  readonly alarms: GpuAlarms;

  constructor(scope: Construct, id: string, props: ObservabilityStackProps) {
    super(scope, id, props);
    const { config } = props;
    const metrics = new GpuMetrics({
      fleetId: props.fleetId,
      envName: config.envName,
      hostNamespace: gpuMetricNamespace(config.appName),
      bucketName: assetBucketName(config.appName, config.envName, config.account),
    });
    this.alarms = new GpuAlarms(this, 'Alarms', {
      metrics,
      topic: props.alertTopic,
      fleetId: props.fleetId,
      idleMinutes: config.gpu.idleMinutes,
      settings: config.observability,
      removalPolicy: config.removalPolicy,
    });
    new GpuDashboard(this, 'Dashboard', {
      dashboardName: `${config.appName}-${config.envName}-gpu`,
      metrics,
      alarms: this.alarms.alarms,
      idleMinutes: config.gpu.idleMinutes,
      monthlyBudgetUsd: config.monthlyBudgetUsd,
    });
    new CostBudget(this, 'Budget', {
      budgetNamePrefix: `${config.appName}-${config.envName}-monthly`,
      monthlyUsd: config.monthlyBudgetUsd,
      alertEmail: config.alertEmail,
      tagKey: 'CostCenter',
      tagValue: config.costCenter,
    });
    this.followGpuReplacements([props.fleetId, props.alertTopic.topicArn]);
  }

  /**
   * The fleet id and topic ARN arrive through Fn::GetStackOutput, which CloudFormation resolves
   * only when this stack is created or updated; `cdk deploy` skips a stack whose template is
   * unchanged. A fleet replacement (instance types, CIDR, tags, price) leaves this template as it
   * was, so the alarms and the dashboard would keep watching the cancelled fleet. Every resource
   * here therefore carries a fingerprint of what makes CloudFormation replace the referenced
   * resources: it changes exactly when one is replaced (not on a capacity change), so the next
   * deploy updates this stack and resolves the new id. Chosen over exports, whose value
   * CloudFormation refuses to change while another stack imports it (the fleet could then not
   * be replaced at all).
   */
  private followGpuReplacements(references: string[]): void {
    const fingerprint = Lazy.string({ produce: () => replacementFingerprint(references.map(referencedResource)) });
    for (const child of this.node.findAll()) {
      if (child instanceof CfnResource) child.addMetadata(GPU_FINGERPRINT_METADATA, fingerprint);
    }
  }
}
