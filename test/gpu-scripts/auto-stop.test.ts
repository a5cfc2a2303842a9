/**
 * The run-time idle threshold (`npm run ops -- gpu autostop`): the real idle-watcher.sh with the real
 * AWS CLI v1 (the awscli pip package, as on the Deep Learning AMI) against moto's SSM and EC2, IMDSv2
 * and ComfyUI's /queue from the harness. The box reads AUTO_STOP_PARAMETER on every check; a number
 * replaces IDLE_MINUTES (5 here), `default`, a missing or an unreadable parameter keeps it.
 */
import { CreateTagsCommand, DescribeInstancesCommand, DescribeSpotFleetInstancesCommand, DescribeSpotFleetRequestsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import * as path from 'node:path';
import { autoStopParameterName } from '../../lib/gpu-auto-stop-names';
import { createFleet } from '../support/moto-fleet';
import { freePort, motoEnv, useMoto } from '../support/moto';
import { envFile, FakeServer, run, Sandbox, SCRIPTS, type RunResult } from './harness';

const moto = useMoto();
const PARAMETER = autoStopParameterName({ appName: 'AiAssets', envName: 'test' });
const server = new FakeServer();
let ec2: EC2Client;
let ssm: SSMClient;
let sb: Sandbox;
let fleetId: string;
let instanceId: string;

beforeAll(() => server.start());
afterAll(() => server.close());
beforeEach(async () => {
  const common = { endpoint: moto().endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  ec2 = new EC2Client(common);
  ssm = new SSMClient(common);
  // One box of a fleet, tagged the way Spot Fleet tags what it launches.
  fleetId = await createFleet(ec2, 1);
  instanceId = (await ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances![0].InstanceId!;
  await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'aws:ec2spot:fleet-request-id', Value: fleetId }] }));
  server.reset();
  server.instanceId = instanceId;
  sb = new Sandbox();
  sb.stub('nvidia-smi', 'echo 0');
  sb.stub('pgrep', 'exit 1');
});
afterEach(() => {
  ec2.destroy();
  ssm.destroy();
  sb.cleanup();
});
// Each CLI v1 call costs a second or more of start-up (several on a loaded machine); leaving takes about a dozen.
jest.setTimeout(600_000);

const setThreshold = (value: string) => ssm.send(new PutParameterCommand({ Name: PARAMETER, Value: value, Type: 'String', Overwrite: true }));

/** One idle check of the box at IDLE_MINUTES=5, idle minute `counter` before it. */
function check(counter: number | undefined, extra: Record<string, string> = {}): Promise<RunResult> {
  if (counter !== undefined) sb.write('state/idle-minutes', `${counter}\n`);
  const env = sb.env({
    ...motoEnv(moto().endpoint),
    COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(server.port, { IDLE_MINUTES: '5', AUTO_STOP_PARAMETER: PARAMETER })),
    STATE_DIR: sb.path('state'),
    UPTIME_FILE: sb.write('uptime', '3600.00 7000.00\n'),
    IMDS_URL: server.url,
    RETRY_SLEEP_SECONDS: '0',
    ...extra,
  });
  return run(path.join(SCRIPTS, 'idle-watcher.sh'), env, 240_000);
}

async function boxState(): Promise<{ state: string; target: number }> {
  const instance = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0];
  const fleet = (await ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }))).SpotFleetRequestConfigs![0];
  return { state: instance.State!.Name!, target: fleet.SpotFleetRequestConfig!.TargetCapacity! };
}

const ok = (r: RunResult) => ({ code: r.code, stderr: r.stderr });

/** The IdleThresholdMinutes values the box published (the WatcherFailed alarm compares IdleMinutes with twice it). */
async function publishedThresholds(): Promise<number[]> {
  const cw = new CloudWatchClient({ endpoint: moto().endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  try {
    const now = Date.now();
    const out = await cw.send(
      new GetMetricStatisticsCommand({
        Namespace: 'AiAssets/Gpu',
        MetricName: 'IdleThresholdMinutes',
        Dimensions: [{ Name: 'Environment', Value: 'test' }],
        StartTime: new Date(now - 3_600_000),
        EndTime: new Date(now + 60_000),
        Period: 60,
        Statistics: ['Maximum'],
      }),
    );
    return (out.Datapoints ?? []).map((d) => d.Maximum!);
  } finally {
    cw.destroy();
  }
}

test('2: the box leaves after 2 idle minutes although IDLE_MINUTES is 5, and a change applies at the next check', async () => {
  await setThreshold('default');
  const first = await check(0);
  expect(ok(first)).toEqual({ code: 0, stderr: '' });
  expect(first.stdout).toMatch(/idle=yes counter=1\/5 action=none$/m);
  // At the config's threshold nothing more is published (no custom metric billed by default).
  expect(await publishedThresholds()).toEqual([]);

  // Read again on every check, not cached at boot.
  await setThreshold('2');
  const second = await check(undefined);
  expect(ok(second)).toEqual({ code: 0, stderr: '' });
  expect(second.stdout).toMatch(/idle=yes counter=2\/2 action=leave-fleet \(auto-stop\)$/m);
  expect(second.stdout).toContain(`scale-down: ${instanceId} leaves ${fleetId} (target 0), terminating itself`);
  expect(await publishedThresholds()).toEqual([2]);
  expect(await boxState()).toEqual({ state: 'terminated', target: 0 });
});

test('default: IDLE_MINUTES (5) applies, so the box stays at 4 idle minutes', async () => {
  await setThreshold('default');
  const result = await check(3);
  expect(ok(result)).toEqual({ code: 0, stderr: '' });
  // The threshold in the idle-check line; leaving at it is the first test's.
  expect(result.stdout).toMatch(/idle=yes counter=4\/5 action=none$/m);
  expect(await boxState()).toEqual({ state: 'running', target: 1 });
});

test('a missing parameter (a stack deployed before it) keeps IDLE_MINUTES without complaint', async () => {
  const result = await check(3);
  expect(ok(result)).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toMatch(/idle=yes counter=4\/5 action=none$/m);
  expect(result.stdout).not.toContain(PARAMETER);
  expect(await boxState()).toEqual({ state: 'running', target: 1 });
});

test('an unreadable parameter keeps IDLE_MINUTES, is logged, and the check goes on', async () => {
  await setThreshold('2');
  // Nothing listens on this loopback port: the CLI's SSM call fails to connect, as it would without a route.
  const closed = `http://127.0.0.1:${await freePort()}`;
  const result = await check(3, { AWS_ENDPOINT_URL_SSM: closed, AWS_MAX_ATTEMPTS: '1' });
  expect(ok(result)).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toMatch(new RegExp(`could not read ${PARAMETER}, using IDLE_MINUTES=5: .*Could not connect to the endpoint URL`));
  expect(result.stdout).toMatch(/idle=yes counter=4\/5 action=none \(auto-stop unreadable\)$/m);
  expect(await boxState()).toEqual({ state: 'running', target: 1 });
});

test('a value outside 1..1440 is ignored and logged', async () => {
  await setThreshold('0');
  const result = await check(3);
  expect(ok(result)).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toContain(`ignoring ${PARAMETER} = '0', using IDLE_MINUTES=5 (allowed: 1 to 1440 minutes, or default)`);
  expect(result.stdout).toMatch(/counter=4\/5 action=none$/m);
});
