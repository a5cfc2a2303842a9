/**
 * A real OpenSSH server on 127.0.0.1 for the deployer tests: throwaway host and
 * client keys generated at run time, the current user as login, and the docker
 * stub first on the session PATH (set in sshd_config, so the production code
 * has no test hook).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../support/moto';

export interface SshdFixture {
  host: string;
  port: number;
  username: string;
  /** Private key the server accepts (OpenSSH format). */
  clientKey: string;
  /** `SHA256:...` of the server's host key, as ssh-keygen -lf prints it. */
  fingerprint: string;
  /** `SHA256:...` of another, unrelated key (for the mismatch test). */
  otherFingerprint: string;
  /** Temp dir holding everything; removed by stop(). */
  dir: string;
  /** Where the docker stub keeps calls.log, its state and control files. */
  stubDir: string;
  /** The deployer's baseDir for the tests. */
  baseDir: string;
  /** `SHA256:...` of the server's RSA host key (only with `rsaHostKey`). */
  rsaFingerprint?: string;
  /** Pid of the listening sshd. */
  pid: number;
  /** Everything sshd logged so far. */
  log(): string;
  /**
   * Cuts every open connection for real: SIGKILL to each per-connection sshd process (the
   * children of the listener, and theirs), so the kernel closes the sockets. A process that
   * left the session with setsid is reparented and untouched. Returns the pids killed.
   */
  cutSessions(): number[];
  /** SIGSTOP / SIGCONT the listener: new connections get no banner (an unreachable VPS). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** The `vps` config fields that point an environment at this server (address, user, pinned host key). */
export function sshdVpsFields(sshd: SshdFixture): { host: string; sshPort: number; deployUser: string; hostKeySha256: string } {
  return { host: sshd.host, sshPort: sshd.port, deployUser: sshd.username, hostKeySha256: sshd.fingerprint };
}

export interface SshdOptions {
  /** Also serve an RSA host key (OpenSSH offers every key it has; ssh2 prefers ED25519). */
  rsaHostKey?: boolean;
}

const SSHD = '/usr/sbin/sshd';

function keygen(file: string, type = 'ed25519'): string {
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', 'deployer-test', '-f', file], { stdio: 'ignore' });
  return execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(/\s+/)[1];
}

/** Resolves once the server sends its SSH banner; false if it does not within the deadline. */
async function waitForBanner(port: number, child: ChildProcess, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end && child.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const done = (value: boolean) => {
        socket.destroy();
        resolve(value);
      };
      socket.setTimeout(500, () => done(false));
      socket.once('data', (d) => done(d.toString().startsWith('SSH-2.0')));
      socket.once('error', () => done(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Pids of every descendant of `pid` (from /proc, children first found breadth-first). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) for (const child of children.get(queue.shift()!) ?? []) out.push(child), queue.push(child);
  return out;
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployer-sshd-'));
  // sshd refuses to start without its privilege-separation directory.
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKeyFile = path.join(dir, 'client_key');
  const fingerprint = keygen(hostKey);
  keygen(clientKeyFile);
  const otherFingerprint = keygen(path.join(dir, 'other_key'));
  const rsaHostKey = path.join(dir, 'ssh_host_rsa_key');
  const rsaFingerprint = options.rsaHostKey ? keygen(rsaHostKey, 'rsa') : undefined;
  fs.copyFileSync(`${clientKeyFile}.pub`, path.join(dir, 'authorized_keys'));

  const binDir = path.join(dir, 'bin');
  const stubDir = path.join(dir, 'stub');
  const baseDir = path.join(dir, 'srv');
  for (const d of [binDir, stubDir, baseDir]) fs.mkdirSync(d);
  fs.copyFileSync(path.join(__dirname, 'docker-stub.sh'), path.join(binDir, 'docker'));
  fs.chmodSync(path.join(binDir, 'docker'), 0o755);
  fs.writeFileSync(path.join(stubDir, 'calls.log'), '');

  let sshdLog = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    fs.writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        ...(options.rsaHostKey ? [`HostKey ${rsaHostKey}`] : []),
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'Subsystem sftp internal-sftp',
        'LogLevel VERBOSE',
        // The stub shadows any docker on the machine. SHLVL=1 makes bash treat the
        // session shell as nested, so it skips the machine's ~/.bashrc (which costs
        // ~150 ms per command here and is not part of what is tested).
        `SetEnv PATH=${binDir}:/usr/local/bin:/usr/bin:/bin DOCKER_STUB_DIR=${stubDir} SHLVL=1`,
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => (sshdLog += d.toString()));
    if (await waitForBanner(port, child, 5000)) {
      const pid = child.pid!;
      const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGCONT');
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      };
      return {
        host: '127.0.0.1',
        port,
        username: os.userInfo().username,
        clientKey: fs.readFileSync(clientKeyFile, 'utf8'),
        fingerprint,
        otherFingerprint,
        rsaFingerprint,
        pid,
        cutSessions: () => {
          const pids = descendants(pid);
          for (const p of pids) {
            try {
              process.kill(p, 'SIGKILL');
            } catch {
              // gone already
            }
          }
          return pids;
        },
        pause: () => child.kill('SIGSTOP'),
        resume: () => child.kill('SIGCONT'),
        dir,
        stubDir,
        baseDir,
        log: () => sshdLog,
        stop,
      };
    }
    child.kill('SIGKILL'); // port taken meanwhile, or a config problem: retry on a new port
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(`sshd did not start:\n${sshdLog}`);
}
