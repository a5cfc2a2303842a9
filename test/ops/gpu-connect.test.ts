import { CreateTagsCommand, DescribeSpotFleetInstancesCommand } from '@aws-sdk/client-ec2';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AwsClients } from '../../lib/ops/aws';
import { runCli } from '../../lib/ops/cli';
import { useMoto } from '../support/moto';
import { cliEnv, deployEnvironment, inProcessDeps, motoClients } from './fixtures';

// `gpu connect`: the instance is found against moto; the port forward itself is run by a recording
// stand-in for `aws`, first on PATH. The real AWS CLI and Session Manager plugin need a live SSM
// endpoint (StartSession answers with a stream URL and token the plugin opens a WebSocket to),
// which moto does not serve.
const moto = useMoto();
let dir: string;
let clients: AwsClients;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-connect-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  clients = motoClients(moto().endpoint);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Puts a stand-in on the test PATH: `aws` records its argv (one per line) and exits with $AWS_STANDIN_EXIT. */
function standIn(name: 'aws' | 'session-manager-plugin'): void {
  const body =
    name === 'aws' ? `for a in "$@"; do printf '%s\\n' "$a"; done >"$AWS_STANDIN_LOG"\nexit "\${AWS_STANDIN_EXIT:-0}"\n` : 'exit 0\n';
  fs.writeFileSync(path.join(dir, 'bin', name), `#!/bin/sh\n${body}`, { mode: 0o755 });
}

const recorded = (): string[] => fs.readFileSync(path.join(dir, 'aws-argv'), 'utf8').split('\n').filter(Boolean);

async function connect(args: string[], extra: Record<string, string> = {}) {
  const env = cliEnv(moto().endpoint, { PATH: path.join(dir, 'bin'), AWS_STANDIN_LOG: path.join(dir, 'aws-argv'), ...extra });
  const run = inProcessDeps(clients, env);
  const code = await runCli(['gpu', 'connect', '--env', 'dev', ...args], run.deps);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** The fleet's instances, each tagged by its box as comfyui-ready.service does once ComfyUI answers. */
async function readyBoxes(fleetId: string): Promise<string[]> {
  const ids = (await clients.ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }))).ActiveInstances!.map((i) => i.InstanceId!);
  await clients.ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: 'comfyui:boot', Value: 'bootstrap=88 image=151 models=190 ready=212' }] }));
  return ids;
}

test('without aws or the Session Manager plugin on PATH: exit 1 with how to install them, before any AWS call', async () => {
  const none = await connect([]);
  expect(none.code).toBe(1);
  expect(none.stderr).toBe(
    'error: gpu connect runs aws ssm start-session, which needs aws and session-manager-plugin on PATH: ' +
      'install the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html; ' +
      'install the Session Manager plugin: https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html\n',
  );
  standIn('aws');
  const noPlugin = await connect([]);
  expect(noPlugin.code).toBe(1);
  expect(noPlugin.stderr).toMatch(/^error: gpu connect runs aws ssm start-session, which needs session-manager-plugin on PATH: install the Session Manager plugin: /);
  // No stack exists: the check came first.
  expect(noPlugin.stderr).not.toContain('not deployed');
});

describe('with the tools on PATH', () => {
  beforeEach(() => {
    standIn('aws');
    standIn('session-manager-plugin');
  });

  test('no instance ready: exit 3 with how to start one; a running box that is not ready yet is named', async () => {
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 0 });
    const none = await connect([]);
    expect(none.code).toBe(3);
    expect(none.stderr).toBe(`error: No GPU instance of dev is ready (Spot Fleet ${fleetId}): start one and wait for it with npm run ops -- gpu start --env dev --wait\n`);

    expect(await runCli(['gpu', 'start', '--env', 'dev'], inProcessDeps(clients, cliEnv(moto().endpoint)).deps)).toBe(0);
    const stillBooting = await connect([]);
    expect(stillBooting.code).toBe(3);
    expect(stillBooting.stderr).toMatch(new RegExp(`^error: No GPU instance of dev is ready \\(Spot Fleet ${fleetId}; running but not ready yet: i-\\w+\\)`));
    expect(fs.existsSync(path.join(dir, 'aws-argv'))).toBe(false);
  });

  test('the one ready instance: the port forward of the Session Manager docs, in the env region, and the local URL', async () => {
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
    const [id] = await readyBoxes(fleetId!);
    const result = await connect(['--local-port', '18188']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(recorded()).toEqual([
      'ssm',
      'start-session',
      '--region',
      'us-east-1',
      '--target',
      id,
      '--document-name',
      'AWS-StartPortForwardingSession',
      '--parameters',
      '{"portNumber":["8188"],"localPortNumber":["18188"]}',
    ]);
    expect(result.stdout).toContain(`ComfyUI of ${id} (g4dn.xlarge) at http://localhost:18188, through Session Manager; Ctrl-C ends the session.\n`);
    expect(result.stdout).toContain('the box counts as busy');
  });

  test('several ready: exit 64 naming them until --instance picks one; an id that is not one of them is refused', async () => {
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 2 });
    const ids = await readyBoxes(fleetId!);
    const several = await connect([]);
    expect(several.code).toBe(64);
    expect(several.stderr).toBe(`error: 2 instances of dev are ready: choose one with --instance (${ids.join(', ')})\n`);

    const other = await connect(['--instance', 'i-0123456789abcdef0']);
    expect(other.code).toBe(64);
    expect(other.stderr).toBe(`error: --instance i-0123456789abcdef0 is not a ready instance of Spot Fleet ${fleetId}: allowed is ${ids.join(', ')}\n`);

    const chosen = await connect(['--instance', ids[1]]);
    expect(chosen.code).toBe(0);
    expect(recorded()).toContain(ids[1]);
    expect(recorded()).toContain('{"portNumber":["8188"],"localPortNumber":["8188"]}');
  });

  test('a session that fails (aws exits 255, e.g. TargetNotConnected) is exit 1', async () => {
    const { fleetId } = await deployEnvironment(clients, 'dev', { capacity: 1 });
    await readyBoxes(fleetId!);
    const result = await connect([], { AWS_STANDIN_EXIT: '255' });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('error: aws ssm start-session exited with code 255: see its message above.\n');
  });
});
