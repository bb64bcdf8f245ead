import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { JudgeError } from './errors.js';
import { type JsonRecord, readJsonl } from './jsonl.js';
import { pairwiseStats } from './run.js';

/** A small seeded generator (mulberry32) for bootstrap resampling. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function mean(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface BootstrapOptions {
  /** Resamples; default 2,000. */
  resamples?: number;
  /** Confidence level; default 0.95. */
  level?: number;
  /** Seed of the resampling; default 0. */
  seed?: number;
}

/**
 * Percentile bootstrap interval of the mean over groups of per-group means (the paper's "mean over seeds"): each
 * resample draws every group's items with replacement, within the group. With one group it is the plain
 * bootstrap of the mean. Null when a group is empty.
 */
export function bootstrapMeanOfMeans(
  groups: readonly (readonly number[])[],
  opts: BootstrapOptions = {},
): [number, number] | null {
  if (groups.length === 0 || groups.some((g) => g.length === 0)) return null;
  const B = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const rnd = mulberry32(opts.seed ?? 0);
  const stats = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let total = 0;
    for (const g of groups) {
      let s = 0;
      for (let i = 0; i < g.length; i++) s += g[Math.floor(rnd() * g.length)];
      total += s / g.length;
    }
    stats[b] = total / groups.length;
  }
  const sorted = [...stats].sort((x, y) => x - y);
  return [quantile(sorted, (1 - level) / 2), quantile(sorted, 1 - (1 - level) / 2)];
}

/** One judged file. */
export interface FileScores {
  file: string;
  model: string;
  language: string;
  /** The inference seed read from the file name (`-s<seed>-`), if any. */
  seed: string | null;
  /** The file name with its seed blanked: files that differ only in seed are one setup. */
  setup: string;
  scores: number[];
  unparseable: number;
  failed: number;
  /** Summed `eval_meta.cost` (USD) and the records without one. */
  cost: number;
  unpriced: number;
}

/** The scores of one model in one language (one setup), over its seeds. */
export interface ScoreRow {
  model: string;
  language: string;
  setup: string;
  files: number;
  seeds: (string | null)[];
  /** Judged items over all files. */
  n: number;
  unparseable: number;
  failed: number;
  /** Mean over the files (seeds) of each file's mean score. */
  mean: number | null;
  /** Each file's mean, in the order of `seeds`. */
  seedMeans: (number | null)[];
  /** Bootstrap interval of `mean`. */
  ci: [number, number] | null;
  cost: number;
  unpriced: number;
}

export interface PairwiseRow {
  file: string;
  model: string;
  language: string;
  labels: [string, string];
  n: number;
  unparseable: number;
  failed: number;
  wins: { a: number; b: number; tie: number };
  consistent: number;
  firstPositionRate: number | null;
  winRateA: number | null;
  ci: [number, number] | null;
}

export interface Summary {
  rows: ScoreRow[];
  /** Per model: the mean over its languages of their means. */
  models: { model: string; languages: number; mean: number | null }[];
  pairwise: PairwiseRow[];
}

/** The language of a run file from its name: `alpaca_eval_instructions_de-…` → `de`. */
export function languageOf(stem: string): string {
  const m = /^[^-]*?_([a-z]{2,3}(?:[_-][A-Z][a-z]{3})?)(?=-|$)/.exec(stem);
  return m ? m[1]! : 'unknown';
}

function listJsonl(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.jsonl')) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

function modelOf(root: string, file: string): string {
  const rel = path.relative(root, path.dirname(file)).split(path.sep).join('/');
  return rel === '' ? path.basename(path.resolve(root)) : rel;
}

/**
 * Aggregates every judged JSON Lines file under `dir` (recursively; files without `eval_meta` are ignored): per
 * model (the folder, relative to `dir`), language (from the file name) and setup (the file name without its
 * seed), the judged count, unparseable and failed counts, the mean over seeds of the mean score, and its
 * bootstrap interval; per model the mean over languages; pairwise files their wins, consistency and position bias.
 */
export function summarize(dir: string, opts: BootstrapOptions = {}): Summary {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new JudgeError('cannot-read', `${dir}: cannot summarize: ${(e as Error).message}`);
  }
  const files: FileScores[] = [];
  const pairwise: PairwiseRow[] = [];
  for (const file of listJsonl(dir)) {
    // one record per item (an interrupted --retry-failed run can leave an item twice: the last one counts)
    const byItem = new Map<unknown, JsonRecord>();
    readJsonl(file).forEach((l, i) => {
      const item = (l.value.eval_meta as JsonRecord | undefined)?.item;
      byItem.set(typeof item === 'number' ? item : `line ${i}`, l.value);
    });
    const records = [...byItem.values()];
    if (records.length === 0 || typeof records[0].eval_meta !== 'object') continue;
    const stem = path.basename(file, '.jsonl');
    const model = modelOf(dir, file);
    const language = languageOf(stem);
    if ('eval_winner' in records[0]) {
      pairwise.push(pairwiseRow(file, model, language, records, opts));
      continue;
    }
    const f: FileScores = {
      file,
      model,
      language,
      seed: /-s(\d+)-/.exec(stem)?.[1] ?? null,
      setup: stem.replace(/-s\d+-/, '-s*-'),
      scores: [],
      unparseable: 0,
      failed: 0,
      cost: 0,
      unpriced: 0,
    };
    for (const r of records) {
      const meta = (r.eval_meta ?? {}) as JsonRecord;
      if (meta.error !== undefined) f.failed++;
      else if (typeof r.eval_score === 'number') f.scores.push(r.eval_score);
      else f.unparseable++;
      if (typeof meta.cost === 'number') f.cost += meta.cost;
      else if (meta.error === undefined) f.unpriced++;
    }
    files.push(f);
  }
  const groups = new Map<string, FileScores[]>();
  for (const f of files) {
    const k = JSON.stringify([f.model, f.language, f.setup]);
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  const rows: ScoreRow[] = [...groups.values()].map((fs) => {
    fs.sort((a, b) => Number(a.seed ?? 0) - Number(b.seed ?? 0));
    const seedMeans = fs.map((f) => mean(f.scores));
    const usable = seedMeans.filter((m): m is number => m !== null);
    return {
      model: fs[0].model,
      language: fs[0].language,
      setup: fs[0].setup,
      files: fs.length,
      seeds: fs.map((f) => f.seed),
      n: fs.reduce((s, f) => s + f.scores.length, 0),
      unparseable: fs.reduce((s, f) => s + f.unparseable, 0),
      failed: fs.reduce((s, f) => s + f.failed, 0),
      mean: mean(usable),
      seedMeans,
      ci: bootstrapMeanOfMeans(
        fs.map((f) => f.scores).filter((s) => s.length > 0),
        opts,
      ),
      cost: fs.reduce((s, f) => s + f.cost, 0),
      unpriced: fs.reduce((s, f) => s + f.unpriced, 0),
    };
  });
  rows.sort(
    (a, b) =>
      a.model.localeCompare(b.model) ||
      a.language.localeCompare(b.language) ||
      a.setup.localeCompare(b.setup),
  );
  const byModel = new Map<string, number[]>();
  for (const r of rows) if (r.mean !== null) byModel.set(r.model, [...(byModel.get(r.model) ?? []), r.mean]);
  const models = [...new Set(rows.map((r) => r.model))].map((model) => ({
    model,
    languages: new Set(rows.filter((r) => r.model === model).map((r) => r.language)).size,
    mean: mean(byModel.get(model) ?? []),
  }));
  return { rows, models, pairwise };
}

function pairwiseRow(
  file: string,
  model: string,
  language: string,
  records: JsonRecord[],
  opts: BootstrapOptions,
): PairwiseRow {
  const s = pairwiseStats(records);
  const labels = ((records[0].eval_meta as JsonRecord).labels ?? { a: 'a', b: 'b' }) as {
    a: string;
    b: string;
  };
  const outcomes = records
    .map((r) => r.eval_winner)
    .filter((w) => w === 'a' || w === 'b' || w === 'tie')
    .map((w) => (w === 'a' ? 1 : w === 'tie' ? 0.5 : 0));
  let failed = 0;
  let unparseable = 0;
  for (const r of records) {
    if ((r.eval_meta as JsonRecord).error !== undefined) failed++;
    else if (r.eval_winner === null || r.eval_winner === undefined) unparseable++;
  }
  return {
    file,
    model,
    language,
    labels: [labels.a, labels.b],
    n: outcomes.length,
    unparseable,
    failed,
    ...s,
    ci: bootstrapMeanOfMeans(outcomes.length > 0 ? [outcomes] : [], opts),
  };
}

const f3 = (x: number | null) => (x === null ? '–' : x.toFixed(3));

/** The summary as Markdown tables. */
export function formatSummary(s: Summary): string {
  const out: string[] = [];
  if (s.rows.length > 0) {
    const showSetup = new Set(s.rows.map((r) => `${r.model}\u0000${r.language}`)).size < s.rows.length;
    out.push(
      `| model | language |${showSetup ? ' setup |' : ''} seeds | n | unparseable | failed | mean | 95% CI | per seed | cost (USD) |`,
      `|---|---|${showSetup ? '---|' : ''}---:|---:|---:|---:|---:|---|---|---:|`,
    );
    for (const r of s.rows) {
      out.push(
        `| ${r.model} | ${r.language} |${showSetup ? ` ${r.setup} |` : ''} ${r.files} | ${r.n} | ${r.unparseable} | ${r.failed} | ${f3(r.mean)} | ${
          r.ci ? `${f3(r.ci[0])}–${f3(r.ci[1])}` : '–'
        } | ${r.seedMeans.map(f3).join(', ')} | ${r.cost.toFixed(4)}${r.unpriced > 0 ? ` (+${r.unpriced} unpriced)` : ''} |`,
      );
    }
    out.push('', '| model | languages | mean over languages |', '|---|---:|---:|');
    for (const m of s.models) out.push(`| ${m.model} | ${m.languages} | ${f3(m.mean)} |`);
  }
  if (s.pairwise.length > 0) {
    if (out.length > 0) out.push('');
    out.push(
      '| file | a | b | n | wins a | wins b | ties | win rate a | 95% CI | consistent | first position wins | unparseable |',
      '|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|',
    );
    for (const p of s.pairwise) {
      out.push(
        `| ${path.basename(p.file)} | ${p.labels[0]} | ${p.labels[1]} | ${p.n} | ${p.wins.a} | ${p.wins.b} | ${p.wins.tie} | ${f3(
          p.winRateA,
        )} | ${p.ci ? `${f3(p.ci[0])}–${f3(p.ci[1])}` : '–'} | ${p.n > 0 ? f3(p.consistent / p.n) : '–'} | ${f3(
          p.firstPositionRate,
        )} | ${p.unparseable} |`,
      );
    }
  }
  if (out.length === 0) return 'no judged files found\n';
  return `${out.join('\n')}\n`;
}
