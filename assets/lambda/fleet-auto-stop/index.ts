import { EC2Client, ModifySpotFleetRequestCommand } from '@aws-sdk/client-ec2';

/**
 * Invoked by the "idle watcher failed" alarm when autoStopOnWatcherFailure is on:
 * scales the fleet to zero from outside the instance, the fallback for a broken
 * on-box watcher. Only lowers capacity; never touches instances directly.
 */

/** The part of a CloudWatch alarm's Lambda action event this reads (CloudWatch User Guide, "Lambda alarm actions"). */
interface AlarmEvent {
  alarmData?: { alarmName?: string; state?: { value?: string } };
}

interface AutoStopResult {
  modified: boolean;
  fleetId?: string;
  reason?: string;
}

// Created once per execution environment; AWS_ENDPOINT_URL (a local EC2 API in tests) is read by the SDK itself.
const ec2 = new EC2Client({});

/** One parameter and async: the nodejs24.x runtime refuses handlers that declare a third (callback) one. */
export async function handler(event: AlarmEvent): Promise<AutoStopResult> {
  const state = event.alarmData?.state?.value;
  if (state && state !== 'ALARM') return { modified: false, reason: `alarm state ${state}` };
  const fleetId = process.env.FLEET_ID;
  if (!fleetId) throw new Error('FLEET_ID is not set: the function needs the Spot Fleet request id (sfr-...) to scale to 0');
  // Lowering the fleet's capacity keeps its instances (noTermination, so an idle box removes only
  // itself); this stop is for the whole fleet, so it asks for their termination.
  await ec2.send(new ModifySpotFleetRequestCommand({ SpotFleetRequestId: fleetId, TargetCapacity: 0, ExcessCapacityTerminationPolicy: 'default' }));
  console.log(`set target capacity of ${fleetId} to 0, terminating its instances, after alarm ${event.alarmData?.alarmName ?? ''}`);
  return { modified: true, fleetId };
}
