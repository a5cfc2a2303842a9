import { DescribeSpotFleetRequestsCommand, EC2Client } from '@aws-sdk/client-ec2';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleFunction, FUNCTION_RUNTIME } from '../lib/function-bundle';
import { runFunction } from './support/lambda-runtime-api';
import { motoEnv, startMoto, type MotoServer } from './support/moto';
import { createFleet } from './support/moto-fleet';

// The optional alarm action that scales the fleet to 0 when the on-box watcher failed: its bundle,
// run as Lambda runs it (runtime interface client, Node.js 24), against a real EC2 API (moto)
// reached through a recording proxy, so the test sees the exact EC2 request the function made.
let moto: MotoServer;
let proxy: http.Server;
let proxyEndpoint: string;
let ec2: EC2Client;
let requests: URLSearchParams[] = [];

beforeAll(async () => {
  moto = await startMoto();
  ec2 = new EC2Client({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push(new URLSearchParams(body.toString('utf8'))); // EC2's query protocol: a form-encoded body
      const upstream = http.request(`${moto.endpoint}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyEndpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => proxy.close(r));
  await moto.stop();
});
beforeEach(() => {
  requests = [];
});

async function targetOf(fleetId: string): Promise<number | undefined> {
  const fleet = await ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
  return fleet.SpotFleetRequestConfigs![0].SpotFleetRequestConfig!.TargetCapacity;
}

async function invoke(fleetId: string, state: string) {
  const run = await runFunction(
    {
      codeDir: bundleFunction('fleet-auto-stop'),
      handler: 'index.handler',
      runtime: FUNCTION_RUNTIME.name,
      environment: { ...motoEnv(proxyEndpoint), FLEET_ID: fleetId },
    },
    [{ alarmData: { alarmName: 'WatcherFailed', state: { value: state } } }],
  );
  expect(run.initError).toBeUndefined();
  expect(run.results).toHaveLength(1);
  return run.results[0];
}

test('an alarm in ALARM state scales the fleet to 0 and asks EC2 to terminate its instances', async () => {
  const fleetId = await createFleet(ec2, 1);
  expect(await invoke(fleetId, 'ALARM')).toEqual({ response: { modified: true, fleetId } });
  expect(await targetOf(fleetId)).toBe(0);
  // The fleet is created with ExcessCapacityTerminationPolicy noTermination (an idle box removes only
  // itself), so lowering its capacity alone would leave the instances running (EC2 API Reference,
  // ModifySpotFleetRequest: "noTermination | default"). moto 5.2.1 ignores the fleet's policy and
  // terminates only when this parameter is absent or "Default" (moto/ec2/models/spot_requests.py,
  // modify_spot_fleet_request), so the request itself is what this checks.
  const modify = requests.filter((r) => r.get('Action') === 'ModifySpotFleetRequest');
  expect(modify.map((r) => Object.fromEntries(r))).toEqual([
    expect.objectContaining({ SpotFleetRequestId: fleetId, TargetCapacity: '0', ExcessCapacityTerminationPolicy: 'default' }),
  ]);
});

test('an alarm returning to OK changes nothing', async () => {
  const fleetId = await createFleet(ec2, 1);
  expect(await invoke(fleetId, 'OK')).toEqual({ response: { modified: false, reason: 'alarm state OK' } });
  expect(await targetOf(fleetId)).toBe(1);
  expect(requests).toEqual([]);
});
