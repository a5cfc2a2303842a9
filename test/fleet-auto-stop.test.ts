import { DescribeSpotFleetInstancesCommand, DescribeSpotFleetRequestsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { motoEnv, startMoto, type MotoServer } from './support/moto';
import { createFleet } from './support/moto-fleet';

// The optional alarm action that scales the fleet to 0 when the on-box watcher failed, against a real EC2 API (moto).
let moto: MotoServer;
let ec2: EC2Client;
const saved = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, motoEnv(moto.endpoint));
  ec2 = new EC2Client({ endpoint: moto.endpoint });
});
afterAll(async () => {
  process.env = saved;
  await moto.stop();
});

const runningFleet = () => createFleet(ec2, 1);

async function capacityOf(fleetId: string) {
  const fleet = await ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
  const instances = await ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }));
  return { target: fleet.SpotFleetRequestConfigs![0].SpotFleetRequestConfig!.TargetCapacity, instances: instances.ActiveInstances!.length };
}

function handler(fleetId: string) {
  process.env.FLEET_ID = fleetId;
  jest.resetModules();
  return require('../assets/lambda/fleet-auto-stop/index.js').handler;
}

test('an alarm in ALARM state scales the fleet to 0 and its instance goes away', async () => {
  const fleetId = await runningFleet();
  expect(await capacityOf(fleetId)).toEqual({ target: 1, instances: 1 });
  const result = await handler(fleetId)({ alarmData: { alarmName: 'WatcherFailed', state: { value: 'ALARM' } } }, {});
  expect(result).toEqual({ modified: true, fleetId });
  expect(await capacityOf(fleetId)).toEqual({ target: 0, instances: 0 });
});

test('an alarm returning to OK changes nothing', async () => {
  const fleetId = await runningFleet();
  const result = await handler(fleetId)({ alarmData: { alarmName: 'WatcherFailed', state: { value: 'OK' } } }, {});
  expect(result.modified).toBe(false);
  expect(await capacityOf(fleetId)).toEqual({ target: 1, instances: 1 });
});
