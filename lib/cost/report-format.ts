import { dollars } from './money';
import type { CostReport } from './report';
import { textTable } from './text-table';

/** Services under half a cent are left out of the table (Cost Explorer lists many at $0.00). */
const HIDE_BELOW_USD = 0.005;

function scopeText(r: CostReport): string {
  return r.scope === 'costCenter'
    ? `only costs tagged CostCenter = ${r.costCenter}`
    : 'the whole account, every service';
}

/** The report as text: services month to date, the VPS, the total, the forecast and the verdict. */
export function renderCostReport(r: CostReport): string[] {
  const shown = r.services.filter((s) => Math.abs(s.usd) >= HIDE_BELOW_USD);
  const hidden = r.services.length - shown.length;
  const unitNote = r.unit === 'USD' ? '' : ` (amounts in ${r.unit})`;
  const lines = [
    `Cost of ${r.envName} from ${r.start} to ${r.end} (exclusive), ${scopeText(r)}${r.estimated ? '; estimated by Cost Explorer' : ''}${unitNote}`,
    ...textTable(
      ['service', 'month to date'],
      [
        ...shown.map((s) => [s.service, dollars(s.usd)]),
        ...(hidden > 0 ? [[`(${hidden} more under $0.01)`, '']] : []),
        [`${r.vps.name} (fixed monthly price from config)`, dollars(r.vps.usd)],
        ['total', dollars(r.actualUsd)],
      ],
      [1],
    ),
  ];
  if (r.scope === 'costCenter' && r.awsUsd === 0) {
    lines.push(`No AWS cost carries CostCenter = ${r.costCenter}: activate CostCenter as a cost allocation tag (Billing > Cost allocation tags); it applies from then on, not backwards.`);
  }
  if (r.forecast.available) {
    const f = r.forecast;
    lines.push(
      `Forecast to month end: ${dollars(f.monthEndUsd)} = AWS ${dollars(r.awsUsd)} so far + ${dollars(f.remainingUsd)} forecast for ${f.start} to ${f.end} + VPS ${dollars(r.vps.usd)}`,
    );
  } else {
    lines.push(`Forecast: not available (${r.forecast.reason}); comparing the actual cost plus the VPS instead.`);
  }
  const what = r.comparedWith === 'forecast' ? 'forecast' : 'actual + VPS';
  lines.push(
    r.overBudget
      ? `Budget ${dollars(r.budgetUsd)}: OVER, the ${what} ${dollars(r.comparedUsd)} exceeds it by ${dollars(r.comparedUsd - r.budgetUsd)}.`
      : `Budget ${dollars(r.budgetUsd)}: within, the ${what} ${dollars(r.comparedUsd)} leaves ${dollars(r.budgetUsd - r.comparedUsd)}.`,
  );
  return lines;
}
