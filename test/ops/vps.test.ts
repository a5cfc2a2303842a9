import { CreateStackCommand, DeleteStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stackName } from '../../lib/app';
import { ConfigError, loadEnvironment, type EnvironmentConfig } from '../../lib/config/load';
import { runCli } from '../../lib/ops/cli';
import type { OpsDeps } from '../../lib/ops/context';
import { ExitCode } from '../../lib/ops/errors';
import { vpsError } from '../../lib/ops/vps-errors';
import { DEFAULT_PROVISION_SCRIPT } from '../../lib/ops/vps-provision';
import { gatewayCredentialSecretName } from '../../lib/gpu-control-names';
import { deriveSecrets } from '../../lib/vps/app-secrets';
import { TEST_GATEWAY_CREDENTIAL } from '../vps/support-compose/stack-on-disk';
import { GATEWAY_SECRETS, renderBundle, requiredSecrets, STACK_SECRETS } from '../../lib/vps/bundle';
import { bundleSettingsFor } from '../../lib/vps/bundle-settings';
import { DeployError } from '../../lib/vps/deployer-types';
import { renderEnvFile } from '../../lib/vps/deployer-input';
import { freePort, startMoto, type MotoServer } from '../support/moto';
import { DockerRecorder, entries, linkTarget, snapshot } from '../vps/support-ssh/remote-fs';
import { sshdVpsFields, startSshd, type SshdFixture } from '../vps/support-ssh/sshd';
import { cliEnv, inProcessDeps, motoClients, runOps } from './fixtures';

// `vps ...` end to end: a real OpenSSH server on 127.0.0.1 (docker stand-in on its PATH),
// Secrets Manager and CloudFormation from a real moto server. The environments' configs are
// injected through OpsDeps.loadConfig (host, port and the pinned fingerprint of the fixture);
// each test works on its own environment name, so releases and compose projects do not mix.

const REGION = 'us-east-1';
const SEED = randomBytes(24).toString('hex');
let moto: MotoServer;
let sshd: SshdFixture;
let docker: DockerRecorder;
let dir: string;
let identity: string;
let secretArn: string;
const configs = new Map<string, EnvironmentConfig>();
/** Everything any command printed, for the final secret scan. */
let allOutput = '';
const savedEnv = { ...process.env };

beforeAll(async () => {
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  [moto, sshd] = await Promise.all([startMoto(), startSshd()]);
  docker = new DockerRecorder(sshd.stubDir);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-vps-'));
  fs.mkdirSync(path.join(dir, 'home'));
  identity = path.join(dir, 'id_ed25519');
  fs.writeFileSync(identity, sshd.clientKey, { mode: 0o600 });
  fs.copyFileSync(path.join(sshd.dir, 'client_key.pub'), `${identity}.pub`);
  const secret = await secretsClient().send(new CreateSecretCommand({ Name: 'AiAssets/app-secrets', SecretString: JSON.stringify({ seed: SEED }) }));
  secretArn = secret.ARN!;
}, 60_000);

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([moto?.stop(), sshd?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => docker.reset());

function secretsClient(): SecretsManagerClient {
  return new SecretsManagerClient({ region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
}

/** The dev config pointed at the sshd fixture under another environment name. */
function vpsConfig(envName: string, overrides: { removalPolicy?: 'destroy' | 'retain'; vps?: Partial<EnvironmentConfig['vps']> } = {}): EnvironmentConfig {
  const base = loadEnvironment('dev');
  const config: EnvironmentConfig = {
    ...base,
    envName,
    removalPolicy: overrides.removalPolicy ?? 'destroy',
    vps: {
      ...base.vps,
      ...sshdVpsFields(sshd),
      baseDir: sshd.baseDir,
      releasesToKeep: 3,
      convergeTimeoutSeconds: 60,
      ...overrides.vps,
    },
  };
  configs.set(envName, config);
  return config;
}

/** The `<App>-<env>-Vps` stack as moto's CloudFormation holds it: only its AppSecretsArn output matters here. */
async function deployVpsStack(config: EnvironmentConfig): Promise<void> {
  const template = {
    Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
    Outputs: { AppSecretsArn: { Value: secretArn }, VpsHost: { Value: config.vps.host } },
  };
  await motoClients(moto.endpoint).cloudFormation.send(new CreateStackCommand({ StackName: stackName(config, 'Vps'), TemplateBody: JSON.stringify(template) }));
  // The Gpu stack's secret with the gateway's access key (lib/gpu-control.ts), by its fixed name.
  const credential = { accessKeyId: TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_ACCESS_KEY_ID, secretAccessKey: TEST_GATEWAY_CREDENTIAL.GATEWAY_AWS_SECRET_ACCESS_KEY };
  try {
    await secretsClient().send(new CreateSecretCommand({ Name: gatewayCredentialSecretName(config), SecretString: JSON.stringify(credential) }));
  } catch (error) {
    if ((error as Error).name !== 'ResourceExistsException') throw error; // the stack is deployed again after a teardown
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  prompts: string[];
}

/** Runs `ops <argv>` in-process: injected configs, moto clients, no ssh-agent unless given, HOME in the temp dir. */
async function ops(argv: string[], options: { tty?: boolean; answer?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env = cliEnv(moto.endpoint, { HOME: path.join(dir, 'home'), ...options.env });
  if (!options.env?.SSH_AUTH_SOCK) delete env.SSH_AUTH_SOCK;
  const io = inProcessDeps(motoClients(moto.endpoint), env, { isTTY: options.tty === true, answer: options.answer });
  const deps: OpsDeps = {
    ...io.deps,
    loadConfig: (name) => {
      const config = configs.get(name);
      if (!config) throw new ConfigError(`Unknown environment ${JSON.stringify(name)} in this test`);
      return config;
    },
  };
  const code = await runCli(['vps', ...argv], deps);
  allOutput += `${io.stdout()}\n${io.stderr()}\n`;
  return { code, stdout: io.stdout(), stderr: io.stderr(), prompts: io.prompts };
}

const envDir = (env: string) => path.join(sshd.baseDir, 'AiAssets', env);
const relDir = (env: string, release: string) => path.join(envDir(env), 'releases', release);
const current = (env: string) => linkTarget(path.join(envDir(env), 'current'));
const previous = (env: string) => linkTarget(path.join(envDir(env), 'previous'));
const bundleOf = (config: EnvironmentConfig) => renderBundle(bundleSettingsFor(config));
const derived = (config: EnvironmentConfig) => ({ ...deriveSecrets(SEED, requiredSecrets(bundleSettingsFor(config))), ...TEST_GATEWAY_CREDENTIAL });
const UP = 'up -d --remove-orphans --wait --wait-timeout 60';

/** A deployed environment with its Vps stack in moto. */
async function deployed(envName: string, overrides: Parameters<typeof vpsConfig>[1] = {}): Promise<EnvironmentConfig> {
  const config = vpsConfig(envName, overrides);
  await deployVpsStack(config);
  const run = await ops(['deploy', '--env', envName, '--identity', identity]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  docker.reset();
  return config;
}

describe('deploy, status, logs', () => {
  test('deploy uploads the rendered bundle, writes .env 0600 with the derived values, links current, pulls and converges', async () => {
    const config = vpsConfig('dev');
    await deployVpsStack(config);
    const bundle = bundleOf(config);

    const run = await ops(['deploy', '--env', 'dev', '--identity', identity]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Deploying release ${bundle.hash}`);
    expect(run.stdout).toContain(`lock ${envDir('dev')}/.deploy-lock taken`); // the deployer's log lines are streamed
    expect(run.stdout).toContain(`Deployed release ${bundle.hash} (previous: none; pruned: none).`);
    const release = relDir('dev', bundle.hash);
    expect(fs.readFileSync(path.join(release, 'docker-compose.yml'), 'utf8')).toBe(bundle.files['docker-compose.yml']);
    const dotEnv = path.join(release, '.env');
    expect(fs.statSync(dotEnv).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(dotEnv, 'utf8')).toBe(renderEnvFile(derived(config)));
    expect(current('dev')).toBe(bundle.hash);
    expect(docker.calls()).toEqual([
      { cwd: release, args: 'compose -p aiassets-dev pull' },
      { cwd: release, args: `compose -p aiassets-dev ${UP}` },
    ]);
  });

  test('a second deploy of the same config is unchanged: no upload, pull or up', async () => {
    const bundle = bundleOf(configs.get('dev')!);
    const run = await ops(['deploy', '--env', 'dev', '--identity', identity]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Unchanged: release ${bundle.hash} is current and healthy (previous: none).`);
    expect(docker.calls().map((c) => c.args)).toEqual(['compose -p aiassets-dev config --services', 'compose -p aiassets-dev ps -a --format json']);
  });

  test('status --json: releases, lock and service states, JSON only on stdout', async () => {
    const bundle = bundleOf(configs.get('dev')!);
    const run = await ops(['status', '--env', 'dev', '--identity', identity, '--json']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout);
    expect(report).toEqual({
      env: 'dev',
      host: '127.0.0.1',
      port: sshd.port,
      user: sshd.username,
      dir: envDir('dev'),
      current: bundle.hash,
      previous: null,
      releases: [bundle.hash],
      lock: null,
      lastRun: { outcome: 'serving', release: bundle.hash, current: bundle.hash, at: expect.any(String), detail: '' },
      services: [
        expect.objectContaining({ service: 'web', state: 'running', health: 'healthy' }),
        expect.objectContaining({ service: 'db', state: 'running', health: 'healthy' }),
      ],
    });

    const table = await ops(['status', '--env', 'dev', '--identity', identity]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`Current      ${bundle.hash}`);
    expect(table.stdout).toContain('Lock         free');
    expect(table.stdout).toContain(`Last gate    serving: release ${bundle.hash} at `);
    expect(table.stdout).toMatch(/SERVICE\s+CONTAINER\s+STATE\s+HEALTH\s+STATUS\nweb\s+aiassets-dev-web-1\s+running\s+healthy/);
  });

  test('logs prints the last lines of one service with every secret value masked', async () => {
    const run = await ops(['logs', '--env', 'dev', '--identity', identity, '--service', 'web', '--lines', '20']);
    expect(run.code).toBe(0);
    const bundle = bundleOf(configs.get('dev')!);
    // The stand-in echoes POSTGRES_PASSWORD from .env, like a crashing service printing its config.
    expect(run.stdout).toBe(`web-1  | STUB-LOG ${bundle.hash}: FATAL listen failed (db password ***)\nweb-1  | STUB-LOG ${bundle.hash}: exiting\n`);
    expect(run.stderr).toBe(`# web of release ${bundle.hash}, last 2 lines\n`);
    expect(docker.calls().map((c) => c.args)).toEqual(['compose -p aiassets-dev logs --no-color --tail 20 web']);
  });

  test('status and logs work with the ssh-agent instead of --identity', async () => {
    const sock = path.join(dir, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', ['-q', identity], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const run = await ops(['status', '--env', 'dev', '--json'], { env: { SSH_AUTH_SOCK: sock } });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout).current).toBe(bundleOf(configs.get('dev')!).hash);
    } finally {
      agent.kill();
    }
  });
});

describe('rollback and the lock', () => {
  test('rollback after a second release goes back through the health gate; without the Vps stack it proceeds and says so', async () => {
    const v1 = bundleOf(await deployed('roll'));
    const v2Config = vpsConfig('roll', { vps: { hostnames: { n8n: 'n8n.dev.example.com', sim: 'studio.dev.example.com' } } });
    const v2 = bundleOf(v2Config);
    expect(v2.hash).not.toBe(v1.hash);
    const second = await ops(['deploy', '--env', 'roll', '--identity', identity]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`Deployed release ${v2.hash} (previous: ${v1.hash}; pruned: none).`);
    expect([current('roll'), previous('roll')]).toEqual([v2.hash, v1.hash]);
    docker.reset();

    const back = await ops(['rollback', '--env', 'roll', '--identity', identity]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout).toContain(`Rolled back to release ${v1.hash} (previous: ${v2.hash}).`);
    expect([current('roll'), previous('roll')]).toEqual([v1.hash, v2.hash]);
    expect(docker.calls()).toEqual([{ cwd: relDir('roll', v1.hash), args: `compose -p aiassets-roll ${UP}` }]); // no pull
    expect(docker.projectState('aiassets-roll')).toBe(`healthy:${v1.hash}`);

    await motoClients(moto.endpoint).cloudFormation.send(new DeleteStackCommand({ StackName: stackName(v2Config, 'Vps') }));
    const again = await ops(['rollback', '--env', 'roll', '--identity', identity]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('warning: Stack AiAssets-roll-Vps is not deployed in us-east-1');
    expect(again.stderr).toContain("Proceeding without the app secrets: output from the VPS is masked with the values of the releases' .env files there.");
    expect(current('roll')).toBe(v2.hash);

    // vps.releasesToKeep = 2: a third release prunes the oldest (never current or previous).
    const v3Config = vpsConfig('roll', { vps: { releasesToKeep: 2, hostnames: { n8n: 'flows.dev.example.com', sim: 'studio.dev.example.com' } } });
    const v3 = bundleOf(v3Config);
    await deployVpsStack(v3Config);
    const third = await ops(['deploy', '--env', 'roll', '--identity', identity]);
    expect(third.code).toBe(0);
    expect(third.stdout).toContain(`Deployed release ${v3.hash} (previous: ${v2.hash}; pruned: ${v1.hash}).`);
    expect(entries(path.join(envDir('roll'), 'releases'))).toEqual([v2.hash, v3.hash].sort());
  });

  test('a held lock refuses the deploy (exit 5) with owner and age; --break-stale-lock takes it over', async () => {
    const config = vpsConfig('locked');
    await deployVpsStack(config);
    const lock = path.join(envDir('locked'), '.deploy-lock');
    fs.mkdirSync(lock, { recursive: true });
    fs.writeFileSync(path.join(lock, 'owner'), 'host=ci-runner pid=4242 user=ci at=2026-01-01T00:00:00Z token=dead\n');
    const twoHoursAgo = new Date(Date.now() - 7200_000);
    fs.utimesSync(lock, twoHoursAgo, twoHoursAgo);

    const run = await ops(['deploy', '--env', 'locked', '--identity', identity]);
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/error: vps deploy refused: the deploy lock is held by host=ci-runner pid=4242 user=ci .* \(age 720\ds\)/);
    expect(run.stderr).toContain('retry with --break-stale-lock');
    expect(entries(path.join(envDir('locked'), 'releases'))).toEqual([]);
    expect(docker.calls()).toEqual([]);

    const broken = await ops(['deploy', '--env', 'locked', '--identity', identity, '--break-stale-lock']);
    expect(broken.code).toBe(0);
    expect(broken.stdout).toContain('breaking stale lock');
    expect(current('locked')).toBe(bundleOf(config).hash);
    expect(fs.existsSync(lock)).toBe(false);
  });
});

describe('down', () => {
  test('retain: --remove-volumes and --yes are refused; the typed name stops the stack and keeps the volumes', async () => {
    const config = await deployed('keep', { removalPolicy: 'retain' });
    const release = bundleOf(config).hash;

    const volumes = await ops(['down', '--env', 'keep', '--identity', identity, '--remove-volumes'], { tty: true, answer: 'keep' });
    expect(volumes.code).toBe(5);
    expect(volumes.stderr).toContain('Refusing --remove-volumes for keep: its removalPolicy is retain');
    expect(volumes.prompts).toEqual([]);
    const yes = await ops(['down', '--env', 'keep', '--identity', identity, '--yes']);
    expect(yes.code).toBe(5);
    expect(yes.stderr).toContain('Refusing --yes for keep');
    const wrong = await ops(['down', '--env', 'keep', '--identity', identity], { tty: true, answer: 'dev' });
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toContain('Confirmation "dev" does not match "keep". Nothing was changed.');
    expect(docker.calls()).toEqual([]);
    expect(current('keep')).toBe(release);

    const run = await ops(['down', '--env', 'keep', '--identity', identity], { tty: true, answer: 'keep' });
    expect(run.code).toBe(0);
    expect(run.prompts).toEqual(['Type the environment name (keep) to stop its VPS stack: ']);
    expect(run.stdout).toContain('Named volumes: kept.');
    expect(run.stdout).toContain(`Stopped AiAssets/keep; removed releases: ${release}; named volumes kept.`);
    expect(docker.calls()).toEqual([{ cwd: relDir('keep', release), args: 'compose -p aiassets-keep down --remove-orphans' }]);
    expect(docker.projectState('aiassets-keep')).toBe('down');
    expect(fs.existsSync(envDir('keep'))).toBe(false);
  });

  test('destroy: without a terminal and --yes it refuses; --remove-volumes --yes runs down --volumes', async () => {
    const config = await deployed('scratch');
    const release = bundleOf(config).hash;
    const noTty = await ops(['down', '--env', 'scratch', '--identity', identity]);
    expect(noTty.code).toBe(5);
    expect(noTty.stderr).toContain('Cannot ask for confirmation: stdin is not a terminal. Run vps down in a terminal or pass --yes.');
    expect(docker.calls()).toEqual([]);

    const run = await ops(['down', '--env', 'scratch', '--identity', identity, '--remove-volumes', '--yes']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Named volumes: DELETED (data loss).');
    expect(docker.calls()).toEqual([{ cwd: relDir('scratch', release), args: 'compose -p aiassets-scratch down --remove-orphans --volumes' }]);
    expect(run.stdout).toContain('named volumes removed');
  });
});

describe('refusals before anything is written', () => {
  test('no fingerprint configured: refused (exit 5) with the ssh-keyscan hint, before connecting', async () => {
    vpsConfig('nopin', { vps: { hostKeySha256: undefined } });
    const logBefore = sshd.log().length;
    for (const command of [['deploy'], ['status'], ['provision', '--ssh-user', sshd.username]]) {
      const run = await ops([...command, '--env', 'nopin', '--identity', identity]);
      expect(run.code).toBe(5);
      expect(run.stderr).toContain('vps.hostKeySha256 is not set for nopin: refusing to connect to 127.0.0.1');
      expect(run.stderr).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1 | ssh-keygen -lf -`);
    }
    expect(fs.existsSync(envDir('nopin'))).toBe(false);
    expect(sshd.log().slice(logBefore)).not.toContain('Connection from');
  });

  test('a wrong fingerprint is refused (exit 5) before authenticating: nothing written, nothing run', async () => {
    const config = vpsConfig('wrongpin', { vps: { hostKeySha256: sshd.otherFingerprint } });
    await deployVpsStack(config);
    const logBefore = sshd.log().length;
    const run = await ops(['deploy', '--env', 'wrongpin', '--identity', identity]);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain(`does not match the pinned fingerprint: expected ${sshd.otherFingerprint}, received ${sshd.fingerprint}`);
    expect(fs.existsSync(envDir('wrongpin'))).toBe(false);
    expect(docker.calls()).toEqual([]);
    expect(sshd.log().slice(logBefore)).not.toContain('Accepted publickey');
  });

  test('no --identity, no default key file and no ssh-agent: exit 6 listing what was tried, no connection', async () => {
    vpsConfig('nokey');
    const logBefore = sshd.log().length;
    const run = await ops(['status', '--env', 'nokey']);
    expect(run.code).toBe(6);
    const ssh = path.join(dir, 'home', '.ssh');
    expect(run.stderr).toBe(
      `error: No SSH credentials: tried ${ssh}/id_ed25519 (not found), ${ssh}/id_ecdsa (not found), ${ssh}/id_rsa (not found), ` +
        `the ssh-agent (SSH_AUTH_SOCK is not set). Pass --identity <private key file>, create ${ssh}/id_ed25519 (ssh-keygen -t ed25519), ` +
        'or start ssh-agent and add your key (eval "$(ssh-agent)"; ssh-add).\n',
    );
    expect(sshd.log().slice(logBefore)).not.toContain('Connection from');
  });

  test('a closed SSH port names host:port and hints at vps.sshPort and the firewall (exit 1, as any unreachable VPS)', async () => {
    const port = await freePort(); // nothing listens there once freePort returns
    vpsConfig('closed', { vps: { sshPort: port } });
    const run = await ops(['status', '--env', 'closed', '--identity', identity]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`error: vps status failed (CONNECT_FAILED): could not open an SSH session to ${sshd.username}@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}.`);
    expect(run.stderr).toContain(`Nothing accepts SSH on 127.0.0.1:${port} (the connection was refused). Check vps.sshPort of closed (now ${port})`);
    expect(run.stderr).toContain('provision.sh opens only 80, 443 and the SSH port it was run with (vps.sshPort at that time)');
  });

  test('an --identity that is not a private key is a usage error that does not echo the file', async () => {
    vpsConfig('badkey');
    const run = await ops(['status', '--env', 'badkey', '--identity', `${identity}.pub`]);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain(`--identity ${identity}.pub`);
    expect(run.stderr).not.toContain(fs.readFileSync(`${identity}.pub`, 'utf8').split(' ')[1]);
  });

  test('the real config (no seam) refuses the placeholder fingerprint in a child process, before any network use', async () => {
    const run = await runOps(['vps', 'deploy', '--env', 'dev', '--identity', identity], cliEnv(moto.endpoint));
    allOutput += run.stdout + run.stderr;
    expect(run.code).toBe(5);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('error: vps.hostKeySha256 of dev is still the placeholder');
    expect(run.stderr).toContain('ssh-keyscan -p 22 vps-dev.example.com | ssh-keygen -lf -');
  });
});

describe('provision', () => {
  /** A stand-in for provision.sh: records its arguments, stdin, SSH_PORT, its own path and bytes. */
  function recordingScript(exitCode = 0): { script: string; record: string } {
    const record = fs.mkdtempSync(path.join(dir, 'record-'));
    const script = path.join(record, 'stand-in.sh');
    fs.writeFileSync(
      script,
      [
        '#!/usr/bin/env bash',
        'set -eu',
        `out=${record}`,
        'printf "%s\\n" "$@" > "$out/args"',
        'cat > "$out/stdin"',
        'printf "%s" "${SSH_PORT:-unset}" > "$out/ssh_port"',
        'printf "%s" "$0" > "$out/path"',
        'cp "$0" "$out/uploaded"',
        'stat -c %a "$0" > "$out/mode"',
        'echo "provision: stand-in ran"',
        `exit ${exitCode}`,
        '',
      ].join('\n'),
    );
    return { script, record };
  }

  test('uploads the script, runs it with --user and --app-dir and the public key on stdin, streams its output, cleans up', async () => {
    const config = vpsConfig('prov', { vps: { deployUser: 'deploy', sshPort: sshd.port } });
    const { script, record } = recordingScript();
    // Logs in as --ssh-user (the fixture's user); the public key defaults to the --identity file + .pub;
    // a relative --script is found from where npm was started (INIT_CWD), not the package root.
    const run = await ops(['provision', '--env', 'prov', '--identity', identity, '--ssh-user', sshd.username, '--script', path.basename(script)], {
      env: { INIT_CWD: record },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(fs.readFileSync(path.join(record, 'args'), 'utf8')).toBe(`--user\ndeploy\n--app-dir\n${path.posix.join(config.vps.baseDir, 'AiAssets')}\n`);
    expect(fs.readFileSync(path.join(record, 'stdin'), 'utf8')).toBe(fs.readFileSync(`${identity}.pub`, 'utf8'));
    expect(fs.readFileSync(path.join(record, 'ssh_port'), 'utf8')).toBe(String(sshd.port));
    expect(fs.readFileSync(path.join(record, 'uploaded'))).toEqual(fs.readFileSync(script));
    expect(fs.readFileSync(path.join(record, 'mode'), 'utf8').trim()).toBe('700');
    const remotePath = fs.readFileSync(path.join(record, 'path'), 'utf8');
    expect(remotePath).toMatch(/\/aiassets-provision\.[A-Za-z0-9]{8}\/provision\.sh$/);
    expect(fs.existsSync(path.dirname(remotePath))).toBe(false); // temp dir removed
    expect(run.stdout).toContain('provision: stand-in ran');
    expect(run.stdout).toMatch(/authorizes SHA256:[A-Za-z0-9+/]{43} \(deployer-test\)/);
    expect(run.stdout).not.toContain(fs.readFileSync(`${identity}.pub`, 'utf8').split(' ')[1]);
  });

  test('the script failing is a failure (exit 1); --public-key pointing at a private key is refused unsent', async () => {
    vpsConfig('provfail');
    const failing = recordingScript(3);
    const run = await ops(['provision', '--env', 'provfail', '--identity', identity, '--ssh-user', sshd.username, '--script', failing.script]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`error: provision script exited 3 on ${sshd.username}@127.0.0.1:${sshd.port}: see its output above.`);

    const other = recordingScript();
    const privateKey = await ops(['provision', '--env', 'provfail', '--identity', identity, '--ssh-user', sshd.username, '--script', other.script, '--public-key', identity]);
    expect(privateKey.code).toBe(64);
    expect(privateKey.stderr).toContain(`--public-key ${identity} holds a PRIVATE key`);
    expect(fs.existsSync(path.join(other.record, 'args'))).toBe(false);
  });

  test('a wrong fingerprint refuses provision (exit 5): the script never runs', async () => {
    vpsConfig('provpin', { vps: { hostKeySha256: sshd.otherFingerprint } });
    const { script, record } = recordingScript();
    const run = await ops(['provision', '--env', 'provpin', '--identity', identity, '--ssh-user', sshd.username, '--script', script]);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('does not match the pinned fingerprint');
    expect(fs.existsSync(path.join(record, 'args'))).toBe(false);
  });

  test('the default script is assets/compose/provision.sh', async () => {
    expect(DEFAULT_PROVISION_SCRIPT).toBe(path.resolve(__dirname, '..', '..', 'assets', 'compose', 'provision.sh'));
    const help = await ops(['provision', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('(default: assets/compose/provision.sh)');
    for (const option of ['--ssh-user <name>', '--public-key <file>', '--script <file>', '--identity <file>', '--env <name>']) expect(help.stdout).toContain(option);
  });
});

describe('SSH credentials as ssh finds them (no --identity)', () => {
  /** A fresh $HOME with the given private keys (OpenSSH format) in ~/.ssh. */
  function home(keys: Record<string, string>): string {
    const homeDir = fs.mkdtempSync(path.join(dir, 'home-'));
    fs.mkdirSync(path.join(homeDir, '.ssh'), { mode: 0o700 });
    for (const [name, key] of Object.entries(keys)) fs.writeFileSync(path.join(homeDir, '.ssh', name), key, { mode: 0o600 });
    return homeDir;
  }

  /** A new key pair from ssh-keygen; `authorize` adds its public key to the server's authorized_keys. */
  function keygen(type: 'ed25519' | 'ecdsa', options: { passphrase?: string; authorize?: boolean } = {}): string {
    const file = path.join(fs.mkdtempSync(path.join(dir, 'key-')), 'key');
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', options.passphrase ?? '', '-C', 'test', '-f', file], { stdio: 'ignore' });
    if (options.authorize) fs.appendFileSync(path.join(sshd.dir, 'authorized_keys'), fs.readFileSync(`${file}.pub`));
    return fs.readFileSync(file, 'utf8');
  }

  test('a key only at $HOME/.ssh/id_ed25519 logs in without --identity', async () => {
    vpsConfig('homekey');
    const run = await ops(['status', '--env', 'homekey', '--json'], { env: { HOME: home({ id_ed25519: sshd.clientKey }) } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).current).toBeNull();
  });

  test('a passphrase-protected id_ed25519 is skipped with a warning naming it; id_ecdsa is used', async () => {
    vpsConfig('homeecdsa');
    const homeDir = home({ id_ed25519: keygen('ed25519', { passphrase: 'correct horse' }), id_ecdsa: keygen('ecdsa', { authorize: true }) });
    const run = await ops(['status', '--env', 'homeecdsa', '--json'], { env: { HOME: homeDir } });
    const file = path.join(homeDir, '.ssh', 'id_ed25519');
    expect(run.stderr).toBe(`warning: ${file} is passphrase-protected, and nothing here can ask for its passphrase: add it to your ssh-agent (ssh-add ${file}); skipped.\n`);
    expect(run.code).toBe(0);
  });

  test('the ssh-agent is tried when the VPS rejects the default key file; with no agent, exit 6 names the rejected key', async () => {
    vpsConfig('homeagent');
    const homeDir = home({ id_ed25519: keygen('ed25519') }); // not authorized on the VPS
    const rejected = await ops(['status', '--env', 'homeagent'], { env: { HOME: homeDir } });
    expect(rejected.code).toBe(6);
    expect(rejected.stderr).toContain(`rejected every key offered: ${path.join(homeDir, '.ssh', 'id_ed25519')}. Pass the key it knows with --identity`);

    const sock = path.join(dir, 'agent2.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', ['-q', identity], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const run = await ops(['status', '--env', 'homeagent', '--json'], { env: { HOME: homeDir, SSH_AUTH_SOCK: sock } });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    } finally {
      agent.kill();
    }
  });
});

describe('deploy --dry-run', () => {
  test('after a deploy: "already current"; one changed config value lists its one file; no lock, no docker, nothing written', async () => {
    const config = await deployed('dry');
    const release = bundleOf(config).hash;
    const before = snapshot(envDir('dry'));

    const same = await ops(['deploy', '--env', 'dry', '--identity', identity, '--dry-run']);
    expect(same.stderr).toBe('');
    expect(same.code).toBe(0);
    expect(same.stdout).toContain(`release ${release} is already current: same files, same derived values`);
    expect(same.stdout).not.toContain('Deploying');

    const changed = vpsConfig('dry', { vps: { letsEncryptEmail: 'certs@example.org' } });
    const next = bundleOf(changed);
    const run = await ops(['deploy', '--env', 'dry', '--identity', identity, '--dry-run']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        `Dry run of vps deploy: release ${next.hash} (${Object.keys(next.files).length} files) to ${sshd.username}@127.0.0.1:${sshd.port} in ${envDir('dry')}`,
        `Current on the VPS: ${release}; previous: none`,
        `Files against release ${release}: 1 changed, 0 added, 0 removed`,
        '  changed  docker-compose.yml',
        'Derived values (.env, compared by hash): unchanged',
        'Deploy lock: free',
        'dry run: nothing changed on the VPS (no lock taken, nothing written).',
        '',
      ].join('\n'),
    );
    expect(snapshot(envDir('dry'))).toEqual(before); // releases, links, .env, lock: byte for byte and mtime
    expect(docker.calls()).toEqual([]);
  });

  test('a removed site and a changed .env are named (never the values); a held lock is reported and left alone', async () => {
    const config = await deployed('dryenv');
    const release = bundleOf(config).hash;
    const lock = path.join(envDir('dryenv'), '.deploy-lock');
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'owner'), 'host=ci pid=7 user=ci at=2026-01-01T00:00:00Z lease=900 token=abc\n');
    const before = snapshot(envDir('dryenv'));
    // Without the gateway's host name the gateway site goes, and so does GATEWAY_TOKEN from .env.
    vpsConfig('dryenv', { vps: { hostnames: { n8n: config.vps.hostnames.n8n, sim: config.vps.hostnames.sim } } });

    const run = await ops(['deploy', '--env', 'dryenv', '--identity', identity, '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`Files against release ${release}: \\d+ changed, 0 added, 1 removed\n`));
    expect(run.stdout).toContain(`  removed  nginx/sites/${config.vps.hostnames.gateway}.conf\n`);
    expect(run.stdout).toContain('Derived values (.env, compared by hash): changed\n');
    expect(run.stdout).toMatch(/Deploy lock: held by host=ci pid=7 .* for \d+s \(a deploy would wait for it or be refused\)/);
    expect(snapshot(envDir('dryenv'))).toEqual(before);
    expect(docker.calls()).toEqual([]);
  });

  test('--dry-run with --break-stale-lock is a usage error', async () => {
    const run = await ops(['deploy', '--env', 'dry', '--identity', identity, '--dry-run', '--break-stale-lock']);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain("error: option '--dry-run' cannot be used with option '--break-stale-lock'");
  });
});

test('deployer errors map to the ops exit codes', () => {
  const codes = (['TIMEOUT', 'HOST_KEY_MISMATCH', 'HOST_KEY_NOT_PINNED', 'NO_CURRENT_RELEASE', 'HEALTH_GATE_FAILED', 'PULL_FAILED', 'SSH_FAILED'] as const).map(
    (code) => vpsError(new DeployError(code, 'x'), 'vps deploy').exitCode,
  );
  expect(codes).toEqual([ExitCode.timeout, 5, 5, ExitCode.notDeployed, 1, 1, 1]);
  expect(vpsError(new DeployError('LOCKED', 'x', { owner: 'o', ageSeconds: 3 }), 'vps down').exitCode).toBe(5);
  expect(vpsError(new DeployError('CONNECT_FAILED', 'could not open: All configured authentication methods failed'), 'vps status').exitCode).toBe(6);
  expect(vpsError(new DeployError('RELEASE_TAMPERED', 'x'), 'vps rollback').exitCode).toBe(5);
  // Nothing to roll back to: like nothing deployed (3), not a failure (1).
  expect(vpsError(new DeployError('NO_PREVIOUS_RELEASE', 'x'), 'vps rollback').exitCode).toBe(ExitCode.notDeployed);
  expect(vpsError(new DeployError('DISK_FULL', 'x'), 'vps deploy', 'dev').message).toContain('Then: npm run ops -- vps deploy --env dev');
  // No SSH banner within readyTimeout (a firewall that drops): the same hint as a refused connection.
  const silent = vpsError(new DeployError('CONNECT_FAILED', 'could not open an SSH session to d@h:2222: Timed out while waiting for handshake'), 'vps status', 'dev', { host: 'h', port: 2222 });
  expect([silent.exitCode, silent.message]).toEqual([1, expect.stringContaining('Nothing accepts SSH on h:2222 (no SSH server answered in time). Check vps.sshPort of dev (now 2222)')]);
  const detached = vpsError(new DeployError('GATE_DETACHED', 'x'), 'vps deploy', 'dev');
  expect([detached.exitCode, detached.message]).toEqual([1, expect.stringContaining('npm run ops -- vps status --env dev (shows the last gate\'s outcome)')]);
});

test('no secret value, seed or private key in any output of this file', () => {
  expect(allOutput.length).toBeGreaterThan(1000);
  const secrets = [SEED, ...Object.values(deriveSecrets(SEED, [...STACK_SECRETS, ...GATEWAY_SECRETS]))];
  const keyLines = sshd.clientKey.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
  expect(keyLines.length).toBeGreaterThan(0);
  for (const value of [...secrets, ...keyLines]) expect(allOutput).not.toContain(value);
});
