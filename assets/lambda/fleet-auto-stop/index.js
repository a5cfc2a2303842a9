// Invoked by the "idle watcher failed" alarm when autoStopOnWatcherFailure is on:
// scales the fleet to zero from outside the instance, the fallback for a broken
// on-box watcher. Only lowers capacity; never touches instances directly.
const { EC2Client, ModifySpotFleetRequestCommand } = require('@aws-sdk/client-ec2');

exports.handler = async (event, _context, injected) => {
  const state = event && event.alarmData && event.alarmData.state && event.alarmData.state.value;
  if (state && state !== 'ALARM') return { modified: false, reason: `alarm state ${state}` };
  const ec2 = injected || new EC2Client({ endpoint: process.env.AWS_ENDPOINT_URL || undefined });
  await ec2.send(new ModifySpotFleetRequestCommand({ SpotFleetRequestId: process.env.FLEET_ID, TargetCapacity: 0 }));
  console.log(`set target capacity of ${process.env.FLEET_ID} to 0 after alarm ${event && event.alarmData ? event.alarmData.alarmName : ''}`);
  return { modified: true, fleetId: process.env.FLEET_ID };
};
