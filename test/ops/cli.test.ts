import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../../lib/ops/cli';
import { freePort } from '../support/moto';
import { cliEnv, inProcessDeps, motoClients, runOps } from './fixtures';

// CLI behaviour that needs no AWS state. The endpoint is a free loopback port nobody listens on,
// so even a request sent by mistake could not leave the machine.
let endpoint: string;

beforeAll(async () => {
  endpoint = `http://127.0.0.1:${await freePort()}`;
});

function inProcess() {
  return inProcessDeps(motoClients(endpoint), cliEnv(endpoint));
}

test('an unknown --env shows the config error as is (exit 64)', async () => {
  const result = await runOps(['gpu', 'status', '--env', 'qa'], cliEnv(endpoint));
  expect(result.code).toBe(64);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe('error: Unknown environment "qa" (from --env qa); allowed: dev, staging, prod.\n');
});

test('no credentials: a clear message (exit 6)', async () => {
  const env = cliEnv(endpoint);
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  const none = path.join(__dirname, 'no-such-dir');
  // No shared files, no instance metadata: the SDK's provider chain must come up empty.
  Object.assign(env, { AWS_SHARED_CREDENTIALS_FILE: path.join(none, 'credentials'), AWS_CONFIG_FILE: path.join(none, 'config') });
  const result = await runOps(['gpu', 'status', '--env', 'dev'], env);
  expect(result.code).toBe(6);
  expect(result.stderr).toMatch(/^error: No AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
});

test('--version prints the package version', async () => {
  const run = inProcess();
  expect(await runCli(['--version'], run.deps)).toBe(0);
  expect(run.stdout()).toBe(`${require('../../package.json').version}\n`);
});

test('AIASSETS_ENV names the environment when --env is omitted, for ops and for cdk', async () => {
  const ops = await runOps(['gpu', 'status'], { ...cliEnv(endpoint), AIASSETS_ENV: 'qa' });
  expect(ops.code).toBe(64);
  expect(ops.stderr).toContain('Unknown environment "qa" (from AIASSETS_ENV=qa)');
  const app = (extra: string[]) =>
    spawnSync(path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'), [path.join(__dirname, '..', '..', 'bin', 'app.ts'), ...extra], {
      encoding: 'utf8',
      env: { ...process.env, AIASSETS_ENV: 'qa', CDK_OUTDIR: fs.mkdtempSync(path.join(os.tmpdir(), 'app-env-')) },
      timeout: 60_000,
    });
  const fromVariable = app([]);
  expect(fromVariable.status).toBe(1);
  expect(fromVariable.stderr).toContain('Unknown environment "qa" (from AIASSETS_ENV=qa)');
});

test('--env is required on every command', async () => {
  for (const argv of [['gpu', 'status'], ['gpu', 'start'], ['gpu', 'stop'], ['teardown', '--yes']]) {
    const run = inProcess();
    expect(await runCli(argv, run.deps)).toBe(64);
    expect(run.stderr()).toContain("error: required option '--env <name>' not specified");
  }
});

test('--help documents each command and its options', async () => {
  const expected: Record<string, string[]> = {
    'gpu status': ['--env <name>', '--json'],
    'gpu start': ['--env <name>', '--count <n>', '--wait', '--comfyui-url <url>', '--timeout-minutes <m>', '--json'],
    'gpu stop': ['--env <name>', '--timeout-minutes <m>', '--json'],
    teardown: ['--env <name>', '--yes', '--allow-prod', '--timeout-minutes <m>', '--json'],
  };
  for (const [command, options] of Object.entries(expected)) {
    const run = inProcess();
    expect(await runCli([...command.split(' '), '--help'], run.deps)).toBe(0);
    for (const option of options) expect(run.stdout()).toContain(option);
  }
  const top = inProcess();
  expect(await runCli(['--help'], top.deps)).toBe(0);
  expect(top.stdout()).toContain('Exit codes:');
  expect(top.stdout()).toMatch(/gpu\s+inspect, start and stop the ComfyUI GPU/);
});

test('bad option values are usage errors (exit 2)', async () => {
  for (const [argv, message] of [
    [['gpu', 'start', '--env', 'dev', '--count', '0'], 'allowed is a whole number from 1 to 10'],
    [['gpu', 'start', '--env', 'dev', '--comfyui-url', 'localhost:8188'], 'allowed is an http(s) URL'],
    [['gpu', 'stop', '--env', 'dev', '--timeout-minutes', '-1'], 'allowed is a number of minutes above 0'],
  ] as const) {
    const run = inProcess();
    expect(await runCli([...argv], run.deps)).toBe(64);
    expect(run.stderr()).toContain(message);
  }
});
