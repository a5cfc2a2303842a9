import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  emptyQueue,
  envFile,
  FakeServer,
  FLEET_ID,
  INSTANCE_ID,
  metrics,
  run,
  Sandbox,
  SCRIPTS,
  type Metric,
  type RunResult,
} from './harness';

const SCRIPT = path.join(SCRIPTS, 'idle-watcher.sh');
/** Processes present on every GPU box; none of them is an interactive session. */
const BASELINE_PROCS = [
  '/usr/sbin/sshd -D',
  'sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups',
  'sshd: ubuntu [priv]',
  '/snap/amazon-ssm-agent/current/amazon-ssm-agent',
  '/snap/amazon-ssm-agent/current/ssm-agent-worker',
  '/usr/bin/dockerd -H fd://',
];
const FORBIDDEN = ['shutdown', 'poweroff', 'halt', 'reboot', 'systemctl', 'telinit', 'init'];

const server = new FakeServer();
let sb: Sandbox;

beforeAll(() => server.start());
afterAll(() => server.close());

beforeEach(() => {
  server.reset();
  sb = new Sandbox();
  sb.stub('nvidia-smi', 'printf "%s\\n" "$FAKE_GPU"; exit "${FAKE_GPU_EXIT:-0}"');
  // Matches the pattern against the fake process list, as pgrep -f would (0 found, 1 none).
  sb.stub('pgrep', '[ "$1" = -f ] || exit 3; printf "%s\\n" "$FAKE_PROCS" | grep -Eq -- "${!#}"');
  // The fleet as the EC2 API shows it: this instance alone unless a test adds peers; the
  // leaving tags and the gateway's lease live in files, as EC2 would keep them. A lease in
  // lease-on-leave is the gateway's, written the moment the box has tagged itself leaving.
  sb.stub(
    'aws',
    `case "$1 $2" in
  "ec2 describe-tags")
    case "$*" in
      *aws:ec2spot:fleet-request-id*) printf '%s\\n' "$FAKE_FLEET_ID" ;;
      *comfyui:busy-until*)
        [ -f "$FAKE_STATE/lease-broken" ] && { echo 'An error occurred (RequestLimitExceeded): Request limit exceeded.' >&2; exit 254; }
        cat "$FAKE_STATE/lease" 2>/dev/null || echo None ;;
      *) paste -sd '\\t' "$FAKE_STATE/leaving" 2>/dev/null || echo ;;
    esac ;;
  "ec2 create-tags")
    echo "$4" >>"$FAKE_STATE/leaving"
    if [ -f "$FAKE_STATE/lease-on-leave" ]; then mv "$FAKE_STATE/lease-on-leave" "$FAKE_STATE/lease"; fi
    if [ -f "$FAKE_STATE/break-lease-on-leave" ]; then touch "$FAKE_STATE/lease-broken"; fi ;;
  "ec2 delete-tags") grep -vxF -- "$4" "$FAKE_STATE/leaving" >"$FAKE_STATE/leaving.new" || true; mv "$FAKE_STATE/leaving.new" "$FAKE_STATE/leaving" ;;
  "ec2 describe-spot-fleet-instances") printf '%s\\n' "$FAKE_ACTIVE" ;;
  "ec2 modify-spot-fleet-request")
    left=$(cat "$FAKE_STATE/modify-failures" 2>/dev/null || echo 0)
    if [ "$left" -gt 0 ]; then
      echo $((left - 1)) >"$FAKE_STATE/modify-failures"
      echo 'An error occurred (RequestLimitExceeded): Request limit exceeded.' >&2
      exit 254
    fi
    echo '{"Return": true}' ;;
  "ec2 terminate-instances") echo '{"TerminatingInstances": []}' ;;
esac`,
  );
  for (const cmd of FORBIDDEN) sb.stub(cmd);
});
afterEach(() => sb.cleanup());

interface Check {
  gpu?: string;
  gpuExit?: number;
  procs?: string[];
  counter?: number;
  requestedAt?: number;
  uptime?: string;
  modifyFailures?: number;
  fleetId?: string;
  /** The fleet's active instances (default: this one only). */
  peers?: string[];
  /** The value of the gateway's lease tag (comfyui:busy-until) on this instance. */
  lease?: string;
  /** A lease the gateway writes the moment the box has tagged itself leaving. */
  leaseOnLeave?: string;
  /** The lease cannot be read: from the start, or once the box has tagged itself leaving. */
  leaseBroken?: 'always' | 'on-leave';
}

interface Outcome extends RunResult {
  counter: number;
  metrics: Metric[];
  modifyCalls: string[][];
  describeCalls: string[][];
  terminateCalls: string[][];
  tagCalls: string[][];
  untagCalls: string[][];
}

/** One run of the real idle-watcher.sh against the stand-ins and the test server. */
async function check(c: Check = {}): Promise<Outcome> {
  const state = sb.path('state');
  fs.mkdirSync(state, { recursive: true });
  if (c.counter !== undefined) sb.write('state/idle-minutes', `${c.counter}\n`);
  if (c.requestedAt !== undefined) sb.write('state/scale-down-requested-at', `${c.requestedAt}\n`);
  if (c.modifyFailures !== undefined) sb.write('modify-failures', `${c.modifyFailures}\n`);
  if (c.lease !== undefined) sb.write('lease', `${c.lease}\n`);
  if (c.leaseOnLeave !== undefined) sb.write('lease-on-leave', `${c.leaseOnLeave}\n`);
  if (c.leaseBroken === 'always') sb.write('lease-broken', '');
  if (c.leaseBroken === 'on-leave') sb.write('break-lease-on-leave', '');
  const env = sb.env({
    COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(server.port)),
    STATE_DIR: state,
    UPTIME_FILE: sb.write('uptime', `${c.uptime ?? '3600.42 7100.10'}\n`),
    IMDS_URL: server.url,
    RETRY_SLEEP_SECONDS: '0',
    FAKE_STATE: sb.dir,
    FAKE_GPU: c.gpu ?? '0',
    FAKE_GPU_EXIT: String(c.gpuExit ?? 0),
    FAKE_PROCS: [...BASELINE_PROCS, ...(c.procs ?? [])].join('\n'),
    FAKE_FLEET_ID: c.fleetId ?? FLEET_ID,
    FAKE_ACTIVE: (c.peers ?? [INSTANCE_ID]).join('\t'),
  });
  fs.rmSync(sb.callsFile, { force: true });
  const result = await run(SCRIPT, env);
  const calls = sb.calls('aws');
  const ec2 = (op: string) => calls.filter((call) => call.args[0] === 'ec2' && call.args[1] === op).map((call) => call.args);
  for (const cmd of FORBIDDEN) expect(sb.calls(cmd)).toEqual([]);
  return {
    ...result,
    counter: Number(fs.readFileSync(path.join(state, 'idle-minutes'), 'utf8')),
    metrics: metrics(calls),
    modifyCalls: ec2('modify-spot-fleet-request'),
    describeCalls: ec2('describe-tags'),
    terminateCalls: ec2('terminate-instances'),
    tagCalls: ec2('create-tags'),
    untagCalls: ec2('delete-tags'),
  };
}

const values = (o: Outcome, name: string) => o.metrics.filter((m) => m.name === name).map((m) => m.value);

/** An idle minute: counter advanced, IdleMinutes published, nothing else. */
function expectIdle(o: Outcome, counter: number) {
  expect(o.code).toBe(0);
  expect(o.counter).toBe(counter);
  expect(o.metrics.map((m) => [m.name, m.value])).toEqual([['IdleMinutes', counter]]);
  expect(o.modifyCalls).toEqual([]);
  expect(o.terminateCalls).toEqual([]);
}

/** A busy minute: counter reset, IdleMinutes=0 and signalErrors IdleSignalErrors=1 datapoints. */
function expectBusy(o: Outcome, signalErrors = 0) {
  expect(o.code).toBe(0);
  expect(o.counter).toBe(0);
  expect(values(o, 'IdleMinutes')).toEqual([0]);
  expect(values(o, 'IdleSignalErrors')).toEqual(Array(signalErrors).fill(1));
  expect(o.metrics).toHaveLength(1 + signalErrors);
  expect(o.modifyCalls).toEqual([]);
  expect(o.describeCalls).toEqual([]);
}

describe('idle signals', () => {
  test('all idle: the counter advances by one and is published with the environment dimension', async () => {
    const o = await check({ counter: 3, gpu: '4\n0' });
    expectIdle(o, 4);
    expect(o.metrics[0]).toEqual({ name: 'IdleMinutes', value: 4, namespace: 'AiAssets/Gpu', dimensions: 'Environment=test' });
    expect(o.stdout).toMatch(/idle-check gpu=4 queue=0\/0 sessions=none uptime=3600s idle=yes counter=4\/15 action=none$/m);
  });

  test('a busy GPU (the busiest of several counts) resets the counter', async () => {
    expectBusy(await check({ counter: 7, gpu: '3\n42' }));
  });

  test('GPU utilization exactly at the threshold is busy', async () => {
    expectBusy(await check({ counter: 7, gpu: '5' }));
  });

  test('a running job is busy', async () => {
    server.queue = emptyQueue([[1, 'prompt-id', {}, {}, ['9']]], []);
    const o = await check({ counter: 7 });
    expectBusy(o);
    expect(o.stdout).toContain('queue=1/0');
  });

  test('a pending job is busy', async () => {
    server.queue = emptyQueue([], [[2, 'prompt-id', {}, {}, ['9']]]);
    expectBusy(await check({ counter: 7 }));
  });

  test('an open Session Manager session is busy', async () => {
    const o = await check({ counter: 7, procs: ['/usr/bin/ssm-session-worker ops-0123456789abcdef i-0abc1234def567890'] });
    expectBusy(o);
    expect(o.stdout).toContain('sessions=ssm');
  });

  test("the gateway's SSH link (forwarding only, no terminal) is not a session: its lease speaks for it", async () => {
    const o = await check({ counter: 3, procs: ['sshd: comfyui-link [priv]', 'sshd: comfyui-link', 'sshd: comfyui-link@notty'] });
    expectIdle(o, 4);
    expect(o.stdout).toContain('sessions=none');
  });

  test('an open SSH login is busy', async () => {
    const o = await check({ counter: 7, procs: ['sshd: ubuntu@pts/0'] });
    expectBusy(o);
    expect(o.stdout).toContain('sessions=ssh');
  });
});

describe('unreadable signals count as busy and publish IdleSignalErrors', () => {
  test('nvidia-smi fails', async () => {
    const o = await check({ counter: 7, gpu: 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.', gpuExit: 9 });
    expectBusy(o, 1);
    expect(o.stdout).toContain('unreadable signal, counted as busy: nvidia-smi failed');
    expect(o.stdout).toContain('gpu=error');
  });

  test('nvidia-smi prints garbage', async () => {
    expectBusy(await check({ counter: 7, gpu: '[N/A]' }), 1);
  });

  test('the queue endpoint answers 500', async () => {
    server.queue = { status: 500, body: 'Internal Server Error' };
    const o = await check({ counter: 7 });
    expectBusy(o, 1);
    expect(o.stdout).toContain('queue=error');
  });

  test('the queue endpoint answers something that is not JSON', async () => {
    server.queue = { status: 200, body: '<html>starting</html>' };
    expectBusy(await check({ counter: 7 }), 1);
  });

  test('the queue endpoint answers JSON without the queue lists', async () => {
    server.queue = { status: 200, body: '{"queue_running": null}' };
    expectBusy(await check({ counter: 7 }), 1);
  });

  test('two unreadable signals publish two datapoints', async () => {
    server.queue = { status: 503, body: '' };
    expectBusy(await check({ counter: 7, gpuExit: 1 }), 2);
  });
});

describe('boot grace', () => {
  test('no action within the grace period even when everything is idle', async () => {
    const o = await check({ counter: 14, uptime: '599.99 1000.00' });
    expectIdle(o, 0);
    expect(o.stdout).toContain('action=boot-grace');
  });

  test('no IdleSignalErrors within the grace period (ComfyUI is still starting)', async () => {
    server.queue = { status: 500, body: '' };
    expectIdle(await check({ counter: 3, uptime: '120.00 200.00' }), 0);
  });

  test('the grace period ends at exactly BOOT_GRACE_MINUTES', async () => {
    expectIdle(await check({ counter: 3, uptime: '600.00 900.00' }), 4);
  });
});

const modify = (target: number) => ['ec2', 'modify-spot-fleet-request', '--spot-fleet-request-id', FLEET_ID, '--target-capacity', String(target), '--excess-capacity-termination-policy', 'noTermination'];

describe('leaving the fleet after IDLE_MINUTES', () => {
  test('one minute below the threshold: no action', async () => {
    expectIdle(await check({ counter: 13 }), 14);
  });

  test('exactly at the threshold, alone: tags itself leaving, target 0 without termination, then terminates itself', async () => {
    const o = await check({ counter: 14 });
    expect(o.code).toBe(0);
    expect(o.counter).toBe(15);
    expect(o.describeCalls).toContainEqual(
      ['ec2', 'describe-tags', '--filters', `Name=resource-id,Values=${INSTANCE_ID}`, 'Name=key,Values=aws:ec2spot:fleet-request-id', '--query', 'Tags[0].Value', '--output', 'text'],
    );
    expect(o.tagCalls).toEqual([['ec2', 'create-tags', '--resources', INSTANCE_ID, '--tags', expect.stringMatching(/^Key=comfyui:leaving,Value=\d+$/)]]);
    // Written once, then read again and found standing: no second write.
    expect(o.modifyCalls).toEqual([modify(0)]);
    expect(o.terminateCalls).toEqual([['ec2', 'terminate-instances', '--instance-ids', INSTANCE_ID]]);
    expect(o.metrics.map((m) => [m.name, m.value])).toEqual([['IdleMinutes', 15], ['IdleShutdownActions', 1]]);
    expect(o.stdout).toMatch(/counter=15\/15 action=leave-fleet$/m);
  });

  test('with two busy peers the target becomes 2: only this instance goes', async () => {
    const o = await check({ counter: 14, peers: [INSTANCE_ID, 'i-0peer000000000001', 'i-0peer000000000002'] });
    expect(o.modifyCalls).toEqual([modify(2)]);
    expect(o.terminateCalls).toEqual([['ec2', 'terminate-instances', '--instance-ids', INSTANCE_ID]]);
  });

  test('a peer that is leaving too is not counted', async () => {
    sb.write('leaving', 'i-0peer000000000001\n');
    const o = await check({ counter: 14, peers: [INSTANCE_ID, 'i-0peer000000000001', 'i-0peer000000000002'] });
    expect(o.modifyCalls).toEqual([modify(1)]);
  });

  test('after a successful request the next minutes do not ask again, until another full idle period', async () => {
    expectIdle(await check({ counter: 15, requestedAt: 15 }), 16);
    const o = await check({ counter: 29, requestedAt: 15 });
    expect(o.counter).toBe(30);
    expect(o.modifyCalls).toHaveLength(1);
    expect(values(o, 'IdleShutdownActions')).toEqual([1]);
  });

  test('a busy minute forgets an earlier request, so the next idle period acts at the threshold again', async () => {
    expectBusy(await check({ counter: 20, requestedAt: 15, gpu: '80' }));
    expect(fs.existsSync(sb.path('state/scale-down-requested-at'))).toBe(false);
    const o = await check({ counter: 14 });
    expect(o.modifyCalls).toHaveLength(1);
  });

  test('the API fails twice, then the retry succeeds: one action, no failure', async () => {
    const o = await check({ counter: 14, modifyFailures: 2 });
    expect(o.code).toBe(0);
    expect(o.modifyCalls).toHaveLength(3);
    expect(values(o, 'IdleShutdownActions')).toEqual([1]);
    expect(values(o, 'IdleShutdownFailures')).toEqual([]);
  });

  test('the API fails every attempt: IdleShutdownFailures=1, non-zero exit, no power-off, and the next minute tries again', async () => {
    const o = await check({ counter: 14, modifyFailures: 99 });
    expect(o.code).not.toBe(0);
    expect(o.counter).toBe(15);
    expect(o.modifyCalls).toHaveLength(3);
    expect(o.terminateCalls).toEqual([]);
    expect(values(o, 'IdleShutdownFailures')).toEqual([1]);
    expect(values(o, 'IdleShutdownActions')).toEqual([]);
    expect(o.stdout).toContain('the next check tries again');
    // check() asserts that no shutdown/poweroff/halt/reboot/systemctl stand-in ran.

    const next = await check({ modifyFailures: 0 });
    expect(next.code).toBe(0);
    expect(next.counter).toBe(16);
    expect(next.modifyCalls).toHaveLength(1);
    expect(values(next, 'IdleShutdownActions')).toEqual([1]);
  });

  test('an instance outside a Spot Fleet: failure published, no modify call', async () => {
    const o = await check({ counter: 14, fleetId: 'None' });
    expect(o.code).not.toBe(0);
    expect(o.modifyCalls).toEqual([]);
    expect(values(o, 'IdleShutdownFailures')).toEqual([1]);
  });

  test('IMDS without a token is refused, so the instance id comes through IMDSv2', async () => {
    await check({ counter: 14 });
    expect(server.hits.get('PUT /latest/api/token')).toBe(1);
    expect(server.hits.get('GET /latest/meta-data/instance-id')).toBe(1);
  });
});

/** Epoch seconds `delta` from now, as the control function writes the lease. */
const epoch = (delta: number) => String(Math.floor(Date.now() / 1000) + delta);
const isoOf = (epochSeconds: string) => new Date(Number(epochSeconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const leaseRead = ['ec2', 'describe-tags', '--filters', `Name=resource-id,Values=${INSTANCE_ID}`, 'Name=key,Values=comfyui:busy-until', '--query', 'Tags[0].Value', '--output', 'text'];

describe("the gateway's lease (comfyui:busy-until)", () => {
  test('an unexpired lease is busy, even at the threshold: the counter resets and nothing leaves', async () => {
    const until = epoch(300);
    const o = await check({ counter: 14, lease: until });
    expect(o.code).toBe(0);
    expect(o.counter).toBe(0);
    expect(o.stdout).toContain(`gateway lease until ${isoOf(until)}`);
    expect(o.describeCalls).toEqual([leaseRead]);
    expect(o.tagCalls).toEqual([]);
    expect(o.modifyCalls).toEqual([]);
    expect(o.terminateCalls).toEqual([]);
    expect(values(o, 'IdleMinutes')).toEqual([0]);
  });

  test('an expired lease is ignored: the box counts on and leaves at the threshold', async () => {
    expectIdle(await check({ counter: 3, lease: epoch(-60) }), 4);
    const o = await check({ counter: 14, lease: epoch(-1) });
    expect(o.stdout).not.toContain('gateway lease until');
    expect(o.modifyCalls).toEqual([modify(0)]);
    expect(o.terminateCalls).toEqual([['ec2', 'terminate-instances', '--instance-ids', INSTANCE_ID]]);
  });

  test('the lease is read only when everything on the box is idle (no API call on busy minutes)', async () => {
    const o = await check({ counter: 7, gpu: '90', lease: epoch(300) });
    expectBusy(o);
    expect(o.stdout).not.toContain('gateway lease');
  });

  test('a malformed lease is ignored and logged', async () => {
    const o = await check({ counter: 3, lease: 'tomorrow' });
    expectIdle(o, 4);
    expect(o.stdout).toContain("ignoring a malformed gateway lease 'tomorrow' (allowed: epoch seconds)");
  });

  test('an unreadable lease counts as busy and publishes IdleSignalErrors', async () => {
    const o = await check({ counter: 14, leaseBroken: 'always' });
    expect(o.counter).toBe(0);
    expect(values(o, 'IdleSignalErrors')).toEqual([1]);
    expect(o.tagCalls).toEqual([]);
    expect(o.modifyCalls).toEqual([]);
    expect(o.stdout).toContain('unreadable signal, counted as busy: could not read the gateway lease (comfyui:busy-until)');
  });

  test('the race: a lease written after the decision but before the re-read keeps the box and removes its leaving tag', async () => {
    const until = epoch(600);
    const o = await check({ counter: 14, leaseOnLeave: until });
    expect(o.code).toBe(0);
    // Decided with no lease, tagged itself leaving, read the lease again, found the gateway's.
    expect(o.describeCalls.filter((call) => call.join(' ') === leaseRead.join(' '))).toHaveLength(2);
    expect(o.tagCalls).toEqual([['ec2', 'create-tags', '--resources', INSTANCE_ID, '--tags', expect.stringMatching(/^Key=comfyui:leaving,Value=\d+$/)]]);
    expect(o.untagCalls).toEqual([['ec2', 'delete-tags', '--resources', INSTANCE_ID, '--tags', 'Key=comfyui:leaving']]);
    expect(fs.readFileSync(sb.path('leaving'), 'utf8')).toBe('');
    expect(o.modifyCalls).toEqual([]);
    expect(o.terminateCalls).toEqual([]);
    expect(o.stdout).toContain(`gateway lease until ${isoOf(until)} appeared while leaving: removed comfyui:leaving, staying`);
    expect(o.counter).toBe(0);
    expect(values(o, 'IdleShutdownActions')).toEqual([]);
    // The next minute sees the lease from the start.
    const next = await check();
    expect(next.counter).toBe(0);
    expect(next.stdout).toContain(`gateway lease until ${isoOf(until)}`);
  });

  test('the race, with the re-read failing: the box does not leave blind; it removes its leaving tag and retries next minute', async () => {
    const o = await check({ counter: 14, leaseBroken: 'on-leave' });
    expect(o.code).not.toBe(0);
    expect(o.untagCalls).toEqual([['ec2', 'delete-tags', '--resources', INSTANCE_ID, '--tags', 'Key=comfyui:leaving']]);
    expect(o.modifyCalls).toEqual([]);
    expect(o.terminateCalls).toEqual([]);
    expect(values(o, 'IdleShutdownFailures')).toEqual([1]);
    expect(o.stdout).toContain('could not read the gateway lease again after tagging i-0abc1234def567890 as leaving; staying');
  });
});
