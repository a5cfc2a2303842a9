import { ExitCode, OpsError } from './errors';
import type { OpsDeps, Reporter } from './context';

/** Default pause between two polls; OPS_POLL_INTERVAL_MS overrides it (tests use ~100 ms). */
const DEFAULT_POLL_INTERVAL_MS = 5_000;

export function pollIntervalMs(env: NodeJS.ProcessEnv): number {
  const raw = env.OPS_POLL_INTERVAL_MS;
  if (raw === undefined || raw === '') return DEFAULT_POLL_INTERVAL_MS;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 10 || value > 60_000) {
    throw new OpsError(`OPS_POLL_INTERVAL_MS = ${JSON.stringify(raw)}: allowed is a number of milliseconds from 10 to 60000`, ExitCode.usage);
  }
  return value;
}

export type PollResult<T> = { done: true; value: T } | { done: false };

export interface PollOptions {
  /** Epoch milliseconds after which no further check starts. */
  readonly deadline: number;
  readonly intervalMs: number;
  readonly deps: Pick<OpsDeps, 'sleep' | 'now'>;
  /** On a terminal, a status line rewritten after each poll: what is awaited, for how long so far. */
  readonly progress?: PollProgress;
}

export interface PollProgress {
  /** What is awaited, e.g. `[1/3 fleet capacity]`. */
  readonly label: string;
  readonly reporter: Pick<Reporter, 'status' | 'clearStatus'>;
}

/**
 * Calls `check` until it reports done or the deadline passes. Bounded twice over:
 * by the deadline and by an iteration cap derived from it (a stuck clock cannot loop forever).
 */
export async function pollUntil<T>(check: () => Promise<PollResult<T>>, options: PollOptions): Promise<PollResult<T>> {
  const { deadline, intervalMs, deps, progress } = options;
  const started = deps.now();
  const maxChecks = Math.ceil(Math.max(0, deadline - started) / intervalMs) + 2;
  try {
    for (let i = 0; i < maxChecks; i++) {
      const result = await check();
      if (result.done) return result;
      const left = deadline - deps.now();
      if (left <= 0) break;
      progress?.reporter.status(`${progress.label} waiting ${formatDuration(deps.now() - started)}, gives up in ${formatDuration(left)}`);
      await deps.sleep(Math.min(intervalMs, left));
    }
    return { done: false };
  } finally {
    progress?.reporter.clearStatus();
  }
}

/** `12.3 s`, `4 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  return `${Math.floor(totalSeconds / 60)} min ${String(totalSeconds % 60).padStart(2, '0')} s`;
}
