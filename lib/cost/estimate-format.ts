import type { CostEstimate } from './estimate';
import { dollars, quantity, unitPrice } from './money';
import { fitTextTable, wrapWords } from './fit-table';
import { textTable } from './text-table';

function heading(e: CostEstimate): string {
  const verdict = e.overBudget
    ? `OVER the ${dollars(e.budgetUsd)} budget by ${dollars(e.totalUsd - e.budgetUsd)}`
    : `within the ${dollars(e.budgetUsd)} budget (${dollars(e.budgetUsd - e.totalUsd)} left)`;
  return `Estimated monthly cost of ${e.envName} (${e.region}): ${dollars(e.totalUsd)}, ${verdict}`;
}

/** How much GPU time the budget allows: the figure to weigh a usage change against. */
function headroom(e: CostEstimate): string {
  const h = e.budgetGpuHoursPerDay;
  if (e.gpuDaysPerMonth === 0) return `The profile runs the GPU on no day of the month (costProfile.gpuDaysPerMonth 0).`;
  if (h === null) return `Even with the GPU never running, this environment costs more than the ${dollars(e.budgetUsd)} budget.`;
  if (h >= 24) return `The ${dollars(e.budgetUsd)} budget holds even with the GPU running all day.`;
  return `The ${dollars(e.budgetUsd)} budget holds up to ${h.toFixed(1)} GPU-hours a day on ${e.gpuDaysPerMonth} days a month.`;
}

function footnote(e: CostEstimate): string {
  const free = e.freeTierApplied ? 'free tiers applied as if this environment had the account to itself' : 'no free tiers applied';
  const prices = e.givenSpotPrice
    ? `Spot price from ${e.givenSpotPrice.source} on ${e.givenSpotPrice.asOf}; the other prices as of ${e.pricesAsOf} (lib/cost/prices.ts)`
    : `Prices as of ${e.pricesAsOf} (lib/cost/prices.ts; Spot is a typical figure, not a quote)`;
  return `${prices}; ${free}.`;
}

/** The table's columns, and which to wrap or leave out first when a terminal is too narrow for them. */
const HEADERS = ['item', 'quantity', 'unit', 'unit price', 'USD/month', 'basis'];
const RIGHT_ALIGNED = [1, 3, 4];
const BASIS = 5;
/** basis, then unit price, unit and quantity: item and USD/month always stay. */
const DROP_ORDER = [BASIS, 3, 2, 1];

export interface TextOptions {
  /** Fit every line into this many columns (a terminal's width); unset: the full table, unwrapped. */
  readonly width?: number;
}

/** Prose lines, word-wrapped when there is a width. */
export function prose(text: string, options: TextOptions): string[] {
  return options.width === undefined ? [text] : wrapWords(text, options.width);
}

function table(e: CostEstimate, options: TextOptions): string[] {
  const rows = [
    ...e.lines.map((l) => [l.item, quantity(l.quantity), l.unit, unitPrice(l.unitPriceUsd), dollars(l.monthlyUsd), l.basis]),
    ['total', '', '', '', dollars(e.totalUsd), ''],
  ];
  if (options.width === undefined) return textTable(HEADERS, rows, RIGHT_ALIGNED);
  const fitted = fitTextTable(HEADERS, rows, options.width, { rightAligned: RIGHT_ALIGNED, wrapColumn: BASIS, minWrapWidth: 30, dropOrder: DROP_ORDER });
  if (fitted.dropped.length === 0) return fitted.lines;
  return [...fitted.lines, ...prose(`(left out to fit ${options.width} columns: ${fitted.dropped.join(', ')}; --wide shows them)`, options)];
}

/**
 * One plain-text table per environment: a line per cost item, then the total. With a width the
 * lines fit it (see fitTextTable); without one the output is the full table, as scripts expect.
 */
export function renderEstimateTable(estimates: readonly CostEstimate[], options: TextOptions = {}): string[] {
  return estimates.flatMap((e, i) => [
    ...(i > 0 ? [''] : []),
    ...prose(heading(e), options),
    ...table(e, options),
    ...prose(headroom(e), options),
    ...prose(footnote(e), options),
  ]);
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The same as markdown tables, for the README. */
export function renderEstimateMarkdown(estimates: readonly CostEstimate[]): string[] {
  return estimates.flatMap((e, i) => [
    ...(i > 0 ? [''] : []),
    `#### ${heading(e)}`,
    '',
    '| item | quantity | unit | unit price | USD/month | basis |',
    '| --- | ---: | --- | ---: | ---: | --- |',
    ...e.lines.map((l) => `| ${cell(l.item)} | ${quantity(l.quantity)} | ${cell(l.unit)} | ${unitPrice(l.unitPriceUsd)} | ${dollars(l.monthlyUsd)} | ${cell(l.basis)} |`),
    `| **total** | | | | **${dollars(e.totalUsd)}** | |`,
    '',
    `${headroom(e)} ${footnote(e)}`,
  ]);
}
