/**
 * Plain-text columns for the cost tables: two spaces apart, amounts right-aligned so cents line
 * up; a left-aligned last column (free text) is not padded.
 */
export function textTable(headers: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly number[] = []): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        if (rightAligned.includes(i)) return c.padStart(widths[i]);
        return i === cells.length - 1 ? c : c.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd();
  return [render(headers), ...rows.map(render)];
}
