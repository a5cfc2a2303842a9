import type { OpsDeps } from './context';

/**
 * Ctrl-C during a command: the CLI says what the command leaves running (a raised fleet
 * capacity, instances still terminating) and exits 130, as a shell reports SIGINT (128 + 2).
 * Commands register that at each moment; runCli (lib/ops/cli.ts) prints it.
 */

export const INTERRUPTED_EXIT_CODE = 130;

/** Subscribes `listener` to the interrupt for one command run; returns the unsubscribe. */
export type InterruptHook = (listener: () => void) => () => void;

/** Erases the terminal line the cursor is on (carriage return, then ANSI "erase entire line"). */
export const CLEAR_LINE = '\r\x1b[2K';

/** The process's SIGINT: the listener reports, then the process ends. */
export const processInterruptHook: InterruptHook = (listener) => {
  const handler = (): void => {
    listener();
    // As a shell's Ctrl-C would: end now, whatever the command still awaits (a request, or a child
    // process, which got the same SIGINT from the terminal).
    process.exit(INTERRUPTED_EXIT_CODE);
  };
  process.once('SIGINT', handler);
  return () => void process.off('SIGINT', handler);
};

/** What is still running, registered by the command as it goes. */
export class StillRunning {
  private readonly entries = new Map<number, string>();
  private nextId = 0;

  /** Registers `what` (e.g. "target capacity of sfr-… is still 1: run …"); call the result once it no longer holds. */
  add(what: string): () => void {
    const id = this.nextId++;
    this.entries.set(id, what);
    return () => void this.entries.delete(id);
  }

  /** Runs `work` with `what` registered, cleared afterwards whatever happens. */
  async during<T>(what: string, work: () => Promise<T>): Promise<T> {
    const clear = this.add(what);
    try {
      return await work();
    } finally {
      clear();
    }
  }

  /** The line printed on Ctrl-C. */
  message(): string {
    const what = [...this.entries.values()];
    return what.length === 0 ? 'interrupted' : `interrupted: ${what.join('; ')}`;
  }
}

/** The registry of a run, or a throwaway one for code called outside runCli. */
export function stillRunningOf(deps: { readonly stillRunning?: StillRunning }): StillRunning {
  return deps.stillRunning ?? new StillRunning();
}

/**
 * Runs one command so that an interrupt ends it: the registered message (or "interrupted") goes to
 * stderr and the result is 130 at once. The process then exits (defaultDeps' hook); an in-process
 * caller (a test) gets 130 while the command stays parked at its next wait, never resuming, so
 * nothing runs after the interrupt in either case.
 */
export async function runInterruptibly(deps: OpsDeps, command: (deps: OpsDeps) => Promise<number>): Promise<number> {
  const stillRunning = new StillRunning();
  let interrupted = false;
  let reportInterrupt: (code: number) => void = () => undefined;
  const interruption = new Promise<number>((resolve) => (reportInterrupt = resolve));
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (!interrupted) void deps.sleep(ms).then(() => !interrupted && resolve());
    });
  const unsubscribe =
    deps.onInterrupt?.(() => {
      if (interrupted) return;
      interrupted = true;
      deps.stderr(`${deps.stderrIsTTY ? CLEAR_LINE : ''}${stillRunning.message()}\n`);
      reportInterrupt(INTERRUPTED_EXIT_CODE);
    }) ?? (() => undefined);
  try {
    return await Promise.race([command({ ...deps, sleep, stillRunning }), interruption]);
  } finally {
    unsubscribe();
  }
}
