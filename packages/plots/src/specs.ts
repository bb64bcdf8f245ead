// The paper's figures as Vega-Lite specs, each with the table of the numbers it shows.
import { PlotError } from './errors.js';
import { type LangLabels, langLabel, sortLangs } from './langs.js';
import { languagesInMix } from './names.js';
import {
  type FidelityRow,
  type FigureData,
  type JudgeRow,
  type ModelInfo,
  modelInfo,
  sortModels,
  type TaskRow,
} from './runs.js';
import type { Cell, Column } from './table.js';

/** The figures this package draws. */
export const FIGURE_KINDS = [
  'fidelity-bars',
  'fidelity-lines',
  'helpfulness-heatmap',
  'xcsqa-heatmap',
  'xquad-heatmap',
  'task-heatmap',
  'xnli-bars',
  'loss-curves',
] as const;
export type FigureKind = (typeof FIGURE_KINDS)[number];

/** What each figure shows (for `--help`, the report and errors). */
export const FIGURE_DESCRIPTIONS: Readonly<Record<FigureKind, string>> = {
  'fidelity-bars': 'language fidelity per test language, grouped by tuning mix (the paper’s teaser figure)',
  'fidelity-lines':
    'fidelity (and helpfulness) against the number of languages in the tuning mix, one line per test language, seed spread as error bars (the paper’s main figure)',
  'helpfulness-heatmap': 'mean judge score per test language × model',
  'xcsqa-heatmap': 'X-CSQA accuracy per prompt language × data language, one panel per model',
  'xquad-heatmap': 'XQuAD score per prompt language × data language, one panel per model',
  'task-heatmap': 'any task’s score per prompt language × data language (options.task names the task family)',
  'xnli-bars': 'XNLI accuracy per language and model, with the mean over languages',
  'loss-curves': 'training and evaluation loss against the step, one curve per training run',
};

/** How seed-to-seed variation is drawn: min–max range (default), ± one standard deviation, or not at all. */
export type Spread = 'minmax' | 'std' | 'none';

export interface SpecOptions {
  /** Title; null for none; default per figure. */
  title?: string | null;
  /** fidelity: `lang_match` (default) or `tgt_lang`; tasks: the metric (default acc, then contains, exact_match, f1, …). */
  metric?: string;
  /** Languages to show, in order (default: all, English first then alphabetical). */
  langs?: readonly string[];
  /** Models to show, in order (default: all, by number of languages in the mix). */
  models?: readonly string[];
  langLabels?: LangLabels;
  spread?: Spread;
  /** task-heatmap: the task family (`xcsqa`, `xquad`, …). */
  task?: string;
  /** Width of one panel's plotting area in pixels (heatmaps and bars size themselves from their cells). */
  width?: number;
  /** Height of one panel's plotting area in pixels. */
  height?: number;
  /** fidelity-lines: add the helpfulness panel where judge scores exist (default true). */
  helpfulness?: boolean;
  /** Judge score scale for axes and colours (default [1, 6], the paper's rubric). */
  scoreRange?: readonly [number, number];
}

/** A table of the numbers a figure shows (pass `columns` and `rows` to formatTable). */
export interface FigureTable {
  name: string;
  title: string;
  columns: Column[];
  rows: Record<string, Cell>[];
}

export interface FigureSpec {
  kind: FigureKind;
  /** A Vega-Lite spec with inline data. */
  spec: Record<string, any>;
  tables: FigureTable[];
  /** One sentence on what the figure shows and how it was computed. */
  caption: string;
  warnings: string[];
}

// Tableau 10: distinguishable, colour-blind friendlier than the default category10.
const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#e45756',
  '#72b7b2',
  '#54a24b',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
];
const PALETTE20 = [
  '#4c78a8',
  '#9ecae9',
  '#f58518',
  '#ffbf79',
  '#54a24b',
  '#88d27a',
  '#b79a20',
  '#f2cf5b',
  '#439894',
  '#83bcb6',
  '#e45756',
  '#ff9d98',
  '#79706e',
  '#bab0ac',
  '#d67195',
  '#fcbfd2',
  '#b279a2',
  '#d6a5c9',
  '#9e765f',
  '#d8b5a5',
];

const palette = (n: number) => (n <= 10 ? PALETTE.slice(0, Math.max(n, 1)) : PALETTE20);

/** Shared look: fonts are filled in by the renderer. */
export function baseConfig(): Record<string, unknown> {
  return {
    background: 'white',
    padding: 12,
    view: { stroke: null },
    axis: {
      labelFontSize: 11,
      titleFontSize: 12,
      titleFontWeight: 600,
      titleColor: '#333',
      labelColor: '#333',
      gridColor: '#ececec',
      domainColor: '#999',
      tickColor: '#999',
    },
    legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 600, labelLimit: 220 },
    title: {
      fontSize: 15,
      fontWeight: 600,
      anchor: 'start',
      subtitleFontSize: 11.5,
      subtitleColor: '#555',
      offset: 12,
    },
    header: { labelFontSize: 12, labelFontWeight: 600, titleFontSize: 12 },
  };
}

interface Summary {
  mean: number;
  lo: number;
  hi: number;
  /** How many values (seeds). */
  n: number;
}

function summarise(values: readonly number[], spread: Spread): Summary | null {
  if (values.length === 0) return null;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (spread === 'none' || values.length < 2) return { mean, lo: mean, hi: mean, n: values.length };
  if (spread === 'minmax')
    return { mean, lo: Math.min(...values), hi: Math.max(...values), n: values.length };
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
  return { mean, lo: mean - sd, hi: mean + sd, n: values.length };
}

const SPREAD_TEXT: Record<Spread, string> = {
  minmax: 'error bars: min–max over seeds',
  std: 'error bars: ± one standard deviation over seeds',
  none: '',
};

function checkOptions(kind: FigureKind, o: SpecOptions): void {
  if (o.spread !== undefined && !['minmax', 'std', 'none'].includes(o.spread)) {
    throw new PlotError('PLOT_BAD_OPTION', `${kind}: spread must be minmax, std or none, got '${o.spread}'`);
  }
  if (o.langLabels !== undefined && !['code', 'name', 'autonym'].includes(o.langLabels)) {
    throw new PlotError(
      'PLOT_BAD_OPTION',
      `${kind}: langLabels must be code, name or autonym, got '${o.langLabels}'`,
    );
  }
  for (const k of ['width', 'height'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isFinite(v) || v < 20 || v > 5000)) {
      throw new PlotError(
        'PLOT_BAD_OPTION',
        `${kind}: ${k} must be a number of pixels from 20 to 5000, got ${v}`,
      );
    }
  }
}

function need<T>(
  kind: FigureKind,
  rows: readonly T[] | undefined,
  what: string,
  where: string,
): readonly T[] {
  if (!rows || rows.length === 0) {
    throw new PlotError(
      'PLOT_NO_DATA',
      `${kind}: no ${what} to plot (${where}); a figure of nothing would be empty — check the runs folder or the data passed`,
    );
  }
  return rows;
}

function checkRow(kind: FigureKind, r: Record<string, unknown>, i: number, fields: string[]): void {
  for (const f of fields) {
    if (typeof r[f] !== 'string' || r[f] === '') {
      throw new PlotError('PLOT_BAD_DATA', `${kind}: row ${i} has no '${f}' (got ${JSON.stringify(r[f])})`);
    }
  }
}

/** Model order: as `options.models`, else data.models' order, else by number of languages then name. */
function orderModels(present: Iterable<string>, data: FigureData, o: SpecOptions): ModelInfo[] {
  const names = [...new Set(present)];
  const infoOf = (n: string) => data.models?.find((m) => m.name === n) ?? modelInfo(n);
  if (o.models) {
    const missing = o.models.filter((m) => !names.includes(m));
    if (missing.length === o.models.length) {
      throw new PlotError(
        'PLOT_NO_DATA',
        `none of the models asked for (${o.models.join(', ')}) has results; there are: ${names.join(', ')}`,
      );
    }
    return o.models.filter((m) => names.includes(m)).map(infoOf);
  }
  const infos = names.map(infoOf);
  const given = data.models ?? [];
  if (given.length && names.every((n) => given.some((m) => m.name === n))) {
    return [...infos].sort(
      (a, b) => given.findIndex((m) => m.name === a.name) - given.findIndex((m) => m.name === b.name),
    );
  }
  return sortModels(infos);
}

/** Approximate label width in pixels at 11 px (wide scripts count double), for cell sizes. */
function labelWidth(labels: readonly string[]): number {
  let max = 0;
  for (const l of labels) {
    let w = 0;
    for (const ch of l)
      w += /[\u1100-\u11ff\u2e80-\ua4cf\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]/.test(ch) ? 11 : 6.5;
    max = Math.max(max, w);
  }
  return max;
}

function orderLangs(present: Iterable<string>, o: SpecOptions): string[] {
  const all = sortLangs(present);
  if (!o.langs) return all;
  const kept = o.langs.filter((l) => all.includes(l));
  if (kept.length === 0) {
    throw new PlotError(
      'PLOT_NO_DATA',
      `none of the languages asked for (${o.langs.join(', ')}) has results; there are: ${all.join(', ')}`,
    );
  }
  return kept;
}

/** Width of one bar (with xOffset, Vega-Lite's width step is per bar): narrower when there are many. */
function barStep(models: number, groups: number): number {
  const bars = models * groups;
  return bars <= 24 ? 16 : bars <= 60 ? 12 : bars <= 120 ? 9 : 7;
}

function colorScale(models: readonly string[]) {
  return { domain: [...models], range: palette(models.length) };
}

function meanOf(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

function title(o: SpecOptions, text: string, subtitle: string[]): Record<string, unknown> | undefined {
  if (o.title === null) return undefined;
  return { text: o.title ?? text, subtitle: subtitle.filter(Boolean) };
}

function seedText(seeds: Set<string>): string {
  const s = [...seeds].filter((x) => x !== 'null' && x !== 'undefined');
  if (s.length === 0) return '';
  return s.length === 1 ? `seed ${s[0]}` : `mean over seeds ${s.join(', ')}`;
}

/** Groups values by key and summarises each group. */
function groupSummaries<T>(
  rows: readonly T[],
  key: (r: T) => string,
  value: (r: T) => number | null,
  spread: Spread,
) {
  const groups = new Map<string, number[]>();
  for (const r of rows) {
    const k = key(r);
    const v = value(r);
    const xs = groups.get(k) ?? [];
    groups.set(k, xs);
    if (v !== null && Number.isFinite(v)) xs.push(v);
  }
  const out = new Map<string, Summary>();
  for (const [k, xs] of groups) {
    const s = summarise(xs, spread);
    if (s) out.set(k, s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

function fidelityRows(kind: FigureKind, data: FigureData, o: SpecOptions) {
  const metric = o.metric ?? 'lang_match';
  if (metric !== 'lang_match' && metric !== 'tgt_lang') {
    throw new PlotError('PLOT_BAD_OPTION', `${kind}: metric must be lang_match or tgt_lang, got '${metric}'`);
  }
  const rows = need(
    kind,
    data.fidelity,
    'language fidelity results',
    'no .eval files / FigureData.fidelity is empty',
  );
  rows.forEach((r, i) => {
    checkRow(kind, r as unknown as Record<string, unknown>, i, ['model', 'lang']);
    const v = r[metric];
    if (v !== null && v !== undefined && (typeof v !== 'number' || v < 0 || v > 1 || Number.isNaN(v))) {
      throw new PlotError(
        'PLOT_BAD_DATA',
        `${kind}: row ${i} (${r.model}, ${r.lang}) has ${metric} ${v}, not a share in [0, 1]`,
      );
    }
  });
  const value = (r: FidelityRow) => (r[metric] ?? null) as number | null;
  if (rows.every((r) => value(r) === null)) {
    throw new PlotError(
      'PLOT_NO_DATA',
      `${kind}: every ${metric} value is missing${metric === 'tgt_lang' ? ' (the .eval files were scored without an expected language)' : ''}; nothing to plot`,
    );
  }
  return { rows, metric, value };
}

const METRIC_TITLE: Record<string, string> = {
  lang_match: 'Language fidelity (lang_match)',
  tgt_lang: 'Responses in the expected language (tgt_lang)',
};

function fidelityBars(data: FigureData, o: SpecOptions): FigureSpec {
  const kind: FigureKind = 'fidelity-bars';
  const { rows, metric, value } = fidelityRows(kind, data, o);
  const spread = o.spread ?? 'minmax';
  const models = orderModels(
    rows.map((r) => r.model),
    data,
    o,
  ).map((m) => m.name);
  const langs = orderLangs(
    rows.map((r) => r.lang),
    o,
  );
  const sums = groupSummaries(rows, (r) => `${r.model}\u0000${r.lang}`, value, spread);
  const values: Record<string, unknown>[] = [];
  for (const m of models) {
    for (const l of langs) {
      const s = sums.get(`${m}\u0000${l}`);
      if (s) values.push({ model: m, lang: l, label: langLabel(l, o.langLabels), ...s });
    }
  }
  if (values.length === 0)
    throw new PlotError('PLOT_NO_DATA', `${kind}: no values for the models and languages asked for`);
  const seeds = new Set(rows.map((r) => String(r.seed)));
  const bars = values.some((v) => (v.n as number) > 1) && spread !== 'none';
  const step = barStep(models.length, langs.length);
  const labels = langs.map((l) => langLabel(l, o.langLabels));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(o, 'Language fidelity per test language', [
      `${METRIC_TITLE[metric]}, ${seedText(seeds) || 'one run each'}${bars ? `; ${SPREAD_TEXT[spread]}` : ''}`,
    ]),
    data: { values },
    width: o.width ?? { step },
    height: o.height ?? 260,
    encoding: {
      x: {
        field: 'label',
        type: 'nominal',
        sort: labels,
        title: 'Test language',
        axis: { labelAngle: 0, labelPadding: 6 },
      },
      xOffset: { field: 'model', type: 'nominal', sort: models },
    },
    layer: [
      {
        mark: { type: 'bar', width: { band: 0.95 } },
        encoding: {
          y: {
            field: 'mean',
            type: 'quantitative',
            title: METRIC_TITLE[metric],
            scale: { domain: [0, 1] },
            axis: { format: '.1f', tickCount: 5 },
          },
          color: {
            field: 'model',
            type: 'nominal',
            sort: models,
            scale: colorScale(models),
            title: 'Tuning mix',
            legend: { orient: 'right' },
          },
        },
      },
      ...(bars
        ? [
            {
              mark: { type: 'rule', color: '#222', strokeWidth: 1.2 },
              encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
            },
          ]
        : []),
    ],
    config: baseConfig(),
  };
  const table = modelLangTable(
    'fidelity',
    `${METRIC_TITLE[metric]} per model and test language (${seedText(seeds) || 'one run'})`,
    models,
    langs,
    sums,
  );
  return {
    kind,
    spec,
    tables: [table],
    caption: `${METRIC_TITLE[metric]} of each tuning mix per test language: the share of responses written in the language of the prompt, ${seedText(seeds) || 'one run each'}${bars ? `; ${SPREAD_TEXT[spread]}` : ''}.`,
    warnings: [],
  };
}

/** model × language table of means, with the mean over languages. */
function modelLangTable(
  name: string,
  heading: string,
  models: readonly string[],
  langs: readonly string[],
  sums: Map<string, Summary>,
  digits = 3,
): FigureTable {
  const rows = models.map((m) => {
    const row: Record<string, Cell> = { model: m };
    const xs: number[] = [];
    for (const l of langs) {
      const s = sums.get(`${m}\u0000${l}`);
      row[l] = s ? s.mean : null;
      if (s) xs.push(s.mean);
    }
    row.__mean = xs.length === langs.length ? meanOf(xs) : null;
    return row;
  });
  return {
    name,
    title: heading,
    columns: [
      { key: 'model', header: 'model' },
      ...langs.map((l) => ({ key: l, header: l, digits })),
      { key: '__mean', header: 'mean', digits },
    ],
    rows,
  };
}

function fidelityLines(data: FigureData, o: SpecOptions): FigureSpec {
  const kind: FigureKind = 'fidelity-lines';
  const { rows, metric, value } = fidelityRows(kind, data, o);
  const spread = o.spread ?? 'minmax';
  const warnings: string[] = [];
  const judge = o.helpfulness === false ? [] : (data.helpfulness ?? []).filter((r) => r.score !== null);
  const all = orderModels([...rows.map((r) => r.model), ...judge.map((r) => r.model)], data, o);
  const unknown = all.filter((m) => m.nLanguages === null).map((m) => m.name);
  if (unknown.length) {
    warnings.push(
      `${kind}: left out ${unknown.join(', ')}: the number of languages in the mix is unknown (name it Mono / Multi-k, or give "n_languages" under "models" in run.json)`,
    );
  }
  const mixes = all.filter((m) => m.nLanguages !== null && m.nLanguages > 0);
  const byK = new Map<number, string>();
  for (const m of mixes) {
    const prev = byK.get(m.nLanguages!);
    if (prev) {
      throw new PlotError(
        'PLOT_BAD_DATA',
        `${kind}: ${prev} and ${m.name} both have ${m.nLanguages} languages; the figure has one point per number of languages — choose the models to plot (options.models / --models)`,
      );
    }
    byK.set(m.nLanguages!, m.name);
  }
  if (byK.size < 2) {
    throw new PlotError(
      'PLOT_NO_DATA',
      `${kind}: needs at least two tuning mixes with a known number of languages, has ${byK.size ? [...byK].map(([k, m]) => `${m} (${k})`).join(', ') : 'none'}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`,
    );
  }
  const kOf = new Map(mixes.map((m) => [m.name, m.nLanguages!]));
  const ks = [...byK.keys()].sort((a, b) => a - b);
  const langs = orderLangs(
    rows.filter((r) => kOf.has(r.model)).map((r) => r.lang),
    o,
  );
  // The mixes are evenly spaced (1, 2, 3, … and then e.g. Multi-Guanaco): the question is how many languages are
  // needed, and a linear axis would squeeze 1–6 against a mix of 30. Points of different languages at the same mix
  // are spread a few pixels apart so that their error bars do not hide each other.
  const xLabel = (k: number) => {
    const name = byK.get(k)!;
    return languagesInMix(name) === k ? String(k) : name;
  };
  const xLabels = ks.map(xLabel);
  const spread1 = Math.min(0.24, 0.03 * langs.length);
  const jitter = (i: number) => (langs.length > 1 ? (i / (langs.length - 1) - 0.5) * spread1 : 0);
  const panel = (
    metricName: string,
    sums: Map<string, Summary>,
    yTitle: string,
    domain: readonly [number, number],
  ) => {
    const values: Record<string, unknown>[] = [];
    langs.forEach((l, i) => {
      for (const k of ks) {
        const s = sums.get(`${byK.get(k)}\u0000${l}`);
        if (s) {
          values.push({
            metric: metricName,
            k,
            mix: xLabel(k),
            xi: ks.indexOf(k) + jitter(i),
            model: byK.get(k),
            lang: l,
            label: langLabel(l, o.langLabels),
            ...s,
          });
        }
      }
    });
    const bars = values.some((v) => (v.n as number) > 1) && spread !== 'none';
    return {
      values,
      bars,
      spec: {
        title: { text: metricName, fontSize: 13, anchor: 'middle', subtitle: [] },
        data: { values },
        width: o.width ?? Math.max(240, ks.length * Math.max(60, labelWidth(xLabels) + 8)),
        height: o.height ?? 260,
        encoding: {
          x: {
            field: 'xi',
            type: 'quantitative',
            title: 'Languages in the tuning mix',
            scale: { domain: [-0.5, ks.length - 0.5], nice: false, zero: false },
            axis: {
              values: ks.map((_, i) => i),
              labelExpr: `${JSON.stringify(xLabels)}[datum.value]`,
              labelAngle: 0,
              grid: false,
            },
          },
          color: {
            field: 'label',
            type: 'nominal',
            sort: langs.map((l) => langLabel(l, o.langLabels)),
            scale: { range: palette(langs.length) },
            title: 'Test language',
          },
        },
        layer: [
          {
            mark: { type: 'line', strokeWidth: 1.8, point: { size: 36, filled: true } },
            encoding: {
              y: {
                field: 'mean',
                type: 'quantitative',
                title: yTitle,
                scale: { domain: [...domain], zero: false },
              },
            },
          },
          ...(bars
            ? [
                {
                  mark: { type: 'rule', strokeWidth: 1.2, opacity: 0.8 },
                  encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
                },
              ]
            : []),
        ],
      },
    };
  };
  const fSums = groupSummaries(rows, (r) => `${r.model}\u0000${r.lang}`, value, spread);
  const fid = panel('Language fidelity', fSums, METRIC_TITLE[metric], [0, 1]);
  const range = o.scoreRange ?? [1, 6];
  const jRows = judge.filter((r) => kOf.has(r.model) && langs.includes(r.lang));
  const jSums = groupSummaries(
    jRows as readonly JudgeRow[],
    (r) => `${r.model}\u0000${r.lang}`,
    (r) => r.score,
    spread,
  );
  const help = jRows.length ? panel('Helpfulness', jSums, 'Mean judge score', range) : null;
  const seeds = new Set(rows.map((r) => String(r.seed)));
  const mixText = ks.map((k) => `${k} = ${byK.get(k)}`).join(', ');
  const anyBars = fid.bars || (help?.bars ?? false);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(o, 'Fidelity against the number of languages in the tuning mix', [
      `${mixText}; ${seedText(seeds) || 'one run each'}${anyBars ? `; ${SPREAD_TEXT[spread]}` : ''}`,
    ]),
    hconcat: help ? [fid.spec, help.spec] : [fid.spec],
    resolve: { scale: { color: 'shared' } },
    config: baseConfig(),
  };
  const mixCols = ks.map((k) => ({ key: byK.get(k)!, header: `${byK.get(k)} (${k})` }));
  const langTable = (
    name: string,
    heading: string,
    sums: Map<string, Summary>,
    digits: number,
  ): FigureTable => ({
    name,
    title: heading,
    columns: [{ key: 'lang', header: 'test language' }, ...mixCols.map((c) => ({ ...c, digits }))],
    rows: langs.map((l) => {
      const row: Record<string, Cell> = { lang: l };
      for (const k of ks) row[byK.get(k)!] = sums.get(`${byK.get(k)}\u0000${l}`)?.mean ?? null;
      return row;
    }),
  });
  const tables = [
    langTable(
      'fidelity-by-mix',
      `${METRIC_TITLE[metric]} by number of languages in the tuning mix`,
      fSums,
      3,
    ),
  ];
  if (help)
    tables.push(
      langTable('helpfulness-by-mix', 'Mean judge score by number of languages in the tuning mix', jSums, 2),
    );
  return {
    kind,
    spec,
    tables,
    caption: `${METRIC_TITLE[metric]}${help ? ' and mean judge score' : ''} against the number of languages in the tuning mix (${mixText}), one line per test language, ${seedText(seeds) || 'one run each'}${anyBars ? `; ${SPREAD_TEXT[spread]}` : ''}.`,
    warnings,
  };
}

function helpfulnessHeatmap(data: FigureData, o: SpecOptions): FigureSpec {
  const kind: FigureKind = 'helpfulness-heatmap';
  const rows = need(
    kind,
    data.helpfulness,
    'judge scores',
    'no …-l300-ds42-as42-….jsonl files / FigureData.helpfulness is empty',
  );
  rows.forEach((r, i) => {
    checkRow(kind, r as unknown as Record<string, unknown>, i, ['model', 'lang']);
  });
  if (rows.every((r) => r.score === null)) {
    throw new PlotError('PLOT_NO_DATA', `${kind}: no judge output has a parseable score; nothing to plot`);
  }
  const range = o.scoreRange ?? [1, 6];
  const models = orderModels(
    rows.map((r) => r.model),
    data,
    o,
  ).map((m) => m.name);
  const langs = orderLangs(
    rows.map((r) => r.lang),
    o,
  );
  const sums = groupSummaries(
    rows,
    (r) => `${r.model}\u0000${r.lang}`,
    (r) => r.score,
    'none',
  );
  const values: Record<string, unknown>[] = [];
  for (const m of models) {
    for (const l of langs) {
      const s = sums.get(`${m}\u0000${l}`);
      if (s) values.push({ model: m, lang: l, label: langLabel(l, o.langLabels), mean: s.mean, n: s.n });
    }
  }
  const seeds = new Set(rows.map((r) => String(r.seed)));
  const skipped = rows.reduce((a, r) => a + (r.skipped ?? 0), 0);
  const judged = rows.reduce((a, r) => a + (r.n ?? 0), 0);
  const threshold = range[0] + 0.62 * (range[1] - range[0]);
  const labels = langs.map((l) => langLabel(l, o.langLabels));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(o, 'Helpfulness per test language and model', [
      `mean judge score (${range[0]}–${range[1]}), ${seedText(seeds) || 'one run each'}`,
    ]),
    data: { values },
    width: o.width ?? { step: Math.max(46, Math.ceil(labelWidth(labels)) + 12) },
    height: o.height ?? { step: 30 },
    encoding: {
      x: {
        field: 'label',
        type: 'nominal',
        sort: labels,
        title: 'Test language',
        axis: { labelAngle: 0, orient: 'top', domain: false, ticks: false },
      },
      y: {
        field: 'model',
        type: 'nominal',
        sort: models,
        title: 'Tuning mix',
        axis: { domain: false, ticks: false },
      },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1.5 },
        encoding: {
          color: {
            field: 'mean',
            type: 'quantitative',
            title: 'Mean score',
            scale: { scheme: 'blues', domain: [...range] },
            legend: { gradientLength: 120 },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'mean', type: 'quantitative', format: '.2f' },
          color: { condition: { test: `datum.mean >= ${threshold}`, value: 'white' }, value: '#222' },
        },
      },
    ],
    config: baseConfig(),
  };
  return {
    kind,
    spec,
    tables: [
      modelLangTable(
        'helpfulness',
        `Mean judge score per model and test language (${seedText(seeds) || 'one run'})`,
        models,
        langs,
        sums,
        2,
      ),
    ],
    caption: `Mean LLM-judge helpfulness score (${range[0]} = not helpful … ${range[1]} = highly helpful) per tuning mix and test language, ${seedText(seeds) || 'one run each'}; ${judged} judgements${skipped ? `, ${skipped} unparseable ones left out` : ''}.`,
    warnings: [],
  };
}

/** How metric names read in titles. */
const METRIC_NAMES: Record<string, string> = {
  acc: 'accuracy',
  acc_norm: 'normalised accuracy',
  contains: 'containment score',
  containment: 'containment score',
  exact_match: 'exact match',
  em: 'exact match',
  f1: 'F1',
};
const metricName = (m: string) => METRIC_NAMES[m] ?? m;

const METRIC_PREFERENCE = ['acc', 'contains', 'containment', 'exact_match', 'em', 'f1', 'acc_norm'];

function taskRows(kind: FigureKind, data: FigureData, family: string, o: SpecOptions) {
  const all = need(kind, data.tasks, 'task results', 'no results.json files / FigureData.tasks is empty');
  all.forEach((r, i) => {
    checkRow(kind, r as unknown as Record<string, unknown>, i, ['model', 'task', 'metric']);
  });
  const rows = all.filter((r) => r.family === family && r.promptLang && r.dataLang);
  if (rows.length === 0) {
    const families = [...new Set(all.map((r) => r.family))].join(', ');
    throw new PlotError(
      'PLOT_NO_DATA',
      `${kind}: no ${family} results with languages (tasks named ${family}_<lang> or ${family}_dev_<prompt>_<data>); the results have: ${families}`,
    );
  }
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const metric = o.metric ?? METRIC_PREFERENCE.find((m) => metrics.includes(m)) ?? metrics[0];
  const picked = rows.filter((r) => r.metric === metric);
  if (picked.length === 0) {
    throw new PlotError(
      'PLOT_BAD_OPTION',
      `${kind}: no ${family} results for metric '${metric}'; there are: ${metrics.join(', ')}`,
    );
  }
  return { rows: picked, metric };
}

const FAMILY_TITLE: Record<string, string> = { xcsqa: 'X-CSQA', xquad: 'XQuAD', xnli: 'XNLI' };

function taskHeatmap(kind: FigureKind, family: string, data: FigureData, o: SpecOptions): FigureSpec {
  const { rows, metric } = taskRows(kind, data, family, o);
  const name = FAMILY_TITLE[family] ?? family;
  const models = orderModels(
    rows.map((r) => r.model),
    data,
    o,
  ).map((m) => m.name);
  const prompts = orderLangs(
    rows.map((r) => r.promptLang!),
    o,
  );
  const datas = orderLangs(
    rows.map((r) => r.dataLang!),
    o,
  );
  const sums = groupSummaries(
    rows,
    (r: TaskRow) => `${r.model}\u0000${r.promptLang}\u0000${r.dataLang}`,
    (r) => r.value,
    'none',
  );
  const values: Record<string, unknown>[] = [];
  for (const m of models) {
    for (const p of prompts) {
      for (const d of datas) {
        const s = sums.get(`${m}\u0000${p}\u0000${d}`);
        if (s)
          values.push({
            model: m,
            prompt: langLabel(p, o.langLabels),
            data: langLabel(d, o.langLabels),
            value: s.mean,
          });
      }
    }
  }
  const vs = values.map((v) => v.value as number);
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  const domain = lo === hi ? [Math.max(0, lo - 0.05), Math.min(1, hi + 0.05)] : [lo, hi];
  const threshold = domain[0] + 0.62 * (domain[1] - domain[0]);
  const inner = {
    width: o.width ?? {
      step: Math.max(40, Math.ceil(labelWidth(datas.map((l) => langLabel(l, o.langLabels)))) + 12),
    },
    height: o.height ?? { step: 28 },
    encoding: {
      x: {
        field: 'data',
        type: 'nominal',
        sort: datas.map((l) => langLabel(l, o.langLabels)),
        title: 'Data language',
        axis: { labelAngle: 0, orient: 'top', domain: false, ticks: false },
      },
      y: {
        field: 'prompt',
        type: 'nominal',
        sort: prompts.map((l) => langLabel(l, o.langLabels)),
        title: 'Prompt language',
        axis: { domain: false, ticks: false },
      },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1.5 },
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            title: metricName(metric),
            scale: { scheme: 'greens', domain },
            legend: { gradientLength: 120, format: '.2f' },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 10.5 },
        encoding: {
          text: { field: 'value', type: 'quantitative', format: '.2f' },
          color: { condition: { test: `datum.value >= ${threshold}`, value: 'white' }, value: '#222' },
        },
      },
    ],
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(o, `${name} ${metricName(metric)} per prompt language × data language`, [
      models.length > 1 ? 'one panel per tuning mix' : `model: ${models[0]}`,
    ]),
    data: { values },
    facet: {
      column: {
        field: 'model',
        type: 'nominal',
        sort: models,
        title: null,
        header: { labelOrient: 'bottom', labelPadding: 8 },
      },
    },
    spec: inner,
    config: baseConfig(),
  };
  const table: FigureTable = {
    name: family,
    title: `${name} ${metricName(metric)} (rows: model and prompt language; columns: data language)`,
    columns: [
      { key: 'model', header: 'model' },
      { key: 'prompt', header: 'prompt' },
      ...datas.map((d) => ({ key: d, header: d })),
    ],
    rows: models.flatMap((m) =>
      prompts
        .filter((p) => datas.some((d) => sums.has(`${m}\u0000${p}\u0000${d}`)))
        .map((p) => {
          const row: Record<string, Cell> = { model: m, prompt: p };
          for (const d of datas) row[d] = sums.get(`${m}\u0000${p}\u0000${d}`)?.mean ?? null;
          return row;
        }),
    ),
  };
  return {
    kind,
    spec,
    tables: [table],
    caption: `${name} ${metricName(metric)} for each pair of prompt (instruction) language and data language${models.length > 1 ? ', one panel per tuning mix' : ''}; the diagonal is the monolingual setting.`,
    warnings: [],
  };
}

function xnliBars(data: FigureData, o: SpecOptions): FigureSpec {
  const kind: FigureKind = 'xnli-bars';
  const { rows, metric } = taskRows(kind, data, 'xnli', o);
  const warnings: string[] = [];
  const models = orderModels(
    rows.map((r) => r.model),
    data,
    o,
  ).map((m) => m.name);
  const langs = orderLangs(
    rows.map((r) => r.dataLang!),
    o,
  );
  const groups = new Map<string, TaskRow[]>();
  for (const r of rows) {
    const k = `${r.model}\u0000${r.dataLang}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const sums = new Map<string, Summary>();
  for (const [k, rs] of groups) {
    const s = summarise(
      rs.map((r) => r.value),
      o.spread ?? 'minmax',
    )!;
    if (rs.length === 1 && typeof rs[0].stderr === 'number') {
      s.lo = s.mean - rs[0].stderr;
      s.hi = s.mean + rs[0].stderr;
    }
    sums.set(k, s);
  }
  const values: Record<string, unknown>[] = [];
  const meanLabel = 'mean';
  for (const m of models) {
    const xs: number[] = [];
    for (const l of langs) {
      const s = sums.get(`${m}\u0000${l}`);
      if (!s) continue;
      xs.push(s.mean);
      values.push({ model: m, label: langLabel(l, o.langLabels), mean: s.mean, lo: s.lo, hi: s.hi });
    }
    if (xs.length === langs.length && langs.length > 1) {
      const mean = meanOf(xs)!;
      values.push({ model: m, label: meanLabel, mean, lo: mean, hi: mean });
    } else if (langs.length > 1) {
      warnings.push(
        `${kind}: ${m} lacks ${langs.length - xs.length} of the ${langs.length} languages; no mean for it`,
      );
    }
  }
  const labels = [...langs.map((l) => langLabel(l, o.langLabels)), meanLabel];
  const hasStderr = rows.some((r) => typeof r.stderr === 'number');
  const step = barStep(models.length, langs.length + 1);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(o, `XNLI ${metricName(metric)} per language and model`, [
      `0-shot, log-likelihood over the three labels; dashed: chance (1/3)${hasStderr ? '; error bars: ± standard error' : ''}`,
    ]),
    width: o.width ?? { step },
    height: o.height ?? 240,
    layer: [
      {
        data: { values },
        encoding: {
          x: { field: 'label', type: 'nominal', sort: labels, title: 'Language', axis: { labelAngle: 0 } },
          xOffset: { field: 'model', type: 'nominal', sort: models },
        },
        layer: [
          {
            mark: { type: 'bar', width: { band: 0.95 } },
            encoding: {
              y: {
                field: 'mean',
                type: 'quantitative',
                title: metricName(metric),
                scale: { domain: [0, 1] },
                axis: { format: '.1f', tickCount: 5 },
              },
              color: {
                field: 'model',
                type: 'nominal',
                sort: models,
                scale: colorScale(models),
                title: 'Model',
              },
            },
          },
          {
            mark: { type: 'rule', color: '#222', strokeWidth: 1.2 },
            encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
          },
        ],
      },
      {
        data: { values: [{ chance: 1 / 3 }] },
        mark: { type: 'rule', strokeDash: [5, 4], color: '#666' },
        encoding: { y: { field: 'chance', type: 'quantitative' } },
      },
    ],
    config: baseConfig(),
  };
  return {
    kind,
    spec,
    tables: [
      modelLangTable('xnli', `XNLI ${metricName(metric)} per model and language`, models, langs, sums),
    ],
    caption: `XNLI ${metricName(metric)} (0-shot) per language for each model, with the mean over languages; the dashed line is chance.`,
    warnings,
  };
}

const MAX_POINTS = 600;

function lossCurves(data: FigureData, o: SpecOptions): FigureSpec {
  const kind: FigureKind = 'loss-curves';
  const rows = need(
    kind,
    data.training,
    'training losses',
    'no train-log.jsonl files / FigureData.training is empty',
  );
  rows.forEach((r, i) => {
    checkRow(kind, r as unknown as Record<string, unknown>, i, ['model', 'run', 'split']);
    if (!Number.isFinite(r.step) || !Number.isFinite(r.loss)) {
      throw new PlotError(
        'PLOT_BAD_DATA',
        `${kind}: row ${i} (${r.run}) has step ${r.step} and loss ${r.loss}; both must be numbers`,
      );
    }
  });
  const models = orderModels(
    rows.map((r) => r.model),
    data,
    o,
  ).map((m) => m.name);
  const runs = [...new Set(rows.filter((r) => models.includes(r.model)).map((r) => r.run))].sort(
    (a, b) =>
      models.indexOf(rows.find((r) => r.run === a)!.model) -
        models.indexOf(rows.find((r) => r.run === b)!.model) || (a < b ? -1 : 1),
  );
  const values: Record<string, unknown>[] = [];
  let thinned = false;
  const tableRows: Record<string, Cell>[] = [];
  for (const run of runs) {
    const of = (split: 'train' | 'eval') =>
      rows.filter((r) => r.run === run && r.split === split).sort((a, b) => a.step - b.step);
    const train = of('train');
    const ev = of('eval');
    for (const [split, pts] of [
      ['train', train],
      ['eval', ev],
    ] as const) {
      const every = Math.ceil(pts.length / MAX_POINTS);
      if (every > 1) thinned = true;
      pts.forEach((p, i) => {
        if (i % every === 0 || i === pts.length - 1) values.push({ run, split, step: p.step, loss: p.loss });
      });
    }
    const best = ev.length ? ev.reduce((a, b) => (b.loss < a.loss ? b : a)) : null;
    tableRows.push({
      run,
      steps: train.length ? train.at(-1)!.step : null,
      first: train[0]?.loss ?? null,
      last: train.at(-1)?.loss ?? null,
      eval_last: ev.at(-1)?.loss ?? null,
      eval_best: best?.loss ?? null,
      eval_best_step: best?.step ?? null,
    });
  }
  const splits = [...new Set(values.map((v) => v.split as string))];
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(o, 'Training and evaluation loss', [
      `${splits.includes('eval') ? 'solid: training loss, dashed with points: evaluation loss' : 'training loss'}${thinned ? `; long logs thinned to about ${MAX_POINTS} points` : ''}`,
    ]),
    data: { values },
    width: o.width ?? 520,
    height: o.height ?? 280,
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'Step', axis: { format: '~s' } },
      y: { field: 'loss', type: 'quantitative', title: 'Loss', scale: { zero: false } },
      color: {
        field: 'run',
        type: 'nominal',
        sort: runs,
        scale: { domain: runs, range: palette(runs.length) },
        title: 'Run',
      },
    },
    layer: [
      {
        transform: [{ filter: "datum.split === 'train'" }],
        mark: { type: 'line', strokeWidth: 1.5, clip: true },
      },
      ...(splits.includes('eval')
        ? [
            {
              transform: [{ filter: "datum.split === 'eval'" }],
              mark: { type: 'line', strokeWidth: 1.8, strokeDash: [6, 4], point: { size: 30, filled: true } },
            },
          ]
        : []),
    ],
    config: baseConfig(),
  };
  return {
    kind,
    spec,
    tables: [
      {
        name: 'training',
        title: 'Training runs: last step, losses and the best evaluation loss',
        columns: [
          { key: 'run', header: 'run' },
          { key: 'steps', header: 'steps' },
          { key: 'first', header: 'first loss', digits: 4 },
          { key: 'last', header: 'last loss', digits: 4 },
          { key: 'eval_last', header: 'last eval loss', digits: 4 },
          { key: 'eval_best', header: 'best eval loss', digits: 4 },
          { key: 'eval_best_step', header: 'best eval step' },
        ],
        rows: tableRows,
      },
    ],
    caption: `Loss against the optimiser step for each training run${splits.includes('eval') ? ' (solid: training, dashed: evaluation)' : ''}.`,
    warnings: [],
  };
}

/** Builds a figure's Vega-Lite spec and its tables from result rows (no rendering). */
export function figureSpec(kind: FigureKind, data: FigureData, options: SpecOptions = {}): FigureSpec {
  if (!FIGURE_KINDS.includes(kind)) {
    throw new PlotError('PLOT_BAD_OPTION', `unknown figure '${kind}'; use one of ${FIGURE_KINDS.join(', ')}`);
  }
  if (!data || typeof data !== 'object') {
    throw new PlotError(
      'PLOT_BAD_DATA',
      `${kind}: data must be an object such as { fidelity: [...] } or loadRuns()'s result`,
    );
  }
  checkOptions(kind, options);
  switch (kind) {
    case 'fidelity-bars':
      return fidelityBars(data, options);
    case 'fidelity-lines':
      return fidelityLines(data, options);
    case 'helpfulness-heatmap':
      return helpfulnessHeatmap(data, options);
    case 'xcsqa-heatmap':
      return taskHeatmap(kind, 'xcsqa', data, options);
    case 'xquad-heatmap':
      return taskHeatmap(kind, 'xquad', data, options);
    case 'task-heatmap':
      if (!options.task)
        throw new PlotError(
          'PLOT_BAD_OPTION',
          'task-heatmap: name the task family (options.task, e.g. xcsqa)',
        );
      return taskHeatmap(kind, options.task.toLowerCase(), data, options);
    case 'xnli-bars':
      return xnliBars(data, options);
    case 'loss-curves':
      return lossCurves(data, options);
  }
}
