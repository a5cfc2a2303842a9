import { formatBudgetLine } from '../gpu-control/budget';
import type { BudgetStatus } from '../gpu-control/protocol';
import { formatBootPhases } from '../gpu-instance-tags';
import type { OpsDeps, Reporter } from './context';
import { describeFleet, fleetInstances, type FleetInstance } from './fleet';
import { describeAutoStop, readAutoStop, type AutoStopSetting } from './gpu-autostop';
import { readGpuBudget, ssmClientOf } from './gpu-budget';
import type { GpuTarget } from './gpu-target';
import { lastIdleMinutes } from './idle-metric';
import { latestSpotPrice } from './spot-price';
import { stoppedFleetInstances, type StoppedInstance } from './stopped-instances';
import { formatTable } from './table';

export interface GpuInstanceStatus extends FleetInstance {
  /** Last IdleMinutes the host published in the past 10 minutes (per environment), null if none. */
  readonly idleMinutes: number | null;
  /** Idle minutes left before the box leaves its fleet (the threshold minus idleMinutes), null when unknown. */
  readonly autoStopInMinutes: number | null;
  readonly spotPriceUsdPerHour: number | null;
}

/** The `gpu status --json` document. */
export interface GpuStatus {
  readonly env: string;
  readonly region: string;
  /** When this status was read (ISO 8601). */
  readonly observedAt: string;
  readonly stack: string;
  readonly fleetId: string;
  readonly state: string;
  readonly activityStatus: string | null;
  readonly targetCapacity: number;
  readonly fulfilledCapacity: number;
  readonly instances: GpuInstanceStatus[];
  /** Stopped instances of the fleet, whose volumes keep billing; null when they could not be read. */
  readonly stoppedInstances: StoppedInstance[] | null;
  /** The month's GPU allowance and use, as the control function computes it; null when it could not be read. */
  readonly budget: BudgetStatus | null;
  /** The idle threshold the boxes apply (`gpu autostop` or gpu.idleMinutes); null when it could not be read. */
  readonly autoStop: AutoStopSetting | null;
}

export async function collectGpuStatus(target: GpuTarget, deps: Pick<OpsDeps, 'now'>, reporter: Reporter): Promise<GpuStatus> {
  const { ec2, cloudWatch } = target.clients;
  const fleet = await describeFleet(ec2, target.fleetId, target.fleetSource);
  const instances = await fleetInstances(ec2, target.fleetId);

  // Idle time and prices are extras: a failure there (e.g. no cloudwatch:GetMetricData) must not hide the fleet.
  let idle: number | null = null;
  if (instances.length > 0) {
    try {
      idle = await lastIdleMinutes(cloudWatch, target.metricNamespace, target.config.envName, deps.now());
    } catch (error) {
      reporter.warn(`idle minutes unavailable: ${(error as Error).message}`);
    }
  }
  const prices = new Map<string, number | null>();
  for (const i of instances) {
    const key = `${i.instanceType}@${i.availabilityZone}`;
    if (prices.has(key) || !i.availabilityZone) continue;
    try {
      prices.set(key, await latestSpotPrice(ec2, i.instanceType, i.availabilityZone));
    } catch (error) {
      reporter.warn(`Spot price of ${key} unavailable: ${(error as Error).message}`);
      prices.set(key, null);
    }
  }

  let budget: BudgetStatus | null = null;
  try {
    const read = await readGpuBudget(target, new Date(deps.now()));
    if (read.available) budget = read.budget;
    else reporter.warn(`GPU budget unavailable: ${read.reason}`);
  } catch (error) {
    reporter.warn(`GPU budget unavailable: ${(error as Error).message}`);
  }

  let autoStop: AutoStopSetting | null = null;
  try {
    autoStop = await readAutoStop(target.config, ssmClientOf(target.clients, target.config.region));
  } catch (error) {
    reporter.warn(`auto-stop setting unavailable: ${(error as Error).message}`);
  }

  let stopped: StoppedInstance[] | null = null;
  try {
    stopped = await stoppedFleetInstances(ec2, target.fleetId, target.config.region, instances);
  } catch (error) {
    reporter.warn(`stopped instances unavailable (their volumes may be billing unseen): ${(error as Error).message}`);
  }

  // IdleMinutes is one series per environment (the maximum over its boxes): the most idle box's countdown.
  const idleOf = (i: FleetInstance): number | null => (i.state === 'running' ? idle : null);
  return {
    env: target.config.envName,
    region: target.config.region,
    observedAt: new Date(deps.now()).toISOString(),
    stack: target.stackName,
    fleetId: fleet.fleetId,
    state: fleet.state,
    activityStatus: fleet.activityStatus,
    targetCapacity: fleet.targetCapacity,
    fulfilledCapacity: fleet.fulfilledCapacity,
    instances: instances.map((i) => ({
      ...i,
      idleMinutes: idleOf(i),
      autoStopInMinutes: autoStop && idleOf(i) !== null ? Math.max(0, autoStop.thresholdMinutes - (idleOf(i) as number)) : null,
      spotPriceUsdPerHour: prices.get(`${i.instanceType}@${i.availabilityZone}`) ?? null,
    })),
    stoppedInstances: stopped,
    budget,
    autoStop,
  };
}

const dash = (value: string | number | null): string => (value === null || value === '' ? '-' : String(value));

export function renderGpuStatus(status: GpuStatus): string[] {
  const activity = status.activityStatus ? ` (${status.activityStatus})` : '';
  const lines = [
    `Environment  ${status.env} (${status.region}), stack ${status.stack}`,
    `Spot Fleet   ${status.fleetId} ${status.state}${activity}`,
    `Capacity     target ${status.targetCapacity}, fulfilled ${status.fulfilledCapacity}`,
    ...(status.budget ? [formatBudgetLine(status.budget)] : []),
    ...(status.autoStop ? [autoStopLine(status.autoStop)] : []),
    '',
  ];
  if (status.instances.length === 0) {
    lines.push(
      status.targetCapacity === 0
        ? `No instances: the fleet is scaled to 0 (target capacity 0). Start one with: npm run ops -- gpu start --env ${status.env} --wait`
        : `No instances yet: target ${status.targetCapacity}, fulfilled ${status.fulfilledCapacity} (launching, or waiting for Spot capacity).`,
    );
  } else {
    lines.push(...instanceRows(status));
  }
  return [...lines, ...stoppedRows(status)];
}

function instanceRows(status: GpuStatus): string[] {
  const rows = status.instances.map((i) => [
    i.instanceId,
    i.instanceType,
    dash(i.availabilityZone),
    i.state,
    i.launchTime ? i.launchTime.replace('T', ' ').replace(/\.\d+Z$|Z$/, 'Z') : '-',
    dash(i.publicIp),
    dash(i.publicDns),
    dash(i.idleMinutes),
    i.autoStopInMinutes === null ? '-' : `in ${i.autoStopInMinutes} min`,
    i.spotPriceUsdPerHour === null ? '-' : `$${i.spotPriceUsdPerHour.toFixed(4)}`,
  ]);
  const table = formatTable(['INSTANCE', 'TYPE', 'AZ', 'STATE', 'LAUNCHED', 'PUBLIC IP', 'PUBLIC DNS', 'IDLE MIN', 'AUTO-STOP', 'SPOT/H'], rows);
  // What each box reported of its boot (its comfyui:boot tag): where a slow wake spent its time.
  const boots = status.instances.map((i) => `${i.instanceId} boot: ${i.bootPhases ? `${formatBootPhases(i.bootPhases)} after kernel boot` : 'no phase reported yet'}`);
  return [...table, ...boots];
}

function autoStopLine(setting: AutoStopSetting): string {
  return `Auto-stop    after ${describeAutoStop(setting)}; change it with gpu autostop${setting.note ? ` (${setting.note})` : ''}`;
}

/** Stopped instances keep billing for their volumes and nothing removes them: always shown, with what they cost. */
function stoppedRows(status: GpuStatus): string[] {
  const stopped = status.stoppedInstances;
  if (!stopped || stopped.length === 0) return [];
  const cost = (usd: number, unpricedGb: number): string => `$${usd.toFixed(2)}${unpricedGb > 0 ? ` + ${unpricedGb} GB unpriced` : ''}`;
  const sum = (pick: (i: StoppedInstance) => number): number => stopped.reduce((total, i) => total + pick(i), 0);
  return [
    '',
    `Stopped instances: ${stopped.length}, their volumes billing ${cost(sum((i) => i.monthlyUsd), sum((i) => i.unpricedGb))} a month. ` +
      'The fleet does not restart or terminate them; terminate those you no longer need:',
    ...formatTable(
      ['INSTANCE', 'TYPE', 'AZ', 'STATE', 'VOLUME GB', 'VOLUME/MONTH', 'REASON'],
      stopped.map((i) => [i.instanceId, i.instanceType, dash(i.availabilityZone), i.state, String(i.volumeGb), cost(i.monthlyUsd, i.unpricedGb), dash(i.reason)]),
    ),
    `  aws ec2 terminate-instances --region ${status.region} --instance-ids ${stopped.map((i) => i.instanceId).join(' ')}`,
  ];
}
