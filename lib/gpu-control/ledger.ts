import { PutMetricDataCommand, StandardUnit, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CreateTagsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { describeInstances, launchEpoch, parseBilled, tagOf } from './fleet';
import { splitByMonth } from './month';
import { BILLED_TAG, FLEET_TAG, GATEWAY_METRICS } from './names';

/**
 * The GPU-time ledger: when an instance of this fleet starts stopping or shutting down, its run
 * (launch time to the event's time) goes into the GpuSeconds metric, one datum per UTC month it
 * spans, timestamped in that month. The budget sums the metric over the month.
 */

export const STATE_CHANGE_DETAIL_TYPE = 'EC2 Instance State-change Notification';

/** The states that end a run: a run is recorded once, when it stops billing compute. */
export const RUN_ENDING_STATES = ['shutting-down', 'stopping'] as const;

/** CloudWatch refuses data points older than two weeks (PutMetricData, "Timestamp"). */
const MAX_DATUM_AGE_MS = 14 * 24 * 3600 * 1000;

/** The fields of the EventBridge event this reads (EC2 User Guide, "EC2 instance state change events"). */
export interface InstanceStateEvent {
  readonly source: 'aws.ec2';
  readonly 'detail-type': typeof STATE_CHANGE_DETAIL_TYPE;
  readonly time?: string;
  readonly detail: { readonly 'instance-id'?: string; readonly state?: string };
}

export type LedgerResult =
  | { readonly recorded: false; readonly reason: string }
  | {
      readonly recorded: true;
      readonly instanceId: string;
      readonly instanceType: string;
      readonly seconds: number;
      readonly months: readonly { readonly month: string; readonly seconds: number }[];
    };

export function isInstanceStateEvent(event: unknown): event is InstanceStateEvent {
  const e = event as Partial<InstanceStateEvent> | null;
  return typeof e === 'object' && e !== null && e.source === 'aws.ec2' && e['detail-type'] === STATE_CHANGE_DETAIL_TYPE && typeof e.detail === 'object';
}

export interface LedgerDeps {
  readonly ec2: EC2Client;
  readonly cloudWatch: CloudWatchClient;
  readonly fleetId: string;
  readonly namespace: string;
  readonly envName: string;
  readonly now: Date;
  readonly log: (line: string) => void;
}

export async function recordRun(deps: LedgerDeps, event: InstanceStateEvent): Promise<LedgerResult> {
  const instanceId = event.detail['instance-id'];
  const state = event.detail.state;
  if (!instanceId) return { recorded: false, reason: 'the event names no instance' };
  if (!(RUN_ENDING_STATES as readonly (string | undefined)[]).includes(state)) {
    return { recorded: false, reason: `state ${state ?? '(none)'} does not end a run (recorded on ${RUN_ENDING_STATES.join(' or ')})` };
  }
  let instance;
  try {
    [instance] = await describeInstances(deps.ec2, [instanceId]);
  } catch (error) {
    if ((error as { name?: string }).name === 'InvalidInstanceID.NotFound') return { recorded: false, reason: `instance ${instanceId} does not exist` };
    throw error;
  }
  if (!instance) return { recorded: false, reason: `instance ${instanceId} does not exist` };
  if (tagOf(instance, FLEET_TAG) !== deps.fleetId) return { recorded: false, reason: `instance ${instanceId} is not in this fleet` };
  const launch = launchEpoch(instance);
  if (launch === null || !instance.LaunchTime) return { recorded: false, reason: `instance ${instanceId} has no launch time` };

  // EventBridge delivers an event at least once, and Lambda runs an asynchronous invocation again
  // after a failed run, so the same run can arrive twice; GpuSeconds is a sum, so recording it
  // again would count the run twice. The tag says which run (by launch time) is in the ledger.
  // It also skips a stopped instance that is then terminated (its run was recorded at stopping).
  const billed = parseBilled(tagOf(instance, BILLED_TAG));
  if (billed && billed.launch === launch) {
    return { recorded: false, reason: `the run of ${instanceId} launched at ${instance.LaunchTime.toISOString()} is already recorded (${billed.seconds} s)` };
  }

  // The event's time, not the time of this run: a delayed or repeated delivery ends the run at the same moment.
  const eventTime = event.time ? new Date(event.time) : deps.now;
  const end = Number.isNaN(eventTime.getTime()) || eventTime > deps.now ? deps.now : eventTime;
  const slices = splitByMonth(instance.LaunchTime, end).map((s) => ({ ...s, seconds: Math.round(s.seconds) }));
  const instanceType = instance.InstanceType ?? 'unknown';
  const kept = slices.filter((s) => s.seconds > 0 && deps.now.getTime() - s.end.getTime() <= MAX_DATUM_AGE_MS);
  for (const s of slices.filter((x) => !kept.includes(x) && x.seconds > 0)) {
    deps.log(`not recorded: ${s.seconds} s of ${instanceId} in ${s.month}, older than CloudWatch accepts (two weeks); that month is over`);
  }
  if (kept.length > 0) {
    await deps.cloudWatch.send(
      new PutMetricDataCommand({
        Namespace: deps.namespace,
        MetricData: kept.map((s) => ({
          MetricName: GATEWAY_METRICS.gpuSeconds,
          Dimensions: [
            { Name: 'Environment', Value: deps.envName },
            { Name: 'InstanceType', Value: instanceType },
          ],
          Timestamp: s.end,
          Value: s.seconds,
          Unit: StandardUnit.Seconds,
        })),
      }),
    );
  }
  const seconds = slices.reduce((sum, s) => sum + s.seconds, 0);
  // After the metric, not before: a failure in between makes a retry count the run twice (the
  // budget then refuses early), never not at all. A failed tag is logged, not retried: the
  // metric is in, and a retry could not tag either.
  try {
    await deps.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: BILLED_TAG, Value: `${seconds}@${launch}` }] }));
  } catch (error) {
    deps.log(`recorded ${seconds} s of ${instanceId} but could not tag it ${BILLED_TAG} (${(error as Error).message}); a repeated event would count this run again`);
  }
  deps.log(`recorded ${seconds} s of ${instanceId} (${instanceType}, ${state}): ${slices.map((s) => `${s.month} ${s.seconds} s`).join(', ')}`);
  return { recorded: true, instanceId, instanceType, seconds, months: slices.map(({ month, seconds: s }) => ({ month, seconds: s })) };
}
