import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { ObservabilitySettings } from './config/schema';
import { spotFleetRequestArn } from './gpu-spot-fleet';
import { BUCKET_STORAGE_TYPES, HOST_METRICS, type GpuMetrics } from './gpu-metrics';
import { SmallFunction } from './small-function';
import type { RemovalSetting } from './removal';

export interface GpuAlarmsProps {
  readonly metrics: GpuMetrics;
  readonly topic: sns.ITopic;
  readonly fleetId: string;
  readonly idleMinutes: number;
  readonly settings: ObservabilitySettings;
  readonly removalPolicy: RemovalSetting;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * The alarms that guard the "costs nothing while idle" promise, all to the
 * alert topic: a GPU left running by a failed or silent watcher, no Spot
 * capacity, a failed idle shutdown, and a bucket growing past its budget.
 */
export class GpuAlarms extends Construct {
  readonly alarms: cw.Alarm[] = [];
  readonly watcherFailed: cw.Alarm;
  private readonly topic: sns.ITopic;

  constructor(scope: Construct, id: string, props: GpuAlarmsProps) {
    super(scope, id);
    this.topic = props.topic;
    const { metrics, settings } = props;
    const fulfilled = metrics.fleet('FulfilledCapacity');
    const target = metrics.fleet('TargetCapacity');
    const limit = 2 * props.idleMinutes;

    this.watcherFailed = this.add('WatcherFailed', {
      alarmDescription: `A GPU is running and has been idle for more than twice its auto-stop threshold (${limit} minutes with gpu.idleMinutes; twice the gpu autostop value while one is set): the on-box idle watcher did not scale the fleet to 0. Check the comfyui-idle unit's log; run "npm run ops -- gpu stop --env <env>".`,
      metric: new cw.MathExpression({
        // The watcher publishes its threshold only while gpu autostop overrides idleMinutes.
        expression: `IF(fulfilled > 0 AND idle > 2 * FILL(threshold, ${props.idleMinutes}), 1, 0)`,
        usingMetrics: {
          fulfilled,
          idle: metrics.host(HOST_METRICS.idleMinutes, 'Maximum'),
          threshold: metrics.host(HOST_METRICS.idleThresholdMinutes, 'Maximum'),
        },
        period: FIVE_MINUTES,
        label: 'running and idle too long',
      }),
      evaluationPeriods: 1,
    });
    this.add('WatcherSilent', {
      alarmDescription: 'A GPU has been running for 15 minutes without the idle watcher publishing IdleMinutes: the watcher is not running, so nothing will scale the fleet to 0.',
      metric: new cw.MathExpression({
        expression: 'IF(fulfilled > 0 AND FILL(checks, 0) == 0, 1, 0)',
        usingMetrics: { fulfilled, checks: metrics.host(HOST_METRICS.idleMinutes, 'SampleCount') },
        period: FIVE_MINUTES,
        label: 'running without idle checks',
      }),
      evaluationPeriods: 3,
    });
    this.add('NoSpotCapacity', {
      alarmDescription: `The fleet has stayed below its target capacity for ${settings.noCapacityMinutes} minutes: no Spot capacity for the configured instance types. Add types to gpu.instanceTypes or wait; "npm run ops -- gpu start --wait" prints the fleet's request history when capacity does not come.`,
      metric: new cw.MathExpression({
        expression: 'IF(target - fulfilled > 0, 1, 0)',
        usingMetrics: { target, fulfilled },
        period: FIVE_MINUTES,
        label: 'capacity missing',
      }),
      evaluationPeriods: settings.noCapacityMinutes / 5,
    });
    this.add('IdleShutdownFailed', {
      alarmDescription: 'The idle watcher could not set the fleet capacity to 0 after its retries (IdleShutdownFailures). The GPU keeps running and billing.',
      metric: metrics.host(HOST_METRICS.idleShutdownFailures, 'Sum'),
      evaluationPeriods: 1,
    });
    this.add('SignalsUnreadable', {
      alarmDescription: 'For 15 minutes the idle watcher could not read a signal (GPU utilization, ComfyUI queue or sessions) at least 10 times. Unreadable counts as busy, so a GPU whose ComfyUI never came up keeps running: check the comfyui and model-sync logs.',
      metric: metrics.host(HOST_METRICS.idleSignalErrors, 'Sum', Duration.minutes(15)),
      threshold: 10,
      evaluationPeriods: 1,
    });
    const sizeGb = settings.bucketSizeAlarmGb;
    // S3 reports BucketSizeBytes once a day (S3 User Guide, "Amazon S3 daily storage metrics for buckets
    // in CloudWatch", https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html),
    // late and timestamped at the start of its day. FILL(m, 0) turned each not-yet-reported day into 0,
    // so the alarm only ever saw 0. SUM over the classes adds whichever have a datapoint; a day without
    // any keeps the alarm's state (ignore) until its datapoint arrives.
    this.add('BucketTooLarge', {
      alarmDescription: `The asset bucket holds more than ${sizeGb} GB. Review generated/ and old model versions.`,
      metric: new cw.MathExpression({
        expression: `SUM([${Object.keys(BUCKET_STORAGE_TYPES).map((k) => k.toLowerCase()).join(', ')}]) / 1073741824`,
        usingMetrics: Object.fromEntries(
          Object.entries(BUCKET_STORAGE_TYPES).map(([k, type]) => [k.toLowerCase(), metrics.bucketSize(type)]),
        ),
        period: Duration.days(1),
        label: 'bucket size (GB)',
      }),
      threshold: sizeGb,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.IGNORE,
    });

    if (settings.autoStopOnWatcherFailure) {
      const autoStop = new SmallFunction(this, 'AutoStop', {
        code: 'fleet-auto-stop',
        description: 'Sets the GPU fleet capacity to 0 when the idle watcher failed',
        environment: { FLEET_ID: props.fleetId },
        removalPolicy: props.removalPolicy,
      });
      autoStop.allow(
        new iam.PolicyStatement({
          sid: 'ScaleFleetToZero',
          actions: ['ec2:ModifySpotFleetRequest'],
          resources: [spotFleetRequestArn(this, props.fleetId)],
        }),
      );
      this.watcherFailed.addAlarmAction(new actions.LambdaAction(autoStop.function));
    }
  }

  private add(id: string, props: Omit<cw.AlarmProps, 'threshold'> & { threshold?: number }): cw.Alarm {
    const alarm = new cw.Alarm(this, id, {
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      ...props,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }
}
