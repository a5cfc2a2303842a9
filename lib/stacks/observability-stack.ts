import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { assetBucketName } from '../asset-bucket';
import type { EnvironmentConfig } from '../config/load';
import { CostBudget } from '../cost-budget';
import { GpuAlarms } from '../gpu-alarms';
import { GpuDashboard } from '../gpu-dashboard';
import { GpuMetrics } from '../gpu-metrics';
import { gpuMetricNamespace } from './gpu-stack';

export interface ObservabilityStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  readonly fleetId: string;
  readonly alertTopic: sns.ITopic;
}

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
      budgetName: `${config.appName}-${config.envName}-monthly`,
      monthlyUsd: config.monthlyBudgetUsd,
      alertEmail: config.alertEmail,
      tagKey: 'CostCenter',
      tagValue: config.costCenter,
    });
  }
}
