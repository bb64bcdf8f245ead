// Readers for the result files other stages write. This package depends on no other @polyglot package, so the
// formats are read here from their documented shapes: the paper's one-row `.eval` CSV (lid), judge output JSONL,
// lm-evaluation-harness-like `results.json` (tasks) and `train-log.jsonl` (sft).
import { readFile } from 'node:fs/promises';
import { PlotError } from './errors.js';

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new PlotError('PLOT_BAD_FILE', `${file}: cannot read the ${what}: ${(e as Error).message}`);
  }
}

/** RFC 4180 CSV → rows of fields (quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

/** One `.eval` file: language fidelity of one run file. */
export interface EvalCsv {
  lang_match: number | null;
  tgt_lang: number | null;
  ppl: number | null;
  ppl_model: string | null;
  n: number | null;
  /** The run file it scored (the `file` column), or null. */
  file: string | null;
}

/**
 * Reads the paper's one-row `.eval` CSV (`lang_match,tgt_lang,ppl,ppl_model,n,file`; empty fields are missing).
 * Other columns (a pandas index) are ignored. Throws `PlotError` `PLOT_BAD_FILE` for a missing `lang_match`
 * column, not exactly one data row, text where a number belongs, or shares outside [0, 1].
 */
export async function readEvalCsv(file: string): Promise<EvalCsv> {
  const rows = parseCsv(await readText(file, '.eval CSV'));
  const header = rows[0]?.map((h) => h.trim());
  if (!header || !header.includes('lang_match')) {
    throw new PlotError(
      'PLOT_BAD_FILE',
      `${file}:1: not a fidelity .eval CSV: expected the header lang_match,tgt_lang,ppl,ppl_model,n,file, got ${JSON.stringify(rows[0]?.join(',') ?? '')}`,
    );
  }
  if (rows.length !== 2) {
    throw new PlotError(
      'PLOT_BAD_FILE',
      `${file}: a .eval CSV has one data row (one run file), this one has ${rows.length - 1}`,
    );
  }
  const get = (col: string) => {
    const i = header.indexOf(col);
    return i < 0 ? '' : (rows[1][i] ?? '').trim();
  };
  const number = (col: string, share: boolean): number | null => {
    const s = get(col);
    if (s === '' || /^nan$/i.test(s)) return null;
    const v = Number(s);
    if (!Number.isFinite(v)) {
      throw new PlotError('PLOT_BAD_FILE', `${file}:2: ${col} is ${JSON.stringify(s)}, not a number`);
    }
    if (share && (v < 0 || v > 1)) {
      throw new PlotError('PLOT_BAD_FILE', `${file}:2: ${col} is ${v}, outside [0, 1] (it is a share)`);
    }
    return v;
  };
  const n = number('n', false);
  if (n !== null && (!Number.isInteger(n) || n < 0)) {
    throw new PlotError('PLOT_BAD_FILE', `${file}:2: n is ${n}, not a count`);
  }
  return {
    lang_match: number('lang_match', true),
    tgt_lang: number('tgt_lang', true),
    ppl: number('ppl', false),
    ppl_model: get('ppl_model') || null,
    n,
    file: get('file') || null,
  };
}

interface JsonLine {
  line: number;
  value: Record<string, unknown>;
}

/**
 * JSON Lines of objects. A last line without its line break that does not parse is a record still being
 * written: left out, with a warning; any other bad line throws `PLOT_BAD_FILE` with file:line.
 */
function parseJsonl(text: string, file: string, warnings: string[]): JsonLine[] {
  const lines = text.split('\n');
  const out: JsonLine[] = [];
  lines.forEach((raw, i) => {
    const l = raw.trim();
    if (l === '') return;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (e) {
      if (i === lines.length - 1) {
        warnings.push(`${file}:${i + 1}: left out a partial last line (is the job still writing?)`);
        return;
      }
      throw new PlotError('PLOT_BAD_FILE', `${file}:${i + 1}: not JSON: ${(e as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new PlotError('PLOT_BAD_FILE', `${file}:${i + 1}: expected a JSON object per line`);
    }
    out.push({ line: i + 1, value: v as Record<string, unknown> });
  });
  return out;
}

/** One judge output file: the scores of its items. */
export interface JudgeFile {
  /** Records in the file. */
  n: number;
  /** Scores of the items the judge's answer could be parsed for (`eval_score` a number). */
  scores: number[];
  /** Items without a score (unparseable judgements: skipped, as the paper does). */
  skipped: number;
  /** Mean score, or null when no item has one. */
  mean: number | null;
  /** The judge model (`eval_meta.model`), where recorded. */
  judgeModel: string | null;
  /** Sum of `eval_meta.cost`, where recorded. */
  cost: number | null;
  warnings: string[];
}

/**
 * Reads judge outputs: JSONL whose records carry `eval_score` (a number, or null/absent when the judgement could
 * not be parsed) and optionally `eval_meta` `{model, cost, …}`.
 */
export async function readJudgeJsonl(file: string): Promise<JudgeFile> {
  const warnings: string[] = [];
  const lines = parseJsonl(await readText(file, 'judge output'), file, warnings);
  const scores: number[] = [];
  let skipped = 0;
  let judgeModel: string | null = null;
  let cost: number | null = null;
  let sawScoreField = false;
  for (const { line, value } of lines) {
    const s = value.eval_score;
    if (s !== undefined) sawScoreField = true;
    const v = typeof s === 'string' && /^\s*[+-]?\d+(\.\d+)?\s*$/.test(s) ? Number(s) : s;
    if (typeof v === 'number' && Number.isFinite(v)) scores.push(v);
    else if (v === null || v === undefined || v === '') skipped++;
    else {
      throw new PlotError(
        'PLOT_BAD_FILE',
        `${file}:${line}: eval_score is ${JSON.stringify(s)}; expected a number, or null for an unparseable judgement`,
      );
    }
    const meta = value.eval_meta;
    if (meta && typeof meta === 'object') {
      const m = meta as Record<string, unknown>;
      if (typeof m.model === 'string') judgeModel ??= m.model;
      if (typeof m.cost === 'number') cost = (cost ?? 0) + m.cost;
    }
  }
  if (lines.length > 0 && !sawScoreField) {
    throw new PlotError(
      'PLOT_BAD_FILE',
      `${file}: no record has an eval_score field; is this a judge output (…-l300-ds42-as42-….jsonl)?`,
    );
  }
  return {
    n: lines.length,
    scores,
    skipped,
    mean: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null,
    judgeModel,
    cost,
    warnings,
  };
}

/** One metric of one task from a results.json. */
export interface TaskMetric {
  task: string;
  /** `acc`, `acc_norm`, `exact_match`, `f1`, `contains`, … */
  metric: string;
  /** lm-evaluation-harness filter (`none`), or null for plain keys. */
  filter: string | null;
  value: number;
  stderr: number | null;
}

export interface ResultsJson {
  metrics: TaskMetric[];
  /** `model_name`, or the `pretrained=` of `config.model_args`, or `config.model`. */
  model: string | null;
  /** `config` as written (model, model_args, batch size, device, …). */
  config: Record<string, unknown> | null;
  /** Task versions (`versions`). */
  versions: Record<string, unknown> | null;
  /** The tensor backend, where recorded (`backend` or `config.backend`). */
  backend: string | null;
  /** Other top-level fields worth showing (date, git_hash, versions of tools). */
  extra: Record<string, unknown>;
  /** Per task: its `configs` entry's `prompt_language` / `data_language`, where given. */
  languages: Record<string, { prompt: string | null; data: string | null }>;
  /** Task → the group (task family) listing it in `group_subtasks`. */
  groupOf: Record<string, string>;
  /** polyglot's `per_seed`: task → seed → `metric,filter` → value. */
  perSeed: Record<string, Record<string, Record<string, number>>>;
}

/**
 * Reads an lm-evaluation-harness-like results.json: `results: {task: {"acc,none": x, "acc_stderr,none": y,
 * alias}}`, plus `config`, `versions`. Keys without a filter (`acc`, `acc_stderr`) are read too. Non-numeric
 * values (aliases, "N/A" stderrs) are skipped.
 */
export async function readResultsJson(file: string): Promise<ResultsJson> {
  const text = await readText(file, 'results');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new PlotError('PLOT_BAD_FILE', `${file}: not JSON: ${(e as Error).message}`);
  }
  const obj = data as Record<string, unknown>;
  if (!obj || typeof obj !== 'object' || typeof obj.results !== 'object' || obj.results === null) {
    throw new PlotError(
      'PLOT_BAD_FILE',
      `${file}: expected an lm-evaluation-harness results object with "results": {task: {"acc,none": …}}`,
    );
  }
  const metrics: TaskMetric[] = [];
  for (const [task, entry] of Object.entries(obj.results as Record<string, unknown>)) {
    if (!entry || typeof entry !== 'object') continue;
    const values = entry as Record<string, unknown>;
    for (const [key, v] of Object.entries(values)) {
      const [name, filter = null] = key.split(',', 2) as [string, string | undefined];
      if (name.endsWith('_stderr') || name === 'alias' || typeof v !== 'number' || !Number.isFinite(v))
        continue;
      const se = values[`${name}_stderr${filter === null ? '' : `,${filter}`}`];
      metrics.push({
        task,
        metric: name,
        filter,
        value: v,
        stderr: typeof se === 'number' && Number.isFinite(se) ? se : null,
      });
    }
  }
  const config =
    obj.config && typeof obj.config === 'object' ? (obj.config as Record<string, unknown>) : null;
  let model: string | null = typeof obj.model_name === 'string' ? obj.model_name : null;
  if (!model && typeof config?.model_args === 'string') {
    model = /(?:^|,)pretrained=([^,]+)/.exec(config.model_args)?.[1] ?? null;
  }
  if (!model && typeof config?.model === 'string') model = config.model;
  const backend =
    typeof obj.backend === 'string'
      ? obj.backend
      : typeof config?.backend === 'string'
        ? config.backend
        : null;
  const extra: Record<string, unknown> = {};
  for (const k of ['date', 'git_hash', 'transformers_version', 'lm_eval_version', 'polyglot_version']) {
    if (obj[k] !== undefined) extra[k] = obj[k];
  }
  const languages: ResultsJson['languages'] = {};
  const configs =
    obj.configs && typeof obj.configs === 'object' ? (obj.configs as Record<string, unknown>) : {};
  for (const [task, c] of Object.entries(configs)) {
    if (!c || typeof c !== 'object') continue;
    const { prompt_language: p, data_language: d } = c as Record<string, unknown>;
    if (typeof p === 'string' || typeof d === 'string') {
      languages[task] = { prompt: typeof p === 'string' ? p : null, data: typeof d === 'string' ? d : null };
    }
  }
  const groupOf: Record<string, string> = {};
  const groups = obj.group_subtasks && typeof obj.group_subtasks === 'object' ? obj.group_subtasks : {};
  for (const [g, subtasks] of Object.entries(groups as Record<string, unknown>)) {
    if (Array.isArray(subtasks)) for (const t of subtasks) if (typeof t === 'string') groupOf[t] = g;
  }
  const perSeed: ResultsJson['perSeed'] = {};
  const ps =
    obj.per_seed && typeof obj.per_seed === 'object' ? (obj.per_seed as Record<string, unknown>) : {};
  for (const [task, bySeed] of Object.entries(ps)) {
    if (!bySeed || typeof bySeed !== 'object') continue;
    for (const [seed, values] of Object.entries(bySeed as Record<string, unknown>)) {
      if (!values || typeof values !== 'object') continue;
      for (const [key, v] of Object.entries(values as Record<string, unknown>)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        perSeed[task] ??= {};
        perSeed[task][seed] ??= {};
        perSeed[task][seed][key] = v;
      }
    }
  }
  return {
    metrics,
    model,
    config,
    languages,
    groupOf,
    perSeed,
    versions:
      obj.versions && typeof obj.versions === 'object' ? (obj.versions as Record<string, unknown>) : null,
    backend,
    extra,
  };
}

/** One logged step of training or evaluation. */
export interface TrainLogPoint {
  split: 'train' | 'eval';
  step: number;
  loss: number;
  lr: number | null;
  grad_norm: number | null;
  tokens: number | null;
  secs: number | null;
}

export interface TrainLog {
  points: TrainLogPoint[];
  warnings: string[];
}

const optNum = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Reads `train-log.jsonl`: training lines `{step, loss, grad_norm, lr, tokens, secs}` and evaluation lines
 * `{step, eval_loss}` (or `{step, loss, split: "eval"}`). Lines without a loss (run headers, checkpoints) are
 * ignored; a step logged again (a resumed run appends) keeps its later line, with a warning.
 */
export async function readTrainLog(file: string): Promise<TrainLog> {
  const warnings: string[] = [];
  const lines = parseJsonl(await readText(file, 'training log'), file, warnings);
  const bySplit = { train: new Map<number, TrainLogPoint>(), eval: new Map<number, TrainLogPoint>() };
  let repeated = 0;
  for (const { line, value } of lines) {
    const kind = value.split ?? value.kind ?? value.type;
    const entries: ['train' | 'eval', unknown][] = [];
    if (value.eval_loss !== undefined) entries.push(['eval', value.eval_loss]);
    if (value.loss !== undefined) entries.push([kind === 'eval' ? 'eval' : 'train', value.loss]);
    for (const [split, loss] of entries) {
      if (typeof loss !== 'number' || !Number.isFinite(loss)) {
        if (loss === null) continue;
        throw new PlotError(
          'PLOT_BAD_FILE',
          `${file}:${line}: ${split === 'eval' && value.eval_loss !== undefined ? 'eval_loss' : 'loss'} is ${JSON.stringify(loss)}, not a finite number`,
        );
      }
      const step = value.step;
      if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) {
        throw new PlotError(
          'PLOT_BAD_FILE',
          `${file}:${line}: a loss without a step (step is ${JSON.stringify(step)}); expected {"step": n, "loss": x}`,
        );
      }
      const map = bySplit[split];
      if (map.has(step)) {
        repeated++;
        map.delete(step);
      }
      map.set(step, {
        split,
        step,
        loss,
        lr: optNum(value.lr ?? value.learning_rate),
        grad_norm: optNum(value.grad_norm),
        tokens: optNum(value.tokens),
        secs: optNum(value.secs),
      });
    }
  }
  if (repeated > 0) {
    warnings.push(
      `${file}: ${repeated} step(s) logged more than once (a resumed run?); kept the later lines`,
    );
  }
  const points = [...bySplit.train.values(), ...bySplit.eval.values()].sort((a, b) =>
    a.split === b.split ? a.step - b.step : a.split === 'train' ? -1 : 1,
  );
  return { points, warnings };
}

/** Reads a JSON object file (run.json, generation arguments). */
export async function readJsonObject(file: string, what: string): Promise<Record<string, unknown>> {
  const text = await readText(file, what);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new PlotError('PLOT_BAD_FILE', `${file}: the ${what} is not JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new PlotError('PLOT_BAD_FILE', `${file}: the ${what} must be a JSON object`);
  }
  return v as Record<string, unknown>;
}
