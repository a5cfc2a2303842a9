import {
  GetCostAndUsageCommand,
  GetCostForecastCommand,
  type CostExplorerClient,
  type Expression,
  type GetCostAndUsageCommandOutput,
} from '@aws-sdk/client-cost-explorer';
import type { EnvironmentConfig } from '../config/load';
import { ExitCode, OpsError } from '../ops/errors';
import { VPS_PLAN } from './prices';
import { nextMonthStart } from '../gpu-control/month';

/** Exit code of `cost report` when the month is forecast (or already is) over the budget. */
export const OVER_BUDGET_EXIT_CODE = ExitCode.overBudget;

/** Cost Explorer's API is global: its one endpoint is in us-east-1, whatever the stacks' region. */
export const COST_EXPLORER_REGION = 'us-east-1';

/** The tag the app puts on every resource; activate it as a cost allocation tag to report by it. */
export const COST_CENTER_TAG = 'CostCenter';

export const ENABLE_COST_EXPLORER =
  'Enable it once per account: sign in to the AWS console as the root user (or an IAM user with billing access), ' +
  'open Billing and Cost Management > Cost Explorer and choose "Launch Cost Explorer"; data appears within 24 hours. ' +
  'IAM users and roles also need "IAM user and role access to Billing information" activated (Account settings) ' +
  'and permission for ce:GetCostAndUsage and ce:GetCostForecast.';

/** The month as Cost Explorer sees it: UTC dates, start inclusive, end exclusive. */
export interface MonthWindow {
  readonly monthStart: string;
  /**
   * End of the month-to-date query: today (exclusive), where the forecast starts. On the 1st it is
   * tomorrow, so the query is never empty (today's first hours then also sit in the forecast: cents).
   */
  readonly actualEnd: string;
  readonly today: string;
  readonly nextMonth: string;
  readonly lastDayOfMonth: boolean;
}

export type Forecast =
  | { readonly available: true; readonly start: string; readonly end: string; readonly remainingUsd: number; readonly monthEndUsd: number }
  | { readonly available: false; readonly reason: string };

export interface CostReport {
  readonly envName: string;
  readonly costCenter: string;
  /** `account`: every cost of the account; `costCenter`: only costs tagged CostCenter = costCenter. */
  readonly scope: 'account' | 'costCenter';
  readonly start: string;
  readonly end: string;
  /** Cost Explorer marks the current month's figures as estimated until the bill is final. */
  readonly estimated: boolean;
  readonly unit: string;
  readonly services: { readonly service: string; readonly usd: number }[];
  readonly awsUsd: number;
  readonly vps: { readonly name: string; readonly usd: number };
  /** AWS month to date plus the VPS's fixed monthly price. */
  readonly actualUsd: number;
  /** Month end: AWS so far + the AWS forecast for the rest of the month + the VPS. */
  readonly forecast: Forecast;
  readonly budgetUsd: number;
  readonly comparedWith: 'forecast' | 'actual';
  readonly comparedUsd: number;
  readonly overBudget: boolean;
}

function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function addDaysUtc(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return isoDate(d);
}

export function monthWindow(now: Date): MonthWindow {
  const today = isoDate(now);
  const monthStart = `${today.slice(0, 8)}01`;
  const nextMonth = isoDate(nextMonthStart(now));
  return {
    monthStart,
    actualEnd: today === monthStart ? addDaysUtc(today, 1) : today,
    today,
    nextMonth,
    lastDayOfMonth: addDaysUtc(today, 1) === nextMonth,
  };
}

function tagFilter(config: EnvironmentConfig): Expression {
  return { Tags: { Key: COST_CENTER_TAG, Values: [config.costCenter], MatchOptions: ['EQUALS'] } };
}

function errorCode(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

/** Turns Cost Explorer's "not enabled / no data" answers into a message that says what to do. */
export function explainCostExplorerError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const name = error.name;
  if (name === 'DataUnavailableException') {
    return new OpsError(`Cost Explorer has no data for this account (DataUnavailableException: ${error.message}). Cost Explorer is probably not enabled. ${ENABLE_COST_EXPLORER}`, ExitCode.failure);
  }
  if (name === 'AccessDeniedException') {
    const notEnabled = /not enabled|cost explorer/i.test(error.message);
    const lead = notEnabled ? 'Cost Explorer is not enabled for this account' : 'Cost Explorer refused the request';
    return new OpsError(`${lead} (AccessDeniedException: ${error.message}). ${ENABLE_COST_EXPLORER}`, ExitCode.failure);
  }
  return error;
}

async function monthToDate(client: CostExplorerClient, window: MonthWindow, filter: Expression | undefined) {
  const byService = new Map<string, number>();
  let unit = 'USD';
  let estimated = false;
  let token: string | undefined;
  do {
    let page: GetCostAndUsageCommandOutput;
    try {
      page = await client.send(
        new GetCostAndUsageCommand({
          TimePeriod: { Start: window.monthStart, End: window.actualEnd },
          Granularity: 'MONTHLY',
          Metrics: ['UnblendedCost'],
          GroupBy: [{ Type: 'DIMENSION', Key: 'SERVICE' }],
          ...(filter ? { Filter: filter } : {}),
          ...(token ? { NextPageToken: token } : {}),
        }),
      );
    } catch (error) {
      throw explainCostExplorerError(error);
    }
    for (const result of page.ResultsByTime ?? []) {
      estimated ||= result.Estimated === true;
      for (const group of result.Groups ?? []) {
        const cost = group.Metrics?.UnblendedCost;
        const service = group.Keys?.[0] ?? '(unknown service)';
        byService.set(service, (byService.get(service) ?? 0) + Number(cost?.Amount ?? 0));
        if (cost?.Unit) unit = cost.Unit;
      }
    }
    token = page.NextPageToken;
  } while (token);
  const services = [...byService].map(([service, usd]) => ({ service, usd })).sort((a, b) => b.usd - a.usd);
  return { services, unit, estimated };
}

function firstLine(text: string): string {
  return text.split('\n')[0].slice(0, 200);
}

async function forecastRest(client: CostExplorerClient, window: MonthWindow, filter: Expression | undefined): Promise<{ usd: number } | { reason: string }> {
  if (window.lastDayOfMonth) return { reason: 'today is the last day of the month, so there is nothing left to forecast' };
  try {
    const out = await client.send(
      new GetCostForecastCommand({
        TimePeriod: { Start: window.today, End: window.nextMonth },
        Metric: 'UNBLENDED_COST',
        Granularity: 'MONTHLY',
        ...(filter ? { Filter: filter } : {}),
      }),
    );
    const amount = Number(out.Total?.Amount);
    if (!Number.isFinite(amount)) return { reason: 'Cost Explorer returned no forecast amount' };
    return { usd: amount };
  } catch (error) {
    // A missing forecast (too little history, no permission, an emulator without the API) is
    // reported, not fatal: the month-to-date figures are still worth having.
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (errorCode(error) === 'CredentialsProviderError') throw error;
    // A non-JSON error page (an emulator without the API, a proxy) fails deserialization.
    const notAws = errorCode(error) === 'SyntaxError';
    const what = notAws ? 'the answer was not an AWS response; the endpoint may not implement GetCostForecast' : error instanceof Error ? `${error.name}: ${firstLine(error.message)}` : String(error);
    return { reason: `GetCostForecast failed (${status ? `HTTP ${status}, ` : ''}${what})` };
  }
}

/**
 * Month-to-date AWS cost by service (optionally only the environment's CostCenter tag), the
 * forecast to month end, the VPS's fixed price, all compared with the environment's budget.
 */
export async function collectCostReport(
  config: EnvironmentConfig,
  client: CostExplorerClient,
  options: { byTag: boolean; now: Date },
): Promise<CostReport> {
  const window = monthWindow(options.now);
  const filter = options.byTag ? tagFilter(config) : undefined;
  const mtd = await monthToDate(client, window, filter);
  const awsUsd = mtd.services.reduce((sum, s) => sum + s.usd, 0);
  const vpsUsd = config.vps.monthlyPriceUsd;
  const actualUsd = awsUsd + vpsUsd;

  const rest = await forecastRest(client, window, filter);
  const forecast: Forecast =
    'usd' in rest
      ? { available: true, start: window.today, end: window.nextMonth, remainingUsd: rest.usd, monthEndUsd: awsUsd + rest.usd + vpsUsd }
      : { available: false, reason: rest.reason };
  const comparedUsd = forecast.available ? forecast.monthEndUsd : actualUsd;
  return {
    envName: config.envName,
    costCenter: config.costCenter,
    scope: options.byTag ? 'costCenter' : 'account',
    start: window.monthStart,
    end: window.actualEnd,
    estimated: mtd.estimated,
    unit: mtd.unit,
    services: mtd.services,
    awsUsd,
    vps: { name: VPS_PLAN.name, usd: vpsUsd },
    actualUsd,
    forecast,
    budgetUsd: config.monthlyBudgetUsd,
    comparedWith: forecast.available ? 'forecast' : 'actual',
    comparedUsd,
    overBudget: comparedUsd > config.monthlyBudgetUsd,
  };
}
