import { CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stackName } from '../../lib/app';
import { ConfigError, loadEnvironment, type EnvironmentConfig } from '../../lib/config/load';
import { gatewayCredentialSecretName } from '../../lib/gpu-control-names';
import { runCli } from '../../lib/ops/cli';
import { pollUntil } from '../../lib/ops/wait';
import { MaskedLines } from '../../lib/ops/vps-follow';
import { deriveSecrets } from '../../lib/vps/app-secrets';
import { GATEWAY_SECRETS, renderBundle, STACK_SECRETS } from '../../lib/vps/bundle';
import { bundleSettingsFor } from '../../lib/vps/bundle-settings';
import { Redactor } from '../../lib/vps/deployer-redact';
import { ROOT, startTsx } from '../support/child';
import { startMoto, type MotoServer } from '../support/moto';
import { TEST_GATEWAY_CREDENTIAL } from '../vps/support-compose/stack-on-disk';
import { DockerRecorder } from '../vps/support-ssh/remote-fs';
import { sshdVpsFields, startSshd, type SshdFixture } from '../vps/support-ssh/sshd';
import { cliEnv, inProcessDeps, motoClients } from './fixtures';

// `vps logs --follow` against a real OpenSSH server on 127.0.0.1, whose docker stand-in streams
// what the test appends to its log feed (test/vps/support-ssh/docker-stub.sh), and moto for the
// app secret. Ctrl-C is a real SIGINT to a child process; a lost connection is sshd's session
// processes killed mid-stream.

const SEED = randomBytes(24).toString('hex');
const SECRETS = deriveSecrets(SEED, [...STACK_SECRETS, ...GATEWAY_SECRETS]);
let moto: MotoServer;
let sshd: SshdFixture;
let docker: DockerRecorder;
let dir: string;
let identity: string;
const configs = new Map<string, EnvironmentConfig>();
let allOutput = '';

beforeAll(async () => {
  [moto, sshd] = await Promise.all([startMoto(), startSshd()]);
  docker = new DockerRecorder(sshd.stubDir);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-vps-follow-'));
  identity = path.join(dir, 'id_ed25519');
  fs.writeFileSync(identity, sshd.clientKey, { mode: 0o600 });
  const clients = motoClients(moto.endpoint);
  const secret = await clients.secretsManager.send(new CreateSecretCommand({ Name: 'AiAssets/app-secrets', SecretString: JSON.stringify({ seed: SEED }) }));
  const credential = JSON.stringify({ accessKeyId: TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_ACCESS_KEY_ID, secretAccessKey: TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_SECRET_ACCESS_KEY });
  for (const env of ['follow', 'cut', 'ctrlc']) {
    const config = loadEnvironment('dev');
    configs.set(env, {
      ...config,
      envName: env,
      vps: { ...config.vps, ...sshdVpsFields(sshd), baseDir: sshd.baseDir, convergeTimeoutSeconds: 60 },
    });
    const template = { Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } }, Outputs: { AppSecretsArn: { Value: secret.ARN } } };
    await clients.cloudFormation.send(new CreateStackCommand({ StackName: stackName(configs.get(env)!, 'Vps'), TemplateBody: JSON.stringify(template) }));
    await clients.secretsManager.send(new CreateSecretCommand({ Name: gatewayCredentialSecretName(configs.get(env)!), SecretString: credential }));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([moto?.stop(), sshd?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => docker.reset());

interface Running {
  readonly done: Promise<number>;
  stdout(): string;
  stderr(): string;
}

/** `ops vps <argv>` in-process, not awaited: the follow runs while the test watches its output. */
function start(argv: string[]): Running {
  const env = cliEnv(moto.endpoint, { HOME: dir });
  delete env.SSH_AUTH_SOCK;
  const io = inProcessDeps(motoClients(moto.endpoint), env);
  const loadConfig = (name: string) => {
    const config = configs.get(name);
    if (!config) throw new ConfigError(`Unknown environment ${JSON.stringify(name)} in this test`);
    return config;
  };
  const done = runCli(['vps', ...argv], { ...io.deps, loadConfig }).then((code) => {
    allOutput += `${io.stdout()}\n${io.stderr()}\n`;
    return code;
  });
  return { done, stdout: io.stdout, stderr: io.stderr };
}

async function ops(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = start(argv);
  const code = await run.done;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Polls (every 20 ms, at most 20 s) until `check` holds. */
async function until(what: string, check: () => boolean): Promise<void> {
  const result = await pollUntil(async () => (check() ? { done: true, value: true } : { done: false }), {
    deadline: Date.now() + 20_000,
    intervalMs: 20,
    deps: { sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: () => Date.now() },
  });
  if (!result.done) throw new Error(`timed out waiting for ${what}`);
}

async function deployed(env: string): Promise<string> {
  const run = await ops(['deploy', '--env', env, '--identity', identity]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  docker.reset();
  return renderBundle(bundleSettingsFor(configs.get(env)!)).hash;
}

test('MaskedLines masks a value split across chunks, also inside a multi-byte character, and flushes the unterminated tail', () => {
  const secret = 'sëcret-value-0123456789';
  const lines: string[] = [];
  const masked = new MaskedLines(new Redactor([secret]), (l) => lines.push(l));
  const bytes = Buffer.from(`a ${secret} b\r\nc ${secret}`);
  const cut = Buffer.from(`a s`).length + 1; // inside the two bytes of ë
  masked.push(bytes.subarray(0, cut));
  expect(lines).toEqual([]);
  masked.push(bytes.subarray(cut, cut + 30));
  masked.push(bytes.subarray(cut + 30));
  expect(lines).toEqual(['a *** b']);
  masked.end();
  expect(lines).toEqual(['a *** b', 'c ***']);
});

test('--follow: the last N lines, then what the service prints, a secret split across two chunks masked; ends (exit 0) when the containers stop', async () => {
  const release = await deployed('follow');
  const secret = SECRETS.POSTGRES_PASSWORD;
  const run = start(['logs', '--env', 'follow', '--identity', identity, '--service', 'web', '--lines', '1', '--follow']);
  await until('the history line', () => run.stdout().includes('exiting'));
  expect(run.stdout()).toBe(`web-1  | STUB-LOG ${release}: exiting\n`); // --tail 1 of the stand-in's two lines
  expect(docker.calls().map((c) => c.args)).toEqual(['compose -p aiassets-follow logs --no-color --follow --tail 1 web']);

  // The first chunk ends inside the secret; the client has it once the complete line before it shows.
  docker.feedLogs('aiassets-follow', `web-1  | ready\nweb-1  | connecting with ${secret.slice(0, 12)}`);
  await until('the first chunk', () => run.stdout().includes('ready'));
  docker.feedLogs('aiassets-follow', `${secret.slice(12)} as the password\nweb-1  | unterminated ${secret}`);
  await until('the second chunk', () => run.stdout().includes('as the password') && docker.logsSent('aiassets-follow') > 0);
  expect(run.stdout()).toContain('web-1  | connecting with *** as the password\n');

  // `vps down` stops the containers: compose's follow returns, the held-back tail is flushed masked.
  const down = await ops(['down', '--env', 'follow', '--identity', identity, '--yes']);
  expect(down.code).toBe(0);
  expect(await run.done).toBe(0);
  expect(run.stdout()).toMatch(/web-1 {2}\| unterminated \*\*\*\n$/);
  expect(run.stderr()).toBe(
    `# web of release ${release}: the last 1 lines, then following (Ctrl-C to stop)\n` +
      '# the log stream ended: docker compose logs --follow stops once no container of web is running (vps status shows the services)\n',
  );
  expect(run.stdout()).not.toContain(secret.slice(0, 12));
});

test('--follow: a connection lost mid-stream ends the follow with exit 1 and says how to follow again', async () => {
  await deployed('cut');
  const run = start(['logs', '--env', 'cut', '--identity', identity, '--service', 'web', '--follow']);
  await until('the history', () => run.stdout().includes('exiting'));
  const follower = docker.followPid('aiassets-cut');
  expect(sshd.cutSessions().length).toBeGreaterThan(0);
  expect(await run.done).toBe(1);
  expect(run.stderr()).toContain(`error: vps logs --follow --service web failed (SSH_FAILED): SSH connection to ${sshd.username}@127.0.0.1:${sshd.port} lost while following the logs`);
  expect(run.stderr()).toContain('Then: npm run ops -- vps logs --follow --service web --env cut');
  // The stand-in died with its session: nothing keeps running on the VPS.
  await until('the remote follow to end', () => !alive(follower!));
});

test('--follow: Ctrl-C (a real SIGINT) closes the stream, stops compose on the VPS and exits 130', async () => {
  const release = await deployed('ctrlc');
  // A child process like `npm run ops`, with the test's config in place of lib/config/environments.ts.
  const configFile = path.join(dir, 'ctrlc.json');
  fs.writeFileSync(configFile, JSON.stringify(configs.get('ctrlc')));
  const script = path.join(dir, 'ops-with-config.ts');
  fs.writeFileSync(
    script,
    [
      `import * as fs from 'node:fs';`,
      `import { runCli } from ${JSON.stringify(path.join(ROOT, 'lib/ops/cli'))};`,
      `import { defaultDeps } from ${JSON.stringify(path.join(ROOT, 'lib/ops/context'))};`,
      `const config = JSON.parse(fs.readFileSync(process.env.TEST_VPS_CONFIG!, 'utf8'));`,
      `void runCli(process.argv.slice(2), { ...defaultDeps(), loadConfig: () => config }).then((code) => { process.exitCode = code; });`,
      '',
    ].join('\n'),
  );
  const env = cliEnv(moto.endpoint, { HOME: dir, TEST_VPS_CONFIG: configFile });
  delete env.SSH_AUTH_SOCK;
  const args = [script, 'vps', 'logs', '--env', 'ctrlc', '--identity', identity, '--service', 'web', '--follow'];
  const child = startTsx(args[0], args.slice(1), { env });
  try {
    await until('the history', () => child.stdout().includes(`STUB-LOG ${release}: exiting`));
    const follower = docker.followPid('aiassets-ctrlc');
    expect(follower).not.toBeNull();
    // An unterminated line is held back (it might end inside a secret) until Ctrl-C flushes it, masked.
    docker.feedLogs('aiassets-ctrlc', `web-1  | visible\nweb-1  | held back ${SECRETS.REDIS_PASSWORD}`);
    await until('the chunk', () => child.stdout().includes('visible'));
    expect(child.stdout()).not.toContain('held back');
    child.interrupt();
    expect(await child.exited).toBe(130);
    expect(child.stdout()).toMatch(/web-1 {2}\| held back \*\*\*\n$/);
    // runCli's interrupt report (lib/ops/interrupt.ts), with what the follow registered.
    expect(child.stderr()).toMatch(/\ninterrupted: stopped following web; nothing keeps running \(docker compose logs on the VPS ends with the SSH connection\)\n$/);
    await until('compose logs on the VPS to be stopped', () => !alive(follower!));
  } finally {
    child.kill();
    allOutput += `${child.stdout()}\n${child.stderr()}\n`;
  }
});

/** Running, i.e. not gone and not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('no secret value or seed in any output of this file', () => {
  expect(allOutput).toContain('***');
  for (const value of [SEED, ...Object.values(SECRETS)]) expect(allOutput).not.toContain(value);
});
