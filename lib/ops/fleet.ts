import {
  DescribeInstancesCommand,
  DescribeSpotFleetRequestHistoryCommand,
  DescribeSpotFleetRequestsCommand,
  ModifySpotFleetRequestCommand,
  TerminateInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { activeInstanceIds, BILLING_INSTANCE_STATES, DEAD_FLEET_STATES } from '../gpu-control/fleet';
import { BOOT_PHASES_TAG, parseBootPhases } from '../gpu-instance-tags';
import { ExitCode, OpsError, isAwsError } from './errors';

/** The capacity side of a Spot Fleet request. */
export interface FleetState {
  readonly fleetId: string;
  /** submitted | active | modifying | cancelled* | failed */
  readonly state: string;
  /** fulfilled | pending_fulfillment | pending_termination | error, when EC2 reports it. */
  readonly activityStatus: string | null;
  readonly targetCapacity: number;
  readonly fulfilledCapacity: number;
}

/** One instance of the fleet, as DescribeInstances sees it. */
export interface FleetInstance {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly availabilityZone: string | null;
  readonly state: string;
  readonly launchTime: string | null;
  readonly publicIp: string | null;
  readonly publicDns: string | null;
  /** Boot phases the box has reported (seconds after its kernel booted), from its own tag. */
  readonly bootPhases: Record<string, number> | null;
}

/** Upper bound on pages read from one paginated call; the fleet holds at most a handful of instances. */
const MAX_PAGES = 20;

export function isDeadFleet(state: FleetState): boolean {
  return DEAD_FLEET_STATES.has(state.state);
}

export function isActiveInstance(instance: FleetInstance): boolean {
  return BILLING_INSTANCE_STATES.has(instance.state);
}

function fleetNotFound(fleetId: string, source: string): OpsError {
  return new OpsError(
    `Spot Fleet request ${fleetId} (from ${source}) was not found: it was deleted outside CloudFormation; redeploy the Gpu stack.`,
    ExitCode.notDeployed,
  );
}

/** Current state of the fleet; `source` names where the id came from, for the not-found message. */
export async function describeFleet(ec2: EC2Client, fleetId: string, source: string): Promise<FleetState> {
  let config;
  try {
    const result = await ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
    config = result.SpotFleetRequestConfigs?.find((c) => c.SpotFleetRequestId === fleetId);
  } catch (error) {
    if (isAwsError(error, 'InvalidSpotFleetRequestId')) throw fleetNotFound(fleetId, source);
    throw error;
  }
  if (!config) throw fleetNotFound(fleetId, source);
  return {
    fleetId,
    state: config.SpotFleetRequestState ?? 'unknown',
    activityStatus: config.ActivityStatus ?? null,
    targetCapacity: config.SpotFleetRequestConfig?.TargetCapacity ?? 0,
    fulfilledCapacity: config.SpotFleetRequestConfig?.FulfilledCapacity ?? 0,
  };
}

/** Raises (or sets) the target; the fleet's own ExcessCapacityTerminationPolicy stays in place. */
export async function setTargetCapacity(ec2: EC2Client, fleetId: string, targetCapacity: number): Promise<void> {
  await ec2.send(new ModifySpotFleetRequestCommand({ SpotFleetRequestId: fleetId, TargetCapacity: targetCapacity }));
}

/**
 * Scales the whole fleet to 0 and terminates the given instances (the fleet's active ones, read
 * by the caller). The fleet never terminates on a lower target by itself (`noTermination` in
 * GpuSpotFleet: idle boxes leave one by one), so the call asks for `default`, and the instances
 * are terminated explicitly too: after a stop nothing bills, whatever the policy did.
 */
export async function stopWholeFleet(ec2: EC2Client, fleet: FleetState, activeInstanceIds: string[]): Promise<void> {
  if (fleet.targetCapacity !== 0) {
    await ec2.send(new ModifySpotFleetRequestCommand({ SpotFleetRequestId: fleet.fleetId, TargetCapacity: 0, ExcessCapacityTerminationPolicy: 'default' }));
  }
  if (activeInstanceIds.length > 0) await ec2.send(new TerminateInstancesCommand({ InstanceIds: activeInstanceIds }));
}

/** The fleet's instances (active ones, per DescribeSpotFleetInstances) with their EC2 details. */
export async function fleetInstances(ec2: EC2Client, fleetId: string): Promise<FleetInstance[]> {
  return describeInstances(ec2, await activeInstanceIds(ec2, fleetId));
}

export async function describeInstances(ec2: EC2Client, ids: string[]): Promise<FleetInstance[]> {
  if (ids.length === 0) return [];
  const found: FleetInstance[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids, NextToken: token }));
    for (const reservation of result.Reservations ?? []) {
      for (const i of reservation.Instances ?? []) {
        found.push({
          instanceId: i.InstanceId ?? '?',
          instanceType: i.InstanceType ?? '?',
          availabilityZone: i.Placement?.AvailabilityZone ?? null,
          state: i.State?.Name ?? 'unknown',
          launchTime: i.LaunchTime ? i.LaunchTime.toISOString() : null,
          publicIp: i.PublicIpAddress || null,
          publicDns: i.PublicDnsName || null,
          bootPhases: parseBootPhases(i.Tags?.find((t) => t.Key === BOOT_PHASES_TAG)?.Value),
        });
      }
    }
    token = result.NextToken;
    if (!token) break;
  }
  // Keep the fleet's order, so output is stable.
  return ids.flatMap((id) => found.filter((i) => i.instanceId === id));
}

export type FleetHistory = { available: true; events: string[] } | { available: false; reason: string };

/** The fleet's `error` and `information` events since `since` (why capacity is missing). */
export async function fleetHistory(ec2: EC2Client, fleetId: string, since: Date): Promise<FleetHistory> {
  try {
    const events: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await ec2.send(
        new DescribeSpotFleetRequestHistoryCommand({ SpotFleetRequestId: fleetId, StartTime: since, NextToken: token }),
      );
      for (const record of result.HistoryRecords ?? []) {
        if (record.EventType !== 'error' && record.EventType !== 'information') continue;
        const info = record.EventInformation;
        const when = record.Timestamp ? record.Timestamp.toISOString() : '?';
        const text = [info?.EventSubType, info?.EventDescription].filter(Boolean).join(': ');
        events.push(`${when} ${record.EventType} ${text}`.trim());
      }
      token = result.NextToken;
      if (!token) break;
    }
    return { available: true, events };
  } catch (error) {
    // Not every endpoint implements the history API (moto answers HTTP 500); capacity is still missing.
    return { available: false, reason: error instanceof Error ? error.message.split('\n')[0] : String(error) };
  }
}
