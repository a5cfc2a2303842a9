import { comfyUiUrl } from './comfyui';
import type { OpsDeps, Reporter } from './context';
import { describeFleet, fleetInstances, type FleetInstance } from './fleet';
import type { GpuTarget } from './gpu-target';
import { lastIdleMinutes } from './idle-metric';
import { latestSpotPrice } from './spot-price';
import { formatTable } from './table';

export interface GpuInstanceStatus extends FleetInstance {
  readonly comfyUiUrl: string | null;
  /** Last IdleMinutes the host published in the past 10 minutes (per environment), null if none. */
  readonly idleMinutes: number | null;
  readonly spotPriceUsdPerHour: number | null;
}

/** The `gpu status --json` document. */
export interface GpuStatus {
  readonly env: string;
  readonly region: string;
  readonly stack: string;
  readonly fleetId: string;
  readonly state: string;
  readonly activityStatus: string | null;
  readonly targetCapacity: number;
  readonly fulfilledCapacity: number;
  readonly instances: GpuInstanceStatus[];
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

  return {
    env: target.config.envName,
    region: target.config.region,
    stack: target.stackName,
    fleetId: fleet.fleetId,
    state: fleet.state,
    activityStatus: fleet.activityStatus,
    targetCapacity: fleet.targetCapacity,
    fulfilledCapacity: fleet.fulfilledCapacity,
    instances: instances.map((i) => ({
      ...i,
      comfyUiUrl: comfyUiUrl(i.publicIp, target.comfyUiPort),
      idleMinutes: i.state === 'running' ? idle : null,
      spotPriceUsdPerHour: prices.get(`${i.instanceType}@${i.availabilityZone}`) ?? null,
    })),
  };
}

const dash = (value: string | number | null): string => (value === null || value === '' ? '-' : String(value));

export function renderGpuStatus(status: GpuStatus): string[] {
  const activity = status.activityStatus ? ` (${status.activityStatus})` : '';
  const lines = [
    `Environment  ${status.env} (${status.region}), stack ${status.stack}`,
    `Spot Fleet   ${status.fleetId} ${status.state}${activity}`,
    `Capacity     target ${status.targetCapacity}, fulfilled ${status.fulfilledCapacity}`,
    '',
  ];
  if (status.instances.length === 0) {
    lines.push(
      status.targetCapacity === 0
        ? `No instances: the fleet is scaled to 0 (target capacity 0). Start one with: npm run ops -- gpu start --env ${status.env} --wait`
        : `No instances yet: target ${status.targetCapacity}, fulfilled ${status.fulfilledCapacity} (launching, or waiting for Spot capacity).`,
    );
    return lines;
  }
  const rows = status.instances.map((i) => [
    i.instanceId,
    i.instanceType,
    dash(i.availabilityZone),
    i.state,
    i.launchTime ? i.launchTime.replace('T', ' ').replace(/\.\d+Z$|Z$/, 'Z') : '-',
    dash(i.publicIp),
    dash(i.publicDns),
    dash(i.comfyUiUrl),
    dash(i.idleMinutes),
    i.spotPriceUsdPerHour === null ? '-' : `$${i.spotPriceUsdPerHour.toFixed(4)}`,
  ]);
  lines.push(
    ...formatTable(['INSTANCE', 'TYPE', 'AZ', 'STATE', 'LAUNCHED', 'PUBLIC IP', 'PUBLIC DNS', 'COMFYUI', 'IDLE MIN', 'SPOT/H'], rows),
  );
  return lines;
}
