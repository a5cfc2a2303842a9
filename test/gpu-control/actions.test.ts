import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  CancelSpotFleetRequestsCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSpotFleetInstancesCommand,
  DescribeSpotFleetRequestsCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { handleControlRequest, MAX_LEASE_SECONDS } from '../../lib/gpu-control/actions';
import { monthOf } from '../../lib/gpu-control/month';
import { budgetOverrideParameterName, GATEWAY_METRICS, gatewayMetricNamespace, linkKeyParameterName } from '../../lib/gpu-control/names';
import { BUSY_UNTIL_TAG, HOST_KEY_TAG, type ControlResponse, type ControlStatus } from '../../lib/gpu-control/protocol';
import type { ControlSettings } from '../../lib/gpu-control/settings';
import { useMoto } from '../support/moto';
import { BUCKET, contextFor, createEnvironment, fleetWithInstances, G4DN_PRICE, metricSum, motoControlClients, recordInputs, settingsFor } from './support';

// Every action of the control protocol (lib/gpu-control/protocol.ts), in process, against moto's
// EC2, SSM, CloudWatch and S3 through the official SDK clients.
const moto = useMoto();
const clients = () => motoControlClients(moto().endpoint);

async function environment(capacity: number, overrides: Partial<ControlSettings> = {}) {
  const c = clients();
  const { fleetId, instanceIds } = await fleetWithInstances(c.ec2, capacity);
  const settings = settingsFor(fleetId, overrides);
  await createEnvironment(c, settings);
  return { c, fleetId, instanceIds, settings };
}

const call = (event: unknown, settings: ControlSettings, now?: () => Date) => {
  const t = contextFor(clients(), settings, now);
  return handleControlRequest(event, t.ctx).then((response) => ({ response, logs: t.logs }));
};

function statusOf(response: ControlResponse): ControlStatus {
  if (!response.ok || !response.status) throw new Error(`expected a status, got ${JSON.stringify(response)}`);
  return response.status;
}

async function fleetTarget(fleetId: string): Promise<number> {
  const out = await clients().ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
  return out.SpotFleetRequestConfigs![0].SpotFleetRequestConfig!.TargetCapacity!;
}

/** A GpuSeconds datum now, as the ledger writes one when an instance stops. */
async function ledger(seconds: number, type = 'g4dn.xlarge'): Promise<void> {
  await clients().cloudWatch.send(
    new PutMetricDataCommand({
      Namespace: gatewayMetricNamespace('AiAssets'),
      MetricData: [{ MetricName: GATEWAY_METRICS.gpuSeconds, Dimensions: [{ Name: 'Environment', Value: 'dev' }, { Name: 'InstanceType', Value: type }], Value: seconds, Timestamp: new Date(), Unit: 'Seconds' }],
    }),
  );
}

describe('status', () => {
  test('the fleet, each instance with what its tags say, and the budget', async () => {
    const { c, fleetId, instanceIds, settings } = await environment(2);
    const [a, b] = instanceIds;
    await c.ec2.send(
      new CreateTagsCommand({
        Resources: [a],
        Tags: [
          { Key: 'comfyui:boot', Value: 'bootstrap=41 image=88 models=102 ready=131' },
          { Key: BUSY_UNTIL_TAG, Value: '1900000000' },
          { Key: HOST_KEY_TAG, Value: 'SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ' },
        ],
      }),
    );
    await c.ec2.send(new CreateTagsCommand({ Resources: [b], Tags: [{ Key: 'comfyui:boot', Value: 'bootstrap=41 image=88' }, { Key: 'comfyui:leaving', Value: '1' }] }));

    const status = statusOf((await call({ action: 'status' }, settings)).response);
    expect(status).toMatchObject({ fleetId, targetCapacity: 2, fulfilledCapacity: 2, maxInstances: 3 });
    expect(status.instances).toEqual([
      expect.objectContaining({ instanceId: a, instanceType: 'g4dn.xlarge', state: 'running', ready: true, leaving: false, busyUntil: 1900000000, hostKeySha256: 'SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ' }),
      expect.objectContaining({ instanceId: b, ready: false, leaving: true, busyUntil: null, hostKeySha256: null }),
    ]);
    expect(status.instances[0].privateIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(Object.keys(status.instances[0]).sort()).toEqual(
      ['busyUntil', 'hostKeySha256', 'instanceId', 'instanceType', 'launchTime', 'leaving', 'privateIp', 'publicIp', 'ready', 'state'].sort(),
    );
    expect(status.budget).toMatchObject({ month: monthOf(new Date()), allowanceUsd: 30, spent: false, overridden: false });
  });

  test('running instances count from their launch (or the month start) at their Spot price, on top of the ledger', async () => {
    const { c, instanceIds, settings } = await environment(2);
    const launch = (await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceIds[0]] }))).Reservations![0].Instances![0].LaunchTime!;
    await ledger(1800);
    // Two hours after the launch (or, across a month boundary, since the month started).
    const now = new Date(launch.getTime() + 2 * 3600_000);
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const liveHours = (now.getTime() - Math.max(launch.getTime(), monthStart)) / 3600_000;
    const sameMonth = monthOf(now) === monthOf(new Date());
    const used = 2 * liveHours * G4DN_PRICE + (sameMonth ? 0.5 * G4DN_PRICE : 0);
    const { budget } = statusOf((await call({ action: 'status' }, settings, () => now)).response);
    expect(budget.usedUsd).toBeCloseTo(used, 2);
    expect(budget.leftUsd).toBeCloseTo(30 - used, 2);
    // Hours left at the dearest configured type (g5.xlarge), rounded down to 0.1 h.
    expect(budget.hoursLeft).toBe(Math.floor(((30 - used) / 0.3939) * 10 + 1e-9) / 10);
  });

  test('a cancelled fleet is FLEET_GONE', async () => {
    const { c, fleetId, settings } = await environment(1);
    await c.ec2.send(new CancelSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId], TerminateInstances: true }));
    const { response } = await call({ action: 'status' }, settings);
    expect(response).toEqual({ ok: false, code: 'FLEET_GONE', message: expect.stringMatching(new RegExp(`^Spot Fleet request ${fleetId} (does not exist|is cancelled\\w*)`)) });
  });
});

describe('set-capacity', () => {
  test('raises within [0, maxInstances] without asking EC2 to terminate anything, and answers with the status after it', async () => {
    const { c, fleetId, settings } = await environment(1);
    const modify = recordInputs(c.ec2, 'ModifySpotFleetRequestCommand');
    const t = contextFor(c, settings);
    const response = await handleControlRequest({ action: 'set-capacity', capacity: 3, reason: '5 prompts queued' }, t.ctx);
    expect(statusOf(response)).toMatchObject({ targetCapacity: 3 });
    expect(modify).toEqual([{ SpotFleetRequestId: fleetId, TargetCapacity: 3, ExcessCapacityTerminationPolicy: 'noTermination' }]);
    expect(await fleetTarget(fleetId)).toBe(3);
    expect(t.logs).toContain(`set target capacity of ${fleetId} 1 -> 3: 5 prompts queued`);
  });

  test('lowering keeps the instances (each idle box leaves on its own)', async () => {
    const { c, fleetId, settings } = await environment(3);
    const status = statusOf((await call({ action: 'set-capacity', capacity: 1, reason: 'queue empty' }, settings)).response);
    expect(status.targetCapacity).toBe(1);
    // moto 5.2.1 terminates on a lower target unless the request says noTermination (modify_spot_fleet_request).
    const active = (await c.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances!;
    expect(active).toHaveLength(3);
  });

  test.each([
    [4, 'capacity is 4: allowed is a whole number from 0 to 3 (gpu.maxInstances)'],
    [-1, 'capacity is -1: allowed is a whole number from 0 to 3 (gpu.maxInstances)'],
  ])('%p is OUT_OF_RANGE, naming the value and the range; nothing is changed', async (capacity, message) => {
    const { c, fleetId, settings } = await environment(1);
    const modify = recordInputs(c.ec2, 'ModifySpotFleetRequestCommand');
    const response = await handleControlRequest({ action: 'set-capacity', capacity, reason: 'x' }, contextFor(c, settings).ctx);
    expect(response).toEqual({ ok: false, code: 'OUT_OF_RANGE', message });
    expect(modify).toEqual([]);
    expect(await fleetTarget(fleetId)).toBe(1);
  });

  test.each([
    [{ action: 'set-capacity', capacity: '2', reason: 'x' }, 'capacity is "2": allowed is a whole number'],
    [{ action: 'set-capacity', capacity: 1.5, reason: 'x' }, 'capacity is 1.5: allowed is a whole number'],
    [{ action: 'set-capacity', capacity: 1 }, 'reason is missing: allowed is a string'],
  ])('%j is BAD_REQUEST naming the field', async (event, message) => {
    const { settings } = await environment(0);
    expect((await call(event, settings)).response).toEqual({ ok: false, code: 'BAD_REQUEST', message });
  });
});

describe('the budget guard', () => {
  const spentMessage = (month: string) =>
    `The GPU allowance for ${month} is spent: $0.18 of $0.10 used (monthlyBudgetUsd minus the fixed monthly floor). ` +
    `Waking the GPU is refused until the month ends; an operator can allow it for ${month} with: npm run ops -- gpu start --env dev --over-budget`;

  test('raising is refused once the allowance is spent, with the allowance, the use and the override; lowering is not', async () => {
    const { c, fleetId, settings } = await environment(0, { allowanceUsd: 0.1 });
    await ledger(3600); // one g4dn.xlarge hour: $0.1766
    const modify = recordInputs(c.ec2, 'ModifySpotFleetRequestCommand');
    const refused = await handleControlRequest({ action: 'set-capacity', capacity: 1, reason: 'a prompt arrived' }, contextFor(c, settings).ctx);
    expect(refused).toMatchObject({ ok: false, code: 'BUDGET_SPENT', message: spentMessage(monthOf(new Date())) });
    expect(refused.ok === false && refused.status?.budget).toMatchObject({ usedUsd: 0.18, allowanceUsd: 0.1, leftUsd: 0, hoursLeft: 0, spent: true, overridden: false });
    expect(modify).toEqual([]);
    expect(await fleetTarget(fleetId)).toBe(0);

    // Keeping or lowering the target is always allowed.
    expect(await handleControlRequest({ action: 'set-capacity', capacity: 0, reason: 'idle' }, contextFor(c, settings).ctx)).toMatchObject({ ok: true });
  });

  test('lowering is allowed while spent', async () => {
    const { fleetId, settings } = await environment(2, { allowanceUsd: 0.1 });
    await ledger(3600);
    expect(statusOf((await call({ action: 'set-capacity', capacity: 1, reason: 'less work' }, settings)).response).targetCapacity).toBe(1);
    expect(await fleetTarget(fleetId)).toBe(1);
  });

  test("the operator's override for this month allows raising; one for another month, or none, does not", async () => {
    const { c, fleetId, settings } = await environment(0, { allowanceUsd: 0.1 });
    await ledger(3600);
    const override = (value: string) => c.ssm.send(new PutParameterCommand({ Name: budgetOverrideParameterName(settings), Value: value, Type: 'String', Overwrite: true }));
    const raise = () => call({ action: 'set-capacity', capacity: 1, reason: 'a prompt arrived' }, settings).then((r) => r.response);

    await override('2000-01');
    expect(await raise()).toMatchObject({ ok: false, code: 'BUDGET_SPENT' });
    await override(monthOf(new Date()));
    const allowed = await raise();
    expect(statusOf(allowed)).toMatchObject({ targetCapacity: 1, budget: { spent: true, overridden: true } });
    expect(await fleetTarget(fleetId)).toBe(1);
  });
});

describe('lease', () => {
  test('marks active instances of this fleet busy until now + seconds (epoch seconds)', async () => {
    const { c, instanceIds, settings } = await environment(2);
    const now = new Date('2030-05-06T07:08:09.500Z');
    const status = statusOf((await call({ action: 'lease', instanceIds, seconds: 600 }, settings, () => now)).response);
    const until = Math.floor(now.getTime() / 1000) + 600;
    expect(status.instances.map((i) => i.busyUntil)).toEqual([until, until]);
    const tags = (await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: instanceIds }))).Reservations!.flatMap((r) => r.Instances!).map((i) => i.Tags!.find((t) => t.Key === BUSY_UNTIL_TAG)?.Value);
    expect(tags).toEqual([String(until), String(until)]);
  });

  test('an instance of no fleet, or of another, is BAD_REQUEST and nothing is tagged', async () => {
    const { c, instanceIds, settings } = await environment(1);
    const ami = (await c.ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    const stranger = (await c.ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1 }))).Instances![0].InstanceId!;
    const { response } = await call({ action: 'lease', instanceIds: [instanceIds[0], stranger], seconds: 60 }, settings);
    expect(response).toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: `instanceIds has ${stranger}: allowed are active instances of fleet ${settings.fleetId} (${instanceIds[0]})`,
    });
    const tagged = (await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceIds[0], stranger] }))).Reservations!.flatMap((r) => r.Instances!);
    expect(tagged.filter((i) => i.Tags?.some((t) => t.Key === BUSY_UNTIL_TAG))).toEqual([]);
  });

  test.each([0, MAX_LEASE_SECONDS + 1])('%p seconds is OUT_OF_RANGE', async (seconds) => {
    const { instanceIds, settings } = await environment(1);
    expect((await call({ action: 'lease', instanceIds, seconds }, settings)).response).toEqual({
      ok: false,
      code: 'OUT_OF_RANGE',
      message: `seconds is ${seconds}: allowed is a whole number from 1 to 900`,
    });
  });

  test('no instance ids is BAD_REQUEST', async () => {
    const { settings } = await environment(0);
    expect((await call({ action: 'lease', instanceIds: [], seconds: 60 }, settings)).response).toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: 'instanceIds is []: allowed is a non-empty list of instance ids',
    });
  });
});

describe('register-link-key', () => {
  function ed25519PublicKey(): string {
    const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    return `ssh-ed25519 ${Buffer.concat([u32(11), Buffer.from('ssh-ed25519'), u32(32), raw]).toString('base64')}`;
  }
  const stored = async (settings: ControlSettings) =>
    (await clients().ssm.send(new GetParameterCommand({ Name: linkKeyParameterName(settings) }))).Parameter!.Value;

  test('stores the key without its comment in the link-key parameter; OpenSSH reads it as an ED25519 key', async () => {
    const { settings } = await environment(0);
    const key = ed25519PublicKey();
    expect(await stored(settings)).toBe('unset');
    const { response, logs } = await call({ action: 'register-link-key', publicKey: `${key} gateway@vps` }, settings);
    expect(response).toMatchObject({ ok: true, status: expect.any(Object) });
    expect(await stored(settings)).toBe(key);
    expect(logs).toEqual(["stored the gateway's link key in /AiAssets/dev/gpu/link-public-key"]);
    const keygen = spawnSync('ssh-keygen', ['-l', '-f', '-'], { input: `${key}\n`, encoding: 'utf8' });
    expect(keygen.stdout).toMatch(/^256 SHA256:\S+ no comment \(ED25519\)$/m);
  });

  test.each([
    ['an RSA key', 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host', /^publicKey is "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host": allowed is an OpenSSH ed25519 public key/],
    ['a blob of another type', `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(36)]).toString('base64')}`, /its base64 part is not an ed25519 key blob/],
    ['a second line', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\nssh-ed25519 AAAA', /^publicKey is .*allowed is an OpenSSH ed25519 public key/],
  ])('%s is BAD_REQUEST and the parameter keeps its value', async (_what, publicKey, message) => {
    const { settings } = await environment(0);
    const { response } = await call({ action: 'register-link-key', publicKey }, settings);
    expect(response).toEqual({ ok: false, code: 'BAD_REQUEST', message: expect.stringMatching(message) });
    expect(await stored(settings)).toBe('unset');
  });
});

describe('report', () => {
  test('puts the counters, the wake-to-ready values and the budget into <App>/Gateway with Environment=dev', async () => {
    const { c, settings } = await environment(0);
    const from = new Date(Date.now() - 3600_000);
    const metrics = { queueDepth: 4, running: 2, wakes: 1, jobsCompleted: 7, jobsFailed: 1, jobsResubmitted: 3, wakeToReadySeconds: [95, 125] };
    expect(await handleControlRequest({ action: 'report', metrics }, contextFor(c, settings).ctx)).toMatchObject({ ok: true, status: expect.any(Object) });
    const to = new Date(Date.now() + 3600_000);
    const sums = Object.fromEntries(
      await Promise.all(
        (['queueDepth', 'running', 'wakes', 'jobsCompleted', 'jobsFailed', 'jobsResubmitted', 'wakeToReadySeconds', 'allowanceUsd', 'allowanceUsedUsd'] as const).map(
          async (k) => [k, await metricSum(c.cloudWatch, GATEWAY_METRICS[k], from, to)] as const,
        ),
      ),
    );
    expect(sums).toEqual({ queueDepth: 4, running: 2, wakes: 1, jobsCompleted: 7, jobsFailed: 1, jobsResubmitted: 3, wakeToReadySeconds: 220, allowanceUsd: 30, allowanceUsedUsd: 0 });
    expect(await metricSum(c.cloudWatch, GATEWAY_METRICS.wakeToReadySeconds, from, to, {}, 'SampleCount')).toBe(2);
  });

  test.each([
    [{ queueDepth: 1, running: 0, wakes: 0, jobsCompleted: 0, jobsFailed: -1, jobsResubmitted: 0, wakeToReadySeconds: [] }, 'metrics.jobsFailed is -1: allowed is a number of 0 or more'],
    [{ queueDepth: '1' }, 'metrics.queueDepth is "1": allowed is a number of 0 or more'],
    [{ queueDepth: 1, running: 0, wakes: 0, jobsCompleted: 0, jobsFailed: 0, jobsResubmitted: 0, wakeToReadySeconds: 5 }, 'metrics.wakeToReadySeconds is 5: allowed is a list of at most 150 numbers of 0 or more'],
    [undefined, 'metrics is missing: allowed is an object of the gateway counters'],
  ])('%j is BAD_REQUEST naming the field', async (metrics, message) => {
    const { settings } = await environment(0);
    expect((await call({ action: 'report', metrics }, settings)).response).toEqual({ ok: false, code: 'BAD_REQUEST', message });
  });
});

describe('list-models', () => {
  test('every file under models/ with its size, over more than one page; folders and other prefixes are not listed', async () => {
    const { c, settings } = await environment(0);
    const put = (Key: string, Body: string) => c.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Buffer.from(Body) }));
    const names = Array.from({ length: 1003 }, (_, i) => `loras/l${String(i).padStart(4, '0')}.safetensors`);
    for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => put(`models/${n}`, 'w')));
    await put('models/checkpoints/', '');
    await put('models/checkpoints/sd_xl_base_1.0.safetensors', 'weights!');
    await put('generated/out.png', 'png');
    const { response } = await call({ action: 'list-models' }, settings);
    if (!response.ok) throw new Error(response.message);
    expect(response.status).toBeUndefined();
    expect(response.models).toHaveLength(1004);
    expect(response.models).toContainEqual({ path: 'checkpoints/sd_xl_base_1.0.safetensors', bytes: 8 });
    expect(response.models).toContainEqual({ path: 'loras/l1002.safetensors', bytes: 1 });
    expect(response.models!.some((m) => m.path.endsWith('/'))).toBe(false);
  });
});

describe('list-workflows', () => {
  test('every workflows/*.json that is a JSON object; invalid, oversized and non-object files are skipped with a log line each; nested and other files are not read', async () => {
    const { c, settings } = await environment(0);
    const put = (Key: string, Body: string) => c.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Buffer.from(Body) }));
    const txt2img = { '3': { class_type: 'KSampler', inputs: { seed: 1, steps: 20 } } };
    await put('workflows/txt2img.json', JSON.stringify(txt2img));
    await put('workflows/broken.json', '{"3": {');
    await put('workflows/list.json', '[1, 2]');
    await put('workflows/huge.json', JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }));
    await put('workflows/drafts/wip.json', '{}');
    await put('workflows/README.txt', 'templates');
    const { response, logs } = await call({ action: 'list-workflows' }, settings);
    expect(response).toEqual({ ok: true, workflows: [{ name: 'txt2img', workflow: txt2img }] });
    expect(logs).toEqual([
      expect.stringMatching(/^list-workflows: skipped workflows\/broken\.json: not valid JSON \(/),
      expect.stringMatching(/^list-workflows: skipped workflows\/huge\.json: \d+ bytes, more than 1048576$/),
      'list-workflows: skipped workflows/list.json: not a JSON object of ComfyUI nodes (API format)',
    ]);
  });
});

describe('bad requests', () => {
  test.each([
    [{ action: 'scale' }, 'action is "scale": allowed is status, set-capacity, lease, register-link-key, report, list-models, list-workflows'],
    [{}, 'action is missing: allowed is status, set-capacity, lease, register-link-key, report, list-models, list-workflows'],
    ['status', 'the request is "status": allowed is a JSON object with an action'],
    [null, 'the request is null: allowed is a JSON object with an action'],
    [{ action: 'lease', instanceIds: 'i-0123', seconds: 60 }, 'instanceIds is "i-0123": allowed is a non-empty list of instance ids'],
    [{ action: 'register-link-key', publicKey: 42 }, 'publicKey is 42: allowed is an OpenSSH public key string'],
  ])('%j answers BAD_REQUEST naming the field, before any AWS call', async (event, message) => {
    // No fleet, no bucket: nothing is read.
    const settings = settingsFor('sfr-00000000-0000-4000-8000-000000000000');
    expect((await call(event, settings)).response).toEqual({ ok: false, code: 'BAD_REQUEST', message });
  });
});
