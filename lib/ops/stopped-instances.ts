import { DescribeInstancesCommand, DescribeVolumesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { regionPrices } from '../cost/prices';
import type { FleetInstance } from './fleet';

/** States in which an instance no longer runs but keeps its volumes, and their bill. */
const STOPPED_STATES = ['stopping', 'stopped'];

/** The tag EC2 puts on every instance a Spot Fleet launches (also read by idle-watcher.sh). */
const FLEET_TAG = 'aws:ec2spot:fleet-request-id';

/** Upper bound on pages read from one paginated call. */
const MAX_PAGES = 20;

/** A stopped (e.g. interrupted with behaviour `stop`) instance of the fleet and what its volumes cost. */
export interface StoppedInstance {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly availabilityZone: string | null;
  readonly state: string;
  /** EC2's reason for the last state change (it says when and why the instance stopped). */
  readonly reason: string | null;
  /** Total size of the attached volumes, in GiB. */
  readonly volumeGb: number;
  /** What the gp3 volumes among them cost a month at the region's price (lib/cost/prices.ts). */
  readonly monthlyUsd: number;
  /** GiB of volumes that have no price here (another volume type, or a region not in the table). */
  readonly unpricedGb: number;
}

async function stoppedByTag(ec2: EC2Client, fleetId: string): Promise<Instance[]> {
  const found: Instance[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${FLEET_TAG}`, Values: [fleetId] },
          { Name: 'instance-state-name', Values: STOPPED_STATES },
        ],
        NextToken: token,
      }),
    );
    for (const reservation of result.Reservations ?? []) found.push(...(reservation.Instances ?? []));
    token = result.NextToken;
    if (!token) break;
  }
  return found;
}

async function describe(ec2: EC2Client, ids: string[]): Promise<Instance[]> {
  if (ids.length === 0) return [];
  const result = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  return (result.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

async function volumesOf(ec2: EC2Client, ids: string[]): Promise<Map<string, { sizeGb: number; volumeType: string }[]>> {
  const byInstance = new Map<string, { sizeGb: number; volumeType: string }[]>();
  if (ids.length === 0) return byInstance;
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: ids }], NextToken: token }));
    for (const volume of result.Volumes ?? []) {
      const instanceId = volume.Attachments?.find((a) => a.InstanceId && ids.includes(a.InstanceId))?.InstanceId;
      if (!instanceId) continue;
      byInstance.set(instanceId, [...(byInstance.get(instanceId) ?? []), { sizeGb: volume.Size ?? 0, volumeType: volume.VolumeType ?? 'unknown' }]);
    }
    token = result.NextToken;
    if (!token) break;
  }
  return byInstance;
}

function gp3GbMonthUsd(region: string): number | null {
  try {
    return regionPrices(region).ebs.gp3GbMonth.usd;
  } catch {
    return null;
  }
}

/**
 * The fleet's stopped instances. A fleet with interruption behaviour `stop` (what this project's
 * fleet used before) keeps each interrupted instance stopped while it launches a replacement
 * elsewhere; nothing restarts or terminates it unless the allocation leads back to it (EC2 User
 * Guide, "Stop interrupted Spot Instances"), and its volumes keep billing. Found by the fleet's
 * instance tag, plus any the fleet itself still lists as stopped.
 */
export async function stoppedFleetInstances(ec2: EC2Client, fleetId: string, region: string, listed: readonly FleetInstance[]): Promise<StoppedInstance[]> {
  const tagged = await stoppedByTag(ec2, fleetId);
  const taggedIds = new Set(tagged.map((i) => i.InstanceId));
  const fromFleet = listed.filter((i) => STOPPED_STATES.includes(i.state) && !taggedIds.has(i.instanceId)).map((i) => i.instanceId);
  const instances = [...tagged, ...(await describe(ec2, fromFleet))].filter((i) => i.InstanceId && STOPPED_STATES.includes(i.State?.Name ?? ''));
  const volumes = await volumesOf(ec2, instances.map((i) => i.InstanceId!));
  const price = gp3GbMonthUsd(region);
  return instances
    .map((i) => {
      const attached = volumes.get(i.InstanceId!) ?? [];
      const volumeGb = attached.reduce((sum, v) => sum + v.sizeGb, 0);
      const pricedGb = price === null ? 0 : attached.filter((v) => v.volumeType === 'gp3').reduce((sum, v) => sum + v.sizeGb, 0);
      return {
        instanceId: i.InstanceId!,
        instanceType: i.InstanceType ?? '?',
        availabilityZone: i.Placement?.AvailabilityZone ?? null,
        state: i.State?.Name ?? 'unknown',
        reason: i.StateTransitionReason || null,
        volumeGb,
        monthlyUsd: pricedGb * (price ?? 0),
        unpricedGb: volumeGb - pricedGb,
      };
    })
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}
