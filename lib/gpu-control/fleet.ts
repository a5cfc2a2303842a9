import {
  DescribeInstancesCommand,
  DescribeSpotFleetInstancesCommand,
  DescribeSpotFleetRequestsCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { BOOT_PHASES_TAG, LEAVING_TAG, parseBootPhases } from '../gpu-instance-tags';
import { BILLED_TAG } from './names';
import { BUSY_UNTIL_TAG, HOST_KEY_TAG, type ControlInstance } from './protocol';

/** The capacity side of the fleet request, or why it can no longer bring capacity. */
export type FleetCapacity =
  | { readonly gone: false; readonly targetCapacity: number; readonly fulfilledCapacity: number }
  | { readonly gone: true; readonly reason: string };

/** Fleet states in which ModifySpotFleetRequest can no longer bring capacity (the control function and the ops commands). */
export const DEAD_FLEET_STATES: ReadonlySet<string> = new Set(['cancelled', 'cancelled_running', 'cancelled_terminating', 'failed']);

/** Instance states that still run (or are about to run) and bill compute; a stopped instance bills only its volume. */
export const BILLING_INSTANCE_STATES: ReadonlySet<string> = new Set(['pending', 'running', 'stopping', 'shutting-down']);

/** Upper bound on pages of one paginated call; the fleet holds at most gpu.maxInstances (8) instances. */
const MAX_PAGES = 20;

/** One instance of the fleet: what the gateway sees, plus what the budget needs. */
export interface FleetMember extends ControlInstance {
  /** The run since launchTime is already in the ledger (BILLED_TAG names this launch). */
  readonly billed: boolean;
}

export async function readFleetCapacity(ec2: EC2Client, fleetId: string): Promise<FleetCapacity> {
  let config;
  try {
    const out = await ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
    config = out.SpotFleetRequestConfigs?.find((c) => c.SpotFleetRequestId === fleetId);
  } catch (error) {
    if ((error as { name?: string }).name === 'InvalidSpotFleetRequestId') return { gone: true, reason: `Spot Fleet request ${fleetId} does not exist` };
    throw error;
  }
  if (!config) return { gone: true, reason: `Spot Fleet request ${fleetId} does not exist` };
  const state = config.SpotFleetRequestState ?? 'unknown';
  if (DEAD_FLEET_STATES.has(state)) return { gone: true, reason: `Spot Fleet request ${fleetId} is ${state} and cannot launch instances` };
  return {
    gone: false,
    targetCapacity: config.SpotFleetRequestConfig?.TargetCapacity ?? 0,
    fulfilledCapacity: config.SpotFleetRequestConfig?.FulfilledCapacity ?? 0,
  };
}

/** The ids of the fleet's active instances, every page (the control function and the ops commands). */
export async function activeInstanceIds(ec2: EC2Client, fleetId: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId, NextToken: token }));
    for (const i of out.ActiveInstances ?? []) if (i.InstanceId) ids.push(i.InstanceId);
    token = out.NextToken;
    if (!token) break;
  }
  return ids;
}

/** The fleet's active instances (DescribeSpotFleetInstances) with their EC2 details and tags. */
export async function readFleetMembers(ec2: EC2Client, fleetId: string): Promise<FleetMember[]> {
  const ids = await activeInstanceIds(ec2, fleetId);
  const instances = await describeInstances(ec2, ids);
  // Keep the fleet's order, so answers are stable.
  return ids.flatMap((id) => instances.filter((i) => i.InstanceId === id).map(toMember));
}

/** DescribeInstances of these ids, every page. */
export async function describeInstances(ec2: EC2Client, ids: readonly string[]): Promise<Instance[]> {
  if (ids.length === 0) return [];
  const found: Instance[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [...ids], NextToken: token }));
    for (const r of out.Reservations ?? []) found.push(...(r.Instances ?? []));
    token = out.NextToken;
    if (!token) break;
  }
  return found;
}

export function tagOf(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

/** Launch time in whole epoch seconds (what BILLED_TAG names), or null. */
export function launchEpoch(instance: Instance): number | null {
  return instance.LaunchTime ? Math.floor(instance.LaunchTime.getTime() / 1000) : null;
}

/** `<seconds>@<launch epoch>` -> the two numbers, or null when absent or malformed. */
export function parseBilled(value: string | undefined): { seconds: number; launch: number } | null {
  const match = value ? /^(\d+)@(\d+)$/.exec(value) : null;
  return match ? { seconds: Number(match[1]), launch: Number(match[2]) } : null;
}

/** Whether the ledger already holds this instance's current run. */
export function isBilled(instance: Instance): boolean {
  const billed = parseBilled(tagOf(instance, BILLED_TAG));
  return billed !== null && billed.launch === launchEpoch(instance);
}

function toMember(i: Instance): FleetMember {
  const busy = Number(tagOf(i, BUSY_UNTIL_TAG));
  return {
    instanceId: i.InstanceId ?? '?',
    instanceType: i.InstanceType ?? '?',
    state: i.State?.Name ?? 'unknown',
    publicIp: i.PublicIpAddress || null,
    privateIp: i.PrivateIpAddress || null,
    launchTime: i.LaunchTime ? i.LaunchTime.toISOString() : null,
    ready: parseBootPhases(tagOf(i, BOOT_PHASES_TAG))?.ready !== undefined,
    leaving: tagOf(i, LEAVING_TAG) !== undefined,
    busyUntil: Number.isInteger(busy) && busy > 0 ? busy : null,
    hostKeySha256: tagOf(i, HOST_KEY_TAG) || null,
    billed: isBilled(i),
  };
}

/** What the gateway is given: the protocol's fields only. */
export function toControlInstance(member: FleetMember): ControlInstance {
  const { billed: _billed, ...instance } = member;
  return instance;
}
