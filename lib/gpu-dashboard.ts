import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { GATEWAY_METRICS, gatewayMetricNamespace } from './gpu-control/names';
import { BUCKET_STORAGE_TYPES, HOST_METRICS, type GpuMetrics } from './gpu-metrics';

export interface GpuDashboardProps {
  readonly dashboardName: string;
  readonly metrics: GpuMetrics;
  readonly alarms: cw.IAlarm[];
  readonly idleMinutes: number;
  readonly monthlyBudgetUsd: number;
  /**
   * Namespace of the gateway's metrics and the GPU-time ledger (`<App>/Gateway`). Default: derived
   * from the host metrics' `<App>/Gpu` namespace, the same app.
   */
  readonly gatewayNamespace?: string;
}

/** What each panel means and what to do when it is red (the dashboard's first widget). */
export function dashboardGuide(idleMinutes: number, monthlyBudgetUsd: number): string {
  return [
    '## GPU tier: how to read this dashboard',
    '| panel | what it shows | when it is red |',
    '| --- | --- | --- |',
    '| Alarms | every alarm of this environment | open the alarm; its description says what to do |',
    '| GPU utilization / memory | CloudWatch agent nvidia_smi_* metrics per GPU host | 0 % for long while the fleet runs: the idle watcher should scale it to 0 |',
    '| Fleet capacity | target vs fulfilled Spot capacity | target above fulfilled for long: no Spot capacity, add instance types |',
    `| Idle minutes | consecutive idle minutes reported each minute; shutdown at ${idleMinutes} | above ${2 * idleMinutes}: the watcher failed, run \`npm run ops -- gpu stop\` |`,
    '| Idle shutdowns | capacity changes made by the watcher, failures, unreadable signals | failures: the instance role or the API failed; signal errors count as busy |',
    '| CPU / network | per-fleet averages from AWS/EC2Spot | high network at boot is the model sync |',
    '| Bucket | size by storage class and object count (daily) | growth past the alarm size: clean generated/ |',
    `| Estimated charges | month-to-date AWS bill (us-east-1 metric) | above ${monthlyBudgetUsd} USD: the budget also e-mails at 80 % and 100 % |`,
    '| Gateway queue and jobs | prompts held and running on the VPS gateway; wakes, completed, failed and resubmitted jobs | failures or resubmissions rising: see the gateway logs on the VPS |',
    '| Wake to ready | seconds from a wake to a ready ComfyUI | long waits: Spot capacity or the image cache |',
    '| GPU allowance | the month\'s GPU allowance and its use (ledger + running instances), as the control function reports it | used reaching the allowance: wakes are refused until the month ends or `gpu start --over-budget` |',
  ].join('\n');
}

/** One CloudWatch dashboard per environment for the GPU tier, its spend and its alarms. */
export class GpuDashboard extends Construct {
  readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: GpuDashboardProps) {
    super(scope, id);
    const m = props.metrics;
    const graph = (title: string, left: cw.IMetric[], extra: Partial<cw.GraphWidgetProps> = {}) =>
      new cw.GraphWidget({ title, left, width: 12, height: 6, ...extra });

    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(24),
      widgets: [
        [new cw.TextWidget({ markdown: dashboardGuide(props.idleMinutes, props.monthlyBudgetUsd), width: 24, height: 10 })],
        [new cw.AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 24, height: 3 })],
        [
          graph('GPU utilization (%)', [m.gpu('utilization_gpu', 'GPU')], { leftYAxis: { min: 0, max: 100 } }),
          graph('GPU memory', [m.gpu('utilization_memory', 'memory utilization (%)'), m.gpu('memory_used', 'memory used (MiB)')]),
        ],
        [
          graph('Fleet capacity', [m.fleet('TargetCapacity'), m.fleet('FulfilledCapacity')]),
          graph('Idle minutes', [m.host(HOST_METRICS.idleMinutes, 'Maximum', Duration.minutes(1))], {
            leftAnnotations: [{ value: props.idleMinutes, label: 'scale to 0' }, { value: 2 * props.idleMinutes, label: 'watcher failed', color: '#d62728' }],
          }),
        ],
        [
          graph('Idle shutdowns', [
            m.host(HOST_METRICS.idleShutdownActions, 'Sum'),
            m.host(HOST_METRICS.idleShutdownFailures, 'Sum'),
            m.host(HOST_METRICS.idleSignalErrors, 'Sum'),
          ]),
          graph('CPU (%) and network (bytes)', [m.fleet('CPUUtilization', 'Average')], {
            right: [m.fleet('NetworkIn', 'Sum'), m.fleet('NetworkOut', 'Sum')],
          }),
        ],
        [
          graph('Bucket size by storage class (bytes)', Object.entries(BUCKET_STORAGE_TYPES).map(([label, type]) => m.bucketSize(type).with({ label }))),
          graph('Bucket objects', [m.objectCount()]),
        ],
        [new cw.GraphWidget({ title: 'Estimated charges (USD, us-east-1)', left: [m.estimatedCharges()], width: 24, height: 6, region: 'us-east-1' })],
        gatewayRow(m, props.gatewayNamespace),
      ],
    });
  }
}

/** The gateway's counters (report action of the control function) and the month's GPU allowance, in one row. */
function gatewayRow(m: GpuMetrics, namespace?: string): cw.IWidget[] {
  // The host metrics carry the app's `<App>/Gpu` namespace and this environment's dimension.
  const host = m.host(HOST_METRICS.idleMinutes, 'Maximum');
  const gatewayNamespace = namespace ?? gatewayMetricNamespace(host.namespace.replace(/\/Gpu$/, ''));
  const metric = (name: string, statistic: string, label: string, period = Duration.minutes(5)): cw.Metric =>
    new cw.Metric({ namespace: gatewayNamespace, metricName: name, dimensionsMap: { Environment: host.dimensions!.Environment as string }, statistic, period, label });
  const g = GATEWAY_METRICS;
  return [
    new cw.GraphWidget({
      title: 'Gateway queue and jobs',
      left: [metric(g.queueDepth, 'Maximum', 'queued'), metric(g.running, 'Maximum', 'running')],
      right: [metric(g.wakes, 'Sum', 'wakes'), metric(g.jobsCompleted, 'Sum', 'completed'), metric(g.jobsFailed, 'Sum', 'failed'), metric(g.jobsResubmitted, 'Sum', 'resubmitted')],
      width: 8,
      height: 6,
    }),
    new cw.GraphWidget({
      title: 'Wake to ready (s)',
      left: [metric(g.wakeToReadySeconds, 'p50', 'p50', Duration.hours(1)), metric(g.wakeToReadySeconds, 'Maximum', 'max', Duration.hours(1))],
      width: 8,
      height: 6,
    }),
    new cw.GraphWidget({
      title: 'GPU allowance this month (USD)',
      left: [metric(g.allowanceUsedUsd, 'Maximum', 'used', Duration.hours(1)), metric(g.allowanceUsd, 'Maximum', 'allowance', Duration.hours(1))],
      leftYAxis: { min: 0 },
      width: 8,
      height: 6,
    }),
  ];
}
