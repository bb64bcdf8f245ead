// The experiment report: index.html (self-contained: inline SVG, sortable tables, run metadata), report.md, the
// figures as PNG/SVG/Vega-Lite files and the tables as CSV/Markdown/LaTeX.
import path from 'node:path';
import { PlotError } from './errors.js';
import { type Figure, figure } from './figure.js';
import type { FontOptions } from './fonts.js';
import { writeFileAtomic } from './fsutil.js';
import { esc, figureTableHtml, htmlTable, inlineSvg, kvTable, SORT_SCRIPT, STYLE } from './html.js';
import type { LangLabels } from './langs.js';
import type { MissingGlyphs } from './render.js';
import { loadRuns, type Runs } from './runs.js';
import { FIGURE_DESCRIPTIONS, type FigureKind, type FigureTable, figureSpec, type Spread } from './specs.js';
import { type Cell, formatTable, type TableFormat } from './table.js';

export interface ReportOptions extends FontOptions {
  /** Folder to write into (created). */
  out: string;
  /** Title; default run.json's `title`, else "Experiment report: <folder>". */
  title?: string;
  /** Table files to write under tables/ (default csv). */
  formats?: readonly TableFormat[];
  /** PNG pixels per SVG pixel (default 2). */
  scale?: number;
  missingGlyphs?: MissingGlyphs;
  langLabels?: LangLabels;
  spread?: Spread;
  /** Fidelity metric: lang_match (default) or tgt_lang. */
  metric?: 'lang_match' | 'tgt_lang';
  /** Called with one line per step (figure rendered, file written). */
  onProgress?: (message: string) => void;
  /** The time shown as "generated" (default now). */
  now?: Date;
}

export interface ReportFigure {
  kind: FigureKind;
  title: string;
  /** Rendered; false when the results could not be drawn (see message). */
  ok: boolean;
  message?: string;
  /** PNG and SVG paths relative to the output folder. */
  png?: string;
  svg?: string;
  tables: string[];
}

export interface ReportResult {
  out: string;
  /** index.html and report.md paths. */
  html: string;
  markdown: string;
  figures: ReportFigure[];
  /** Every file written, relative to `out`. */
  files: string[];
  warnings: string[];
}

interface Section {
  kind: FigureKind;
  title: string;
  /** Which results the figure needs, and where they come from (for "not in this experiment"). */
  has: (r: Runs) => boolean;
  source: string;
}

const SECTIONS: Section[] = [
  {
    kind: 'fidelity-bars',
    title: 'Language fidelity per test language',
    has: (r) => r.fidelity.length > 0,
    source: 'language fidelity: <model>/…-s{seed}-….eval',
  },
  {
    kind: 'fidelity-lines',
    title: 'Fidelity and helpfulness against the number of languages',
    has: (r) => r.fidelity.length > 0,
    source: 'language fidelity of two or more mixes: <model>/…-s{seed}-….eval',
  },
  {
    kind: 'helpfulness-heatmap',
    title: 'Helpfulness per language and model',
    has: (r) => r.helpfulness.length > 0,
    source: 'judge outputs: <model>/…-l300-ds42-as42-….jsonl',
  },
  {
    kind: 'xcsqa-heatmap',
    title: 'X-CSQA: prompt language × data language',
    has: (r) => r.tasks.some((t) => t.family === 'xcsqa'),
    source: 'X-CSQA results: <model>/**/results.json with xcsqa_<prompt>_<data> tasks',
  },
  {
    kind: 'xquad-heatmap',
    title: 'XQuAD: prompt language × data language',
    has: (r) => r.tasks.some((t) => t.family === 'xquad'),
    source: 'XQuAD results: <model>/**/results.json with xquad_<prompt>_<data> tasks',
  },
  {
    kind: 'xnli-bars',
    title: 'XNLI accuracy',
    has: (r) => r.tasks.some((t) => t.family === 'xnli'),
    source: 'XNLI results: <model>/**/results.json with xnli_<lang> tasks',
  },
  {
    kind: 'loss-curves',
    title: 'Training and evaluation loss',
    has: (r) => r.training.length > 0,
    source: 'training logs: <model>/**/train-log.jsonl',
  },
];

const EXT: Record<TableFormat, string> = { csv: 'csv', md: 'md', latex: 'tex' };

function jsonText(v: unknown): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.join(', ');
  if (typeof v === 'object' && Object.values(v).every((x) => typeof x !== 'object' || x === null)) {
    return Object.entries(v)
      .map(([k, x]) => `${k} ${x}`)
      .join(', ');
  }
  return JSON.stringify(v);
}

/** What the report says about the run: from run.json first, else from what the files record. */
function metadata(runs: Runs): [string, string][] {
  const m = runs.meta;
  const out: [string, string][] = [];
  const used = new Set(['title', 'models']);
  const add = (label: string, keys: string[], fallback: unknown) => {
    const key = keys.find((k) => m[k] !== undefined);
    if (key) used.add(key);
    const v = key ? m[key] : fallback;
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return;
    out.push([label, jsonText(v)]);
  };
  add('Base model', ['base_model', 'base'], undefined);
  out.push(['Models (tuning mixes)', runs.models.map((x) => x.name).join(', ')]);
  add('Test sets', ['testsets', 'test_sets'], runs.found.testsets);
  add('Seeds', ['seeds'], runs.found.seeds);
  const sampling = runs.found.sampling.map((s) => {
    const { model, ...rest } = s;
    return `${model}: ${jsonText(Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null)))}`;
  });
  add('Sampling', ['sampling', 'generation'], sampling.length ? sampling.join('; ') : undefined);
  add('Backend', ['backend'], runs.found.backends);
  add('Judge', ['judge'], runs.found.judgeModels);
  add('Versions', ['versions'], undefined);
  for (const [k, v] of Object.entries(m)) if (!used.has(k)) out.push([k, jsonText(v)]);
  if (runs.found.taskConfigs.length) {
    out.push([
      'Task runs',
      runs.found.taskConfigs
        .map((c) => {
          const { model, file, ...rest } = c;
          return `${model} (${file}): ${jsonText(rest)}`;
        })
        .join('; '),
    ]);
  }
  if (Object.keys(runs.found.versions).length) out.push(['Task versions', jsonText(runs.found.versions)]);
  return out;
}

function modelsTable(runs: Runs): {
  columns: { key: string; header: string }[];
  rows: Record<string, Cell>[];
} {
  const metaKeys = [...new Set(runs.models.flatMap((x) => Object.keys(x.meta ?? {})))];
  const count = (model: string, kind: string) =>
    runs.files.filter((f) => f.model === model && f.kind === kind).length;
  return {
    columns: [
      { key: 'model', header: 'model' },
      { key: 'n', header: 'languages' },
      { key: 'from', header: 'count from' },
      { key: 'languages', header: 'language list' },
      ...metaKeys.map((k) => ({ key: `meta:${k}`, header: k })),
      { key: 'fidelity', header: '.eval files' },
      { key: 'judge', header: 'judge files' },
      { key: 'tasks', header: 'results.json' },
      { key: 'training', header: 'train logs' },
    ],
    rows: runs.models.map((x) => {
      const row: Record<string, Cell> = {
        model: x.name,
        n: x.nLanguages,
        from: x.nLanguagesFrom ?? 'unknown',
        languages: x.languages?.join(', ') ?? null,
        fidelity: count(x.name, 'fidelity'),
        judge: count(x.name, 'judge'),
        tasks: count(x.name, 'tasks'),
        training: count(x.name, 'training'),
      };
      for (const k of metaKeys) row[`meta:${k}`] = x.meta?.[k] === undefined ? null : jsonText(x.meta[k]);
      return row;
    }),
  };
}

/** Task results outside the figures (other task families), model × task. */
function otherTasksTable(runs: Runs): FigureTable | null {
  const rows = runs.tasks.filter((t) => !['xnli', 'xcsqa', 'xquad', 'chat'].includes(t.family));
  if (rows.length === 0) return null;
  const keys = [...new Set(rows.map((t) => `${t.task} ${t.metric}`))];
  return {
    name: 'other-tasks',
    title: 'Other task results (task and metric per column)',
    columns: [{ key: 'model', header: 'model' }, ...keys.map((k) => ({ key: k, header: k, digits: 3 }))],
    rows: runs.models
      .filter((m) => rows.some((t) => t.model === m.name))
      .map((m) => {
        const row: Record<string, Cell> = { model: m.name };
        for (const t of rows.filter((x) => x.model === m.name)) row[`${t.task} ${t.metric}`] = t.value;
        return row;
      }),
  };
}

/**
 * Writes the report of a runs folder (or of loadRuns()'s result) into `options.out`: `index.html`
 * (self-contained), `report.md`, `figures/<kind>.{png,svg,vl.json}` and `tables/<name>.<csv|md|tex>`. A figure
 * whose results are inconsistent is replaced by a notice saying why; figures whose results are absent are listed
 * as not in the experiment. Throws `PLOT_NO_DATA` for a folder without results, and font errors
 * (`PLOT_MISSING_GLYPHS`, `PLOT_NO_FONTS`) as they are.
 */
export async function writeReport(runsOrDir: string | Runs, options: ReportOptions): Promise<ReportResult> {
  if (!options || typeof options.out !== 'string' || options.out === '') {
    throw new PlotError('PLOT_BAD_OPTION', 'writeReport: options.out (the output folder) is required');
  }
  const formats = options.formats ?? ['csv'];
  for (const f of formats) {
    if (!(f in EXT))
      throw new PlotError('PLOT_BAD_OPTION', `unknown table format '${f}'; use csv, md or latex`);
  }
  const progress = options.onProgress ?? (() => {});
  const runs = typeof runsOrDir === 'string' ? await loadRuns(runsOrDir) : runsOrDir;
  const out = path.resolve(options.out);
  const warnings = [...runs.warnings];
  const files: string[] = [];
  const write = async (rel: string, data: string | Uint8Array) => {
    await writeFileAtomic(path.join(out, rel), data);
    files.push(rel);
  };
  const title =
    options.title ??
    (typeof runs.meta.title === 'string' ? runs.meta.title : `Experiment report: ${path.basename(runs.dir)}`);
  const generated = (options.now ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');

  const figOptions = {
    scale: options.scale,
    missingGlyphs: options.missingGlyphs,
    langLabels: options.langLabels,
    spread: options.spread,
    metric: options.metric,
    fonts: options.fonts,
    fontDirs: options.fontDirs,
    systemFonts: options.systemFonts,
  };
  const results: ReportFigure[] = [];
  const htmlSections: string[] = [];
  const mdSections: string[] = [];
  const absent: Section[] = [];
  const writeTables = async (tables: FigureTable[]) => {
    const names: string[] = [];
    for (const t of tables) {
      for (const f of formats) {
        const rel = `tables/${t.name}.${EXT[f]}`;
        await write(rel, formatTable(t.rows, t.columns, { format: f }));
        names.push(rel);
      }
    }
    return names;
  };

  for (const section of SECTIONS) {
    if (!section.has(runs)) {
      absent.push(section);
      continue;
    }
    const id = `fig-${section.kind}`;
    let fig: Figure;
    try {
      fig = await figure(section.kind, runs, figOptions);
    } catch (e) {
      const err = e as PlotError;
      if (!(err?.isPolyglotError && ['PLOT_NO_DATA', 'PLOT_BAD_DATA'].includes(err.code))) throw e;
      const message = `${section.title}: not drawn: ${err.message}`;
      warnings.push(message);
      results.push({ kind: section.kind, title: section.title, ok: false, message: err.message, tables: [] });
      htmlSections.push(
        `<section id="${id}" class="figure"><h2>${esc(section.title)}</h2><p class="notice" role="note"><b>Not drawn.</b> <code>${esc(err.message)}</code></p></section>`,
      );
      mdSections.push(`## ${section.title}\n\n> **Not drawn.** ${err.message.replace(/\n/g, ' ')}\n`);
      progress(`${section.kind}: not drawn (${err.code})`);
      continue;
    }
    warnings.push(...fig.warnings);
    const png = `figures/${section.kind}.png`;
    const svg = `figures/${section.kind}.svg`;
    const spec = `figures/${section.kind}.vl.json`;
    await write(png, fig.png!);
    await write(svg, fig.svg);
    await write(spec, `${JSON.stringify(fig.spec, null, 2)}\n`);
    const tableFiles = await writeTables(fig.tables);
    results.push({ kind: section.kind, title: section.title, ok: true, png, svg, tables: tableFiles });
    progress(`${section.kind}: ${png}`);
    htmlSections.push(
      [
        `<section id="${id}" class="figure" data-kind="${section.kind}">`,
        `<h2>${esc(section.title)}</h2>`,
        `<figure>${inlineSvg(fig.svg, section.kind, fig.caption)}<figcaption>${esc(fig.caption)}</figcaption></figure>`,
        `<p class="links">Files: <a href="${png}">PNG</a> · <a href="${svg}">SVG</a> · <a href="${spec}">Vega-Lite spec</a>${tableFiles.map((t) => ` · <a href="${t}">${esc(path.basename(t))}</a>`).join('')}</p>`,
        ...fig.tables.map((t, i) => figureTableHtml(t, `${id}-table-${i}`)),
        '</section>',
      ].join('\n'),
    );
    mdSections.push(
      [
        `## ${section.title}`,
        '',
        `![${fig.caption.replace(/[[\]]/g, '')}](${png})`,
        '',
        `*${fig.caption}*`,
        '',
        ...fig.tables.flatMap((t) => [
          `**${t.title}**`,
          '',
          formatTable(t.rows, t.columns, { format: 'md' }),
        ]),
      ].join('\n'),
    );
  }

  const other = otherTasksTable(runs);
  if (other) {
    const tableFiles = await writeTables([other]);
    htmlSections.push(
      `<section id="other-tasks"><h2>Other task results</h2>${figureTableHtml(other, 'other-tasks-table')}<p class="links">Files: ${tableFiles.map((t) => `<a href="${t}">${esc(path.basename(t))}</a>`).join(' · ')}</p></section>`,
    );
    mdSections.push(`## Other task results\n\n${formatTable(other.rows, other.columns, { format: 'md' })}`);
  }

  const meta = metadata(runs);
  const models = modelsTable(runs);
  const langs = new Set([...runs.fidelity, ...runs.helpfulness].map((r) => r.lang));
  for (const t of runs.tasks) if (t.dataLang) langs.add(t.dataLang);
  const cards: [string, string][] = [
    [String(runs.models.length), 'models'],
    [String(langs.size), 'languages'],
    [runs.found.seeds.length ? runs.found.seeds.join(', ') : '–', 'seeds'],
    [String(results.filter((f) => f.ok).length), 'figures'],
    [String(runs.files.length), 'files read'],
  ];
  const drawn = results.filter((f) => f.ok);
  const nav = [
    ['meta', 'Run metadata'],
    ...results.map((f) => [`fig-${f.kind}`, f.title]),
    ...(other ? [['other-tasks', 'Other tasks']] : []),
    ['notes', 'Notes'],
    ['files', 'Files'],
  ];
  const absentHtml = absent.length
    ? `<p>Not in this experiment (add the files to draw them):</p><ul>${absent.map((s) => `<li><b>${esc(s.title)}</b> — ${esc(FIGURE_DESCRIPTIONS[s.kind])}; needs ${esc(s.source)}</li>`).join('')}</ul>`
    : '';
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="@polyglot/plots">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${esc(title)}</h1>
<p class="sub">Runs folder <code>${esc(runs.dir)}</code> · generated ${esc(generated)}</p>
<div class="cards">${cards.map(([v, l]) => `<div class="card"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join('')}</div>
</header>
<nav aria-label="Sections">${nav.map(([id, t]) => `<a href="#${id}">${esc(t)}</a>`).join('')}</nav>
<main>
<section id="meta">
<h2>Run metadata</h2>
${kvTable(meta.map(([k, v]) => [k, esc(v)]))}
<h3>Models</h3>
${htmlTable(models.rows, models.columns, { id: 'models-table', caption: 'Tuning mixes, their number of languages (used by the fidelity-against-languages figure) and the files read for each' })}
</section>
${htmlSections.join('\n')}
<section id="notes">
<h2>Notes</h2>
${warnings.length ? `<ul class="warnings">${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '<p>No warnings: the results are complete and consistent.</p>'}
${absentHtml}
</section>
<section id="files">
<h2>Files</h2>
<details><summary>${runs.files.length} files read</summary>
${htmlTable(
  runs.files.map((f) => ({
    kind: f.kind,
    model: f.model,
    file: path.isAbsolute(f.file) ? path.relative(runs.dir, f.file) : f.file,
  })),
  ['kind', 'model', 'file'],
  { id: 'files-table' },
)}
</details>
</section>
</main>
<footer>${drawn.length} figures · tables also as ${formats.join(', ')} under <code>tables/</code> · written by @polyglot/plots</footer>
<script>${SORT_SCRIPT}</script>
</body>
</html>
`;
  const md = [
    `# ${title}`,
    '',
    `Runs folder \`${runs.dir}\` · generated ${generated}`,
    '',
    '## Run metadata',
    '',
    formatTable(
      meta.map(([k, v]) => ({ key: k, value: v })),
      [
        { key: 'key', header: 'what' },
        { key: 'value', header: 'value' },
      ],
      { format: 'md' },
    ),
    '### Models',
    '',
    formatTable(models.rows, models.columns, { format: 'md' }),
    ...mdSections,
    '## Notes',
    '',
    ...(warnings.length
      ? warnings.map((w) => `- ${w}`)
      : ['No warnings: the results are complete and consistent.']),
    ...(absent.length
      ? ['', 'Not in this experiment:', '', ...absent.map((s) => `- **${s.title}**: needs ${s.source}`)]
      : []),
    '',
  ].join('\n');
  await write('report.md', md);
  await write('index.html', html);
  progress(`report: ${path.join(out, 'index.html')}`);
  return {
    out,
    html: path.join(out, 'index.html'),
    markdown: path.join(out, 'report.md'),
    figures: results,
    files,
    warnings,
  };
}

/** The tables of the report's figures (the same numbers, no rendering), e.g. for `--format latex`. */
export function reportTables(
  runs: Runs,
  options: Pick<ReportOptions, 'langLabels' | 'spread' | 'metric'> = {},
): { tables: FigureTable[]; warnings: string[] } {
  const tables: FigureTable[] = [];
  const warnings: string[] = [];
  for (const section of SECTIONS) {
    if (!section.has(runs)) continue;
    try {
      const built = figureSpec(section.kind, runs, options);
      tables.push(...built.tables);
      warnings.push(...built.warnings);
    } catch (e) {
      const err = e as PlotError;
      if (!(err?.isPolyglotError && ['PLOT_NO_DATA', 'PLOT_BAD_DATA'].includes(err.code))) throw e;
      warnings.push(`${section.title}: ${err.message}`);
    }
  }
  const other = otherTasksTable(runs);
  if (other) tables.push(other);
  return { tables, warnings };
}
