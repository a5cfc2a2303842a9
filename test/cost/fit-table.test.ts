import { fitTextTable, wrapWords } from '../../lib/cost/fit-table';
import { textTable } from '../../lib/cost/text-table';

describe('fitting the cost tables into a terminal', () => {
  const headers = ['item', 'USD', 'notes'];
  const rows = [
    ['EC2 Spot GPU', '$42.95', 'eight hours a day on every day of the month'],
    ['total', '$42.95', ''],
  ];
  const options = { rightAligned: [1], wrapColumn: 2, minWrapWidth: 10, dropOrder: [2] };

  it('a table that fits comes out as textTable renders it', () => {
    expect(fitTextTable(headers, rows, 200, options)).toEqual({ lines: textTable(headers, rows, [1]), dropped: [] });
  });

  it('wraps the free-text column under itself while it keeps its minimum width', () => {
    const { lines, dropped } = fitTextTable(headers, rows, 40, options);
    expect(dropped).toEqual([]);
    expect(lines).toEqual([
      'item             USD  notes',
      'EC2 Spot GPU  $42.95  eight hours a day', // 18 columns left for the notes
      '                      on every day of',
      '                      the month',
      'total         $42.95',
    ]);
  });

  it('then leaves columns out, and as a last resort wraps the first one', () => {
    expect(fitTextTable(headers, rows, 25, options)).toEqual({ lines: ['item             USD', 'EC2 Spot GPU  $42.95', 'total         $42.95'], dropped: ['notes'] });
    const narrow = fitTextTable(headers, rows, 14, options);
    expect(narrow.lines).toEqual(['item      USD', 'EC2    $42.95', 'Spot', 'GPU', 'total  $42.95']); // 6 columns left for the item
    expect(Math.max(...narrow.lines.map((l) => l.length))).toBeLessThanOrEqual(14);
  });

  it('wraps prose at spaces and cuts only a word longer than the line', () => {
    expect(wrapWords('Prices as of 2025-11-30 (lib/cost/prices.ts)', 20)).toEqual(['Prices as of', '2025-11-30', '(lib/cost/prices.ts)']);
    expect(wrapWords('a https://example.com/very/long b', 10)).toEqual(['a', 'https://ex', 'ample.com/', 'very/long', 'b']);
    expect(wrapWords('', 10)).toEqual(['']);
  });
});
