import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../../lib/ops/cli';
import type { OpsDeps } from '../../lib/ops/context';
import { CLEAR_LINE, StillRunning } from '../../lib/ops/interrupt';
import { startTsx } from '../support/child';
import { useMoto } from '../support/moto';
import { addBudgetOutputs } from '../gpu-control/support';
import { cliEnv, deployEnvironment as deployFixture, inProcessDeps, motoClients, patchEc2, writeCdkStandIn } from './fixtures';

// Ctrl-C during a command: in-process through the injectable hook (OpsDeps.onInterrupt), and once
// for real, SIGINT to a child `npm run ops` process group as a terminal sends it.
const moto = useMoto();

/** The fixture's stacks, the Gpu stack with its budget outputs (so gpu start checks the budget quietly). */
async function deployEnvironment(...args: Parameters<typeof deployFixture>): ReturnType<typeof deployFixture> {
  const deployed = await deployFixture(...args);
  await addBudgetOutputs(args[0].cloudFormation, deployed.stacks.find((s) => s.endsWith('-Gpu'))!);
  return deployed;
}

/** Polls `check` every 20 ms until it holds, failing after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** In-process deps whose Ctrl-C the test presses; stdout and stderr also go, in order, into one log. */
function terminal(options: { stderrIsTTY?: boolean; env?: Record<string, string> } = {}) {
  const io = inProcessDeps(motoClients(moto().endpoint), cliEnv(moto().endpoint, options.env));
  let listener: (() => void) | undefined;
  let both = '';
  const deps: OpsDeps = {
    ...io.deps,
    stdout: (t) => {
      io.deps.stdout(t);
      both += t;
    },
    stderr: (t) => {
      io.deps.stderr(t);
      both += t;
    },
    stderrIsTTY: options.stderrIsTTY === true,
    onInterrupt: (l) => {
      listener = l;
      return () => (listener = undefined);
    },
  };
  return {
    deps,
    stdout: io.stdout,
    stderr: io.stderr,
    both: () => both,
    subscribed: () => listener !== undefined,
    press: () => listener?.(),
  };
}

describe('StillRunning', () => {
  test('says "interrupted" alone, or with each registered thing still running; cleared entries go', async () => {
    const running = new StillRunning();
    expect(running.message()).toBe('interrupted');
    const clearA = running.add('a is up');
    running.add('b is up');
    expect(running.message()).toBe('interrupted: a is up; b is up');
    clearA();
    expect(running.message()).toBe('interrupted: b is up');
    await expect(running.during('c is up', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(running.message()).toBe('interrupted: b is up');
  });
});

test('gpu start --wait, Ctrl-C while waiting for capacity: exit 130 and the raised target with the command that stops it', async () => {
  const clients = motoClients(moto().endpoint);
  const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
  const t = terminal();
  patchEc2(t.deps.clients('us-east-1').ec2, { fulfilledCapacity: 0 });
  const running = runCli(['gpu', 'start', '--env', 'dev', '--wait'], t.deps);
  await until(() => t.stdout().includes('[1/3 fleet capacity] fulfilled 0/1'), 'the capacity phase');
  t.press();
  expect(await running).toBe(130);
  expect(t.stderr()).toBe(`interrupted: target capacity of ${fleetId} is still 1 (0 before this start): run npm run ops -- gpu stop --env dev\n`);
  // Unsubscribed once the run is over: a later Ctrl-C is the next command's.
  expect(t.subscribed()).toBe(false);
});

test('gpu stop, Ctrl-C while an instance is still terminating: exit 130 saying EC2 finishes it', async () => {
  const clients = motoClients(moto().endpoint);
  const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
  const t = terminal();
  patchEc2(t.deps.clients('us-east-1').ec2, { instanceStates: ['running', ...Array<string>(1000).fill('shutting-down')] });
  const running = runCli(['gpu', 'stop', '--env', 'dev'], t.deps);
  await until(() => /waiting for i-\w+ shutting-down/.test(t.stdout()), 'the termination wait');
  t.press();
  expect(await running).toBe(130);
  expect(t.stderr()).toMatch(
    new RegExp(`^interrupted: target capacity of ${fleetId} is 0 and i-\\w+ terminating \\(EC2 finishes it\\): check with npm run ops -- gpu status --env dev\\n$`),
  );
});

test("teardown, Ctrl-C during its GPU wait: exit 130, nothing destroyed yet, and cdk never runs", async () => {
  const clients = motoClients(moto().endpoint);
  const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
  const cdk = writeCdkStandIn(fs.mkdtempSync(path.join(os.tmpdir(), 'interrupt-cdk-')));
  const t = terminal({ env: cdk.env });
  patchEc2(t.deps.clients('us-east-1').ec2, { instanceStates: ['running', ...Array<string>(1000).fill('shutting-down')] });
  const running = runCli(['teardown', '--env', 'dev', '--yes'], t.deps);
  await until(() => /waiting for i-\w+ shutting-down/.test(t.stdout()), "teardown's GPU wait");
  t.press();
  expect(await running).toBe(130);
  expect(t.stderr()).toBe(
    `interrupted: Spot Fleet ${fleetId} is scaled to 0 and its instances are terminating; no stack was destroyed yet: run the teardown again\n`,
  );
  expect(cdk.calls()).toEqual([]);
});

test('a terminal gets one status line per poll, rewritten in place and cleared before any other line; Ctrl-C clears it too', async () => {
  await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });
  const t = terminal({ stderrIsTTY: true });
  patchEc2(t.deps.clients('us-east-1').ec2, { fulfilledCapacity: 0 });
  const running = runCli(['gpu', 'start', '--env', 'dev', '--wait'], t.deps);
  const status = /\r\x1b\[2K\[1\/3 fleet capacity\] waiting \d+\.\d s, gives up in 19 min \d\d s/g;
  await until(() => (t.stderr().match(status) ?? []).length >= 3, 'three status lines');
  t.press();
  expect(await running).toBe(130);
  const out = t.both();
  // Every status line is followed by the next status line or a clear, never by other text.
  const afterStatus = [...out.matchAll(/\[1\/3 fleet capacity\] waiting [^\r\n]*/g)].map((m) => out.slice(m.index + m[0].length, m.index + m[0].length + 5));
  expect(afterStatus.length).toBeGreaterThanOrEqual(3);
  for (const next of afterStatus) expect(next).toBe(CLEAR_LINE);
  expect(out).toContain(`${CLEAR_LINE}interrupted: target capacity`);
});

test('without a terminal on stderr there is no status line, only the progress lines', async () => {
  await deployEnvironment(motoClients(moto().endpoint), 'dev', { capacity: 0 });
  const t = terminal();
  patchEc2(t.deps.clients('us-east-1').ec2, { fulfilledCapacity: 0 });
  expect(await runCli(['gpu', 'start', '--env', 'dev', '--wait', '--timeout-minutes', '0.01'], t.deps)).toBe(7);
  expect(t.both()).not.toContain('\x1b');
  expect(t.both()).not.toContain('\r');
});

test('a real Ctrl-C: SIGINT to the ops process group exits 130 with what is still running', async () => {
  const clients = motoClients(moto().endpoint);
  const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
  // The box never reports ready (moto runs no user data), so the wait goes on until the signal.
  const child = startTsx('bin/ops.ts', ['gpu', 'start', '--env', 'dev', '--wait'], { env: cliEnv(moto().endpoint) });
  try {
    await until(() => child.stdout().includes('[3/3 ComfyUI ready]'), 'the ComfyUI phase', 120_000);
    child.interrupt();
    expect(await child.exited).toBe(130);
  } finally {
    child.kill();
  }
  expect(child.stderr()).toBe(`interrupted: target capacity of ${fleetId} is still 1 (0 before this start): run npm run ops -- gpu stop --env dev\n`);
}, 180_000);
