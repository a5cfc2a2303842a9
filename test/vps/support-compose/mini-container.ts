import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../../support/synth';

/**
 * Runs a command of the compose stack with this machine's real programs in a
 * stand-in for its container: private mount, PID and (by default) network
 * namespaces, a root file system with the bundle's files at their container
 * paths (mini-root.sh). A network namespace of its own means the service's
 * fixed ports (80, 443, 5432, 6379) are free, and all traffic stays on that
 * namespace's loopback. Needs root (unshare, mount, chroot).
 */
export interface ContainerOptions {
  /** [host path, container path] */
  binds?: Array<[string, string]>;
  user?: string;
  /** Names resolving to 127.0.0.1 inside (compose's service names, for a shared network). */
  hosts?: string[];
  /** [file under /etc, line to append] */
  etcLines?: Array<[string, string]>;
  /** [container path, owner] of empty folders to create */
  dirs?: Array<[string, string]>;
  /** The container's whole environment besides PATH (secrets go here, never on a command line). */
  env?: Record<string, string>;
  /** Join this container's network namespace instead of getting one of its own. */
  networkOf?: MiniContainer;
  stopSignal?: 'TERM' | 'INT' | 'QUIT';
}

const MINI_ROOT = path.join(__dirname, 'mini-root.sh');
const PATH_INSIDE = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunResult {
  status: number | null;
  output: string;
}

export class MiniContainer {
  private out = '';
  private helpers: ChildProcess[] = [];
  readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) =>
      child.on('close', (code) => {
        child.stdin?.destroy();
        resolve(code);
      }),
    );
  }

  static start(command: string[], options: ContainerOptions = {}): MiniContainer {
    if (process.getuid?.() !== 0) throw new Error('the real-tool tests need root (unshare, mount and chroot build each stand-in container)');
    const args = ['--root', tempDir('root-')];
    for (const [src, dst] of options.binds ?? []) args.push('--bind', src, dst);
    for (const host of options.hosts ?? []) args.push('--host', host);
    for (const [file, line] of options.etcLines ?? []) args.push('--etc-line', file, line);
    for (const [dir, owner] of options.dirs ?? []) args.push('--mkdir', dir, owner);
    if (options.user) args.push('--user', options.user);
    if (options.stopSignal) args.push('--stop-signal', options.stopSignal);
    const own = options.networkOf === undefined;
    if (own) args.push('--lo');
    const unshare = ['unshare', '--mount', '--pid', '--fork', '--kill-child', ...(own ? ['--net'] : []), 'bash', MINI_ROOT, ...args, '--', ...command];
    // setpriv --pdeathsig: should the test process die, the namespace dies with it.
    const argv = ['setpriv', '--pdeathsig', 'SIGKILL', ...(own ? unshare : ['nsenter', `--target=${options.networkOf?.pid()}`, '--net', '--', ...unshare])];
    const child = spawn(argv[0], argv.slice(1), { env: { PATH: PATH_INSIDE, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    return new MiniContainer(child);
  }

  /** Runs a command to its end (or kills it after timeoutMs). */
  static async run(command: string[], options: ContainerOptions = {}, timeoutMs = 30_000): Promise<RunResult> {
    const container = MiniContainer.start(command, options);
    const timer = setTimeout(() => container.kill(), timeoutMs);
    const status = await container.exited;
    clearTimeout(timer);
    return { status, output: container.output };
  }

  get output(): string {
    return this.out;
  }

  /** The host PID of the namespace's first process (mini-root.sh). */
  pid(): number {
    const children = fs.readFileSync(`/proc/${this.child.pid}/task/${this.child.pid}/children`, 'utf8').trim();
    if (children === '') throw new Error(`the container has not started (output: ${this.out})`);
    return Number(children.split(' ')[0]);
  }

  /** Runs a host program inside this container's network namespace (a client on its loopback). */
  exec(command: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile('nsenter', [`--target=${this.pid()}`, '--net', '--', ...command], { env: { PATH: PATH_INSIDE, ...env }, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
        const status = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ status, output: `${stdout}${stderr}` });
      });
    });
  }

  /** Starts a host program in this container's network namespace until the container stops (a stand-in peer). */
  background(command: string[]): void {
    const helper = spawn('setpriv', ['--pdeathsig', 'SIGKILL', 'nsenter', `--target=${this.pid()}`, '--net', '--', ...command], { env: { PATH: PATH_INSIDE }, stdio: ['ignore', 'ignore', 'pipe'] });
    helper.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.helpers.push(helper);
  }

  /** Polls check until it returns true; throws with the container's output after timeoutMs. */
  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`the container exited before ${what}:\n${this.out}`);
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** compose stop: the stop signal, then SIGKILL for the whole namespace after timeoutMs. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    for (const helper of this.helpers) helper.kill('SIGKILL');
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  kill(): void {
    for (const helper of this.helpers) if (helper.exitCode === null && helper.signalCode === null) helper.kill('SIGKILL');
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
