/** UTC calendar months: the budget's period (`YYYY-MM`, as the override parameter holds it). */

/** `YYYY-MM` of a moment, in UTC. */
export function monthOf(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** 00:00 UTC on the first day of the moment's month. */
export function monthStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/** 00:00 UTC on the first day of the following month. */
export function nextMonthStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}

/** The part of a run that falls in one month: its seconds and the last moment of it (in that month). */
export interface MonthSlice {
  readonly month: string;
  readonly seconds: number;
  readonly end: Date;
}

/** Splits [start, end) at UTC month boundaries, oldest first; an empty or reversed span gives nothing. */
export function splitByMonth(start: Date, end: Date): MonthSlice[] {
  const slices: MonthSlice[] = [];
  let from = start;
  while (from < end) {
    const boundary = nextMonthStart(from);
    const to = boundary < end ? boundary : end;
    // A slice that ends on the boundary is stamped 1 ms before it, so its datum stays in its month.
    slices.push({ month: monthOf(from), seconds: (to.getTime() - from.getTime()) / 1000, end: to === boundary ? new Date(boundary.getTime() - 1) : to });
    from = to;
  }
  return slices;
}
