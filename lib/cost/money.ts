/** Number formats shared by the cost tables. */

/** Dollars with cents; amounts under 10 cents (but not 0) keep 4 decimals so they do not read as free. */
export function dollars(n: number): string {
  const fixed = n !== 0 && Math.abs(n) < 0.1 ? n.toFixed(4) : n.toFixed(2);
  return `$${fixed}`;
}

/** A unit price: as many decimals as it needs, up to 6 (S3 GETs cost $0.0004 per 1,000). */
export function unitPrice(n: number): string {
  if (n >= 1) return `$${n.toFixed(2)}`;
  const [whole, decimals = ''] = n.toFixed(6).replace(/0+$/, '').split('.');
  return `$${whole}.${decimals.padEnd(2, '0')}`;
}

/** A quantity: whole numbers as is, otherwise at most 3 decimals. */
export function quantity(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/\.?0+$/, '');
}

/**
 * A JSON.stringify replacer for the `--json` documents: amounts of money (keys ending in `Usd`, and
 * `usd`) to cents, as a bill shows them; unit prices (`unitPriceUsd`, `...UsdPerHour`) keep their
 * precision because a Spot price or an S3 request price is a fraction of a cent.
 */
export function centsInJson(key: string, value: unknown): unknown {
  if (typeof value !== 'number' || !/(^usd|Usd)$/.test(key) || key === 'unitPriceUsd') return value;
  return Math.round(value * 100) / 100;
}
