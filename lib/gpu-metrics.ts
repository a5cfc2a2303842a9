import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';

/** The namespace the CloudWatch agent publishes the nvidia_smi_* metrics to (its default). */
export const CW_AGENT_NAMESPACE = 'CWAgent';

/** Names of the metrics the GPU host publishes itself (assets/user-data/idle-watcher.sh). */
export const HOST_METRICS = {
  idleMinutes: 'IdleMinutes',
  idleShutdownActions: 'IdleShutdownActions',
  idleShutdownFailures: 'IdleShutdownFailures',
  idleSignalErrors: 'IdleSignalErrors',
  /** The run-time threshold (gpu autostop), published only while it differs from gpu.idleMinutes. */
  idleThresholdMinutes: 'IdleThresholdMinutes',
} as const;

/** S3 storage-type dimensions of BucketSizeBytes for the classes our lifecycle rules use. */
export const BUCKET_STORAGE_TYPES = {
  STANDARD: 'StandardStorage',
  STANDARD_IA: 'StandardIAStorage',
  GLACIER_IR: 'GlacierInstantRetrievalStorage',
} as const;

export interface GpuMetricsProps {
  readonly fleetId: string;
  readonly envName: string;
  /** Namespace of the host's own metrics, e.g. AiAssets/Gpu. */
  readonly hostNamespace: string;
  readonly bucketName: string;
}

/**
 * Every metric the dashboard and the alarms read, defined once. Spot Fleet
 * metrics (AWS/EC2Spot) come in 5-minute periods and are per fleet, which is
 * also where we take CPU and network from: instance ids change on each launch.
 */
export class GpuMetrics {
  constructor(private readonly props: GpuMetricsProps) {}

  fleet(metricName: string, statistic = 'Maximum'): cw.Metric {
    return new cw.Metric({
      namespace: 'AWS/EC2Spot',
      metricName,
      dimensionsMap: { FleetRequestId: this.props.fleetId },
      statistic,
      period: Duration.minutes(5),
    });
  }

  host(metricName: string, statistic: string, period = Duration.minutes(5)): cw.Metric {
    return new cw.Metric({
      namespace: this.props.hostNamespace,
      metricName,
      dimensionsMap: { Environment: this.props.envName },
      statistic,
      period,
    });
  }

  /**
   * The CloudWatch agent's nvidia_smi_* metrics of this environment's GPU hosts
   * (the agent adds an Environment dimension); a search, because instance ids
   * change on every launch.
   */
  gpu(measurement: string, label: string): cw.MathExpression {
    return new cw.MathExpression({
      expression: `SEARCH('Namespace="${CW_AGENT_NAMESPACE}" MetricName="nvidia_smi_${measurement}" Environment="${this.props.envName}"', 'Average', 60)`,
      label,
      period: Duration.minutes(1),
    });
  }

  bucketSize(storageType: string): cw.Metric {
    return new cw.Metric({
      namespace: 'AWS/S3',
      metricName: 'BucketSizeBytes',
      dimensionsMap: { BucketName: this.props.bucketName, StorageType: storageType },
      statistic: 'Average',
      period: Duration.days(1),
    });
  }

  objectCount(): cw.Metric {
    return new cw.Metric({
      namespace: 'AWS/S3',
      metricName: 'NumberOfObjects',
      dimensionsMap: { BucketName: this.props.bucketName, StorageType: 'AllStorageTypes' },
      statistic: 'Average',
      period: Duration.days(1),
    });
  }

  /** Published only in us-east-1, hence the explicit region (a cross-region widget elsewhere). */
  estimatedCharges(): cw.Metric {
    return new cw.Metric({
      namespace: 'AWS/Billing',
      metricName: 'EstimatedCharges',
      dimensionsMap: { Currency: 'USD' },
      statistic: 'Maximum',
      period: Duration.hours(6),
      region: 'us-east-1',
    });
  }
}
