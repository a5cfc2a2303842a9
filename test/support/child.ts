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

/** Runs a repo entry point with the repo's tsx as a real child process: `tsx <script> <args>`. */
export function runTsx(script: string, args: readonly string[], options: ChildOptions = {}): Promise<ChildResult> {
  return runChild(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, script), ...args], options);
}

export function runChild(command: string, args: readonly string[], options: ChildOptions = {}): Promise<ChildResult> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
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
