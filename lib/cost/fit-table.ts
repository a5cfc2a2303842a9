import { textTable } from './text-table';

/**
 * Fitting the cost tables into a terminal: prose wraps at word boundaries; a table first wraps
 * its free-text column, then leaves out its least important columns, and as a last resort wraps
 * its first column.
 */

/** Splits `text` into lines of at most `width` characters, at spaces; a longer word is cut. */
export function wrapWords(text: string, width: number, indent = ''): string[] {
  const room = Math.max(1, width - indent.length);
  const lines: string[] = [];
  let current = '';
  for (let word of text.split(/ +/).filter((w) => w !== '')) {
    while (word.length > room) {
      if (current !== '') lines.push(current);
      current = '';
      lines.push(word.slice(0, room));
      word = word.slice(room);
    }
    if (current === '') current = word;
    else if (current.length + 1 + word.length <= room) current += ` ${word}`;
    else {
      lines.push(current);
      current = word;
    }
  }
  if (current !== '' || lines.length === 0) lines.push(current);
  return lines.map((l, i) => (i === 0 ? l : `${indent}${l}`));
}

export interface FitOptions {
  readonly rightAligned?: readonly number[];
  /** A free-text column that wraps while it keeps at least `minWrapWidth` characters (the table's last). */
  readonly wrapColumn?: number;
  readonly minWrapWidth?: number;
  /** Columns to leave out while the table is too wide, least important first. */
  readonly dropOrder?: readonly number[];
}

export interface FittedTable {
  readonly lines: string[];
  /** Headers of the columns left out, in the order they were dropped. */
  readonly dropped: string[];
}

const GAP = 2;

function widest(lines: readonly string[]): number {
  return Math.max(0, ...lines.map((l) => l.length));
}

/** Each row becomes as many lines as its wrapped cells need; the other cells stay on the first. */
function wrapCells(rows: readonly (readonly string[])[], widths: ReadonlyMap<number, number>): string[][] {
  return rows.flatMap((row) => {
    const pieces = row.map((cell, i) => {
      const w = widths.get(i);
      return w === undefined ? [cell] : wrapWords(cell, w);
    });
    const height = Math.max(...pieces.map((p) => p.length));
    return Array.from({ length: height }, (_, line) => pieces.map((p) => p[line] ?? ''));
  });
}

/**
 * `textTable` within `width` columns. A table that already fits comes out exactly as textTable
 * renders it. Otherwise, in this order until it fits: wrap `wrapColumn` into the room the other
 * columns leave (if at least `minWrapWidth`); leave out the `dropOrder` columns one by one; wrap the
 * first column into what is left.
 */
export function fitTextTable(headers: readonly string[], rows: readonly (readonly string[])[], width: number, options: FitOptions = {}): FittedTable {
  const { rightAligned = [], wrapColumn, minWrapWidth = 20, dropOrder = [] } = options;
  const render = (keep: readonly number[], wrap: ReadonlyMap<number, number>): string[] => {
    const pick = (r: readonly string[]): string[] => keep.map((i) => r[i] ?? '');
    const at = new Map([...wrap].map(([col, w]) => [keep.indexOf(col), w]));
    const aligned = keep.flatMap((col, pos) => (rightAligned.includes(col) ? [pos] : []));
    return textTable(pick(headers), wrapCells(rows.map(pick), at), aligned);
  };
  /** The room a column gets when every other kept column keeps its natural width. */
  const roomFor = (col: number, keep: readonly number[]): number => {
    const others = keep.filter((i) => i !== col);
    const natural = (i: number): number => Math.max(headers[i]!.length, ...rows.map((r) => (r[i] ?? '').length));
    return width - others.reduce((s, i) => s + natural(i), 0) - GAP * others.length;
  };

  let keep = headers.map((_, i) => i);
  const dropped: string[] = [];
  const full = render(keep, new Map());
  if (widest(full) <= width) return { lines: full, dropped };
  for (const drop of [undefined, ...dropOrder]) {
    if (drop !== undefined) {
      keep = keep.filter((i) => i !== drop);
      dropped.push(headers[drop]!);
      const plain = render(keep, new Map());
      if (widest(plain) <= width) return { lines: plain, dropped };
    }
    if (wrapColumn !== undefined && keep.includes(wrapColumn)) {
      const room = roomFor(wrapColumn, keep);
      if (room >= minWrapWidth) return { lines: render(keep, new Map([[wrapColumn, room]])), dropped };
    }
  }
  const first = keep[0]!;
  return { lines: render(keep, new Map([[first, Math.max(1, roomFor(first, keep))]])), dropped };
}
