import { ModifySpotFleetRequestCommand } from '@aws-sdk/client-ec2';
import { runCli } from '../../lib/ops/cli';
import type { OpsDeps } from '../../lib/ops/context';
import type { GpuStatus } from '../../lib/ops/gpu-status';
import { addBudgetOutputs } from '../gpu-control/support';
import { useMoto } from '../support/moto';
import { cliEnv, deployEnvironment, inProcessDeps, motoClients } from './fixtures';

// `gpu status --watch` against moto, in-process: a bounded number of rounds, then the Ctrl-C that
// ends it, pressed through the injectable hook (OpsDeps.onInterrupt).
const moto = useMoto();

async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs `gpu status --watch <args>` while `script` watches its output (and acts between rounds), then presses Ctrl-C. */
async function watch(args: string[], script: (stdout: () => string) => Promise<void>, terminal = false) {
  const io = inProcessDeps(motoClients(moto().endpoint), cliEnv(moto().endpoint));
  let press: (() => void) | undefined;
  const deps: OpsDeps = { ...io.deps, stdoutIsTTY: terminal, onInterrupt: (l) => ((press = l), () => (press = undefined)) };
  const running = runCli(['gpu', 'status', '--env', 'dev', '--watch', '--interval-seconds', '1', ...args], deps);
  await script(io.stdout);
  press?.();
  return { code: await running, stdout: io.stdout(), stderr: io.stderr() };
}

/** Waits until `count` of the output reaches `n`. */
const rounds = (n: number, count: (out: string) => number) => (stdout: () => string) => until(() => count(stdout()) >= n, `${n} snapshots`);

let fleetId: string;

beforeEach(async () => {
  const clients = motoClients(moto().endpoint);
  const deployed = await deployEnvironment(clients, 'dev', { capacity: 0 });
  await addBudgetOutputs(clients.cloudFormation, deployed.stacks.find((s) => s.endsWith('-Gpu'))!);
  fleetId = deployed.fleetId!;
});

test('without a terminal: snapshots one after another under a timestamp line, read anew each round, until Ctrl-C (exit 130)', async () => {
  const stamps = (out: string) => out.match(/^--- \d{4}-\d\d-\d\dT[\d:.]+Z ---$/gm) ?? [];
  const result = await watch([], async (stdout) => {
    await rounds(1, (out) => stamps(out).length)(stdout);
    // Raised elsewhere after the first snapshot: a later one shows it.
    await motoClients(moto().endpoint).ec2.send(new ModifySpotFleetRequestCommand({ SpotFleetRequestId: fleetId, TargetCapacity: 1 }));
    await until(() => stdout().includes('Capacity     target 1, fulfilled 1'), 'a snapshot of the raised fleet');
    await rounds(stamps(stdout()).length + 1, (out) => stamps(out).length)(stdout);
  });
  expect(result.code).toBe(130);
  expect(result.stderr).toBe('interrupted\n');
  const snapshots = result.stdout.split(/^--- .* ---$/m).slice(1);
  expect(snapshots.length).toBeGreaterThanOrEqual(3);
  expect(snapshots[0]).toContain('Capacity     target 0, fulfilled 0');
  expect(snapshots[snapshots.length - 1]).toContain('Capacity     target 1, fulfilled 1');
  const times = stamps(result.stdout).map((line) => Date.parse(line.slice(4, -4)));
  expect(times).toEqual([...times].sort((a, b) => a - b));
  expect(result.stdout).not.toContain('\x1b');
});

test('on a terminal: each snapshot clears the screen and redraws, with what it shows and how often', async () => {
  const clears = (out: string) => out.split('\x1b[H\x1b[2J').length - 1;
  const result = await watch([], rounds(2, clears), true);
  expect(result.code).toBe(130);
  const frames = result.stdout.split('\x1b[H\x1b[2J').slice(1);
  expect(frames.length).toBeGreaterThanOrEqual(2);
  for (const frame of frames) {
    expect(frame).toMatch(/^gpu status --env dev, every 1\.0 s \(Ctrl-C to stop\) {2}\d{4}-\d\d-\d\dT[\d:.]+Z\n\nEnvironment {2}dev/);
    expect(frame).toContain('No instances: the fleet is scaled to 0');
  }
});

test('--json: one status document per line', async () => {
  const lines = (out: string) => out.split('\n').filter(Boolean);
  const result = await watch(['--json'], rounds(2, (out) => lines(out).length));
  expect(result.code).toBe(130);
  const docs = lines(result.stdout).map((l) => JSON.parse(l) as GpuStatus);
  expect(docs.length).toBeGreaterThanOrEqual(2);
  for (const doc of docs) expect(doc).toMatchObject({ env: 'dev', targetCapacity: 0, instances: [], observedAt: expect.any(String) });
});

test('--interval-seconds outside 1..3600, or without --watch, is refused (exit 64)', async () => {
  for (const [argv, message] of [
    [['--watch', '--interval-seconds', '0.5'], "option '--interval-seconds <s>' argument '0.5' is invalid. allowed is a number of seconds from 1 to 3600."],
    [['--interval-seconds', '5'], 'error: --interval-seconds 5 applies to --watch only: add --watch or drop it'],
  ] as const) {
    const io = inProcessDeps(motoClients(moto().endpoint), cliEnv(moto().endpoint));
    expect(await runCli(['gpu', 'status', '--env', 'dev', ...argv], io.deps)).toBe(64);
    expect(io.stderr()).toContain(message);
  }
});
