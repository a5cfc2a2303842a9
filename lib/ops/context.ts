import * as readline from 'node:readline';
import type { EnvironmentConfig } from '../config/load';
import { createAwsClients, type AwsClientFactory } from './aws';

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
   * The `vps` commands load the environment through this (default: loadEnvironment), so tests can
   * point them at a local sshd; the connection settings still come only from the config, never from options.
   */
  readonly loadConfig?: (envName: string) => EnvironmentConfig;
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
  };
}

/**
 * Output of one command run: `data` goes to stdout; progress goes to stdout too,
 * except with --json, where stdout carries only the JSON document and progress goes to stderr.
 */
export class Reporter {
  constructor(
    private readonly deps: Pick<OpsDeps, 'stdout' | 'stderr'>,
    readonly json: boolean,
  ) {}

  /** A line of human-readable progress or result. */
  line(text = ''): void {
    (this.json ? this.deps.stderr : this.deps.stdout)(`${text}\n`);
  }

  /** Something that went wrong but does not stop the command. */
  warn(text: string): void {
    this.deps.stderr(`warning: ${text}\n`);
  }

  /** The machine-readable result of a --json run. */
  data(value: unknown): void {
    this.deps.stdout(`${JSON.stringify(value, null, 2)}\n`);
  }
}
