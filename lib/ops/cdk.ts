import * as path from 'node:path';
import type { OpsDeps, Reporter } from './context';

/** The project root, where cdk.json is: `cdk` must run there. */
const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** A `cdk destroy` of many stacks can take a long time (bucket emptying, fleet termination), but not forever. */
const CDK_TIMEOUT_MS = 90 * 60_000;

/** `npx cdk`, or the executable named by OPS_CDK_BIN (tests put a recording stand-in there). */
export function cdkCommand(env: NodeJS.ProcessEnv): string[] {
  const bin = env.OPS_CDK_BIN?.trim();
  return bin ? [bin] : ['npx', 'cdk'];
}

export interface CdkRun {
  readonly command: string[];
  readonly exitCode: number | null;
}

/**
 * Runs `cdk destroy <stacks> --force -c env=<env>` in the project, streaming its output
 * as progress. Credentials reach it through the environment only, never the command line.
 */
export async function cdkDestroy(stacks: readonly string[], envName: string, deps: Pick<OpsDeps, 'env'>, reporter: Reporter): Promise<CdkRun> {
  const command = [...cdkCommand(deps.env), 'destroy', ...stacks, '--force', '-c', `env=${envName}`];
  reporter.line(`Running: ${command.join(' ')}`);
  // Loaded on use: only teardown runs processes, and zx looks for bash when it loads.
  const { $ } = await import('zx');
  const child = $({
    cwd: PROJECT_ROOT,
    env: deps.env,
    quiet: true,
    nothrow: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: CDK_TIMEOUT_MS,
  })`${command}`;
  const forward = lineForwarder((line) => reporter.line(`  | ${line}`));
  child.stdout.on('data', forward.push);
  child.stderr.on('data', forward.push);
  const output = await child;
  forward.flush();
  return { command, exitCode: output.exitCode };
}

/** Turns chunks into whole lines (a chunk may end mid-line). */
function lineForwarder(emit: (line: string) => void): { push: (chunk: Buffer | string) => void; flush: () => void } {
  let pending = '';
  return {
    push: (chunk) => {
      pending += String(chunk);
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    },
    flush: () => {
      if (pending) emit(pending);
      pending = '';
    },
  };
}
