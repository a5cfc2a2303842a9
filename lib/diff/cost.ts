import { loadEnvironment } from '../config/load';
import { estimateEnvironment } from '../cost/estimate';
import type { AssemblySet, CostChange, CostLineChange, Templates } from './types';

/** Sums the estimate's lines by item (a line may repeat, e.g. one per root volume). */
function byItem(lines: ReadonlyArray<{ item: string; monthlyUsd: number }>): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) m.set(l.item, (m.get(l.item) ?? 0) + l.monthlyUsd);
  return m;
}

/**
 * The monthly estimate of one environment on both sides. Both are priced with the head's
 * config (`loadEnvironment`), so the delta is what the template changes cost; an environment
 * missing on one side costs nothing there.
 */
export function costChange(env: string, base: Templates | undefined, head: Templates | undefined): CostChange {
  try {
    const config = loadEnvironment(env);
    const b = base ? estimateEnvironment(config, base) : undefined;
    const h = head ? estimateEnvironment(config, head) : undefined;
    const bl = byItem(b?.lines ?? []);
    const hl = byItem(h?.lines ?? []);
    const lines: CostLineChange[] = [...new Set([...bl.keys(), ...hl.keys()])]
      .map((item) => ({ item, baseUsd: bl.get(item) ?? 0, headUsd: hl.get(item) ?? 0 }))
      .filter((l) => Math.abs(l.headUsd - l.baseUsd) >= 0.005);
    const baseUsd = b?.totalUsd ?? 0;
    const headUsd = h?.totalUsd ?? 0;
    return { env, baseUsd, headUsd, deltaUsd: headUsd - baseUsd, lines };
  } catch (error) {
    return { env, lines: [], error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  }
}

export function costChanges(envs: string[], base: AssemblySet, head: AssemblySet): CostChange[] {
  return envs.map((env) => costChange(env, base[env], head[env]));
}
