import { InvalidArgumentError } from 'commander';
import { Reporter, type OpsDeps } from './context';
import { collectGpuStatus, renderGpuStatus } from './gpu-status';
import type { GpuTarget } from './gpu-target';
import { formatDuration } from './wait';

/** Cursor home, then erase the screen (ANSI), as watch(1) redraws. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export const DEFAULT_WATCH_SECONDS = 10;

/** `--interval-seconds`: 1 to 3600 seconds, fractions allowed. */
export function parseIntervalSeconds(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 1 || value > 3600) throw new InvalidArgumentError('allowed is a number of seconds from 1 to 3600.');
  return value;
}

type Deps = Pick<OpsDeps, 'now' | 'sleep' | 'stdoutIsTTY' | 'stderrIsTTY' | 'stdout' | 'stderr'>;

/**
 * `gpu status --watch`: the status every `intervalMs` until Ctrl-C (which ends the run, exit 130).
 * On a terminal each snapshot replaces the last, its warnings with it; otherwise (a log, a pipe)
 * snapshots follow each other under a timestamp line, and --json writes one document per line.
 */
export async function watchGpuStatus(target: GpuTarget, intervalMs: number, deps: Deps, reporter: Reporter): Promise<void> {
  const redraw = !reporter.json && deps.stdoutIsTTY === true;
  const title = `gpu status --env ${target.config.envName}, every ${formatDuration(intervalMs)} (Ctrl-C to stop)`;
  for (;;) {
    if (redraw) {
      // Warnings go into the snapshot: printed on their own, the next redraw would wipe them at once.
      let warnings = '';
      const quiet = new Reporter({ stdout: deps.stdout, stderr: (text) => (warnings += text) }, false);
      const status = await collectGpuStatus(target, deps, quiet);
      reporter.raw(`${CLEAR_SCREEN}${title}  ${status.observedAt}\n\n${renderGpuStatus(status).join('\n')}\n${warnings ? `\n${warnings}` : ''}`);
    } else {
      const status = await collectGpuStatus(target, deps, reporter);
      if (reporter.json) {
        reporter.dataLine(status);
      } else {
        reporter.line(`--- ${status.observedAt} ---`);
        for (const line of renderGpuStatus(status)) reporter.line(line);
      }
    }
    await deps.sleep(intervalMs);
  }
}
