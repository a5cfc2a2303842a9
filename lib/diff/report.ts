import { compareAssemblies, orderedEnvs } from './compare';
import { costChanges } from './cost';
import { flagsOf } from './flags';
import type { AssemblySet, DiffReport } from './types';

/** Exit code of a destructive change that was not allowed. */
export const EXIT_DESTRUCTIVE = 3;

export interface ReportOptions {
  readonly allowDestructive?: boolean;
}

/** Diffs every stack of every environment, flags what needs a second look and prices both sides. */
export function buildReport(base: AssemblySet, head: AssemblySet, options: ReportOptions = {}): DiffReport {
  const stacks = compareAssemblies(base, head);
  const allowDestructive = options.allowDestructive ?? false;
  if (stacks.length === 0) return { empty: true, allowDestructive, flags: [], costs: [], stacks: [] };
  return {
    empty: false,
    allowDestructive,
    flags: flagsOf(stacks),
    costs: costChanges(orderedEnvs(base, head), base, head),
    stacks: stacks.map((s) => s.change),
  };
}

export function destructiveCount(report: DiffReport): number {
  return report.flags.filter((f) => f.destructive).length;
}

/** 0, or EXIT_DESTRUCTIVE when a destructive change was not allowed. */
export function exitCode(report: DiffReport): number {
  return destructiveCount(report) > 0 && !report.allowDestructive ? EXIT_DESTRUCTIVE : 0;
}
