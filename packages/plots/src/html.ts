// Pieces of the self-contained HTML report: escaping, tables (sortable, shaded), inline SVG and the page.
import type { FigureTable } from './specs.js';
import type { Cell, Column } from './table.js';

export function esc(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Makes the ids of an SVG unique in a page holding several (Vega numbers its clip paths and gradients per
 * process, and two figures' `gradient_0` would otherwise collide): `id="x"` → `id="p-x"`, and the references.
 */
export function namespaceSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}-${id})`)
    .replace(
      /\b(xlink:)?href="#([^"]+)"/g,
      (_, x: string | undefined, id: string) => `${x ?? ''}href="#${prefix}-${id}"`,
    );
}

/** Inline SVG for the page: no XML prolog, ids namespaced, labelled for screen readers. */
export function inlineSvg(svg: string, prefix: string, label: string): string {
  const body = namespaceSvgIds(svg.replace(/^<\?xml[^>]*>\s*/, ''), prefix);
  // Shown a quarter larger than the SVG's pixel size (Vega's 11 px labels read small in a page), never wider
  // than the page.
  const width = Number(/^<svg\b[^>]*\bwidth="([\d.]+)"/.exec(body)?.[1] ?? 0);
  const style = width ? ` style="width:${Math.round(width * 1.25)}px"` : '';
  return body.replace(/^<svg\b/, `<svg role="img" aria-label="${esc(label)}"${style}`);
}

const isMissing = (v: Cell) => v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));

function cellText(values: readonly Cell[], digits: number | undefined): (v: Cell) => string {
  const integers = values.every((v) => isMissing(v) || typeof v !== 'number' || Number.isInteger(v));
  return (v) => {
    if (isMissing(v)) return '–';
    if (typeof v !== 'number') return String(v);
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    const s = integers && digits === undefined ? String(v) : v.toFixed(digits ?? 3);
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
  };
}

export interface HtmlTableOptions {
  /** Shade the cells of columns with `digits` by value (light → dark blue), for score tables. */
  shade?: boolean;
  caption?: string;
  id?: string;
}

/** A sortable HTML table (click a header; numbers sort as numbers, missing values last). */
export function htmlTable(
  rows: readonly Record<string, Cell>[],
  columns: readonly (string | Column)[],
  options: HtmlTableOptions = {},
): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { key: c } : c));
  const shaded = cols.filter((c) => options.shade && c.digits !== undefined).map((c) => c.key);
  const nums = rows
    .flatMap((r) => shaded.map((k) => r[k]))
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const lo = nums.length ? Math.min(...nums) : 0;
  const hi = nums.length ? Math.max(...nums) : 1;
  const head = cols
    .map((c) => {
      const numeric = rows.some((r) => typeof r[c.key] === 'number');
      return `<th scope="col"${numeric ? ' class="num"' : ''}>${esc(c.header ?? c.key)}</th>`;
    })
    .join('');
  const fmt = cols.map((c) =>
    cellText(
      rows.map((r) => r[c.key]),
      c.digits,
    ),
  );
  const body = rows
    .map((r) => {
      const tds = cols.map((c, j) => {
        const v = r[c.key];
        if (isMissing(v)) return '<td class="missing" data-v="">–</td>';
        if (typeof v === 'number') {
          let style = '';
          if (shaded.includes(c.key) && Number.isFinite(v) && hi > lo) {
            const t = (v - lo) / (hi - lo);
            style = ` style="background:hsl(212 60% ${(96 - 26 * t).toFixed(1)}%)"`;
          }
          return `<td class="num" data-v="${v}"${style}>${esc(fmt[j](v))}</td>`;
        }
        return j === 0 ? `<th scope="row">${esc(v)}</th>` : `<td>${esc(v)}</td>`;
      });
      return `<tr>${tds.join('')}</tr>`;
    })
    .join('\n');
  return `<table class="sortable"${options.id ? ` id="${esc(options.id)}"` : ''}>${options.caption ? `<caption>${esc(options.caption)}</caption>` : ''}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function figureTableHtml(t: FigureTable, id: string): string {
  return htmlTable(t.rows, t.columns, { shade: t.name !== 'training', caption: t.title, id });
}

/** Key–value table of run metadata. */
export function kvTable(entries: readonly [string, string][]): string {
  return `<table class="kv"><tbody>${entries.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`;
}

export const STYLE = `
:root { --ink:#1f2328; --muted:#59636e; --line:#d8dee4; --bg:#f6f8fa; --accent:#4c78a8; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 "Noto Sans", "DejaVu Sans", system-ui, sans-serif; color: var(--ink); background: #fff; }
header { background: linear-gradient(135deg, #27476e, #4c78a8); color: #fff; padding: 28px 40px 22px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .sub { margin: 0; opacity: .9; font-size: 13px; }
header code { background: rgba(255,255,255,.16); color: #fff; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 18px; }
.card { background: rgba(255,255,255,.14); border-radius: 8px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
.card span { font-size: 12px; opacity: .9; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 40px; z-index: 1; font-size: 13px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
main { padding: 8px 40px 40px; max-width: 1400px; }
section { margin: 28px 0 36px; }
h2 { font-size: 20px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { font-size: 16px; }
figure { margin: 12px 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; max-width: 900px; }
.links { font-size: 13px; color: var(--muted); }
.links a { color: var(--accent); }
.notice { background: #fff8e6; border: 1px solid #f0d58c; border-radius: 6px; padding: 10px 14px; }
.notice code { white-space: pre-wrap; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: 13px; }
caption { text-align: left; color: var(--muted); padding-bottom: 4px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; }
thead th { background: var(--bg); position: relative; }
table.sortable thead th { cursor: pointer; user-select: none; padding-right: 20px; }
table.sortable thead th::after { content: "↕"; position: absolute; right: 6px; color: #aab; font-size: 11px; }
table.sortable thead th[aria-sort="ascending"]::after { content: "▲"; color: var(--accent); }
table.sortable thead th[aria-sort="descending"]::after { content: "▼"; color: var(--accent); }
tbody th { text-align: left; font-weight: 600; background: #fff; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: #999; text-align: center; }
table.kv th { text-align: left; background: var(--bg); font-weight: 600; vertical-align: top; }
table.kv td { max-width: 900px; }
ul.warnings li { margin: 4px 0; color: #6b4e00; }
details summary { cursor: pointer; color: var(--accent); }
code { font-size: 12.5px; background: var(--bg); padding: 1px 4px; border-radius: 3px; }
footer { color: var(--muted); font-size: 12px; padding: 0 40px 30px; }
`;

/** Sorts a table by the clicked column: numbers numerically (data-v), text by locale, missing values last. */
export const SORT_SCRIPT = `
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-v');
    if (v === null) return { missing: false, num: false, text: cell.textContent.trim() };
    if (v === '') return { missing: true };
    return { missing: false, num: true, n: Number(v) };
  }
  function sortBy(table, col, th) {
    var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === 'ascending' ? 1 : -1;
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x.missing || y.missing) return x.missing === y.missing ? 0 : x.missing ? 1 : -1;
      if (x.num && y.num) return sign * (x.n - y.n);
      return sign * String(x.text).localeCompare(String(y.text), undefined, { numeric: true });
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.addEventListener('click', function () { sortBy(table, i, th); });
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(table, i, th); } });
    });
  });
})();
`;
