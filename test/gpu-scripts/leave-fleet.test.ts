/**
 * Several GPU boxes going idle at once: the real idle-watcher.sh with the real AWS CLI v1 (the
 * awscli pip package, as on the Deep Learning AMI) against moto's EC2 API, one IMDS stand-in per box.
 * An idle box must remove only itself; the fleet ends at the number of busy boxes whatever order the
 * boxes' API calls land in; and a gateway lease that lands while a box is leaving keeps it.
 */
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeTagsCommand,
  DescribeSpotFleetInstancesCommand,
  DescribeSpotFleetRequestsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUSY_UNTIL_TAG } from '../../lib/gpu-control/protocol';
import { createFleet } from '../support/moto-fleet';
import { motoEnv, useMoto } from '../support/moto';
import { envFile, FakeServer, run, Sandbox, SCRIPTS, waitFor } from './harness';

const moto = useMoto();
let ec2: EC2Client;
const servers: FakeServer[] = [];
const sandboxes: Sandbox[] = [];

/** The real CLI must be there: the suite's install step checks for it. */
const awsCli = spawnSync('aws', ['--version'], { encoding: 'utf8' });

beforeEach(() => {
  ec2 = new EC2Client({ endpoint: moto().endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
});
afterEach(async () => {
  ec2.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const sb of sandboxes.splice(0)) sb.cleanup();
});

/** A fleet of `count` running instances, tagged the way Spot Fleet tags what it launches. */
async function fleetOf(count: number): Promise<{ fleetId: string; ids: string[] }> {
  const fleetId = await createFleet(ec2, count);
  const ids = ((await ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances ?? []).map((i) => i.InstanceId!);
  await ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: 'aws:ec2spot:fleet-request-id', Value: fleetId }] }));
  return { fleetId, ids };
}

async function targetOf(fleetId: string): Promise<number> {
  const out = await ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [fleetId] }));
  return out.SpotFleetRequestConfigs![0].SpotFleetRequestConfig!.TargetCapacity!;
}

async function statesOf(ids: string[]): Promise<Record<string, string>> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  return Object.fromEntries(out.Reservations!.flatMap((r) => r.Instances!).map((i) => [i.InstanceId!, i.State!.Name!]));
}

/**
 * One box at its 15th idle minute. `hold` makes the box's first call of one EC2 operation (the
 * first after the marker `after`, when given) wait until a marker file appears, to force an
 * interleaving; every call leaves `<op>-done` behind.
 */
async function idleBox(instanceId: string, hold?: { op: string; until: string; after?: string }): Promise<{ sb: Sandbox; env: NodeJS.ProcessEnv }> {
  const server = new FakeServer();
  server.instanceId = instanceId;
  await server.start();
  servers.push(server);
  const sb = new Sandbox();
  sandboxes.push(sb);
  sb.stub('nvidia-smi', 'echo 0');
  sb.stub('pgrep', 'exit 1');
  const realAws = awsCli.status === 0 ? spawnSync('bash', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim() : 'aws';
  // A wrapper around the real CLI: optional hold, then the marker of the finished call.
  sb.stub(
    'aws',
    `op="$1-$2"
if [ -n "$HOLD_OP" ] && [ "$op" = "$HOLD_OP" ] && [ ! -f "$MARKS/held" ] && { [ -z "$HOLD_AFTER" ] || [ -f "$MARKS/$HOLD_AFTER" ]; }; then
  touch "$MARKS/held"; for _ in $(seq 2000); do [ -f "$HOLD_UNTIL" ] && break; sleep 0.1; done
fi
"${realAws}" "$@"; rc=$?
touch "$MARKS/$op-done"; exit $rc`,
  );
  fs.mkdirSync(sb.path('marks'));
  fs.mkdirSync(sb.path('state'));
  sb.write('state/idle-minutes', '14\n');
  const env = sb.env({
    ...motoEnv(moto().endpoint),
    COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(server.port)),
    STATE_DIR: sb.path('state'),
    UPTIME_FILE: sb.write('uptime', '3600.00 7000.00\n'),
    IMDS_URL: server.url,
    RETRY_SLEEP_SECONDS: '0',
    MARKS: sb.path('marks'),
    HOLD_OP: hold?.op ?? '',
    HOLD_UNTIL: hold?.until ?? '',
    HOLD_AFTER: hold?.after ?? '',
  });
  return { sb, env };
}

// Each CLI call costs the v1 CLI about a second of start-up; a loaded machine needs generous bounds.
const watch = (box: { env: NodeJS.ProcessEnv }) => run(path.join(SCRIPTS, 'idle-watcher.sh'), box.env, 240_000);
jest.setTimeout(600_000);

test('the real AWS CLI v1 is on PATH (the AMI ships the awscli pip package)', () => {
  expect(awsCli.status).toBe(0);
  expect(`${awsCli.stdout}${awsCli.stderr}`).toMatch(/^aws-cli\/1\./);
});

test('3 instances, 2 idle in the same minute: the fleet ends at 1 and the busy one lives', async () => {
  const { fleetId, ids } = await fleetOf(3);
  const [busy, idleA, idleB] = ids;
  const [a, b] = await Promise.all([idleBox(idleA), idleBox(idleB)]);
  const results = await Promise.all([watch(a), watch(b)]);
  for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(await targetOf(fleetId)).toBe(1);
  expect(await statesOf(ids)).toEqual({ [busy]: 'running', [idleA]: 'terminated', [idleB]: 'terminated' });
});

test('worst interleaving: a box writes a stale count after its peer has left; it reads again and corrects it', async () => {
  const { fleetId, ids } = await fleetOf(3);
  const [busy, idleA, idleB] = ids;
  // B must not tag itself before A has counted, and A must not write before B has terminated itself:
  // A counts 2 (B not yet leaving), B tags, counts 1, writes 1 and leaves; then A writes its stale 2.
  const b = await idleBox(idleB, { op: 'ec2-create-tags', until: '' });
  const a = await idleBox(idleA, { op: 'ec2-modify-spot-fleet-request', until: b.sb.path('marks/ec2-terminate-instances-done') });
  // A is holding its write once it has counted: only then may B tag itself.
  b.env.HOLD_UNTIL = a.sb.path('marks/held');
  const results = await Promise.all([watch(a), watch(b)]);
  for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(results[0].stdout).toMatch(/target capacity 2 \(pass 1\)[\s\S]*target capacity 1 \(pass 2\)/);
  expect(await targetOf(fleetId)).toBe(1);
  expect(await statesOf(ids)).toEqual({ [busy]: 'running', [idleA]: 'terminated', [idleB]: 'terminated' });
});

test("the race with the gateway: its lease lands after the box tagged itself leaving; the box reads it again, stays and untags itself", async () => {
  const { fleetId, ids } = await fleetOf(1);
  const [id] = ids;
  // Hold the box's first describe-tags after its leaving tag (the lease read again) until the gateway has leased.
  const box = await idleBox(id, { op: 'ec2-describe-tags', after: 'ec2-create-tags-done', until: '' });
  box.env.HOLD_UNTIL = box.sb.path('leased');
  const watching = watch(box);
  await waitFor(() => fs.existsSync(box.sb.path('marks/held')), 200_000, 'the box to tag itself leaving');
  const until = String(Math.floor(Date.now() / 1000) + 600);
  // What the control function's `lease` action writes.
  await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: BUSY_UNTIL_TAG, Value: until }] }));
  fs.writeFileSync(box.sb.path('leased'), '');
  const result = await watching;
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toContain('appeared while leaving: removed comfyui:leaving, staying');
  expect(await targetOf(fleetId)).toBe(1);
  expect(await statesOf(ids)).toEqual({ [id]: 'running' });
  const tags = (await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [id] }] }))).Tags ?? [];
  expect(Object.fromEntries(tags.filter((t) => t.Key!.startsWith('comfyui:')).map((t) => [t.Key, t.Value]))).toEqual({ [BUSY_UNTIL_TAG]: until });
});
