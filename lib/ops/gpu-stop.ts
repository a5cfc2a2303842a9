import type { EC2Client } from '@aws-sdk/client-ec2';
import type { OpsDeps, Reporter } from './context';
import { ExitCode, OpsError } from './errors';
import { describeFleet, describeInstances, fleetInstances, isActiveInstance, stopWholeFleet, type FleetInstance } from './fleet';
import type { GpuTarget } from './gpu-target';
import { stillRunningOf } from './interrupt';
import { formatDuration, pollIntervalMs, pollUntil } from './wait';

/** The `gpu stop --json` document. */
export interface StopResult {
  readonly fleetId: string;
  readonly previousTargetCapacity: number;
  readonly targetCapacity: 0;
  /** Instances that were still active when the stop began. */
  readonly instances: string[];
  readonly seconds: number;
}

type Deps = Pick<OpsDeps, 'sleep' | 'now' | 'env' | 'stillRunning'>;

/**
 * Waits until the fleet lists no active instance and none of `known` still runs
 * (an instance can leave the fleet's list while it is still shutting down).
 * Returns the instances still active when the timeout hit; empty means done.
 */
export async function waitForNoActiveInstances(
  ec2: EC2Client,
  fleetId: string,
  known: readonly string[],
  timeoutMs: number,
  deps: Deps,
  reporter: Reporter,
): Promise<FleetInstance[]> {
  let remaining: FleetInstance[] = [];
  let lastShown = '';
  const result = await pollUntil(
    async () => {
      const listed = await fleetInstances(ec2, fleetId);
      const extra = known.filter((id) => !listed.some((i) => i.instanceId === id));
      const all = [...listed, ...(await describeInstances(ec2, extra))];
      remaining = all.filter(isActiveInstance);
      const shown = remaining.map((i) => `${i.instanceId} ${i.state}`).join(', ');
      if (remaining.length > 0 && shown !== lastShown) reporter.line(`  waiting for ${shown}`);
      lastShown = shown;
      return remaining.length === 0 ? { done: true, value: undefined } : { done: false };
    },
    { deadline: deps.now() + timeoutMs, intervalMs: pollIntervalMs(deps.env), deps, progress: { label: '[instances terminating]', reporter } },
  );
  return result.done ? [] : remaining;
}

export async function stopGpu(target: GpuTarget, timeoutMs: number, deps: Deps, reporter: Reporter): Promise<StopResult> {
  const { ec2 } = target.clients;
  const started = deps.now();
  const fleet = await describeFleet(ec2, target.fleetId, target.fleetSource);
  const before = (await fleetInstances(ec2, target.fleetId)).filter(isActiveInstance).map((i) => i.instanceId);
  await stopWholeFleet(ec2, fleet, before);
  if (fleet.targetCapacity !== 0) {
    reporter.line(`Target capacity of ${target.fleetId}: ${fleet.targetCapacity} -> 0`);
  } else {
    reporter.line(`Target capacity of ${target.fleetId} is already 0.`);
  }
  if (before.length > 0) reporter.line(`Waiting for ${before.length} instance(s) to terminate: ${before.join(', ')}`);
  const left = await stillRunningOf(deps).during(
    `target capacity of ${target.fleetId} is 0 and ${before.join(', ') || 'no instance'} terminating (EC2 finishes it): check with npm run ops -- gpu status --env ${target.config.envName}`,
    () => waitForNoActiveInstances(ec2, target.fleetId, before, timeoutMs, deps, reporter),
  );
  const elapsed = deps.now() - started;
  if (left.length > 0) {
    throw new OpsError(
      `Timed out after ${formatDuration(elapsed)} waiting for the instances to terminate: ` +
        `${left.map((i) => `${i.instanceId} (${i.state})`).join(', ')}. The target capacity is 0, so EC2 will still terminate them; check with: npm run ops -- gpu status --env ${target.config.envName}`,
      ExitCode.timeout,
    );
  }
  reporter.line(
    before.length > 0 ? `Stopped: no instance left after ${formatDuration(elapsed)}.` : `Stopped: no instance was running (${formatDuration(elapsed)}).`,
  );
  return {
    fleetId: target.fleetId,
    previousTargetCapacity: fleet.targetCapacity,
    targetCapacity: 0,
    instances: before,
    seconds: Math.round(elapsed / 100) / 10,
  };
}
