import type { CheckResult, CheckStatus } from './types';

/** `fail  name: found` and, for warn and fail, one `fix:` line per command, aligned under the name. */
export function renderResult(result: CheckResult): string[] {
  return [`${result.status.padEnd(4)}  ${result.name}: ${result.found}`, ...(result.fix ?? []).map((f) => `      fix: ${f}`)];
}

export type Counts = Record<CheckStatus, number>;

export function countResults(results: readonly CheckResult[]): Counts {
  const counts: Counts = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}

export function renderSummary(counts: Counts): string {
  return `${counts.fail} failed, ${counts.warn} warning(s), ${counts.ok} ok, ${counts.skip} skipped.`;
}
