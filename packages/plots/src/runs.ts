// The results of an experiment as rows figures and tables are made from, and `loadRuns`, which reads them from a
// runs folder (the layout is in README.md, "The runs folder").
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PlotError } from './errors.js';
import { isLangCode } from './langs.js';
import { languagesInMix, parseRunFileName } from './names.js';
import {
  readEvalCsv,
  readJsonObject,
  readJudgeJsonl,
  readResultsJson,
  readTrainLog,
  type TrainLogPoint,
} from './readers.js';

/** Language fidelity of one run file (one model, test language and seed). */
export interface FidelityRow {
  /** The tuned model, named after its tuning mix (`Mono`, `Multi-2`, `Multi-Guanaco`). */
  model: string;
  /** Test language (`de`). */
  lang: string;
  seed?: number | null;
  /** Share of responses in the prompt's language. */
  lang_match: number | null;
  /** Share of responses in the expected language. */
  tgt_lang?: number | null;
  /** Responses scored. */
  n?: number | null;
  testset?: string | null;
  file?: string;
}

/** Helpfulness of one judged run file: the mean judge score. */
export interface JudgeRow {
  model: string;
  lang: string;
  seed?: number | null;
  /** Mean score over the items the judge scored. */
  score: number | null;
  /** Items scored. */
  n?: number;
  /** Items whose judgement could not be parsed (left out of the mean). */
  skipped?: number;
  judgeModel?: string | null;
  testset?: string | null;
  file?: string;
}

/** One metric of one task for one model (from results.json). */
export interface TaskRow {
  model: string;
  /** The task as written (`xnli_de`, `xcsqa_dev_en_de`). */
  task: string;
  /** The task without languages and split words (`xnli`, `xcsqa`, `xquad`). */
  family: string;
  /** Language of the instructions (for single-language tasks, the task's language). */
  promptLang: string | null;
  /** Language of the data (passage, question). */
  dataLang: string | null;
  metric: string;
  value: number;
  stderr?: number | null;
  seed?: number | null;
  file?: string;
}

/** One point of a loss curve. */
export interface TrainPoint {
  model: string;
  /** The training run (the model, plus the sub-folder where a model has several logs). */
  run: string;
  split: 'train' | 'eval';
  step: number;
  loss: number;
  file?: string;
}

/** A tuned model (tuning mix) of the experiment. */
export interface ModelInfo {
  name: string;
  /** Languages in the tuning mix: from run.json (`n_languages`, `languages`) or the name; null if unknown. */
  nLanguages: number | null;
  /** Where nLanguages came from. */
  nLanguagesFrom?: 'run.json' | 'name' | null;
  languages?: string[] | null;
  /** Anything else run.json says about the model (base, adapter, …). */
  meta?: Record<string, unknown>;
}

/** The numbers figures are drawn from; each figure uses the parts it needs. */
export interface FigureData {
  fidelity?: readonly FidelityRow[];
  helpfulness?: readonly JudgeRow[];
  tasks?: readonly TaskRow[];
  training?: readonly TrainPoint[];
  /** Model order and language counts; models not listed are ordered by their name's language count. */
  models?: readonly ModelInfo[];
}

export interface RunFile {
  kind: 'fidelity' | 'judge' | 'tasks' | 'training' | 'meta' | 'generation-args';
  file: string;
  model: string | null;
}

/** Everything read from a runs folder. */
export interface Runs extends FigureData {
  dir: string;
  fidelity: FidelityRow[];
  helpfulness: JudgeRow[];
  tasks: TaskRow[];
  training: TrainPoint[];
  models: ModelInfo[];
  /** run.json as written ({} without one). */
  meta: Record<string, unknown>;
  /** What the files say besides the numbers: seeds, sampling settings, backends, versions, judge models. */
  found: {
    seeds: number[];
    sampling: Record<string, unknown>[];
    backends: string[];
    versions: Record<string, unknown>;
    judgeModels: string[];
    testsets: string[];
    taskConfigs: Record<string, unknown>[];
  };
  files: RunFile[];
  warnings: string[];
}

const SPLIT_WORDS = new Set(['dev', 'test', 'val', 'validation', 'train']);

/**
 * `xnli_de` → xnli, de, de; `xcsqa_dev_en_de` → xcsqa, en (prompt), de (data); a task without trailing
 * language codes keeps its name as the family and null languages.
 */
export function parseTaskName(task: string): {
  family: string;
  promptLang: string | null;
  dataLang: string | null;
} {
  const parts = task.split('_');
  const langs: string[] = [];
  while (parts.length > 1 && langs.length < 2 && isLangCode(parts.at(-1)!)) langs.unshift(parts.pop()!);
  while (parts.length > 1 && SPLIT_WORDS.has(parts.at(-1)!)) parts.pop();
  const family = parts.join('_').toLowerCase();
  if (langs.length === 0) return { family: task.toLowerCase(), promptLang: null, dataLang: null };
  return { family, promptLang: langs[0], dataLang: langs.at(-1)! };
}

/** The number of languages of a model: run.json's `models.<name>.n_languages` or `languages`, else its name. */
export function modelInfo(name: string, meta: Record<string, unknown> = {}): ModelInfo {
  const models = (meta.models ?? {}) as Record<string, unknown>;
  const entry = (models && typeof models === 'object' ? models[name] : undefined) as
    | Record<string, unknown>
    | undefined;
  const languages = Array.isArray(entry?.languages) ? (entry.languages as unknown[]).map(String) : null;
  const given = typeof entry?.n_languages === 'number' ? entry.n_languages : (languages?.length ?? null);
  const fromName = languagesInMix(name);
  const { languages: _l, n_languages: _n, ...rest } = entry ?? {};
  return {
    name,
    nLanguages: given ?? fromName,
    nLanguagesFrom: given !== null ? 'run.json' : fromName !== null ? 'name' : null,
    languages,
    meta: rest,
  };
}

/** Models in figure order: by language count (unknown last), then name. */
export function sortModels(models: readonly ModelInfo[]): ModelInfo[] {
  return [...models].sort((a, b) => {
    const ka = a.nLanguages ?? Number.POSITIVE_INFINITY;
    const kb = b.nLanguages ?? Number.POSITIVE_INFINITY;
    return ka - kb || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  });
}

function walk(dir: string): string[] {
  const out: string[] = [];
  const visit = (d: string, depth: number) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      throw new PlotError('PLOT_BAD_FILE', `${d}: cannot list the folder: ${(e as Error).message}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < 12) visit(p, depth + 1);
      else if (e.isFile()) out.push(p);
    }
  };
  visit(dir, 0);
  return out;
}

/** `@polyglot/judge`'s output names: `{run}-l{limit|all}-ds{seed}-as{seed|none}-{fields}.jsonl`. */
const JUDGE_RE = /-l(\d+|all)-ds\d+-as(\d+|none)(-[^/]*)?\.jsonl$/;

/** Classifies a file of the runs folder by its name, or null for files the report does not read. */
export function classifyRunFile(file: string): RunFile['kind'] | null {
  const base = path.basename(file);
  if (base.endsWith('.eval')) return 'fidelity';
  // pairwise comparisons (`…-vs-<label>.jsonl`) carry preferences, not scores
  if (JUDGE_RE.test(base) && !/-vs-/.test(base)) return 'judge';
  if (base === 'train-log.jsonl') return 'training';
  if (/^results.*\.json$/.test(base)) return 'tasks';
  return null;
}

export interface LoadRunsOptions {
  /** Warnings are also passed here as they arise. */
  onWarning?: (message: string) => void;
}

/**
 * Reads a runs folder: `.eval` fidelity files, judge outputs, results.json files and train-log.jsonl files under
 * `DIR/<model>/…`, and the optional `DIR/run.json`. Throws `PlotError` `PLOT_NO_DATA` when there is nothing to
 * report, `PLOT_BAD_FILE` for unreadable files and `PLOT_BAD_DATA` for contradicting ones (the same model,
 * language and seed twice).
 */
export async function loadRuns(dir: string, options: LoadRunsOptions = {}): Promise<Runs> {
  const root = path.resolve(dir);
  if (!existsSync(root)) {
    throw new PlotError('PLOT_NO_DATA', `runs folder ${dir} does not exist`);
  }
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    options.onWarning?.(m);
  };
  const runs: Runs = {
    dir: root,
    fidelity: [],
    helpfulness: [],
    tasks: [],
    training: [],
    models: [],
    meta: {},
    found: {
      seeds: [],
      sampling: [],
      backends: [],
      versions: {},
      judgeModels: [],
      testsets: [],
      taskConfigs: [],
    },
    files: [],
    warnings,
  };
  const metaFile = path.join(root, 'run.json');
  if (existsSync(metaFile)) {
    runs.meta = await readJsonObject(metaFile, 'run metadata (run.json)');
    runs.files.push({ kind: 'meta', file: metaFile, model: null });
  }
  const rootName = path.basename(root);
  const modelOf = (file: string) => {
    const rel = path.relative(root, file).split(path.sep);
    return rel.length > 1 ? rel[0] : rootName;
  };
  const seeds = new Set<number>();
  const sampling = new Map<string, Record<string, unknown>>();
  const backends = new Set<string>();
  const judgeModels = new Set<string>();
  const testsets = new Set<string>();
  const seen = new Map<string, string>();
  const taskIndex = new Map<string, number>();
  const chatFidelity = new Map<string, FidelityRow>();
  const chatJudge = new Map<string, JudgeRow>();
  const replaced = new Set<string>();
  const once = (key: string, file: string, what: string) => {
    const prev = seen.get(key);
    if (prev) {
      throw new PlotError(
        'PLOT_BAD_DATA',
        `${what} appears twice: in ${prev} and in ${file}; remove one of them (or move it out of the runs folder)`,
      );
    }
    seen.set(key, file);
  };
  const noteSampling = (model: string, p: ReturnType<typeof parseRunFileName>) => {
    if (p.temperature === null && p.topP === null && p.topK === null) return;
    const s = { model, temperature: p.temperature, top_p: p.topP, top_k: p.topK, batch: p.batch };
    sampling.set(JSON.stringify(s), s);
  };
  const genArgsRead = new Set<string>();
  const readGenArgs = async (runFile: string, model: string) => {
    const json = runFile.replace(/(\.jsonl)?(\.eval)?$/, '').replace(/\.jsonl$/, '') + '.json';
    if (genArgsRead.has(json) || !existsSync(json)) return;
    genArgsRead.add(json);
    try {
      const args = await readJsonObject(json, 'generation arguments');
      runs.files.push({ kind: 'generation-args', file: json, model });
      const s: Record<string, unknown> = { model };
      for (const k of [
        'temperature',
        'top_p',
        'top_k',
        'frequency_penalty',
        'max_tokens',
        'max_new_tokens',
        'stop',
        'backend',
        'engine',
      ]) {
        if (args[k] !== undefined) s[k] = args[k];
      }
      if (typeof args.backend === 'string') backends.add(args.backend);
      if (Object.keys(s).length > 1) sampling.set(JSON.stringify(s), s);
    } catch (e) {
      warn((e as Error).message);
    }
  };

  for (const file of walk(root)) {
    const kind = classifyRunFile(file);
    if (!kind) continue;
    const model = modelOf(file);
    const rel = path.relative(root, file);
    if (kind === 'fidelity') {
      const ev = await readEvalCsv(file);
      let p = parseRunFileName(file);
      if (p.lang === null && ev.file) {
        const q = parseRunFileName(ev.file);
        if (q.lang !== null) p = { ...q, seed: p.seed ?? q.seed };
      }
      if (p.lang === null) {
        warn(
          `${rel}: left out: no test language in the file name (expected {testset}_{lang}-…-s{seed}-….eval, e.g. alpaca_eval_instructions_de-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8.jsonl.eval)`,
        );
        continue;
      }
      once(
        `fidelity|${model}|${p.testset}|${p.lang}|${p.seed}|${p.prompt}`,
        rel,
        `language fidelity of ${model}, ${p.testset}, seed ${p.seed ?? '(none)'}`,
      );
      if (ev.n === 0) warn(`${rel}: n is 0 (no responses scored)`);
      runs.fidelity.push({
        model,
        lang: p.lang,
        seed: p.seed,
        lang_match: ev.lang_match,
        tgt_lang: ev.tgt_lang,
        n: ev.n,
        testset: p.testset,
        file: rel,
      });
      if (p.seed !== null) seeds.add(p.seed);
      testsets.add(
        p.lang && p.testset.endsWith(`_${p.lang}`) ? p.testset.slice(0, -p.lang.length - 1) : p.testset,
      );
      noteSampling(model, p);
      await readGenArgs(file, model);
    } else if (kind === 'judge') {
      const j = await readJudgeJsonl(file);
      for (const w of j.warnings) warn(w);
      const p = parseRunFileName(file);
      if (p.lang === null) {
        warn(
          `${rel}: left out: no test language in the file name (expected {testset}_{lang}-…-l300-ds42-as42-….jsonl)`,
        );
        continue;
      }
      once(
        `judge|${model}|${p.testset}|${p.lang}|${p.seed}|${p.prompt}|${p.judge?.fields}`,
        rel,
        `judge scores of ${model}, ${p.testset}, seed ${p.seed ?? '(none)'}`,
      );
      if (j.n === 0) warn(`${rel}: empty judge output`);
      else if (j.scores.length === 0) warn(`${rel}: no item has a score (all ${j.n} judgements unparseable)`);
      runs.helpfulness.push({
        model,
        lang: p.lang,
        seed: p.seed,
        score: j.mean,
        n: j.scores.length,
        skipped: j.skipped,
        judgeModel: j.judgeModel,
        testset: p.testset,
        file: rel,
      });
      if (j.judgeModel) judgeModels.add(j.judgeModel);
      if (p.seed !== null) seeds.add(p.seed);
      noteSampling(model, p);
    } else if (kind === 'tasks') {
      const r = await readResultsJson(file);
      const taskModel = path.dirname(file) === root && r.model ? path.basename(r.model) : model;
      if (r.backend) backends.add(r.backend);
      if (r.versions) Object.assign(runs.found.versions, r.versions);
      if (r.config || Object.keys(r.extra).length) {
        runs.found.taskConfigs.push({ ...(r.config ?? {}), ...r.extra, model: taskModel, file: rel });
      }
      if (r.metrics.length === 0) warn(`${rel}: no numeric results`);
      for (const m of r.metrics) {
        const key = `${taskModel}|${m.task}|${m.metric}|${m.filter}`;
        const prev = taskIndex.get(key);
        const parsed = parseTaskName(m.task);
        const langs = r.languages[m.task];
        const row: TaskRow = {
          model: taskModel,
          task: m.task,
          family: r.groupOf[m.task] ?? parsed.family,
          promptLang: langs?.prompt ?? langs?.data ?? parsed.promptLang,
          dataLang: langs?.data ?? parsed.dataLang,
          metric: m.metric,
          value: m.value,
          stderr: m.stderr,
          file: rel,
        };
        if (
          row.family === 'chat' &&
          row.dataLang &&
          ['lang_match', 'tgt_lang', 'helpfulness'].includes(m.metric)
        ) {
          const key = `${m.metric}${m.filter === null ? '' : `,${m.filter}`}`;
          const seeds = Object.entries(r.perSeed[m.task] ?? {}).filter(([, v]) => v[key] !== undefined);
          const values: [number | null, number][] = seeds.length
            ? seeds.map(([seed, v]) => [Number.isFinite(Number(seed)) ? Number(seed) : null, v[key]])
            : [[null, m.value]];
          for (const [seed, v] of values) {
            const at = `${taskModel}|${row.dataLang}|${seed}`;
            if (m.metric === 'helpfulness') {
              chatJudge.set(at, {
                model: taskModel,
                lang: row.dataLang,
                seed,
                score: v,
                testset: 'chat',
                file: rel,
              });
            } else {
              const f = chatFidelity.get(at) ?? {
                model: taskModel,
                lang: row.dataLang,
                seed,
                lang_match: null,
                tgt_lang: null,
                testset: 'chat',
                file: rel,
              };
              f[m.metric as 'lang_match' | 'tgt_lang'] = v;
              chatFidelity.set(at, f);
            }
          }
        }
        if (prev !== undefined) {
          const old = runs.tasks[prev];
          if (!replaced.has(`${old.file}|${rel}`)) {
            replaced.add(`${old.file}|${rel}`);
            warn(
              `${rel} repeats results of ${old.file} for ${taskModel} (a rerun?); used ${rel}, the later by name`,
            );
          }
          runs.tasks[prev] = row;
        } else {
          taskIndex.set(key, runs.tasks.length);
          runs.tasks.push(row);
        }
      }
    } else if (kind === 'training') {
      const log = await readTrainLog(file);
      for (const w of log.warnings) warn(w);
      if (log.points.length === 0) {
        warn(`${rel}: no losses logged yet`);
        continue;
      }
      const sub = path.relative(path.join(root, model), path.dirname(file));
      const run = sub && !sub.startsWith('..') ? `${model} (${sub.split(path.sep).join('/')})` : model;
      for (const p of log.points as TrainLogPoint[]) {
        runs.training.push({ model, run, split: p.split, step: p.step, loss: p.loss, file: rel });
      }
    }
    runs.files.push({ kind, file: rel, model });
  }

  // Chat-task results (`polyglot tasks run chat`) stand in for .eval files and judge outputs a model lacks.
  const merge = <T extends { model: string; lang: string }>(
    into: T[],
    from: Map<string, T>,
    what: string,
  ) => {
    const have = new Set(into.map((x) => `${x.model}|${x.lang}`));
    const skipped = new Set<string>();
    for (const row of from.values()) {
      if (have.has(`${row.model}|${row.lang}`)) skipped.add(`${row.model}/${row.lang}`);
      else into.push(row);
    }
    if (skipped.size) {
      warn(
        `${what} of ${[...skipped].join(', ')} are in both results files and ${what === 'language fidelity' ? '.eval files' : 'judge outputs'}; used the latter`,
      );
    }
  };
  merge(runs.fidelity, chatFidelity, 'language fidelity');
  merge(runs.helpfulness, chatJudge, 'judge scores');

  const dataFiles = runs.files.filter((f) => f.kind !== 'meta' && f.kind !== 'generation-args');
  if (
    runs.fidelity.length + runs.helpfulness.length + runs.tasks.length + runs.training.length === 0 ||
    dataFiles.length === 0
  ) {
    throw new PlotError(
      'PLOT_NO_DATA',
      `no results in ${dir}${warnings.length ? ` (${warnings.join('; ')})` : ''}: expected <model>/…-s{seed}-….eval (language fidelity), <model>/…-l300-ds42-as42-….jsonl (judge outputs), <model>/**/results.json (task results) or <model>/**/train-log.jsonl (training logs); see the runs folder layout in the @polyglot/plots README`,
    );
  }

  // Models: those with results, plus those run.json lists, ordered by their number of languages.
  const names = new Set<string>();
  for (const r of [...runs.fidelity, ...runs.helpfulness, ...runs.tasks, ...runs.training])
    names.add(r.model);
  runs.models = sortModels([...names].map((n) => modelInfo(n, runs.meta)));

  // Consistency checks that do not stop the report.
  const seedsOf = new Map<string, Set<string>>();
  for (const r of runs.fidelity) {
    const s = seedsOf.get(r.model) ?? new Set<string>();
    s.add(String(r.seed ?? '-'));
    seedsOf.set(r.model, s);
  }
  const seedSets = new Set([...seedsOf.values()].map((s) => [...s].sort().join(',')));
  if (seedSets.size > 1) {
    warn(
      `the models were sampled with different seeds (${[...seedsOf].map(([m, s]) => `${m}: ${[...s].sort().join(', ')}`).join('; ')}); means over seeds are not comparable`,
    );
  }
  const nOf = new Map<string, Set<number>>();
  for (const r of runs.fidelity) {
    if (r.n === null || r.n === undefined) continue;
    const key = `${r.testset}`;
    const s = nOf.get(key) ?? new Set<number>();
    s.add(r.n);
    nOf.set(key, s);
  }
  for (const [key, s] of nOf) {
    if (s.size > 1) {
      warn(`${key}: the run files scored different numbers of responses (${[...s].join(', ')})`);
    }
  }
  if (testsets.size > 1) {
    warn(
      `fidelity files of several test sets (${[...testsets].join(', ')}): figures average them per language; filter the runs folder to one`,
    );
  }
  const metaSeeds = Array.isArray(runs.meta.seeds) ? (runs.meta.seeds as unknown[]) : null;
  runs.found.seeds = metaSeeds?.every((s) => typeof s === 'number')
    ? (metaSeeds as number[])
    : [...seeds].sort((a, b) => a - b);
  runs.found.sampling = [...sampling.values()];
  runs.found.backends = [...backends];
  runs.found.judgeModels = [...judgeModels];
  runs.found.testsets = [...testsets];
  return runs;
}
