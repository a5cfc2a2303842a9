/**
 * The deployer under real faults, against a real OpenSSH server on 127.0.0.1: connections are
 * cut by SIGKILLing the session's sshd processes, remote commands really hang (the docker stub
 * sleeps), the disk really fills (a small tmpfs mounted for the test), releases are tampered
 * with on disk. After each fault: the new release is gated and serving or the previous one is,
 * no lock is left that a later deploy cannot take, and the error says what happened and what
 * to run. Every test is bounded well under a minute and leaves no process or mount behind.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeployError, deploy, logs, rollback, status, type Bundle, type DeployTarget, type RollbackOptions, type SshConnection } from '../../lib/vps/deployer';
import { GATE_SCRIPT } from '../../lib/vps/deployer-gate';
import { openSession } from '../../lib/vps/ssh-session';
import { DockerRecorder, linkTarget } from './support-ssh/remote-fs';
import { startSshd, type SshdFixture } from './support-ssh/sshd';

const APP = 'AiAssets';
const SECRETS = { POSTGRES_PASSWORD: `pg-${randomBytes(12).toString('hex')}`, API_TOKEN: `tok-${randomBytes(12).toString('hex')}` };

let sshd: SshdFixture;
let docker: DockerRecorder;
const mounts: string[] = [];

beforeAll(async () => {
  sshd = await startSshd({ rsaHostKey: true });
  docker = new DockerRecorder(sshd.stubDir);
}, 20_000);

afterAll(async () => {
  sshd?.resume();
  for (const m of mounts) spawnQuiet('umount', ['-l', m]);
  await sshd?.stop();
});

beforeEach(() => docker.reset());

afterEach(async () => {
  sshd.resume();
  // No gate step, docker stub or sleep of this file may outlive its test.
  expect(await settled(() => strays().length === 0, 15_000)).toBe(true);
});

function spawnQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // best effort (teardown)
  }
}

/** Processes whose command line mentions this file's sshd dir, other than the listener. */
function strays(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (Number(pid) !== sshd.pid && (cmd.includes(sshd.dir) || environ.includes(`DOCKER_STUB_DIR=${sshd.stubDir}`))) out.push(`${pid} ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function settled(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

function connection(overrides: Partial<SshConnection> = {}): SshConnection {
  return { host: sshd.host, port: sshd.port, username: sshd.username, hostKeySha256: sshd.fingerprint, privateKey: sshd.clientKey, readyTimeoutMs: 5000, ...overrides };
}

function target(envName: string, baseDir = sshd.baseDir): DeployTarget {
  return { appName: APP, envName, baseDir, keepReleases: 3 };
}

function makeBundle(version: string, extra: Record<string, string> = {}): Bundle {
  const files: Record<string, string> = {
    'compose.yaml': `services:\n  web:\n    image: example/web:${version}\n    env_file: .env\n`,
    'nginx/site.conf': `# ${version}\n`,
    ...extra,
  };
  return { files, hash: createHash('sha256').update(JSON.stringify(Object.entries(files).sort())).digest('hex').slice(0, 16) };
}

function options(lines: string[], overrides: Partial<RollbackOptions> = {}): RollbackOptions {
  return { composeTimeoutSeconds: 5, upGraceSeconds: 5, log: (line) => lines.push(line), ...overrides };
}

async function failure(promise: Promise<unknown>): Promise<DeployError> {
  try {
    await promise;
  } catch (err) {
    return err as DeployError;
  }
  throw new Error('expected the operation to fail, it succeeded');
}

const envDir = (env: string, base = sshd.baseDir) => path.join(base, APP, env);
const current = (env: string, base?: string) => linkTarget(path.join(envDir(env, base), 'current'));
const lockDir = (env: string, base?: string) => path.join(envDir(env, base), '.deploy-lock');
const project = (env: string) => `aiassets-${env}`.toLowerCase();

/** A later deploy must be able to take the lock: none is left, nor a half-made one. */
function expectNoLock(env: string, base?: string): void {
  expect(fs.readdirSync(envDir(env, base)).filter((n) => n.startsWith('.deploy-lock'))).toEqual([]);
}

/** A tmpfs of `kib` KiB for one test, unmounted in afterAll at the latest. */
function tmpfs(kib: number): string {
  const dir = fs.mkdtempSync(path.join(sshd.dir, 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0755`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

function unmount(dir: string): void {
  execFileSync('umount', [dir]);
  mounts.splice(mounts.indexOf(dir), 1);
}

/** Fills the filesystem of `dir` up to `leaveKib` KiB free. */
function fill(dir: string, leaveKib: number): string {
  const filler = path.join(dir, 'filler');
  const { bavail, bsize } = fs.statfsSync(dir);
  const bytes = bavail * bsize - leaveKib * 1024;
  if (bytes > 0) fs.writeFileSync(filler, Buffer.alloc(bytes));
  return filler;
}

describe('connection cut mid-upload', () => {
  test('the deploy ends at once with a clear error, current keeps serving, the lock is released, the next deploy works', async () => {
    const env = 'cut-upload';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    // Big enough that the cut lands while files are still being written.
    const big = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`data/blob-${i}.txt`, randomBytes(192 * 1024).toString('base64')]));
    const v2 = makeBundle('v2', big);
    const releases = path.join(envDir(env), 'releases');
    let cut: number[] = [];
    const watcher = setInterval(() => {
      const incoming = fs.readdirSync(releases).find((n) => n.startsWith('.incoming-'));
      if (cut.length === 0 && incoming && fs.existsSync(path.join(releases, incoming, '.env'))) cut = sshd.cutSessions();
    }, 5);
    const started = Date.now();

    const err = await failure(deploy(connection(), target(env), v2, SECRETS, options(lines))).finally(() => clearInterval(watcher));

    expect(cut.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(err.code).toBe('SSH_FAILED');
    expect(err.message).toMatch(/SSH connection to .* lost: .* during the upload of release/);
    expect(err.message).toContain('nothing was switched, the current release keeps serving. Run the deploy again.');
    expect(current(env)).toBe(v1.hash);
    expectNoLock(env);
    expect(docker.projectState(project(env))).toBe(`healthy:${v1.hash}`);

    const again = await deploy(connection(), target(env), v2, SECRETS, options(lines));
    expect(again.action).toBe('deployed');
    expect(current(env)).toBe(v2.hash);
    expect(fs.readdirSync(releases).filter((n) => n.startsWith('.'))).toEqual([]); // the half upload is gone
    expectNoLock(env);
  });
});

describe('a remote command that hangs', () => {
  test('a 2 s timeout ends the command within seconds, on the client and on the server', async () => {
    const session = await openSession(connection());
    const pidFile = path.join(sshd.dir, 'hung.pid');
    const started = Date.now();
    try {
      const err = await failure(session.run(`echo $$ > ${pidFile}; exec sleep 300`, { timeoutMs: 2000 }));
      expect(err.code).toBe('TIMEOUT');
      expect(err.message).toContain('did not finish within 2000 ms');
    } finally {
      session.close();
    }
    expect(Date.now() - started).toBeLessThan(9000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(await settled(() => !alive(), 6000)).toBe(true); // killed on the VPS, not just abandoned
  });

  test('an `up` that never returns is killed on the VPS; the previous release is restored and the lock released', async () => {
    const env = 'hang-up';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    docker.control('hang-up', v2.hash);
    const started = Date.now();

    const err = await failure(deploy(connection(), target(env), v2, SECRETS, options(lines, { composeTimeoutSeconds: 2, upGraceSeconds: 2 })));

    expect(Date.now() - started).toBeLessThan(30_000);
    expect(err.code).toBe('HEALTH_GATE_FAILED');
    expect(err.message).toContain('docker compose up --wait exited 124'); // killed by `timeout` on the VPS
    expect(err.message).toContain(`current is back on release ${v1.hash}, which is up and healthy again`);
    expect(current(env)).toBe(v1.hash);
    expect(docker.projectState(project(env))).toBe(`healthy:${v1.hash}`);
    expectNoLock(env);
  });
});

describe('connection lost during the gate', () => {
  test('the client reconnects and reads the outcome: the new release is gated and serving', async () => {
    const env = 'cut-gate';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    docker.control('up-delay', '3');
    const log = (line: string) => {
      lines.push(line);
      if (line.startsWith('gate: current -> ')) sshd.cutSessions();
    };

    const result = await deploy(connection(), target(env), v2, SECRETS, options(lines, { log }));

    expect(result.action).toBe('deployed');
    expect(lines.some((l) => l.startsWith('lost the connection while the gate runs on the VPS'))).toBe(true);
    expect(lines).toContain('reconnected; still following the gate');
    expect(current(env)).toBe(v2.hash);
    expect(docker.projectState(project(env))).toBe(`healthy:${v2.hash}`);
    expectNoLock(env);
  });

  test('with the VPS unreachable the VPS still restores the previous release on its own and frees the lock; the error says what to run', async () => {
    const env = 'cut-gate-away';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    docker.control('up-delay', '2');
    docker.control('fail-up', v2.hash);
    const log = (line: string) => {
      lines.push(line);
      if (line.startsWith('gate: current -> ')) {
        sshd.pause(); // no new connection gets through
        sshd.cutSessions();
      }
    };

    const err = await failure(deploy(connection(), target(env), v2, SECRETS, options(lines, { log })));

    expect(err.code).toBe('GATE_DETACHED');
    expect(err.message).toContain(`while release ${v2.hash} was being gated there`);
    expect(err.message).toContain(`either serves ${v2.hash} (healthy) or returns to release ${v1.hash}`);
    expect(err.message).toContain('Read the outcome with the status command');
    // Meanwhile, on the VPS: the step finished by itself.
    expect(await settled(() => fs.existsSync(path.join(envDir(env), '.last-run')) && !fs.existsSync(lockDir(env)), 20_000)).toBe(true);
    expect(current(env)).toBe(v1.hash);
    expect(docker.projectState(project(env))).toBe(`healthy:${v1.hash}`);
    sshd.resume();

    const s = await status(connection(), target(env));
    expect(s.lastRun).toMatchObject({ outcome: 'restored', release: v2.hash, current: v1.hash });
    expect(s.lock).toBeNull();
    docker.reset();
    expect((await deploy(connection(), target(env), v1, SECRETS, options(lines))).action).toBe('unchanged');
  }, 60_000);
});

describe('the deploy lock', () => {
  test('a lock without an owner (left by a run on a full disk) older than the lease is broken', async () => {
    const env = 'ownerless';
    fs.mkdirSync(lockDir(env), { recursive: true });
    const old = new Date(Date.now() - 600_000);
    fs.utimesSync(lockDir(env), old, old);
    const lines: string[] = [];

    const result = await deploy(connection(), target(env), makeBundle('v1'), SECRETS, options(lines, { leaseSeconds: 300 }));

    expect(result.action).toBe('deployed');
    expect(lines.some((l) => /breaking stale lock .* held by unknown .*: it records no owner and is older than the lease of 300s/.test(l))).toBe(true);
    expectNoLock(env);
  });

  test('on a full disk the lock is never left without its owner; the error says the disk is full and what to run', async () => {
    const base = tmpfs(512);
    const env = 'full-lock';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    try {
      await deploy(connection(), target(env, base), v1, SECRETS, options(lines));
      const filler = fill(base, 0);

      const err = await failure(deploy(connection(), target(env, base), makeBundle('v2'), SECRETS, options(lines)));

      expect(err.code).toBe('DISK_FULL');
      expect(err.message).toContain(`taking the deploy lock failed on ${sshd.username}@127.0.0.1:${sshd.port}: the disk holding ${envDir(env, base)} is full (${base}: 100% used, 0 KiB free)`);
      expect(err.message).toContain('docker image prune -a');
      expect(err.message).toContain('then run the deploy again');
      expectNoLock(env, base);
      expect(current(env, base)).toBe(v1.hash);

      fs.rmSync(filler);
      expect((await deploy(connection(), target(env, base), makeBundle('v2'), SECRETS, options(lines))).action).toBe('deployed');
      expectNoLock(env, base);
    } finally {
      unmount(base);
    }
  });
});

describe('messages', () => {
  test('disk full during the upload says so, where, and what to run; current keeps serving', async () => {
    const base = tmpfs(1024);
    const env = 'full-upload';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    try {
      await deploy(connection(), target(env, base), v1, SECRETS, options(lines));
      const filler = fill(base, 64); // room for the lock, not for the release
      const v2 = makeBundle('v2', { 'data/blob.txt': randomBytes(256 * 1024).toString('base64') });

      const err = await failure(deploy(connection(), target(env, base), v2, SECRETS, options(lines)));

      expect(err.code).toBe('DISK_FULL');
      expect(err.message).toMatch(new RegExp(`upload of \\S+ failed on .*: the disk holding ${envDir(env, base)}/releases is full \\(${base}: \\d+% used, \\d+ KiB free\\)`));
      expect(err.message).toContain('docker image prune -a');
      expect(err.message).not.toContain('failed: Failure');
      expect(current(env, base)).toBe(v1.hash);
      expectNoLock(env, base);

      fs.rmSync(filler);
      expect((await deploy(connection(), target(env, base), v2, SECRETS, options(lines))).action).toBe('deployed');
    } finally {
      unmount(base);
    }
  });

  test('a pinned RSA fingerprint on a server that verifies with ED25519 is named as such, with the command to pin the right key', async () => {
    const err = await failure(status(connection({ hostKeySha256: sshd.rsaFingerprint }), target('rsa')));

    expect(err.code).toBe('HOST_KEY_MISMATCH');
    expect(err.message).toContain(`The pinned fingerprint is this server's RSA host key, but the connection verifies its ED25519 key`);
    expect(err.message).toContain(`ssh-keyscan -t ed25519 -p ${sshd.port} 127.0.0.1 | ssh-keygen -lf - (it should print ${sshd.fingerprint})`);
    expect(err.message).not.toContain('rebuilt');

    const stranger = await failure(status(connection({ hostKeySha256: sshd.otherFingerprint }), target('rsa')));
    expect(stranger.message).toContain('None of the server\'s host keys (ED25519, RSA) has the pinned fingerprint');
  });
});

describe('release contents', () => {
  test('a tampered current release is not "unchanged": it is uploaded afresh and gated', async () => {
    const env = 'tamper';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    const compose = path.join(envDir(env), 'releases', v1.hash, 'compose.yaml');
    fs.appendFileSync(compose, '  evil:\n    image: attacker/miner\n');
    fs.writeFileSync(path.join(envDir(env), 'releases', v1.hash, 'compose.override.yaml'), 'services: {}\n');

    const result = await deploy(connection(), target(env), v1, SECRETS, options(lines));

    expect(result.action).toBe('deployed');
    expect(lines.some((l) => l.includes(`release ${v1.hash} on the VPS does not match this bundle (`))).toBe(true);
    expect(fs.readFileSync(compose, 'utf8')).toBe(v1.files['compose.yaml']);
    expect(fs.existsSync(path.join(envDir(env), 'releases', v1.hash, 'compose.override.yaml'))).toBe(false);
  });

  test('a current release dir that is a symlink to elsewhere is not "unchanged": a real release replaces it', async () => {
    const env = 'symlinked';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    const v1Dir = path.join(envDir(env), 'releases', v1.hash);
    const elsewhere = path.join(sshd.dir, 'elsewhere');
    fs.cpSync(v1Dir, elsewhere, { recursive: true });
    fs.rmSync(v1Dir, { recursive: true });
    fs.symlinkSync(elsewhere, v1Dir);
    docker.reset();

    const result = await deploy(connection(), target(env), v1, SECRETS, options(lines));

    expect(result.action).toBe('deployed');
    expect(lines.some((l) => l.includes(`is not a directory (a symlink, or missing)`))).toBe(true);
    expect(fs.lstatSync(v1Dir).isDirectory()).toBe(true); // a real directory again
    expect(fs.existsSync(elsewhere)).toBe(true); // what the link pointed at is left alone
    expect(docker.calls().map((c) => c.cwd)).toContain(v1Dir);
    expectNoLock(env);
  });

  test('a previous release whose files were changed is refused by the gate step: nothing switched', async () => {
    const env = 'tamper-prev';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    await deploy(connection(), target(env), v2, SECRETS, options(lines));
    fs.appendFileSync(path.join(envDir(env), 'releases', v1.hash, 'nginx/site.conf'), 'proxy_pass http://attacker;\n');
    docker.reset();

    const err = await failure(rollback(connection(), target(env), options(lines)));

    expect(err.code).toBe('RELEASE_TAMPERED');
    expect(err.message).toContain(`release ${v1.hash} on`);
    expect(err.message).toContain('differ from its .manifest');
    expect(err.message).toContain(`Nothing was switched; current is still ${v2.hash}`);
    expect(current(env)).toBe(v2.hash);
    expect(docker.calls()).toEqual([]);
    expectNoLock(env);
  });
});

describe('redaction without the secrets', () => {
  test('logs and a failed rollback mask the values of the .env files on the VPS when the caller has none', async () => {
    const env = 'noseed';
    const lines: string[] = [];
    const v1 = makeBundle('v1');
    const v2 = makeBundle('v2');
    await deploy(connection(), target(env), v1, SECRETS, options(lines));
    await deploy(connection(), target(env), v2, SECRETS, options(lines));

    const out = await logs(connection(), target(env), { service: 'web' });
    expect(out.lines.join('\n')).toContain('(db password ***)');

    docker.control('fail-up', v1.hash);
    const rollbackLines: string[] = [];
    const err = await failure(rollback(connection(), target(env), options(rollbackLines)));
    expect(err.code).toBe('HEALTH_GATE_FAILED');
    expect(err.message).toContain('(db password ***)');
    for (const text of [out.lines.join('\n'), err.message, JSON.stringify(err.details), rollbackLines.join('\n')]) {
      expect(text).not.toContain(SECRETS.POSTGRES_PASSWORD);
    }
  });
});

test('the gate step is shellcheck-clean POSIX sh', () => {
  const file = path.join(sshd.dir, 'gate.sh');
  fs.writeFileSync(file, `#!/bin/sh\n${GATE_SCRIPT}\n`);
  expect(() => execFileSync('shellcheck', ['-s', 'sh', file], { encoding: 'utf8' })).not.toThrow();
});
