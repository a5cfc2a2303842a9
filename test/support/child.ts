import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  /** Without npm's own warnings about the machine's npm config (not the program's output). */
  readonly stderr: string;
  readonly ms: number;
}

export interface ChildOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly stdin?: string;
  /** The child is killed and the promise rejected after this long (bounded, always). */
  readonly timeoutMs?: number;
}

/**
 * Settings for a child process that must reach nothing beyond 127.0.0.1: no instance metadata,
 * no credential or config files, one attempt per call. Pass AWS_ENDPOINT_URL (moto) with it;
 * without one, the endpoint is a closed loopback port, so a stray AWS call fails instead of
 * reaching AWS.
 */
export const ISOLATED_AWS_ENV = {
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_MAX_ATTEMPTS: '1',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
} as const;

/** The process environment without any AWS_ or OPS_ setting, for children that get only the given ones. */
export function envWithoutAws(): NodeJS.ProcessEnv {
  // Also without the operator's default environment (AIASSETS_ENV), which would answer for --env.
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('OPS_') && !k.startsWith('AIASSETS_')));
}

/** Runs a repo entry point with the repo's tsx as a real child process: `tsx <script> <args>`. */
export function runTsx(script: string, args: readonly string[], options: ChildOptions = {}): Promise<ChildResult> {
  return runChild(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, script), ...args], options);
}

/** A child in its own process group, as a terminal runs a foreground job: its output so far, Ctrl-C, its exit. */
export interface RunningChild {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | null>;
  /** What a terminal's Ctrl-C does: SIGINT to the foreground process group (tsx and the node it runs). */
  interrupt(): void;
  /** SIGKILL to the group when it is still running (for `finally`). */
  kill(): void;
}

/** Starts `tsx <script> <args>` (script relative to the repo, or absolute) and returns at once. */
export function startTsx(script: string, args: readonly string[], options: Pick<ChildOptions, 'cwd' | 'env'> = {}): RunningChild {
  const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.resolve(ROOT, script), ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('close', (code) => resolve(code));
    child.on('error', reject);
  });
  return {
    pid: child.pid as number,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    interrupt: () => process.kill(-(child.pid as number), 'SIGINT'),
    // The whole group even when tsx has exited: the node process it started may still run.
    kill: () => killGroup(child.pid),
  };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function runChild(command: string, args: readonly string[], options: ChildOptions = {}): Promise<ChildResult> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    // Its own process group: tsx runs the script in a second node process that a kill of the
    // launcher alone would leave running (e.g. still polling), so a timeout kills the group.
    const child = spawn(command, [...args], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      killGroup(child.pid);
      reject(new Error(`${path.basename(command)} ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: stderr.replace(/^npm warn .*\n/gm, ''), ms: Date.now() - started });
    });
    child.stdin.end(options.stdin ?? '');
  });
}
