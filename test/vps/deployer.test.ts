/**
 * The VPS deployer against a real OpenSSH server on 127.0.0.1 (started per test
 * file) and a docker stub that records its calls. Each test uses its own
 * environment name, so its releases, links and compose project are its own.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DeployError,
  deploy,
  logs,
  rollback,
  status,
  teardown,
  type Bundle,
  type DeployTarget,
  type GateFailure,
  type LockInfo,
  type RollbackOptions,
  type SshConnection,
} from '../../lib/vps/deployer';
import { layoutOf, renderEnvFile } from '../../lib/vps/deployer-input';
import { manifestOf } from '../../lib/vps/deployer-manifest';
import { breakLockScript } from '../../lib/vps/deployer-remote';
import { spawnSync } from 'node:child_process';
import { Redactor } from '../../lib/vps/deployer-redact';
import { DockerRecorder, entries, linkTarget, snapshot } from './support-ssh/remote-fs';
import { startSshd, type SshdFixture } from './support-ssh/sshd';

const APP = 'AiAssets';
const hex = (n: number) => randomBytes(n).toString('hex');
const SECRETS = {
  POSTGRES_PASSWORD: `pg-${hex(12)}`,
  N8N_ENCRYPTION_KEY: `n8n-${hex(16)}`,
  API_TOKEN: `tok-${hex(12)}`,
};
/** Every secret value any test handed to the deployer: none may show up in any output. */
const allSecretValues = new Set(Object.values(SECRETS));
const logLines: string[] = [];
const errorTexts: string[] = [];

let sshd: SshdFixture;
let docker: DockerRecorder;

beforeAll(async () => {
  sshd = await startSshd();
  docker = new DockerRecorder(sshd.stubDir);
}, 20_000);

afterAll(async () => {
  await sshd?.stop();
});

beforeEach(() => docker.reset());

function connection(overrides: Partial<SshConnection> = {}): SshConnection {
  return {
    host: sshd.host,
    port: sshd.port,
    username: sshd.username,
    hostKeySha256: sshd.fingerprint,
    privateKey: sshd.clientKey,
    readyTimeoutMs: 5000,
    ...overrides,
  };
}

function target(envName: string, keepReleases = 3): DeployTarget {
  return { appName: APP, envName, baseDir: sshd.baseDir, keepReleases };
}

function makeBundle(version: string, extra: Record<string, string> = {}): Bundle {
  const files: Record<string, string> = {
    'compose.yaml': `services:\n  web:\n    image: example/web:${version}\n    env_file: .env\n  db:\n    image: postgres:16\n`,
    'nginx/conf.d/site.conf': `# site config ${version}\n`,
    'scripts/init.sh': '#!/bin/sh\necho init\n',
    ...extra,
  };
  const hash = createHash('sha256').update(JSON.stringify(Object.entries(files).sort())).digest('hex');
  return { files, hash };
}

function options(overrides: Partial<RollbackOptions> = {}): RollbackOptions {
  return { composeTimeoutSeconds: 30, log: (line) => logLines.push(line), ...overrides };
}

async function failure(promise: Promise<unknown>): Promise<DeployError> {
  try {
    await promise;
  } catch (err) {
    const e = err as DeployError;
    errorTexts.push(`${e.message}\n${e.stack}\n${JSON.stringify(e.details ?? null)}`);
    return e;
  }
  throw new Error('expected the operation to fail, it succeeded');
}

const envDir = (env: string) => path.join(sshd.baseDir, APP, env);
const relDir = (env: string, release: string) => path.join(envDir(env), 'releases', release);
const current = (env: string) => linkTarget(path.join(envDir(env), 'current'));
const previous = (env: string) => linkTarget(path.join(envDir(env), 'previous'));
const project = (env: string) => `aiassets-${env}`.toLowerCase();
const UP = 'up -d --remove-orphans --wait --wait-timeout 30';

/** The sshd log written after `from`, once it contains `until` (bounded wait). */
async function sshdLogSince(from: number, until: RegExp, timeoutMs = 3000): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (!until.test(sshd.log().slice(from)) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return sshd.log().slice(from);
}

describe('deploy', () => {
  test('a first deploy uploads the release, writes .env 0600, links current, pulls and converges', async () => {
    const env = 'first';
    const b = makeBundle('v1');
    const result = await deploy(connection(), target(env), b, SECRETS, options());

    expect(result).toEqual({ action: 'deployed', release: b.hash, previous: null, pruned: [] });
    const dir = relDir(env, b.hash);
    for (const [name, content] of Object.entries(b.files)) expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe(content);
    expect(fs.statSync(path.join(dir, 'compose.yaml')).mode & 0o777).toBe(0o644);
    expect(fs.statSync(path.join(dir, 'scripts/init.sh')).mode & 0o777).toBe(0o755);
    const dotEnv = path.join(dir, '.env');
    expect(fs.statSync(dotEnv).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(dotEnv, 'utf8')).toBe(renderEnvFile(SECRETS));
    expect(fs.readFileSync(dotEnv, 'utf8')).toContain(`POSTGRES_PASSWORD='${SECRETS.POSTGRES_PASSWORD}'`);
    expect(fs.readlinkSync(path.join(envDir(env), 'current'))).toBe(`releases/${b.hash}`);
    expect(previous(env)).toBeNull();
    expect(entries(path.join(envDir(env), 'releases'))).toEqual([b.hash]); // no .incoming-* left
    expect(fs.readFileSync(path.join(dir, '.manifest'), 'utf8')).toBe(manifestOf(b));
    // Lock released; the gate step's outcome stays for whoever asks next.
    expect(entries(envDir(env))).toEqual(['.last-run', 'current', 'releases']);
    expect(fs.readFileSync(path.join(envDir(env), '.last-run'), 'utf8')).toContain(`outcome=serving\ncurrent=${b.hash}\n`);

    expect(docker.calls()).toEqual([
      { cwd: dir, args: `compose -p ${project(env)} pull` },
      { cwd: dir, args: `compose -p ${project(env)} ${UP}` },
    ]);
    expect(docker.projectState(project(env))).toBe(`healthy:${b.hash}`);
  });

  test('deploying the same release again is a no-op: no upload, pull, up or new release', async () => {
    const env = 'noop';
    const b = makeBundle('v1');
    await deploy(connection(), target(env), b, SECRETS, options());
    docker.reset();
    const before = snapshot(envDir(env));

    const result = await deploy(connection(), target(env), b, SECRETS, options());

    expect(result).toEqual({ action: 'unchanged', release: b.hash, previous: null, pruned: [] });
    expect(snapshot(envDir(env))).toEqual(before); // same files, modes and mtimes
    const calls = docker.calls().map((c) => c.args);
    expect(calls).toEqual([`compose -p ${project(env)} config --services`, `compose -p ${project(env)} ps -a --format json`]);
    expect(logLines.some((l) => l.includes('nothing to do'))).toBe(true);
  });

  test('a current release whose services are down is converged again', async () => {
    const env = 'heal';
    const b = makeBundle('v1');
    await deploy(connection(), target(env), b, SECRETS, options());
    fs.writeFileSync(path.join(sshd.stubDir, `state-${project(env)}`), 'down\n'); // containers gone
    docker.reset();

    const result = await deploy(connection(), target(env), b, SECRETS, options());

    expect(result.action).toBe('deployed');
    expect(entries(path.join(envDir(env), 'releases'))).toEqual([b.hash]);
    expect(docker.calls().map((c) => c.args)).toEqual(expect.arrayContaining([`compose -p ${project(env)} pull`, `compose -p ${project(env)} ${UP}`]));
    expect(docker.projectState(project(env))).toBe(`healthy:${b.hash}`);
  });

  test('changed secrets replace .env of the same release (still 0600) and converge it', async () => {
    const env = 'rotate';
    const b = makeBundle('v1');
    await deploy(connection(), target(env), b, SECRETS, options());
    const rotated = { ...SECRETS, API_TOKEN: `tok-${hex(12)}` };
    allSecretValues.add(rotated.API_TOKEN);
    docker.reset();

    const result = await deploy(connection(), target(env), b, rotated, options());

    expect(result.action).toBe('deployed');
    expect(entries(path.join(envDir(env), 'releases'))).toEqual([b.hash]);
    const dotEnv = path.join(relDir(env, b.hash), '.env');
    expect(fs.readFileSync(dotEnv, 'utf8')).toBe(renderEnvFile(rotated));
    expect(fs.statSync(dotEnv).mode & 0o777).toBe(0o600);
    expect(entries(relDir(env, b.hash)).filter((n) => n.startsWith('.env'))).toEqual(['.env']);
    expect(docker.calls().map((c) => c.args)).toContain(`compose -p ${project(env)} ${UP}`);
  });

  test('a changed file makes a new release and moves current; previous points at the old one', async () => {
    const env = 'change';
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options());
    docker.reset();

    const result = await deploy(connection(), target(env), v2, SECRETS, options());

    expect(v2.hash).not.toBe(v1.hash);
    expect(result).toEqual({ action: 'deployed', release: v2.hash, previous: v1.hash, pruned: [] });
    expect(current(env)).toBe(v2.hash);
    expect(previous(env)).toBe(v1.hash);
    expect(entries(path.join(envDir(env), 'releases'))).toEqual([v1.hash, v2.hash].sort());
    expect(fs.readFileSync(path.join(relDir(env, v2.hash), 'compose.yaml'), 'utf8')).toContain('example/web:v2');
    expect(docker.calls()).toEqual([
      { cwd: relDir(env, v2.hash), args: `compose -p ${project(env)} pull` },
      { cwd: relDir(env, v2.hash), args: `compose -p ${project(env)} ${UP}` },
    ]);
  });

  test('keeps the newest N releases and never deletes current or previous', async () => {
    const env = 'prune';
    const bundles = ['v1', 'v2', 'v3', 'v4'].map((v) => makeBundle(v));
    const pruned: string[] = [];
    for (const b of bundles) pruned.push(...(await deploy(connection(), target(env, 2), b, SECRETS, options())).pruned);

    expect(entries(path.join(envDir(env), 'releases'))).toEqual([bundles[2].hash, bundles[3].hash].sort());
    expect(pruned).toEqual([bundles[0].hash, bundles[1].hash]);

    // keepReleases 1 would leave only the newest, but previous is protected.
    const v5 = makeBundle('v5');
    const result = await deploy(connection(), target(env, 1), v5, SECRETS, options());
    expect(result.pruned).toEqual([bundles[2].hash]);
    expect(entries(path.join(envDir(env), 'releases'))).toEqual([bundles[3].hash, v5.hash].sort());
    expect([current(env), previous(env)]).toEqual([v5.hash, bundles[3].hash]);
  });

  test('a failed health gate puts the previous release back and running, and reports the failing service log', async () => {
    const env = 'gate';
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options());
    docker.reset();
    docker.control('fail-up', v2.hash);

    const err = await failure(deploy(connection(), target(env), v2, SECRETS, options()));

    expect(err.code).toBe('HEALTH_GATE_FAILED');
    expect(err.message).toContain(`release ${v2.hash} failed the health gate`);
    expect(err.message).toContain('web: running (unhealthy)');
    expect(err.message).toContain(`STUB-LOG ${v2.hash}: FATAL listen failed`);
    expect(err.message).toContain(`back on release ${v1.hash}, which is up and healthy again`);
    // The service printed the db password; the error shows it redacted.
    expect(err.message).toContain('(db password ***)');
    expect(err.message).not.toContain(SECRETS.POSTGRES_PASSWORD);
    const details = err.details as GateFailure;
    expect(details).toMatchObject({ failedRelease: v2.hash, currentRelease: v1.hash, restoredHealthy: true });
    expect(details.logs.web.join('\n')).toContain('(db password ***)');

    expect(current(env)).toBe(v1.hash);
    expect(previous(env)).toBeNull(); // links exactly as before the failed deploy
    expect(fs.existsSync(relDir(env, v2.hash))).toBe(true); // kept for inspection
    expect(fs.existsSync(path.join(envDir(env), '.deploy-lock'))).toBe(false);
    const calls = docker.calls();
    expect(calls.map((c) => `${path.basename(c.cwd)} ${c.args.replace(`compose -p ${project(env)} `, '')}`)).toEqual([
      `${v2.hash} pull`,
      `${v2.hash} ${UP}`,
      `${v2.hash} config --services`,
      `${v2.hash} ps -a --format json`,
      `${v2.hash} logs --no-color --tail 50`,
      `${v1.hash} ${UP}`,
    ]);
    expect(docker.projectState(project(env))).toBe(`healthy:${v1.hash}`);
  });

  test('a failed first deploy stops the release and leaves no current link', async () => {
    const env = 'gatefirst';
    const v1 = makeBundle('v1');
    docker.control('fail-up', '*');

    const err = await failure(deploy(connection(), target(env), v1, SECRETS, options()));

    expect(err.code).toBe('HEALTH_GATE_FAILED');
    expect(err.message).toContain('no previous release to return to');
    expect(err.message).toContain(`STUB-LOG ${v1.hash}`);
    expect((err.details as GateFailure).currentRelease).toBeNull();
    expect(current(env)).toBeNull();
    expect(fs.existsSync(path.join(envDir(env), 'current'))).toBe(false);
    const last = docker.calls().pop();
    expect(last).toEqual({ cwd: relDir(env, v1.hash), args: `compose -p ${project(env)} down --remove-orphans` });
    expect(docker.projectState(project(env))).toBe('down');
  });

  test('a failed pull switches nothing and starts nothing', async () => {
    const env = 'pull';
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options());
    docker.reset();
    docker.control('fail-pull', v2.hash);

    const err = await failure(deploy(connection(), target(env), v2, SECRETS, options()));

    expect(err.code).toBe('PULL_FAILED');
    expect(err.message).toContain('pull access denied');
    expect(current(env)).toBe(v1.hash);
    expect(docker.calls().map((c) => c.args)).toEqual([`compose -p ${project(env)} pull`]);
  });
});

describe('host key pinning', () => {
  test('a wrong host key is refused before authentication: nothing written, nothing run', async () => {
    const env = 'pin';
    const logStart = sshd.log().length;
    await deploy(connection(), target(env), makeBundle('v1'), SECRETS, options());
    // Control: a good session shows up in the sshd log with these markers.
    const good = await sshdLogSince(logStart, /Starting session: subsystem 'sftp'/);
    expect(good).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1/);
    expect(good).toMatch(/Starting session: command/);
    expect(good).toMatch(/Starting session: subsystem 'sftp'/);
    docker.reset();
    const before = snapshot(sshd.baseDir);
    const from = sshd.log().length;

    const err = await failure(deploy(connection({ hostKeySha256: sshd.otherFingerprint }), target(env), makeBundle('v2'), SECRETS, options()));

    expect(err.code).toBe('HOST_KEY_MISMATCH');
    expect(err.message).toContain(`expected ${sshd.otherFingerprint}`);
    expect(err.message).toContain(`received ${sshd.fingerprint}`);
    expect(snapshot(sshd.baseDir)).toEqual(before);
    expect(docker.calls()).toEqual([]);
    const attemptLog = await sshdLogSince(from, /Connection (closed|reset) by|Disconnected from|preauth/);
    expect(attemptLog).toContain('Connection from 127.0.0.1');
    expect(attemptLog).not.toMatch(/Accepted publickey|Postponed publickey|Starting session/);
  });

  test('without a pinned fingerprint every operation refuses before connecting and says how to get one', async () => {
    const from = sshd.log().length;
    const hint = `ssh-keyscan -p ${sshd.port} 127.0.0.1 | ssh-keygen -lf -`;

    const errs = [
      await failure(deploy(connection({ hostKeySha256: undefined }), target('nopin'), makeBundle('v1'), SECRETS, options())),
      await failure(status(connection({ hostKeySha256: '' }), target('nopin'))),
      await failure(teardown(connection({ hostKeySha256: undefined }), target('nopin'), { removeVolumes: true })),
    ];

    for (const err of errs) {
      expect(err.code).toBe('HOST_KEY_NOT_PINNED');
      expect(err.message).toContain(hint);
    }
    const malformed = await failure(status(connection({ hostKeySha256: 'MD5:ab:cd' }), target('nopin')));
    expect(malformed.code).toBe('INVALID_INPUT');
    await new Promise((r) => setTimeout(r, 200)); // a connection, had one been made, would be logged by now
    expect(sshd.log().slice(from)).not.toContain('Connection from');
    expect(fs.existsSync(envDir('nopin'))).toBe(false);
    expect(docker.calls()).toEqual([]);
  });
});

describe('deploy lock', () => {
  test('a held lock stops the deploy, naming its owner and age; breakStaleLock removes it', async () => {
    const env = 'lock';
    const lockDir = path.join(envDir(env), '.deploy-lock');
    fs.mkdirSync(lockDir, { recursive: true });
    fs.writeFileSync(path.join(lockDir, 'owner'), 'host=ci-runner-7 pid=4242 user=deploy at=2024-05-01T10:00:00.000Z token=feedface\n');
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    fs.utimesSync(lockDir, twoMinutesAgo, twoMinutesAgo);
    const b = makeBundle('v1');

    const err = await failure(deploy(connection(), target(env), b, SECRETS, options()));

    expect(err.code).toBe('LOCKED');
    expect(err.message).toContain('owner: host=ci-runner-7 pid=4242 user=deploy');
    expect(err.message).toMatch(/age \d+s/);
    expect((err.details as LockInfo).ageSeconds).toBeGreaterThanOrEqual(119);
    expect(fs.readFileSync(path.join(lockDir, 'owner'), 'utf8')).toContain('ci-runner-7'); // untouched
    expect(entries(path.join(envDir(env), 'releases'))).toEqual([]);
    expect(docker.calls()).toEqual([]);

    const lines: string[] = [];
    const result = await deploy(connection(), target(env), b, SECRETS, options({ breakStaleLock: true, log: (l) => lines.push(l) }));

    expect(result.action).toBe('deployed');
    expect(lines.some((l) => /breaking stale lock .*host=ci-runner-7/.test(l))).toBe(true);
    expect(fs.existsSync(lockDir)).toBe(false);
    logLines.push(...lines);
  });

  /** A lock left by a holder with `lease` seconds, taken `ageSeconds` ago. */
  function leftLock(env: string, lease: number, ageSeconds: number): string {
    const lockDir = path.join(envDir(env), '.deploy-lock');
    fs.mkdirSync(lockDir, { recursive: true });
    fs.writeFileSync(path.join(lockDir, 'owner'), `host=lambda-1 pid=8 user=sbx at=2026-11-23T10:00:00.000Z lease=${lease} token=0badc0de\n`);
    const then = new Date(Date.now() - ageSeconds * 1000);
    fs.utimesSync(lockDir, then, then);
    return lockDir;
  }

  test('a lock within its holder\'s lease stops the deploy; one past it is broken by the next deploy', async () => {
    const live = 'lease-live';
    leftLock(live, 3600, 120);
    const err = await failure(deploy(connection(), target(live), makeBundle('v1'), SECRETS, options()));
    expect(err.code).toBe('LOCKED');
    expect(err.details).toMatchObject({ leaseSeconds: 3600, ageSeconds: expect.any(Number) });

    const dead = 'lease-dead';
    const lockDir = leftLock(dead, 60, 120);
    const lines: string[] = [];
    const result = await deploy(connection(), target(dead), makeBundle('v1'), SECRETS, options({ log: (l) => lines.push(l) }));
    expect(result.action).toBe('deployed');
    expect(lines.some((l) => /breaking stale lock .*host=lambda-1.*: its lease of 60s ran out/.test(l))).toBe(true);
    expect(fs.existsSync(lockDir)).toBe(false);
  });

  test('breaking removes only the lock that was judged stale: one retaken meanwhile stays', () => {
    const base = fs.mkdtempSync(path.join(sshd.baseDir, '..', 'break-'));
    const L = layoutOf({ appName: 'AiAssets', envName: 'brk', baseDir: base, keepReleases: 3 });
    const lockDir = L.lockDir;
    const run = (script: string) => spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    fs.mkdirSync(lockDir, { recursive: true });
    fs.writeFileSync(path.join(lockDir, 'owner'), 'host=B pid=2 lease=900 token=bbbb\n');
    // A judged A's lock stale, but B has broken it and taken a new one since: B's lock stays.
    expect(run(breakLockScript(L, 'host=A pid=1 lease=60 token=aaaa', 'cafe0001')).status).toBe(0);
    expect(fs.readFileSync(path.join(lockDir, 'owner'), 'utf8')).toContain('host=B');
    // The judged lock itself goes, and nothing is left beside it.
    expect(run(breakLockScript(L, 'host=B pid=2 lease=900 token=bbbb', 'cafe0002')).status).toBe(0);
    expect(fs.existsSync(lockDir)).toBe(false);
    expect(fs.readdirSync(path.dirname(lockDir)).filter((n) => n.startsWith('.deploy-lock'))).toEqual([]);
  });

  test('a lease that ends within 90 s is waited out, then the lock is broken', async () => {
    const env = 'lease-ending';
    leftLock(env, 123, 120);
    const lines: string[] = [];
    const result = await deploy(connection(), target(env), makeBundle('v1'), SECRETS, options({ log: (l) => lines.push(l) }));
    expect(result.action).toBe('deployed');
    expect(lines.some((l) => /its lease ends in \ds, waiting/.test(l))).toBe(true);
    expect(lines.some((l) => /its lease of 123s ran out/.test(l))).toBe(true);
  });

  test('of two concurrent deploys exactly one runs; the other fails naming the holder', async () => {
    const env = 'race';
    docker.control('pull-delay', '1'); // the winner holds the lock for at least a second
    const bundles = [makeBundle('v1'), makeBundle('v2')];

    const settled = await Promise.allSettled(bundles.map((b) => deploy(connection(), target(env), b, SECRETS, options())));

    const won = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [bundles[i].hash] : []));
    const lost = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as DeployError] : []));
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    errorTexts.push(lost[0].message);
    expect(lost[0].code).toBe('LOCKED');
    expect(lost[0].message).toContain(`pid=${process.pid}`);
    // The holder's lease: its pull and gate bounds plus a margin.
    expect(lost[0].details).toMatchObject({ leaseSeconds: expect.any(Number) });
    expect(current(env)).toBe(won[0]);
    expect(docker.calls().filter((c) => c.args.endsWith(' pull'))).toHaveLength(1);
    expect(fs.existsSync(path.join(envDir(env), '.deploy-lock'))).toBe(false);
  });
});

describe('interrupted upload', () => {
  test('a failing SFTP write leaves current and the releases untouched and removes its temp dir', async () => {
    const env = 'upload';
    const v1 = makeBundle('v1');
    await deploy(connection(), target(env), v1, SECRETS, options());
    docker.reset();
    const before = snapshot(envDir(env), { dirMtimes: false }); // the temp dir came and went
    // A file name longer than the 255-byte limit: sftp-server cannot create it, mid-upload.
    const broken = makeBundle('v2', { [`${'x'.repeat(300)}.conf`]: 'never written' });

    const err = await failure(deploy(connection(), target(env), broken, SECRETS, options()));

    expect(err.code).toBe('UPLOAD_FAILED');
    expect(err.message).toContain('x'.repeat(20));
    expect(snapshot(envDir(env), { dirMtimes: false })).toEqual(before); // no new release, no .incoming-*, same current
    expect(current(env)).toBe(v1.hash);
    expect(docker.calls()).toEqual([]);
  });

  test('leftovers of a killed upload never become a release and are removed by the next deploy', async () => {
    const env = 'leftover';
    const releases = path.join(envDir(env), 'releases');
    const v1 = makeBundle('v1');
    await deploy(connection(), target(env), v1, SECRETS, options());
    const leftover = path.join(releases, `.incoming-${makeBundle('v2').hash}-0badf00d`);
    fs.mkdirSync(leftover);
    fs.writeFileSync(path.join(leftover, 'compose.yaml'), 'services: {'); // half a file
    // ...and of a killed prune and a killed teardown: renamed away first, so never taken for a release.
    const trash = [path.join(releases, `.trash-${makeBundle('v0').hash}-0badf00d`), path.join(envDir(env), '.trash-releases')];
    for (const t of trash) fs.mkdirSync(path.join(t, 'half'), { recursive: true });
    const lines: string[] = [];

    const status1 = await status(connection(), target(env));
    expect(status1.releases).toEqual([v1.hash]); // never listed as a release
    await deploy(connection(), target(env), makeBundle('v3'), SECRETS, options({ log: (l) => lines.push(l) }));

    expect(entries(releases).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(entries(envDir(env)).filter((n) => n.startsWith('.trash'))).toEqual([]);
    expect(lines.some((l) => l.includes(`removed releases/${path.basename(leftover)}`))).toBe(true);
    expect(lines.some((l) => l.includes(`removed releases/${path.basename(trash[0])}`))).toBe(true);
    logLines.push(...lines);
  });
});

describe('teardown', () => {
  test('down keeps volumes unless removeVolumes, and the releases are removed', async () => {
    const env = 'down';
    const v1 = makeBundle('v1');
    await deploy(connection(), target(env), v1, SECRETS, options());
    docker.reset();

    const kept = await teardown(connection(), target(env), { removeVolumes: false, log: (l) => logLines.push(l) });

    expect(kept).toEqual({ action: 'torn-down', removedReleases: [v1.hash], volumesRemoved: false });
    expect(docker.calls()).toEqual([{ cwd: relDir(env, v1.hash), args: `compose -p ${project(env)} down --remove-orphans` }]);
    expect(fs.existsSync(envDir(env))).toBe(false);
    expect(docker.projectState(project(env))).toBe('down');

    await deploy(connection(), target(env), v1, SECRETS, options());
    docker.reset();
    const wiped = await teardown(connection(), target(env), { removeVolumes: true, log: (l) => logLines.push(l) });

    expect(wiped.volumesRemoved).toBe(true);
    expect(docker.calls()).toEqual([{ cwd: relDir(env, v1.hash), args: `compose -p ${project(env)} down --remove-orphans --volumes` }]);
    expect(fs.existsSync(envDir(env))).toBe(false);
  });
});

describe('status, rollback and logs', () => {
  const env = 'ops';
  const v1 = makeBundle('v1');
  const v2 = makeBundle('v2');

  test('status reports current, previous, releases and service states', async () => {
    await deploy(connection(), target(env), v1, SECRETS, options());
    await deploy(connection(), target(env), v2, SECRETS, options());

    const s = await status(connection(), target(env));

    expect(s).toMatchObject({ current: v2.hash, previous: v1.hash, releases: [v2.hash, v1.hash], lock: null });
    expect(s.services.map((x) => [x.service, x.state, x.health])).toEqual([
      ['web', 'running', 'healthy'],
      ['db', 'running', 'healthy'],
    ]);
  });

  test('rollback switches to the previous release and converges it (no pull)', async () => {
    docker.reset();

    const result = await rollback(connection(), target(env), options({ secrets: SECRETS }));

    expect(result).toEqual({ action: 'rolled-back', release: v1.hash, previous: v2.hash });
    expect([current(env), previous(env)]).toEqual([v1.hash, v2.hash]);
    expect(docker.calls()).toEqual([{ cwd: relDir(env, v1.hash), args: `compose -p ${project(env)} ${UP}` }]);
    expect(docker.projectState(project(env))).toBe(`healthy:${v1.hash}`);
  });

  test('a rollback whose target fails the gate returns to where it was', async () => {
    docker.reset();
    docker.control('fail-up', v2.hash);

    const err = await failure(rollback(connection(), target(env), options({ secrets: SECRETS })));

    expect(err.code).toBe('HEALTH_GATE_FAILED');
    expect(err.message).toContain(`STUB-LOG ${v2.hash}`);
    expect([current(env), previous(env)]).toEqual([v1.hash, v2.hash]);
    expect(docker.calls().pop()).toEqual({ cwd: relDir(env, v1.hash), args: `compose -p ${project(env)} ${UP}` });
  });

  test('logs returns the last lines of a service, with secrets redacted', async () => {
    docker.reset();

    const out = await logs(connection(), target(env), { service: 'web', lines: 20, secrets: SECRETS });

    expect(out.release).toBe(v1.hash);
    expect(out.lines).toEqual([
      `web-1  | STUB-LOG ${v1.hash}: FATAL listen failed (db password ***)`,
      `web-1  | STUB-LOG ${v1.hash}: exiting`,
    ]);
    expect(docker.calls()).toEqual([{ cwd: relDir(env, v1.hash), args: `compose -p ${project(env)} logs --no-color --tail 20 web` }]);
  });

  test('rollback without a previous release is refused and changes nothing', async () => {
    const lone = 'lone';
    const b = makeBundle('v1');
    await deploy(connection(), target(lone), b, SECRETS, options());
    docker.reset();

    const err = await failure(rollback(connection(), target(lone), options()));

    expect(err.code).toBe('NO_PREVIOUS_RELEASE');
    expect(current(lone)).toBe(b.hash);
    expect(docker.calls()).toEqual([]);
  });
});

describe('secrets', () => {
  test('.env quoting keeps values literal and refuses what it cannot quote, naming only the key', () => {
    expect(renderEnvFile({ B: 'x$y', A: `it's` })).toBe(`A="it's"\nB='x$y'\n`);
    expect(() => renderEnvFile({ BAD: `a'b"c-hush` })).toThrow(/BAD/);
    expect(() => renderEnvFile({ BAD: `a'b"c-hush` })).not.toThrow(/hush/);
    expect(() => renderEnvFile({ NL: 'line1\nline2' })).toThrow(/NL contains a newline/);
    expect(new Redactor(['abc', 'abcdef']).apply('x abcdef y abc')).toBe('x *** y ***');
  });

  test('no secret value appears in any log line, error, docker argv or the sshd log', () => {
    docker.reset();
    const outputs = {
      'log lines': logLines.join('\n'),
      errors: errorTexts.join('\n'),
      'docker calls': docker.history,
      'sshd log': sshd.log(),
    };
    // The scan only means something if there is output to scan and redaction happened.
    expect(logLines.length).toBeGreaterThan(50);
    expect(errorTexts.length).toBeGreaterThan(8);
    expect(outputs.errors).toContain('***');
    expect(outputs['docker calls']).toContain(' up -d ');
    expect(outputs['sshd log']).toContain('Accepted publickey');
    for (const [where, text] of Object.entries(outputs)) {
      for (const secret of allSecretValues) {
        if (text.includes(secret)) throw new Error(`a secret value appears in the ${where}`);
      }
    }
  });
});
