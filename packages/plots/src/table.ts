import { PlotError } from './errors.js';

/** A table cell: numbers are formatted, strings are escaped; null, undefined and NaN are missing. */
export type Cell = string | number | null | undefined;
export type Row = Readonly<Record<string, Cell>>;

export interface Column {
  /** The row field to show. */
  key: string;
  /** Header text; default the key. */
  header?: string;
  /** Decimals for this column's numbers; default the table's. */
  digits?: number;
}

export type TableFormat = 'csv' | 'md' | 'latex';

export interface TableOptions {
  format: TableFormat;
  /** Decimals for non-integer numbers; default 3 (as the paper's result files). */
  digits?: number;
  /** Shown for null, undefined and NaN; default '–' (LaTeX: '--', the same en dash). */
  missing?: string;
}

const FORMATS: readonly TableFormat[] = ['csv', 'md', 'latex'];

function isMissing(v: Cell): v is null | undefined {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
}

function checkDigits(d: number, where: string): number {
  if (!Number.isInteger(d) || d < 0 || d > 20) {
    throw new PlotError('PLOT_BAD_OPTION', `${where}: digits must be an integer from 0 to 20, got ${d}`);
  }
  return d;
}

/**
 * A column without text is numeric (right-aligned). Its numbers print as integers when all of them are
 * integers, else with `digits` decimals (rounded as Python's format does, from the binary value).
 */
function formatColumn(values: Cell[], digits: number): { cells: (string | null)[]; numeric: boolean } {
  const present = values.filter((v) => !isMissing(v));
  const numeric = present.every((v) => typeof v === 'number');
  const integers = present.every((v) => typeof v !== 'number' || Number.isInteger(v));
  const cells = values.map((v) => {
    if (isMissing(v)) return null;
    if (typeof v !== 'number') return v;
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    const s = integers ? String(v) : v.toFixed(digits);
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s; // no "-0.000"
  });
  return { cells, numeric };
}

const LATEX_SPECIAL: Record<string, string> = {
  '&': '\\&',
  '%': '\\%',
  $: '\\$',
  '#': '\\#',
  _: '\\_',
  '{': '\\{',
  '}': '\\}',
  '~': '\\textasciitilde{}',
  '^': '\\textasciicircum{}',
  '\\': '\\textbackslash{}',
};

const escapes: Record<TableFormat, (s: string) => string> = {
  // RFC 4180: quote a field holding a comma, a quote or a line break; double the quotes inside.
  csv: (s) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s),
  md: (s) => s.replace(/\|/g, '\\|').replace(/\r\n|\r|\n/g, '<br>'),
  latex: (s) => s.replace(/[&%$#_{}~^\\]/g, (c) => LATEX_SPECIAL[c]).replace(/\r\n|\r|\n/g, ' '),
};

function pad(s: string, width: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, width - [...s].length));
  return right ? fill + s : s + fill;
}

/**
 * Render rows as a CSV (RFC 4180, CRLF line ends), GitHub-Markdown or LaTeX (booktabs) table. Columns of
 * numbers are right-aligned (padded in Markdown and LaTeX, marked `---:` / `r`); every cell is escaped for its
 * format; missing values show as `missing`. The text ends with a line break.
 */
export function formatTable(
  rows: readonly Row[],
  columns: readonly (string | Column)[],
  options: TableOptions,
): string {
  const { format, missing = '–' } = options;
  if (!FORMATS.includes(format)) {
    throw new PlotError(
      'PLOT_BAD_OPTION',
      `unknown table format '${format}'; use one of ${FORMATS.join(', ')}`,
    );
  }
  const digits = checkDigits(options.digits ?? 3, 'formatTable');
  if (columns.length === 0) throw new PlotError('PLOT_BAD_OPTION', 'formatTable needs at least one column');
  const cols = columns.map((c) => (typeof c === 'string' ? { key: c } : c));
  const esc = escapes[format];
  const missingText = esc(format === 'latex' && missing === '–' ? '--' : missing);
  const body = cols.map((c) => {
    const d = c.digits === undefined ? digits : checkDigits(c.digits, `column '${c.key}'`);
    const { cells, numeric } = formatColumn(
      rows.map((r) => r[c.key]),
      d,
    );
    const texts = cells.map((s) => (s === null ? missingText : esc(s)));
    return { header: esc(c.header ?? c.key), texts, numeric };
  });

  if (format === 'csv') {
    const lines = [body.map((b) => b.header), ...rows.map((_, i) => body.map((b) => b.texts[i]))];
    return lines.map((l) => l.join(',')).join('\r\n') + '\r\n';
  }
  const widths = body.map((b) =>
    Math.max([...b.header].length, ...b.texts.map((t) => [...t].length), format === 'md' ? 3 : 0),
  );
  const line = (cells: string[]): string[] => cells.map((t, j) => pad(t, widths[j], body[j].numeric));
  const dataLines = rows.map((_, i) => line(body.map((b) => b.texts[i])));
  const headerLine = line(body.map((b) => b.header));
  if (format === 'md') {
    const rule = body.map((b, j) => (b.numeric ? `${'-'.repeat(widths[j] - 1)}:` : '-'.repeat(widths[j])));
    return [headerLine, rule, ...dataLines].map((l) => `| ${l.join(' | ')} |`).join('\n') + '\n';
  }
  const spec = body.map((b) => (b.numeric ? 'r' : 'l')).join('');
  return [
    `\\begin{tabular}{${spec}}`,
    '\\toprule',
    `${headerLine.join(' & ')} \\\\`,
    '\\midrule',
    ...dataLines.map((l) => `${l.join(' & ')} \\\\`),
    '\\bottomrule',
    '\\end{tabular}',
    '',
  ].join('\n');
}
