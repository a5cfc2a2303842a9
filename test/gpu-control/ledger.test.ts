import { DescribeImagesCommand, DescribeInstancesCommand, RunInstancesCommand, StopInstancesCommand, TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { readBudget, readLedgerSeconds } from '../../lib/gpu-control/budget';
import { readFleetMembers } from '../../lib/gpu-control/fleet';
import { recordRun, STATE_CHANGE_DETAIL_TYPE, type InstanceStateEvent, type LedgerDeps } from '../../lib/gpu-control/ledger';
import { monthOf, monthStart, nextMonthStart } from '../../lib/gpu-control/month';
import { BILLED_TAG, GATEWAY_METRICS, gatewayMetricNamespace } from '../../lib/gpu-control/names';
import { useMoto } from '../support/moto';
import { fleetWithInstances, G4DN_PRICE, metricSum, motoControlClients } from './support';

// The GPU-time ledger against moto: EC2 for the instance and its tags, CloudWatch for GpuSeconds.
// moto keeps every datum with its timestamp and sums by period in GetMetricData, which is what the
// budget reads; it does not enforce CloudWatch's two-week limit on old timestamps.
const moto = useMoto();
const clients = () => motoControlClients(moto().endpoint);
const where = { namespace: gatewayMetricNamespace('AiAssets'), envName: 'dev' };

function deps(fleetId: string, now: Date, logs: string[] = []): LedgerDeps {
  const c = clients();
  return { ec2: c.ec2, cloudWatch: c.cloudWatch, fleetId, namespace: where.namespace, envName: 'dev', now, log: (l) => logs.push(l) };
}

const event = (instanceId: string, state: string, time: Date): InstanceStateEvent => ({
  source: 'aws.ec2',
  'detail-type': STATE_CHANGE_DETAIL_TYPE,
  time: time.toISOString(),
  detail: { 'instance-id': instanceId, state },
});

async function instance(ec2: EC2Client, id: string) {
  return (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0].Instances![0];
}

/** All GpuSeconds of g4dn.xlarge from the launch's month to the end of `now`'s month. */
const recorded = (launch: Date, now: Date) => metricSum(clients().cloudWatch, GATEWAY_METRICS.gpuSeconds, monthStart(launch), nextMonthStart(now), { InstanceType: 'g4dn.xlarge' });

test("a terminated instance's run is recorded once, even when the event arrives twice", async () => {
  const c = clients();
  const { fleetId, instanceIds: [id] } = await fleetWithInstances(c.ec2, 1);
  const launch = (await instance(c.ec2, id)).LaunchTime!;
  await c.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  // Two hours of GPU; the function runs a minute later, and again (EventBridge delivers at least once).
  const ended = new Date(launch.getTime() + 2 * 3600_000);
  const now = new Date(ended.getTime() + 60_000);

  const first = await recordRun(deps(fleetId, now), event(id, 'shutting-down', ended));
  expect(first).toMatchObject({ recorded: true, instanceId: id, instanceType: 'g4dn.xlarge', seconds: 7200 });
  const again = await recordRun(deps(fleetId, new Date(now.getTime() + 60_000)), event(id, 'shutting-down', ended));
  expect(again).toEqual({ recorded: false, reason: `the run of ${id} launched at ${launch.toISOString()} is already recorded (7200 s)` });

  expect(await recorded(launch, now)).toBe(7200);
  expect((await instance(c.ec2, id)).Tags).toContainEqual({ Key: BILLED_TAG, Value: `7200@${Math.floor(launch.getTime() / 1000)}` });
});

test('a run across a UTC month boundary is one datum per month, each in its month', async () => {
  const c = clients();
  const { fleetId, instanceIds: [id] } = await fleetWithInstances(c.ec2, 1);
  const launch = (await instance(c.ec2, id)).LaunchTime!;
  // The box runs until an hour into the next month.
  const boundary = nextMonthStart(launch);
  const now = new Date(boundary.getTime() + 3600_000);
  const before = Math.round((boundary.getTime() - launch.getTime()) / 1000);

  const result = await recordRun(deps(fleetId, now), event(id, 'shutting-down', now));
  expect(result).toEqual({
    recorded: true,
    instanceId: id,
    instanceType: 'g4dn.xlarge',
    seconds: before + 3600,
    months: [
      { month: monthOf(launch), seconds: before },
      { month: monthOf(now), seconds: 3600 },
    ],
  });
  // Each month's budget reads only its own part.
  expect(await readLedgerSeconds(c.cloudWatch, where, ['g4dn.xlarge'], launch)).toEqual({ 'g4dn.xlarge': before });
  expect(await readLedgerSeconds(c.cloudWatch, where, ['g4dn.xlarge'], now)).toEqual({ 'g4dn.xlarge': 3600 });
  const budget = await readBudget(
    { cloudWatch: c.cloudWatch, ssm: c.ssm, ledger: where, overrideParameter: '/AiAssets/dev/gpu/budget-override', allowanceUsd: 1, spotPrices: { 'g4dn.xlarge': G4DN_PRICE } },
    [],
    now,
  );
  expect(budget).toEqual({ month: monthOf(now), allowanceUsd: 1, usedUsd: 0.18, leftUsd: 0.82, hoursLeft: 4.6, spent: false, overridden: false });
});

test('an instance recorded at stopping is not recorded again when it is terminated from stopped', async () => {
  const c = clients();
  const { fleetId, instanceIds: [id] } = await fleetWithInstances(c.ec2, 1);
  const launch = (await instance(c.ec2, id)).LaunchTime!;
  const stopped = new Date(launch.getTime() + 1800_000);
  await c.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
  expect(await recordRun(deps(fleetId, stopped), event(id, 'stopping', stopped))).toMatchObject({ recorded: true, seconds: 1800 });
  await c.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  const later = new Date(stopped.getTime() + 3 * 3600_000);
  expect(await recordRun(deps(fleetId, later), event(id, 'shutting-down', later))).toMatchObject({ recorded: false });
  expect(await recorded(launch, later)).toBe(1800);
});

test('a running instance whose run is already recorded (event seen, not yet gone) is not counted live again', async () => {
  const c = clients();
  const { fleetId, instanceIds: [id] } = await fleetWithInstances(c.ec2, 1);
  const launch = (await instance(c.ec2, id)).LaunchTime!;
  const now = new Date(launch.getTime() + 3600_000);
  const sources = { cloudWatch: c.cloudWatch, ssm: c.ssm, ledger: where, overrideParameter: '/none', allowanceUsd: 10, spotPrices: { 'g4dn.xlarge': G4DN_PRICE } };
  const sameMonth = monthOf(launch) === monthOf(now);
  const live = await readBudget(sources, await readFleetMembers(c.ec2, fleetId), now);
  await recordRun(deps(fleetId, now), event(id, 'shutting-down', now));
  const afterEvent = await readBudget(sources, await readFleetMembers(c.ec2, fleetId), now);
  // Before the event the hour is live time; after it, ledger time; never both.
  if (sameMonth) expect([live.usedUsd, afterEvent.usedUsd]).toEqual([0.18, 0.18]);
  else expect(afterEvent.usedUsd).toBe(live.usedUsd);
});

test("an instance of another fleet, or of none, is not this ledger's", async () => {
  const c = clients();
  const { fleetId } = await fleetWithInstances(c.ec2, 0);
  const other = await fleetWithInstances(c.ec2, 1);
  const ami = (await c.ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const loose = (await c.ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1 }))).Instances![0].InstanceId!;
  const now = new Date();
  for (const id of [other.instanceIds[0], loose]) {
    expect(await recordRun(deps(fleetId, now), event(id, 'shutting-down', now))).toEqual({ recorded: false, reason: `instance ${id} is not in this fleet` });
  }
  expect(await recordRun(deps(fleetId, now), event('i-0123456789abcdef0', 'shutting-down', now))).toEqual({ recorded: false, reason: 'instance i-0123456789abcdef0 does not exist' });
  expect(await metricSum(c.cloudWatch, GATEWAY_METRICS.gpuSeconds, new Date(now.getTime() - 86_400_000), new Date(now.getTime() + 86_400_000), { InstanceType: 'g4dn.xlarge' })).toBe(0);
});

test('a state that does not end a run records nothing', async () => {
  const c = clients();
  const { fleetId, instanceIds: [id] } = await fleetWithInstances(c.ec2, 1);
  expect(await recordRun(deps(fleetId, new Date()), event(id, 'running', new Date()))).toEqual({
    recorded: false,
    reason: 'state running does not end a run (recorded on shutting-down or stopping)',
  });
});
