import * as readline from 'node:readline';
import type { EnvironmentConfig } from '../config/load';
import { createAwsClients, type AwsClientFactory } from './aws';
import { CLEAR_LINE, processInterruptHook, type InterruptHook, type StillRunning } from './interrupt';

/** Where a command reads confirmations from. */
export interface ConfirmInput {
  /** False when stdin is a pipe or a file: nobody is there to type a confirmation. */
  readonly isTTY: boolean;
  /** Shows `prompt` (on stderr) and resolves with the line typed, '' on end of input. */
  ask(prompt: string): Promise<string>;
}

/** Everything a command touches outside itself, so tests can run the CLI in-process. */
export interface OpsDeps {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly input: ConfirmInput;
  readonly clients: AwsClientFactory;
  /** Environment of child processes (cdk) and of OPS_* settings. */
  readonly env: NodeJS.ProcessEnv;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  /**
   * The `vps` and `gpu` commands load the environment through this (default: loadEnvironment), so tests can
   * point them at a local sshd or change a limit; the settings still come only from the config, never from options.
   */
  readonly loadConfig?: (envName: string) => EnvironmentConfig;
  /** True when stdout is a terminal: `gpu status --watch` then redraws in place. */
  readonly stdoutIsTTY?: boolean;
  /** The terminal's width when stdout is one that says: `cost estimate` fits its table to it. */
  readonly stdoutColumns?: number;
  /** True when stderr is a terminal: long waits then keep one status line up to date there. */
  readonly stderrIsTTY?: boolean;
  /** Subscribes to Ctrl-C (SIGINT) for one command run; tests call the listener themselves. */
  readonly onInterrupt?: InterruptHook;
  /** What the running command leaves behind if interrupted now; runCli provides one per run. */
  readonly stillRunning?: StillRunning;
}

function stdinInput(): ConfirmInput {
  return {
    isTTY: process.stdin.isTTY === true,
    ask: (prompt) =>
      new Promise((resolve) => {
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
        let answered = false;
        rl.question(prompt, (answer) => {
          answered = true;
          rl.close();
          resolve(answer);
        });
        rl.once('close', () => {
          if (!answered) resolve('');
        });
      }),
  };
}

export function defaultDeps(): OpsDeps {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    input: stdinInput(),
    clients: createAwsClients,
    env: process.env,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => Date.now(),
    stdoutIsTTY: process.stdout.isTTY === true,
    ...(process.stdout.columns ? { stdoutColumns: process.stdout.columns } : {}),
    stderrIsTTY: process.stderr.isTTY === true,
    onInterrupt: processInterruptHook,
  };
}

/**
 * Output of one command run: `data` goes to stdout; progress goes to stdout too,
 * except with --json, where stdout carries only the JSON document and progress goes to stderr.
 */
export class Reporter {
  /** Whether a status line is on the terminal now (it must go before any other output). */
  private statusShown = false;

  constructor(
    private readonly deps: Pick<OpsDeps, 'stdout' | 'stderr' | 'stderrIsTTY'>,
    readonly json: boolean,
  ) {}

  /** A line of human-readable progress or result. */
  line(text = ''): void {
    this.clearStatus();
    (this.json ? this.deps.stderr : this.deps.stdout)(`${text}\n`);
  }

  /** Something that went wrong but does not stop the command. */
  warn(text: string): void {
    this.clearStatus();
    this.deps.stderr(`warning: ${text}\n`);
  }

  /** The machine-readable result of a --json run. */
  data(value: unknown): void {
    this.clearStatus();
    this.deps.stdout(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One JSON document on one line (a stream of them, e.g. `gpu status --watch --json`). */
  dataLine(value: unknown): void {
    this.clearStatus();
    this.deps.stdout(`${JSON.stringify(value)}\n`);
  }

  /** Text written as is on stdout (a terminal redraw); --json runs never call it. */
  raw(text: string): void {
    this.clearStatus();
    this.deps.stdout(text);
  }

  /**
   * Replaces the status line on stderr (no newline), only when stderr is a terminal: a log or a
   * pipe gets the progress lines alone. Keep it short: a wrapped line cannot be rewritten.
   */
  status(text: string): void {
    if (!this.deps.stderrIsTTY) return;
    this.deps.stderr(`${CLEAR_LINE}${text}`);
    this.statusShown = true;
  }

  /** Removes the status line, if one is shown. */
  clearStatus(): void {
    if (!this.statusShown) return;
    this.deps.stderr(CLEAR_LINE);
    this.statusShown = false;
  }
}
