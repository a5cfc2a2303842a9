import type { CostEstimate, CostLine } from './estimate';
import type { FreeTierName } from './prices';

/** One free tier as an account uses it: every environment's lines that count against it, one allowance. */
export interface SharedFreeTier {
  readonly name: FreeTierName;
  /** The estimate's line item (e.g. "CloudWatch alarms") and its unit. */
  readonly item: string;
  readonly unit: string;
  /** The allowance, once for the account, in the line's unit. */
  readonly freeQuantity: number;
  /** What the account's environments use together. */
  readonly usedQuantity: number;
  readonly billableQuantity: number;
  /** The lines' cost as the environments' tables show it (each with an allowance of its own). */
  readonly perEnvironmentUsd: number;
  /** Their cost with one allowance for the account. */
  readonly accountUsd: number;
}

/** The environments of one AWS account (the config's `account`), with the free tiers counted once. */
export interface AccountTotal {
  /** The 12-digit account id; null for environments whose config names none. */
  readonly account: string | null;
  readonly environments: string[];
  /** The environments' totals added up (each as if it had the account to itself). */
  readonly environmentsTotalUsd: number;
  /** The account's monthly cost: every free tier deducted once. */
  readonly totalUsd: number;
  /** totalUsd - environmentsTotalUsd: what the free tiers being shared adds. */
  readonly sharedFreeTierUsd: number;
  readonly freeTierApplied: boolean;
  /** One entry per free tier the environments use; empty without free tiers. */
  readonly sharedFreeTiers: SharedFreeTier[];
}

/** An estimate and the account its config deploys to (undefined: the deploy credentials decide). */
export interface EstimateInAccount {
  readonly account: string | undefined;
  readonly estimate: CostEstimate;
}

/** "account 123456789012", or "unknown account" for environments whose config has no `account`. */
export function accountLabel(account: string | null): string {
  return account === null ? 'unknown account' : `account ${account}`;
}

/**
 * A free tier's lines across the account: the one allowance covers the usage in the order the
 * environments were given, and what it does not cover bills at each line's own unit price.
 */
function shareFreeTier(name: FreeTierName, lines: readonly CostLine[]): SharedFreeTier {
  const freeQuantity = lines[0]!.freeAllowance!.quantity;
  let left = freeQuantity;
  let accountUsd = 0;
  for (const l of lines) {
    const covered = Math.min(left, l.quantity);
    left -= covered;
    accountUsd += (l.quantity - covered) * l.unitPriceUsd;
  }
  const usedQuantity = lines.reduce((s, l) => s + l.quantity, 0);
  return {
    name,
    item: lines[0]!.item,
    unit: lines[0]!.unit,
    freeQuantity,
    usedQuantity,
    billableQuantity: Math.max(0, usedQuantity - freeQuantity),
    perEnvironmentUsd: lines.reduce((s, l) => s + l.monthlyUsd, 0),
    accountUsd,
  };
}

function totalOf(account: string | null, estimates: readonly CostEstimate[]): AccountTotal {
  const environmentsTotalUsd = estimates.reduce((s, e) => s + e.totalUsd, 0);
  // With --no-free-tier no environment had an allowance: there is nothing to share.
  const freeTierApplied = estimates.every((e) => e.freeTierApplied);
  const byTier = new Map<FreeTierName, CostLine[]>();
  if (freeTierApplied) {
    for (const l of estimates.flatMap((e) => e.lines)) {
      if (l.freeAllowance) byTier.set(l.freeAllowance.name, [...(byTier.get(l.freeAllowance.name) ?? []), l]);
    }
  }
  const sharedFreeTiers = [...byTier].map(([name, lines]) => shareFreeTier(name, lines));
  const sharedFreeTierUsd = sharedFreeTiers.reduce((s, t) => s + t.accountUsd - t.perEnvironmentUsd, 0);
  return {
    account,
    environments: estimates.map((e) => e.envName),
    environmentsTotalUsd,
    totalUsd: environmentsTotalUsd + sharedFreeTierUsd,
    sharedFreeTierUsd,
    freeTierApplied,
    sharedFreeTiers,
  };
}

/**
 * The estimates grouped by account, in the order the accounts first appear; environments without
 * an `account` form one group. Free tiers are per account (all regions together), so each group
 * gets each allowance once.
 */
export function accountTotals(estimates: readonly EstimateInAccount[]): AccountTotal[] {
  const groups = new Map<string | null, CostEstimate[]>();
  for (const { account, estimate } of estimates) {
    const key = account ?? null;
    groups.set(key, [...(groups.get(key) ?? []), estimate]);
  }
  return [...groups].map(([account, group]) => totalOf(account, group));
}
