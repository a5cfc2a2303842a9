import { CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  AttachVolumeCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSpotFleetInstancesCommand,
  DescribeSpotFleetRequestsCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { loadEnvironment } from '../../lib/config/load';
import { autoStopParameterName } from '../../lib/gpu-auto-stop-names';
import { runCli } from '../../lib/ops/cli';
import type { GpuStatus } from '../../lib/ops/gpu-status';
import type { StartResult } from '../../lib/ops/gpu-start';
import { useMoto } from '../support/moto';
import { addBudgetOutputs } from '../gpu-control/support';
import {
  cliEnv,
  deployEnvironment as deployFixture,
  inProcessDeps,
  motoClients,
  patchEc2,
  runOps,
  startComfyStub,
  type ComfyStub,
} from './fixtures';

// The gpu commands against a real EC2/CloudFormation/CloudWatch API (moto on loopback).
const moto = useMoto();

/** The SSM parameter `gpu autostop` writes, as the Gpu stack creates it (lib/gpu-auto-stop-setting.ts). */
const AUTO_STOP = autoStopParameterName({ appName: 'AiAssets', envName: 'dev' });
const setAutoStop = (value: string): Promise<unknown> =>
  new SSMClient({ endpoint: moto().endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }).send(
    new PutParameterCommand({ Name: AUTO_STOP, Value: value, Type: 'String', Overwrite: true }),
  );

/** The fixture's stacks, the Gpu stack with the budget outputs it has since the budget guard ($30 allowance) and its auto-stop parameter. */
async function deployEnvironment(...args: Parameters<typeof deployFixture>): ReturnType<typeof deployFixture> {
  const deployed = await deployFixture(...args);
  const gpu = deployed.stacks.find((s) => s.endsWith('-Gpu'));
  if (gpu) {
    await addBudgetOutputs(args[0].cloudFormation, gpu);
    await setAutoStop('default');
  }
  return deployed;
}

/** dev with room for two instances (its gpu.maxInstances is 1). */
const twoInstances = (name: string) => {
  const config = loadEnvironment(name);
  return { ...config, gpu: { ...config.gpu, maxInstances: 2 } };
};
let stub: ComfyStub | undefined;

afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

const env = (): NodeJS.ProcessEnv => cliEnv(moto().endpoint);

async function fleetTarget(fleetId: string | undefined): Promise<{ target: number; fulfilled: number }> {
  const { SpotFleetRequestConfigs } = await motoClients(moto().endpoint).ec2.send(
    new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId!] }),
  );
  const config = SpotFleetRequestConfigs![0].SpotFleetRequestConfig!;
  return { target: config.TargetCapacity!, fulfilled: config.FulfilledCapacity! };
}

describe('gpu status', () => {
  test('an empty fleet says so, as a table and as JSON', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });

    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`Spot Fleet   ${fleetId} active`);
    expect(table.stdout).toContain('Capacity     target 0, fulfilled 0');
    expect(table.stdout).toContain('GPU allowance: $0.00 of $30.00 used this month, $30.00 (169.8 h) left');
    expect(table.stdout).toContain('No instances: the fleet is scaled to 0 (target capacity 0)');

    const json = inProcessDeps(motoClients(moto().endpoint), env());
    expect(await runCli(['gpu', 'status', '--env', 'dev', '--json'], json.deps)).toBe(0);
    expect(json.stderr()).toBe('');
    expect(JSON.parse(json.stdout())).toEqual({
      env: 'dev',
      region: 'us-east-1',
      observedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      stack: 'AiAssets-dev-Gpu',
      fleetId,
      state: 'active',
      activityStatus: null,
      targetCapacity: 0,
      fulfilledCapacity: 0,
      instances: [],
      stoppedInstances: [],
      budget: { month: new Date().toISOString().slice(0, 7), allowanceUsd: 30, usedUsd: 0, leftUsd: 30, hoursLeft: 169.8, spent: false, overridden: false },
      autoStop: { parameter: AUTO_STOP, value: 'default', thresholdMinutes: 5, source: 'gpu.idleMinutes', note: null },
    });
    expect(table.stdout).toContain('Auto-stop    after 5 idle minutes (gpu.idleMinutes); change it with gpu autostop\n');
  });

  test('one running instance: type, AZ, launch time, idle minutes, the auto-stop countdown, Spot price and the boot phases the box reported', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
    await setAutoStop('20');
    await clients.cloudWatch.send(
      new PutMetricDataCommand({
        Namespace: 'AiAssets/Gpu',
        MetricData: [
          { MetricName: 'IdleMinutes', Dimensions: [{ Name: 'Environment', Value: 'dev' }], Value: 4, Timestamp: new Date(Date.now() - 180_000) },
          { MetricName: 'IdleMinutes', Dimensions: [{ Name: 'Environment', Value: 'dev' }], Value: 7, Timestamp: new Date(Date.now() - 60_000) },
          // Another environment's GPU must not leak into dev's status.
          { MetricName: 'IdleMinutes', Dimensions: [{ Name: 'Environment', Value: 'staging' }], Value: 13, Timestamp: new Date() },
        ],
      }),
    );
    const instanceId = (await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances![0]
      .InstanceId!;
    await clients.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'comfyui:boot', Value: 'bootstrap=88 models=190 image=151' }] }));

    const json = await runOps(['gpu', 'status', '--env', 'dev', '--json'], env());
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as GpuStatus;
    expect(status).toMatchObject({ fleetId, targetCapacity: 1, fulfilledCapacity: 1 });
    expect(status.instances).toHaveLength(1);
    const [instance] = status.instances;
    expect(instance).toMatchObject({
      instanceId,
      instanceType: 'g4dn.xlarge',
      availabilityZone: 'us-east-1a',
      state: 'running',
      idleMinutes: 7,
      // 20 idle minutes (gpu autostop) minus the 7 the box reported.
      autoStopInMinutes: 13,
      publicIp: null,
      bootPhases: { bootstrap: 88, models: 190, image: 151 },
    });
    expect(status.autoStop).toEqual({ parameter: AUTO_STOP, value: '20', thresholdMinutes: 20, source: 'parameter', note: null });
    expect(Date.parse(instance.launchTime!)).toBeGreaterThan(Date.now() - 10 * 60_000);
    // moto prices every Spot pool at $0.00001.
    expect(instance.spotPriceUsdPerHour).toBe(0.00001);

    const table = inProcessDeps(clients, env());
    expect(await runCli(['gpu', 'status', '--env', 'dev'], table.deps)).toBe(0);
    const row = table.stdout().split('\n').find((l) => l.startsWith(instanceId));
    expect(row).toMatch(new RegExp(`^${instanceId}\\s+g4dn\\.xlarge\\s+us-east-1a\\s+running\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+-\\s+-\\s+7\\s+in 13 min\\s+\\$\\d+\\.\\d{4}$`));
    expect(table.stdout()).toContain('Auto-stop    after 20 idle minutes (set by gpu autostop); change it with gpu autostop\n');
    // Boot order, whatever order the box wrote them in.
    expect(table.stdout()).toContain(`${instanceId} boot: bootstrap 88 s, image 151 s, models 190 s after kernel boot\n`);
  });

  test('an instance with a public IP shows it, but no ComfyUI URL: ComfyUI listens on the box\'s loopback (gpu connect reaches it)', async () => {
    const clients = motoClients(moto().endpoint);
    await deployEnvironment(clients, 'dev', { capacity: 1 });
    patchEc2(clients.ec2, { publicIp: '203.0.113.7' });
    const run = inProcessDeps(clients, env());

    expect(await runCli(['gpu', 'status', '--env', 'dev'], run.deps)).toBe(0);
    // No idle datapoint in the past 10 minutes: idle and countdown shown as '-'.
    expect(run.stdout()).toMatch(/203\.0\.113\.7\s+ec2-203-0-113-7\.compute-1\.amazonaws\.com\s+-\s+-\s+\$/);
    expect(run.stdout()).not.toMatch(/http:|:8188/);
    const json = inProcessDeps(clients, env());
    expect(await runCli(['gpu', 'status', '--env', 'dev', '--json'], json.deps)).toBe(0);
    expect(json.stdout()).not.toMatch(/comfyUiUrl|:8188/);
    expect(JSON.parse(json.stdout()).instances[0]).toMatchObject({ publicIp: '203.0.113.7', idleMinutes: null, autoStopInMinutes: null });
  });

  test('a Gpu stack deployed before gpu autostop: the threshold is gpu.idleMinutes and the line says how to get the setting', async () => {
    await deployFixture(motoClients(moto().endpoint), 'dev', { capacity: 0 });
    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(
      `Auto-stop    after 5 idle minutes (gpu.idleMinutes); change it with gpu autostop (${AUTO_STOP} does not exist (a Gpu stack deployed before gpu autostop): redeploy it with npx cdk deploy -c env=dev --all)`,
    );
  });

  test('a missing Gpu stack is "not deployed" (exit 3) with the deploy command', async () => {
    const result = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('error: Stack AiAssets-dev-Gpu is not deployed in us-east-1: run npx cdk deploy -c env=dev --all\n');
  });

  test('a fleet id that no longer exists is "not found" (exit 3)', async () => {
    const template = {
      Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
      Outputs: {
        SpotFleetRequestId: { Value: 'sfr-00000000-0000-4000-8000-000000000000' },
        ComfyUiPort: { Value: '8188' },
        GpuMetricNamespace: { Value: 'AiAssets/Gpu' },
      },
    };
    await motoClients(moto().endpoint).cloudFormation.send(
      new CreateStackCommand({ StackName: 'AiAssets-dev-Gpu', TemplateBody: JSON.stringify(template) }),
    );
    const run = inProcessDeps(motoClients(moto().endpoint), env());
    expect(await runCli(['gpu', 'start', '--env', 'dev'], run.deps)).toBe(3);
    expect(run.stderr()).toContain(
      'Spot Fleet request sfr-00000000-0000-4000-8000-000000000000 (from output SpotFleetRequestId of stack AiAssets-dev-Gpu) was not found',
    );
  });
});

describe('gpu status: stopped instances', () => {
  // A fleet still on interruption behaviour `stop` (deployed before it became `terminate`) leaves each
  // interrupted instance stopped, its volumes billing, and launches a replacement elsewhere (EC2 User
  // Guide, "Stop interrupted Spot Instances"). moto stops a real instance with StopInstances.
  test('a stopped instance of the fleet is listed with its volume size and monthly cost, and how to terminate it', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 2 });
    const ids = (await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances!.map(
      (i) => i.InstanceId!,
    );
    expect(ids).toHaveLength(2);
    const [stopped, running] = ids;
    await clients.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped] }));
    // The DLAMI's 100 GB gp3 root volume, as the launch template asks for it (moto's fleet gives an 8 GB default).
    const az = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [stopped] }))).Reservations![0].Instances![0].Placement!.AvailabilityZone!;
    const volume = await clients.ec2.send(new CreateVolumeCommand({ AvailabilityZone: az, Size: 100, VolumeType: 'gp3' }));
    await clients.ec2.send(new AttachVolumeCommand({ VolumeId: volume.VolumeId, InstanceId: stopped, Device: '/dev/sdf' }));
    // moto also gives every instance an 8 GB gp2 root volume: a type the price table does not hold.
    const attached = (await clients.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [stopped] }] }))).Volumes!;
    expect(attached.map((v) => [v.Size, v.VolumeType]).sort()).toEqual([[100, 'gp3'], [8, 'gp2']]);

    const json = await runOps(['gpu', 'status', '--env', 'dev', '--json'], env());
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as GpuStatus;
    expect(status.stoppedInstances).toEqual([
      {
        instanceId: stopped,
        instanceType: 'g4dn.xlarge',
        availabilityZone: az,
        state: 'stopped',
        reason: expect.any(String),
        volumeGb: 108,
        // 100 GB x $0.08 per GB-month of gp3 in us-east-1 (lib/cost/prices.ts).
        monthlyUsd: 8,
        unpricedGb: 8,
      },
    ]);
    expect(status.stoppedInstances!.map((i) => i.instanceId)).not.toContain(running);

    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('Stopped instances: 1, their volumes billing $8.00 + 8 GB unpriced a month.');
    expect(table.stdout).toMatch(new RegExp(`^${stopped}\\s+g4dn\\.xlarge\\s+${az}\\s+stopped\\s+108\\s+\\$8\\.00 \\+ 8 GB unpriced\\s`, 'm'));
    expect(table.stdout).toContain(`aws ec2 terminate-instances --region us-east-1 --instance-ids ${stopped}`);
  });

  test('a stopped gp3-only instance the fleet no longer lists is found by its fleet tag and priced exactly', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
    const ami = (await clients.ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    // EC2 tags every instance a Spot Fleet launches with aws:ec2spot:fleet-request-id (read by idle-watcher.sh too).
    const launched = await clients.ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        InstanceType: 'g5.xlarge',
        MinCount: 1,
        MaxCount: 1,
        BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 100, VolumeType: 'gp3' } }],
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'aws:ec2spot:fleet-request-id', Value: fleetId }] }],
      }),
    );
    const instanceId = launched.Instances![0].InstanceId!;
    await clients.ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
    // Another fleet's stopped instance is not ours.
    const other = await clients.ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'aws:ec2spot:fleet-request-id', Value: 'sfr-other' }] }],
      }),
    );
    await clients.ec2.send(new StopInstancesCommand({ InstanceIds: [other.Instances![0].InstanceId!] }));

    const status = JSON.parse((await runOps(['gpu', 'status', '--env', 'dev', '--json'], env())).stdout) as GpuStatus;
    expect(status.instances).toEqual([]);
    expect(status.stoppedInstances).toEqual([expect.objectContaining({ instanceId, instanceType: 'g5.xlarge', volumeGb: 100, monthlyUsd: 8, unpricedGb: 0 })]);
    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.stdout).toContain('No instances: the fleet is scaled to 0');
    expect(table.stdout).toContain('Stopped instances: 1, their volumes billing $8.00 a month.');
  });

  test('no stopped instance, no stopped section', async () => {
    await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 1 });
    const table = await runOps(['gpu', 'status', '--env', 'dev'], env());
    expect(table.stdout).not.toContain('Stopped instances');
  });
});

describe('gpu start', () => {
  test('--wait prints each phase with its time and ends when ComfyUI answers 200', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });
    stub = await startComfyStub(3);

    const result = await runOps(['gpu', 'start', '--env', 'dev', '--wait', '--comfyui-url', stub.url], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain(`Target capacity of ${fleetId}: 0 -> 1`);
    // dev's readyTimeoutMinutes (20) applies without --timeout-minutes.
    expect(out).toContain('Waiting up to 20 min 00 s for ComfyUI (poll every 0.1 s).');
    expect(out).toMatch(/\[1\/3 fleet capacity\] done in \d+\.\d s: fulfilled 1\/1/);
    expect(out).toMatch(/\[2\/3 instance running\] done in \d+\.\d s: i-\w+ \(g4dn\.xlarge, us-east-1a\)/);
    expect(out).toContain(`[3/3 ComfyUI ready] ${stub.url}/system_stats: HTTP 503`);
    expect(out).toContain(`[3/3 ComfyUI ready] ${stub.url}/system_stats: HTTP 200`);
    expect(out).toMatch(/\[3\/3 ComfyUI ready\] done in \d+\.\d s/);
    expect(out).toMatch(new RegExp(`ComfyUI is ready after \\d+\\.\\d s: ${stub.url}`));
    // Phases in order, each reported once.
    const order = ['[1/3 fleet capacity] done', '[2/3 instance running] done', '[3/3 ComfyUI ready] done'].map((p) => out.indexOf(p));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(stub.hits()).toBe(4);
    expect(await fleetTarget(fleetId)).toEqual({ target: 1, fulfilled: 1 });
  });

  test("without --comfyui-url it waits for each box's own ready phase (its comfyui:boot tag); --json gives all phases", async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
    const run = inProcessDeps(clients, env());
    const deps = { ...run.deps, loadConfig: twoInstances };
    // The boxes: once an instance exists it reports its phases in two steps, as boot-phase.sh does.
    let done = false;
    const boxes = (async () => {
      const reported = new Map<string, number>();
      while (!done) {
        const ids = ((await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances ?? []).map((i) => i.InstanceId!);
        for (const id of ids) {
          const step = reported.get(id) ?? 0;
          const value = ['bootstrap=41 image=88', 'bootstrap=41 image=88 models=102 ready=131'][step];
          if (value) await clients.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'comfyui:boot', Value: value }] }));
          reported.set(id, step + 1);
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    const code = await runCli(['gpu', 'start', '--env', 'dev', '--count', '2', '--wait', '--json'], deps);
    done = true;
    await boxes;
    expect(run.stderr()).toContain('[3/3 ComfyUI ready] done');
    expect(run.stderr()).toMatch(/\[3\/3 ComfyUI ready\] i-\w+: bootstrap 41 s, image 88 s\n/);
    expect(code).toBe(0);
    const result = JSON.parse(run.stdout()) as StartResult;
    expect(result).toMatchObject({ fleetId, previousTargetCapacity: 0, targetCapacity: 2, waited: true });
    expect(result.phases.map((p) => p.phase)).toEqual(['capacity', 'running', 'comfyui']);
    expect(result.instances).toHaveLength(2);
    expect(Object.values(result.bootPhases)).toEqual([
      { bootstrap: 41, image: 88, models: 102, ready: 131 },
      { bootstrap: 41, image: 88, models: 102, ready: 131 },
    ]);
    expect(await fleetTarget(fleetId)).toEqual({ target: 2, fulfilled: 2 });
  });

  test('a box that never reports ready: exit 4 with the phases it did report', async () => {
    const clients = motoClients(moto().endpoint);
    await deployEnvironment(clients, 'dev', { capacity: 0 });
    const run = inProcessDeps(clients, env());
    const code = await runCli(['gpu', 'start', '--env', 'dev', '--wait', '--timeout-minutes', '0.03'], run.deps);
    expect(code).toBe(4);
    expect(run.stderr()).toMatch(/Timed out after .* in phase 3\/3 ComfyUI ready: i-\w+ reported no boot phase reported yet/);
    expect(run.stderr()).toContain('the box tags ready once /system_stats answers on it');
  });

  test('ComfyUI never ready: exit 4 naming the unfinished phase', async () => {
    await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });
    stub = await startComfyStub(Infinity);

    // A wait that ignored its 1.8 s timeout would hang until the child's own limit kills it.
    const result = await runOps(['gpu', 'start', '--env', 'dev', '--wait', '--comfyui-url', stub.url, '--timeout-minutes', '0.03'], env(), { timeoutMs: 20_000 });
    expect(result.code).toBe(4);
    expect(result.stdout).toContain('[2/3 instance running] done');
    expect(result.stdout).not.toContain('[3/3 ComfyUI ready] done');
    expect(result.stderr).toMatch(/^error: Timed out after \d+\.\d s in phase 3\/3 ComfyUI ready: /);
    expect(result.stderr).toContain(`${stub.url}/system_stats last answered HTTP 503`);
    expect(result.stderr).toContain('npm run ops -- gpu stop --env dev');
    expect(stub.hits()).toBeGreaterThan(3);
  });

  test('no Spot capacity for the whole wait: exit 7, history unavailable in moto', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
    patchEc2(clients.ec2, { fulfilledCapacity: 0 });
    const run = inProcessDeps(clients, env());

    const code = await runCli(['gpu', 'start', '--env', 'dev', '--wait', '--timeout-minutes', '0.02'], run.deps);
    expect(code).toBe(7);
    expect(run.stdout()).toContain('[1/3 fleet capacity] fulfilled 0/1 (active)');
    expect(run.stderr()).toMatch(/^error: No Spot capacity: the fleet stayed at fulfilled 0 of target 1 for \d+\.\d s \(phase 1\/3 fleet capacity did not finish\); fleet history unavailable \(/);
    expect(await fleetTarget(fleetId)).toMatchObject({ target: 1 });
  });

  test('--count above gpu.maxInstances is refused before anything changes (exit 64)', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });
    const run = inProcessDeps(motoClients(moto().endpoint), env());
    expect(await runCli(['gpu', 'start', '--env', 'dev', '--count', '2'], run.deps)).toBe(64);
    expect(run.stderr()).toBe('error: --count 2: allowed is a whole number from 1 to 1 (gpu.maxInstances of dev)\n');
    expect(run.stdout()).toBe('');
    expect(await fleetTarget(fleetId)).toEqual({ target: 0, fulfilled: 0 });
  });

  test('--stop-on-failure needs --wait (exit 64)', async () => {
    const run = inProcessDeps(motoClients(moto().endpoint), env());
    expect(await runCli(['gpu', 'start', '--env', 'dev', '--stop-on-failure'], run.deps)).toBe(64);
    expect(run.stderr()).toBe('error: --stop-on-failure acts when the wait fails: add --wait\n');
  });

  test('--stop-on-failure, no Spot capacity for the whole wait: the target goes back to 0 and the launched box is terminated; still exit 7', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
    // moto launches at once; the ops client sees the fleet report fulfilled 0 throughout, as without capacity.
    patchEc2(clients.ec2, { fulfilledCapacity: 0 });
    const run = inProcessDeps(clients, env());

    const code = await runCli(['gpu', 'start', '--env', 'dev', '--wait', '--stop-on-failure', '--timeout-minutes', '0.02'], run.deps);
    expect(code).toBe(7);
    const launched = (await motoClients(moto().endpoint).ec2.send(new DescribeInstancesCommand({}))).Reservations!.flatMap((r) => r.Instances!);
    expect(launched).toHaveLength(1);
    const [box] = launched;
    expect(box.State!.Name).toBe('terminated');
    const setBack = `--stop-on-failure: target capacity of ${fleetId} set back to 0 (was 1); terminated ${box.InstanceId}, launched by this start.`;
    expect(run.stdout()).toContain(`${setBack}\n`);
    expect(run.stderr()).toMatch(/^error: No Spot capacity: the fleet stayed at fulfilled 0 of target 1 for .* Try again later or add instance types to gpu\.instanceTypes; /);
    expect(run.stderr()).toContain(`gpu.instanceTypes; ${setBack}\n`);
    expect(run.stderr()).not.toContain('the target stays');
    expect((await fleetTarget(fleetId)).target).toBe(0);
  });

  test('--stop-on-failure, ComfyUI never ready: back to the capacity before the start (never lower); the box that was there keeps running', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
    const [before] = (await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances!.map((i) => i.InstanceId!);
    const run = inProcessDeps(clients, env());

    const argv = ['gpu', 'start', '--env', 'dev', '--count', '2', '--wait', '--stop-on-failure', '--timeout-minutes', '0.03'];
    expect(await runCli(argv, { ...run.deps, loadConfig: twoInstances })).toBe(4);
    const states = Object.fromEntries(
      (await clients.ec2.send(new DescribeInstancesCommand({}))).Reservations!.flatMap((r) => r.Instances!).map((i) => [i.InstanceId!, i.State!.Name!]),
    );
    const launched = Object.keys(states).filter((id) => id !== before);
    expect(launched).toHaveLength(1);
    expect(states).toEqual({ [before]: 'running', [launched[0]]: 'terminated' });
    expect(run.stderr()).toMatch(/^error: Timed out after .* in phase 3\/3 ComfyUI ready: .*\. --stop-on-failure: target capacity of sfr-[\w-]+ set back to 1 \(was 2\); terminated i-\w+, launched by this start\.\n$/);
    expect(run.stderr()).not.toContain('The fleet keeps its target capacity');
    expect((await fleetTarget(fleetId)).target).toBe(1);
  });

  test('without --wait it only raises the target', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });
    const run = inProcessDeps(motoClients(moto().endpoint), env());
    expect(await runCli(['gpu', 'start', '--env', 'dev', '--count', '1'], run.deps)).toBe(0);
    expect(run.stdout()).toContain('Not waiting: follow with npm run ops -- gpu status --env dev');
    expect(await fleetTarget(fleetId)).toEqual({ target: 1, fulfilled: 1 });
  });
});

describe('gpu stop', () => {
  test('a bad OPS_POLL_INTERVAL_MS is refused before anything changes (exit 64, capacity untouched)', async () => {
    const { fleetId } = await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 1 });
    const result = await runOps(['gpu', 'stop', '--env', 'dev'], { ...env(), OPS_POLL_INTERVAL_MS: 'soon' });
    expect(result.code).toBe(64);
    expect(result.stderr).toBe('error: OPS_POLL_INTERVAL_MS = "soon": allowed is a number of milliseconds from 10 to 60000\n');
    expect(await fleetTarget(fleetId)).toEqual({ target: 1, fulfilled: 1 });
  });

  test('sets the capacity to 0 and waits until no instance is left', async () => {
    const clients = motoClients(moto().endpoint);
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
    const instanceId = (await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances![0]
      .InstanceId!;

    const result = await runOps(['gpu', 'stop', '--env', 'dev'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Target capacity of ${fleetId}: 1 -> 0`);
    expect(result.stdout).toContain(`Waiting for 1 instance(s) to terminate: ${instanceId}`);
    expect(result.stdout).toMatch(/Stopped: no instance left after \d+\.\d s\./);
    expect(await fleetTarget(fleetId)).toEqual({ target: 0, fulfilled: 0 });
    expect((await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances).toEqual([]);
    const described = await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    expect(described.Reservations![0].Instances![0].State!.Name).toBe('terminated');

    const again = inProcessDeps(clients, env());
    expect(await runCli(['gpu', 'stop', '--env', 'dev', '--json'], again.deps)).toBe(0);
    expect(JSON.parse(again.stdout())).toMatchObject({ fleetId, previousTargetCapacity: 0, targetCapacity: 0, instances: [] });
  });

  test('waits while an instance is still shutting down, and times out (exit 4) if it never goes', async () => {
    const clients = motoClients(moto().endpoint);
    await deployEnvironment(clients, 'dev', { capacity: 1 });
    // 1st DescribeInstances: the instance before the stop; then 3 polls in which it is still shutting down.
    const states = ['running', 'shutting-down', 'shutting-down', 'shutting-down'];
    patchEc2(clients.ec2, { instanceStates: states });
    const slow = inProcessDeps(clients, env());
    expect(await runCli(['gpu', 'stop', '--env', 'dev'], slow.deps)).toBe(0);
    expect(slow.stdout()).toMatch(/waiting for i-\w+ shutting-down/);
    expect(states).toEqual([]);

    await runCli(['gpu', 'start', '--env', 'dev'], inProcessDeps(clients, env()).deps);
    states.push('running', ...Array<string>(1000).fill('shutting-down'));
    const stuck = inProcessDeps(clients, env());
    expect(await runCli(['gpu', 'stop', '--env', 'dev', '--timeout-minutes', '0.01'], stuck.deps)).toBe(4);
    expect(stuck.stderr()).toMatch(/^error: Timed out after \d+\.\d s waiting for the instances to terminate: i-\w+ \(shutting-down\)/);
  });
});
