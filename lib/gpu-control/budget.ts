import { GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { BILLING_INSTANCE_STATES, type FleetMember } from './fleet';
import { monthOf, monthStart, nextMonthStart } from './month';
import { GATEWAY_METRICS } from './names';
import type { BudgetStatus } from './protocol';

/**
 * The month's GPU budget, measured AWS-side: the ledger (GpuSeconds, recorded by the control
 * function when an instance stops or terminates) plus the instances still running, priced at the
 * configured Spot prices. The control function and the ops commands both compute it here.
 */

export interface BudgetInputs {
  readonly now: Date;
  readonly allowanceUsd: number;
  /** USD per instance-hour by type. */
  readonly spotPrices: Readonly<Record<string, number>>;
  /** Seconds recorded this month by instance type. */
  readonly ledgerSeconds: Readonly<Record<string, number>>;
  readonly members: readonly FleetMember[];
  /** Value of the override parameter, null when it cannot be read or does not exist. */
  readonly override: string | null;
}

/** The price of an hour of `type`; a type without a configured price counts at the dearest one (never under-counted). */
export function hourlyPrice(spotPrices: Readonly<Record<string, number>>, type: string): number {
  return spotPrices[type] ?? Math.max(0, ...Object.values(spotPrices));
}

/** Seconds this month of the members whose current run is not in the ledger yet. */
export function liveSeconds(members: readonly FleetMember[], now: Date): Record<string, number> {
  const from = monthStart(now).getTime();
  const seconds: Record<string, number> = {};
  for (const m of members) {
    if (!BILLING_INSTANCE_STATES.has(m.state) || m.billed || !m.launchTime) continue;
    const run = Math.max(0, (now.getTime() - Math.max(Date.parse(m.launchTime), from)) / 1000);
    seconds[m.instanceType] = (seconds[m.instanceType] ?? 0) + run;
  }
  return seconds;
}

const cents = (usd: number): number => Math.round(usd * 100) / 100;

export function computeBudget(input: BudgetInputs): BudgetStatus {
  const month = monthOf(input.now);
  const live = liveSeconds(input.members, input.now);
  let used = 0;
  for (const seconds of [input.ledgerSeconds, live]) {
    for (const [type, s] of Object.entries(seconds)) used += (s / 3600) * hourlyPrice(input.spotPrices, type);
  }
  const left = Math.max(0, input.allowanceUsd - used);
  const dearest = Math.max(0, ...Object.values(input.spotPrices));
  return {
    month,
    allowanceUsd: cents(input.allowanceUsd),
    usedUsd: cents(used),
    leftUsd: cents(left),
    // Rounded down to 0.1 h; the epsilon keeps 13.999999... (binary fractions) at 14.
    hoursLeft: dearest > 0 ? Math.floor((left / dearest) * 10 + 1e-9) / 10 : 0,
    spent: used >= input.allowanceUsd,
    overridden: input.override === month,
  };
}

/** Where the ledger lives: the namespace and environment of the GpuSeconds metric. */
export interface LedgerLocation {
  readonly namespace: string;
  readonly envName: string;
}

/** GpuSeconds recorded in the month of `now`, by instance type (one query per type asked for). */
export async function readLedgerSeconds(
  cloudWatch: CloudWatchClient,
  where: LedgerLocation,
  instanceTypes: readonly string[],
  now: Date,
): Promise<Record<string, number>> {
  const types = [...new Set(instanceTypes)];
  if (types.length === 0) return {};
  const queries: MetricDataQuery[] = types.map((type, index) => ({
    Id: `t${index}`,
    ReturnData: true,
    MetricStat: {
      Metric: {
        Namespace: where.namespace,
        MetricName: GATEWAY_METRICS.gpuSeconds,
        Dimensions: [
          { Name: 'Environment', Value: where.envName },
          { Name: 'InstanceType', Value: type },
        ],
      },
      // Daily sums (a multiple of 3600 s, which CloudWatch requires for data older than 63 days), added up here.
      Period: 86_400,
      Stat: 'Sum',
    },
  }));
  const seconds: Record<string, number> = {};
  let token: string | undefined;
  for (let page = 0; page < 20; page++) {
    const out = await cloudWatch.send(
      new GetMetricDataCommand({ MetricDataQueries: queries, StartTime: monthStart(now), EndTime: nextMonthStart(now), NextToken: token }),
    );
    for (const result of out.MetricDataResults ?? []) {
      const type = types[Number(result.Id?.slice(1))];
      if (type === undefined) continue;
      seconds[type] = (seconds[type] ?? 0) + (result.Values ?? []).reduce((a, b) => a + b, 0);
    }
    token = out.NextToken;
    if (!token) break;
  }
  return seconds;
}

/** The override parameter's value; null when it does not exist. */
export async function readOverride(ssm: SSMClient, parameterName: string): Promise<string | null> {
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: parameterName }));
    return out.Parameter?.Value ?? null;
  } catch (error) {
    if ((error as { name?: string }).name === 'ParameterNotFound') return null;
    throw error;
  }
}

export interface BudgetSources {
  readonly cloudWatch: CloudWatchClient;
  readonly ssm: SSMClient;
  readonly ledger: LedgerLocation;
  readonly overrideParameter: string;
  readonly allowanceUsd: number;
  readonly spotPrices: Readonly<Record<string, number>>;
}

/** Reads the ledger and the override, then computes the month's budget for these fleet members. */
export async function readBudget(sources: BudgetSources, members: readonly FleetMember[], now: Date): Promise<BudgetStatus> {
  // Types of running members too: one removed from the config may still have run this month.
  const types = [...Object.keys(sources.spotPrices), ...members.map((m) => m.instanceType)];
  const [ledgerSeconds, override] = await Promise.all([
    readLedgerSeconds(sources.cloudWatch, sources.ledger, types, now),
    readOverride(sources.ssm, sources.overrideParameter),
  ]);
  return computeBudget({ now, allowanceUsd: sources.allowanceUsd, spotPrices: sources.spotPrices, ledgerSeconds, members, override });
}

const usd = (n: number): string => `$${n.toFixed(2)}`;

/** Why waking is refused, what was used and how an operator overrides it (the function and `gpu start` say the same). */
export function budgetSpentMessage(budget: BudgetStatus, envName: string): string {
  return (
    `The GPU allowance for ${budget.month} is spent: ${usd(budget.usedUsd)} of ${usd(budget.allowanceUsd)} used ` +
    `(monthlyBudgetUsd minus the fixed monthly floor). Waking the GPU is refused until the month ends; ` +
    `an operator can allow it for ${budget.month} with: npm run ops -- gpu start --env ${envName} --over-budget`
  );
}

/** `GPU allowance: $X of $Y used this month, $Z (N h) left`, and what follows from it. */
export function formatBudgetLine(budget: BudgetStatus): string {
  const line = `GPU allowance: ${usd(budget.usedUsd)} of ${usd(budget.allowanceUsd)} used this month, ${usd(budget.leftUsd)} (${budget.hoursLeft} h) left`;
  if (budget.overridden) return `${line}; an operator override allows waking past it in ${budget.month}`;
  if (budget.spent) return `${line}; spent: waking the GPU is refused until the month ends (override: gpu start --over-budget)`;
  return line;
}
