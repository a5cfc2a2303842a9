import type { CostEstimate } from './estimate';
import { dollars, quantity, unitPrice } from './money';
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

/** One plain-text table per environment: a line per cost item, then the total. */
export function renderEstimateTable(estimates: readonly CostEstimate[]): string[] {
  return estimates.flatMap((e, i) => [
    ...(i > 0 ? [''] : []),
    heading(e),
    ...textTable(
      ['item', 'quantity', 'unit', 'unit price', 'USD/month', 'basis'],
      [
        ...e.lines.map((l) => [l.item, quantity(l.quantity), l.unit, unitPrice(l.unitPriceUsd), dollars(l.monthlyUsd), l.basis]),
        ['total', '', '', '', dollars(e.totalUsd), ''],
      ],
      [1, 3, 4],
    ),
    headroom(e),
    footnote(e),
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
