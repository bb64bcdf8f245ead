import { PlotError } from './errors.js';
import type { Cell, Row } from './table.js';

export type Aggregate = 'mean' | 'sum' | 'min' | 'max' | 'count';

export interface PivotOptions {
  /** Field whose values become the rows (e.g. 'model'). */
  row: string;
  /** Field whose values become the columns (e.g. 'lang'). */
  col: string;
  /** Field to aggregate (e.g. 'lang_match'). */
  value: string;
  /** How values of the same (row, col) combine; default 'mean' (e.g. over seeds). */
  agg?: Aggregate;
  /** Column order; default the order of first appearance. Values not listed are dropped. */
  cols?: readonly string[];
  /** Row order; default the order of first appearance. Values not listed are dropped. */
  rows?: readonly string[];
}

export interface Pivoted {
  /** The row field first, then one column per `col` value: pass both to formatTable. */
  columns: string[];
  rows: Record<string, Cell>[];
}

const AGGREGATES: Record<Aggregate, (xs: number[]) => number> = {
  mean: (xs) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : Number.NaN),
  sum: (xs) => xs.reduce((s, x) => s + x, 0),
  min: (xs) => (xs.length ? Math.min(...xs) : Number.NaN),
  max: (xs) => (xs.length ? Math.max(...xs) : Number.NaN),
  count: (xs) => xs.length,
};

/**
 * Long rows → a wide table: one row per value of `row`, one column per value of `col`, cells aggregated from
 * `value` (missing and NaN values are left out; a combination with no values stays missing). For language ×
 * model tables of scores averaged over seeds.
 */
export function pivot(data: readonly Row[], options: PivotOptions): Pivoted {
  const { row, col, value, agg = 'mean' } = options;
  if (!Object.hasOwn(AGGREGATES, agg)) {
    throw new PlotError(
      'PLOT_BAD_OPTION',
      `unknown aggregate '${agg}'; use one of ${Object.keys(AGGREGATES).join(', ')}`,
    );
  }
  const groups = new Map<string, Map<string, number[]>>();
  const seenCols: string[] = [];
  data.forEach((r, i) => {
    const rk = r[row];
    const ck = r[col];
    if (rk === null || rk === undefined || ck === null || ck === undefined) {
      throw new PlotError('PLOT_BAD_DATA', `pivot: row ${i} has no '${rk == null ? row : col}' value`);
    }
    const v = r[value];
    if (v !== null && v !== undefined && typeof v !== 'number') {
      throw new PlotError(
        'PLOT_BAD_DATA',
        `pivot: row ${i} has a non-numeric '${value}': ${JSON.stringify(v)}`,
      );
    }
    const byCol = groups.get(String(rk)) ?? new Map<string, number[]>();
    groups.set(String(rk), byCol);
    if (!seenCols.includes(String(ck))) seenCols.push(String(ck));
    const xs = byCol.get(String(ck)) ?? [];
    byCol.set(String(ck), xs);
    if (typeof v === 'number' && !Number.isNaN(v)) xs.push(v);
  });
  const combine = AGGREGATES[agg];
  const cols = options.cols ? [...options.cols] : seenCols;
  if (cols.includes(row)) {
    throw new PlotError(
      'PLOT_BAD_DATA',
      `pivot: a '${col}' value is '${row}', the name of the row field; rename one`,
    );
  }
  const rowKeys = options.rows ? [...options.rows] : [...groups.keys()];
  return {
    columns: [row, ...cols],
    rows: rowKeys.map((rk) => {
      const out: Record<string, Cell> = { [row]: rk };
      for (const ck of cols) {
        const xs = groups.get(rk)?.get(ck);
        out[ck] = xs === undefined || (xs.length === 0 && agg !== 'count') ? null : combine(xs);
      }
      return out;
    }),
  };
}
