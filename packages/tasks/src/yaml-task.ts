/**
 * lm-evaluation-harness YAML task definitions, for the common fields: `task`, `tag`/`group`, `include`,
 * `dataset_path` (local files: `json` with `dataset_kwargs.data_files`, or a file/folder path), `dataset_name`,
 * `test_split`/`validation_split`/`training_split`/`fewshot_split`, `doc_to_text`/`doc_to_target`/`doc_to_choice`
 * (field names, Jinja, lists), `description`, `target_delimiter`, `fewshot_delimiter`, `num_fewshot`,
 * `fewshot_config.sampler`, `output_type` (generate_until, multiple_choice, loglikelihood), `generation_kwargs`,
 * `metric_list`, `filter_list` (regex, take_first, …), `metadata.version`. Python hooks (`!function`) cannot run here.
 */
import { type Dirent, existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readJsonOrJsonl } from '@polyglot/data';
import { type GenerateParams, Xoshiro128 } from '@polyglot/infer';
import YAML from 'yaml';
import { TasksError } from './errors.js';
import { applyFilterPipeline, checkFilterPipeline, type FilterPipeline, NO_FILTER } from './filters.js';
import { isJinja, parsePythonLiteral, renderJinja } from './jinja.js';
import { type MetricFunction, metricFunction } from './metrics.js';
import {
  type Aggregation,
  type Doc,
  defineTask,
  type MetricSpec,
  OUTPUT_TYPES,
  type OutputType,
  type ProcessResult,
  type Task,
  type TaskRequest,
} from './task.js';

/** A YAML task configuration (after `include`s are merged). */
export type YamlTaskConfig = Record<string, unknown>;

/** What a `!function module.name` tag reads as: lm-evaluation-harness's Python hooks, which cannot run here. */
export interface PythonFunctionRef {
  '!function': string;
}

const FUNCTION_TAG = {
  tag: '!function',
  resolve: (value: string): PythonFunctionRef => ({ '!function': value }),
  identify: (v: unknown) => typeof v === 'object' && v !== null && '!function' in v,
  stringify: (item: { value?: unknown }) => String((item.value as PythonFunctionRef)['!function']),
};

function isFunctionRef(v: unknown): v is PythonFunctionRef {
  return typeof v === 'object' && v !== null && typeof (v as PythonFunctionRef)['!function'] === 'string';
}

/** Parses YAML text with lm-evaluation-harness's `!function` tag. */
export function parseYaml(text: string, file = '<yaml>'): unknown {
  let value: unknown;
  try {
    value = YAML.parse(text, { customTags: [FUNCTION_TAG as never], uniqueKeys: false });
  } catch (e) {
    throw new TasksError('bad-yaml', `${file}: invalid YAML: ${(e as Error).message}`, { cause: e });
  }
  const cycle = cyclicPath(value);
  if (cycle !== null) {
    throw new TasksError(
      'bad-yaml',
      `${file}: ${cycle || 'the document'} contains itself (a recursive YAML alias); task files must be trees`,
    );
  }
  return value;
}

/** The path (`a.b[2]`) of a value that contains itself — what a YAML alias to its own ancestor makes — or null. */
function cyclicPath(root: unknown): string | null {
  // iterative depth-first walk: `open` holds the containers on the current path
  const open = new Set<object>();
  const stack: { value: unknown; path: string; leave?: boolean }[] = [{ value: root, path: '' }];
  while (stack.length > 0) {
    const { value, path: at, leave } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (leave) {
      open.delete(value);
      continue;
    }
    if (open.has(value)) return at;
    open.add(value);
    stack.push({ value, path: at, leave: true });
    const entries: [string, unknown][] = Array.isArray(value)
      ? value.map((v, i) => [`${at}[${i}]`, v])
      : Object.entries(value).map(([k, v]) => [at ? `${at}.${k}` : k, v]);
    for (const [p, v] of entries) stack.push({ value: v, path: p });
  }
  return null;
}

/** A task configuration as YAML text (`!function` references kept), e.g. to write a loaded task back out. */
export function stringifyYaml(config: YamlTaskConfig): string {
  return YAML.stringify(config, { customTags: [FUNCTION_TAG as never], lineWidth: 0 });
}

/** Reads a YAML file and merges its `include` chain (the included file first, this file's keys over it). */
export async function readYamlConfig(file: string, seen: string[] = []): Promise<YamlTaskConfig> {
  const abs = path.resolve(file);
  if (seen.includes(abs)) {
    throw new TasksError('bad-yaml', `${file}: include cycle (${[...seen, abs].join(' → ')})`);
  }
  let text: string;
  try {
    text = await fsp.readFile(abs, 'utf8');
  } catch (e) {
    throw new TasksError('cannot-read', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const value = parseYaml(text, file);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TasksError('bad-yaml', `${file}: a task file must be a YAML mapping`);
  }
  const own = value as YamlTaskConfig;
  const inc = own.include;
  if (inc === undefined) return own;
  if (typeof inc !== 'string') throw new TasksError('bad-yaml', `${file}: include must be a file name`);
  const base = await readYamlConfig(path.resolve(path.dirname(abs), inc), [...seen, abs]);
  const { include: _drop, ...rest } = own;
  return { ...base, ...rest };
}

export interface YamlTaskOptions {
  /** The YAML file (for messages and to resolve relative data paths). */
  file?: string;
  /** Folder relative data paths are resolved against first (default the file's folder), then the working folder. */
  baseDir?: string;
}

function where(config: YamlTaskConfig, file?: string): string {
  let name: string;
  try {
    name = JSON.stringify(config.task) ?? String(config.task);
  } catch {
    name = String(config.task); // a config built in code may hold anything (a cycle, a BigInt)
  }
  return `${file ?? '<yaml>'}: task ${name}`;
}

function unsupportedFunction(what: string, ref: PythonFunctionRef, w: string): TasksError {
  return new TasksError(
    'unsupported-function',
    `${w}: ${what} is a Python function (!function ${ref['!function']}), which cannot run here; write it as Jinja or define the task in JavaScript (a task package)`,
  );
}

/** The parts of a config that make a task unrunnable here (Python hooks, remote datasets…), or null. */
export function yamlUnsupported(config: YamlTaskConfig): string | null {
  for (const key of ['doc_to_text', 'doc_to_target', 'doc_to_choice', 'process_docs', 'process_results']) {
    const v = config[key];
    if (isFunctionRef(v)) return `${key} is a Python function (!function ${v['!function']})`;
  }
  const metrics = config.metric_list;
  if (Array.isArray(metrics)) {
    for (const m of metrics) {
      const name = (m as { metric?: unknown })?.metric;
      if (isFunctionRef(name)) return `metric ${name['!function']} is a Python function`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Data

function resolveDataPath(p: string, baseDir: string): string {
  if (path.isAbsolute(p)) return p;
  const first = path.resolve(baseDir, p);
  return existsSync(first) ? first : path.resolve(p);
}

function asFiles(v: unknown, w: string): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw new TasksError(
      'bad-yaml',
      `${w}: dataset_kwargs.data_files must be a file, a list of files or a mapping of split to files`,
    );
  }
  return list as string[];
}

/** split → files, from `dataset_kwargs.data_files` (a file or list is the `train` split, as in Hugging Face datasets). */
function dataFiles(config: YamlTaskConfig, baseDir: string, w: string): Record<string, string[]> | null {
  const kwargs = config.dataset_kwargs as { data_files?: unknown } | undefined;
  const df = kwargs?.data_files;
  if (df !== undefined && df !== null) {
    if (typeof df === 'string' || Array.isArray(df)) {
      return { train: asFiles(df, w).map((f) => resolveDataPath(f, baseDir)) };
    }
    if (typeof df === 'object') {
      return Object.fromEntries(
        Object.entries(df as Record<string, unknown>).map(([split, f]) => [
          split,
          asFiles(f, w).map((x) => resolveDataPath(x, baseDir)),
        ]),
      );
    }
  }
  const dp = config.dataset_path;
  if (typeof dp !== 'string') return null;
  const local = resolveDataPath(dp, baseDir);
  const looksLocal = /^(\.{1,2}[\\/]|[\\/]|~)/.test(dp) || /\.(jsonl?|JSONL?)$/.test(dp) || existsSync(local);
  if (!looksLocal || !existsSync(local)) return null;
  if (statSync(local).isFile()) return { '*': [local] };
  const name = typeof config.dataset_name === 'string' ? config.dataset_name : null;
  const dirs = name ? [path.join(local, name), local] : [local];
  const out: Record<string, string[]> = Object.create(null); // a file "__proto__.jsonl" is a split like any other
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir).sort()) {
      const m = /^(.*?)\.(jsonl|json)$/.exec(f);
      if (m && !Object.hasOwn(out, m[1]!)) out[m[1]!] = [path.join(dir, f)];
    }
  }
  return out;
}

async function loadSplit(config: YamlTaskConfig, split: string, baseDir: string, w: string): Promise<Doc[]> {
  const files = dataFiles(config, baseDir, w);
  if (!files) {
    throw new TasksError(
      'data-missing',
      `${w}: dataset_path ${JSON.stringify(config.dataset_path)} is not a local file or folder; polyglot reads local data only — download the dataset (e.g. as JSON Lines) and set dataset_path: json with dataset_kwargs.data_files: {${split}: FILE}, or dataset_path: ./FILE`,
    );
  }
  // own keys only: a split named "constructor" is not Object.prototype.constructor
  const list = Object.hasOwn(files, split)
    ? files[split]
    : Object.hasOwn(files, '*')
      ? files['*']
      : undefined;
  if (!list) {
    throw new TasksError(
      'data-missing',
      `${w}: no data files for split "${split}" (the data files have ${Object.keys(files).join(', ') || 'none'})`,
    );
  }
  const docs: Doc[] = [];
  for (const f of list) {
    if (!existsSync(f)) throw new TasksError('data-missing', `${w}: data file ${f} does not exist`);
    docs.push(...(await readJsonOrJsonl(f)));
  }
  return docs;
}

// ---------------------------------------------------------------------------------------------------------------
// doc_to_*

function fieldOrTemplate(spec: string, doc: Doc, w: string): unknown {
  if (Object.hasOwn(doc, spec)) return doc[spec];
  return renderJinja(spec, doc, w);
}

function docToText(config: YamlTaskConfig, doc: Doc, w: string): string {
  const t = config.doc_to_text;
  if (t === undefined || t === null) return '';
  if (isFunctionRef(t)) throw unsupportedFunction('doc_to_text', t, w);
  if (typeof t === 'number') return String(t);
  if (typeof t !== 'string')
    throw new TasksError('bad-yaml', `${w}: doc_to_text must be a field name or Jinja text`);
  const v = fieldOrTemplate(t, doc, `${w}: doc_to_text`);
  return typeof v === 'string' ? v : String(v);
}

function docToChoice(config: YamlTaskConfig, doc: Doc, w: string): string[] | null {
  const c = config.doc_to_choice;
  if (c === undefined || c === null) return null;
  if (isFunctionRef(c)) throw unsupportedFunction('doc_to_choice', c, w);
  let value: unknown;
  if (typeof c === 'string') {
    value = Object.hasOwn(doc, c)
      ? doc[c]
      : parsePythonLiteral(renderJinja(c, doc, `${w}: doc_to_choice`), `${w}: doc_to_choice`);
  } else if (Array.isArray(c)) {
    value = c.map((x) =>
      typeof x === 'string' && isJinja(x) ? renderJinja(x, doc, `${w}: doc_to_choice`) : x,
    );
  } else if (typeof c === 'object') {
    value = Object.values(c as Record<string, unknown>);
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new TasksError(
      'bad-yaml',
      `${w}: doc_to_choice must give a non-empty list of choices, got ${JSON.stringify(value)}`,
    );
  }
  return value.map((x) => (typeof x === 'string' ? x : String(x)));
}

function docToTarget(config: YamlTaskConfig, doc: Doc, hasChoices: boolean, w: string): unknown {
  const t = config.doc_to_target;
  if (t === undefined || t === null) return null;
  if (isFunctionRef(t)) throw unsupportedFunction('doc_to_target', t, w);
  if (typeof t === 'number' || Array.isArray(t)) return t;
  if (typeof t !== 'string')
    throw new TasksError('bad-yaml', `${w}: doc_to_target must be a field name, Jinja text or a number`);
  if (Object.hasOwn(doc, t)) return doc[t];
  const text = renderJinja(t, doc, `${w}: doc_to_target`);
  if (hasChoices && /^\s*\d+\s*$/.test(text)) return Number(text);
  if (/^\s*\[.*\]\s*$/s.test(text)) {
    try {
      return parsePythonLiteral(text.trim(), `${w}: doc_to_target`);
    } catch {
      return text;
    }
  }
  return text;
}

/** Gold indices of a multiple-choice document. */
function goldIndices(target: unknown, choices: string[], w: string): number[] {
  const list = Array.isArray(target) ? target : [target];
  return list.map((t) => {
    const i = typeof t === 'number' ? t : choices.indexOf(String(t));
    if (!Number.isInteger(i) || i < 0 || i >= choices.length) {
      throw new TasksError(
        'bad-target',
        `${w}: target ${JSON.stringify(t)} is not one of the ${choices.length} choices (${JSON.stringify(choices).slice(0, 120)})`,
      );
    }
    return i;
  });
}

/** Reference answers of a generation document. */
function references(target: unknown, choices: string[] | null): string[] {
  const list = Array.isArray(target) ? target : [target];
  return list
    .filter((t) => t !== null && t !== undefined)
    .map((t) => (typeof t === 'number' && choices ? (choices[t] ?? String(t)) : String(t)));
}

// ---------------------------------------------------------------------------------------------------------------

const KNOWN_GEN_KEYS = new Set([
  'until',
  'max_gen_toks',
  'max_tokens',
  'do_sample',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'repetition_penalty',
  'frequency_penalty',
  'presence_penalty',
]);

/** lm-evaluation-harness `generation_kwargs` as sampling parameters (greedy unless `do_sample: true`). */
export function generationParams(kwargs: unknown, fewshotDelimiter: string, w: string): GenerateParams {
  const k = (kwargs ?? { until: [fewshotDelimiter] }) as Record<string, unknown>;
  if (typeof k !== 'object' || Array.isArray(k))
    throw new TasksError('bad-yaml', `${w}: generation_kwargs must be a mapping`);
  const unknown = Object.keys(k).filter((x) => !KNOWN_GEN_KEYS.has(x));
  if (unknown.length > 0) {
    throw new TasksError(
      'bad-yaml',
      `${w}: generation_kwargs ${unknown.join(', ')} not supported; known: ${[...KNOWN_GEN_KEYS].join(', ')}`,
    );
  }
  const p: GenerateParams = {};
  const until = k.until;
  if (until !== undefined && until !== null) {
    const list = (typeof until === 'string' ? [until] : until) as unknown[];
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
      throw new TasksError('bad-yaml', `${w}: generation_kwargs.until must be a string or a list of strings`);
    }
    const stops = (list as string[]).filter((s) => s !== '');
    if (stops.length > 0) p.stop = stops;
  }
  const number = (name: string, v: unknown, ok: (n: number) => boolean, what: string): number => {
    if (typeof v !== 'number' || !ok(v)) {
      throw new TasksError(
        'bad-yaml',
        `${w}: generation_kwargs.${name} must be ${what}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const maxName = k.max_gen_toks !== undefined && k.max_gen_toks !== null ? 'max_gen_toks' : 'max_tokens';
  p.max_tokens = number(
    maxName,
    k.max_gen_toks ?? k.max_tokens ?? 256,
    (n) => Number.isSafeInteger(n) && n > 0,
    'a positive integer',
  );
  const sample = k.do_sample === true;
  p.temperature = sample
    ? number('temperature', k.temperature ?? 1, (n) => Number.isFinite(n) && n >= 0, 'a number >= 0')
    : 0;
  for (const name of [
    'top_p',
    'top_k',
    'min_p',
    'repetition_penalty',
    'frequency_penalty',
    'presence_penalty',
  ] as const) {
    if (k[name] !== undefined && k[name] !== null && sample) {
      (p as Record<string, unknown>)[name] = number(name, k[name], Number.isFinite, 'a number');
    }
  }
  return p;
}

interface CompiledMetric {
  spec: MetricSpec;
  fn: MetricFunction;
  kwargs: Record<string, unknown>;
}

function compileMetrics(config: YamlTaskConfig, outputType: OutputType, w: string): CompiledMetric[] {
  const list = config.metric_list;
  const defaults: Record<OutputType, string[]> = {
    multiple_choice: ['acc', 'acc_norm'],
    loglikelihood: ['perplexity', 'acc'],
    generate_until: ['exact_match'],
  };
  const entries: Record<string, unknown>[] =
    list === undefined || list === null
      ? defaults[outputType].map((metric) => ({ metric }))
      : Array.isArray(list)
        ? (list as Record<string, unknown>[])
        : [];
  if (entries.length === 0) throw new TasksError('bad-yaml', `${w}: metric_list must be a non-empty list`);
  return entries.map((e) => {
    const { metric, aggregation, higher_is_better, ...kwargs } = e ?? {};
    if (isFunctionRef(metric)) throw unsupportedFunction('a metric', metric, w);
    if (typeof metric !== 'string')
      throw new TasksError('bad-yaml', `${w}: each metric_list entry needs a metric name`);
    const fn = metricFunction(metric, outputType, w);
    const agg = (aggregation ?? fn.aggregation) as Aggregation;
    if (!['mean', 'median', 'perplexity'].includes(agg)) {
      throw new TasksError(
        'bad-yaml',
        `${w}: metric ${metric}: aggregation ${JSON.stringify(aggregation)} not supported (mean, median, perplexity)`,
      );
    }
    return {
      spec: {
        name: metric,
        aggregation: agg,
        higherIsBetter: typeof higher_is_better === 'boolean' ? higher_is_better : fn.higherIsBetter,
        description: fn.description,
      },
      fn,
      kwargs,
    };
  });
}

/** Builds a {@link Task} from a YAML configuration (see the module comment for the fields). */
export function yamlTask(config: YamlTaskConfig, options: YamlTaskOptions = {}): Task {
  const w = where(config, options.file);
  const name = config.task;
  if (typeof name !== 'string' || name === '')
    throw new TasksError('bad-yaml', `${options.file ?? '<yaml>'}: no task name (task: NAME)`);
  const outputType = (config.output_type ?? 'generate_until') as OutputType;
  if (!OUTPUT_TYPES.includes(outputType)) {
    throw new TasksError(
      'bad-yaml',
      `${w}: output_type must be one of ${OUTPUT_TYPES.join(', ')}, got ${JSON.stringify(config.output_type)}`,
    );
  }
  if (typeof config.repeats === 'number' && config.repeats > 1) {
    throw new TasksError('bad-yaml', `${w}: repeats > 1 is not supported; run several --seeds instead`);
  }
  const baseDir =
    options.baseDir ?? (options.file ? path.dirname(path.resolve(options.file)) : process.cwd());
  const targetDelimiter = typeof config.target_delimiter === 'string' ? config.target_delimiter : ' ';
  const fewshotDelimiter = typeof config.fewshot_delimiter === 'string' ? config.fewshot_delimiter : '\n\n';
  const numFewshot = typeof config.num_fewshot === 'number' ? config.num_fewshot : 0;
  if (!Number.isSafeInteger(numFewshot) || numFewshot < 0) {
    throw new TasksError('bad-yaml', `${w}: num_fewshot must be a whole number >= 0, got ${numFewshot}`);
  }
  const metrics = compileMetrics(config, outputType, w);
  const rawFilters = config.filter_list;
  const pipelines: FilterPipeline[] =
    rawFilters === undefined || rawFilters === null
      ? [NO_FILTER]
      : Array.isArray(rawFilters) && rawFilters.length > 0
        ? rawFilters.map((f, i) => checkFilterPipeline(f, `${w}: filter_list[${i}]`))
        : [NO_FILTER];
  const params =
    outputType === 'generate_until'
      ? generationParams(config.generation_kwargs, fewshotDelimiter, w)
      : undefined;
  const version = ((config.metadata as { version?: unknown } | undefined)?.version ?? 0) as string | number;
  for (const key of ['test_split', 'validation_split', 'training_split', 'fewshot_split']) {
    const v = config[key];
    if (v !== undefined && v !== null && typeof v !== 'string') {
      throw new TasksError('bad-yaml', `${w}: ${key} must be a split name, got ${JSON.stringify(v)}`);
    }
  }
  const evalSplit = (config.test_split ?? config.validation_split) as string | undefined;
  const fewshotSplit = (config.fewshot_split ??
    config.training_split ??
    config.validation_split ??
    config.test_split) as string | undefined;
  const sampler = (config.fewshot_config as { sampler?: unknown } | undefined)?.sampler ?? 'default';
  const unsupported = yamlUnsupported(config);
  let fewshotDocs: Doc[] | null = null;

  const fewshotContext = (doc: Doc, index: number): string => {
    let ctx = '';
    if (typeof config.description === 'string' && config.description !== '') {
      ctx += renderJinja(config.description, doc, `${w}: description`);
    }
    if (numFewshot > 0 && fewshotDocs) {
      const pool = fewshotDocs.filter((d) => d !== doc);
      let shots: Doc[];
      if (sampler === 'first_n') shots = pool.slice(0, numFewshot);
      else {
        const rng = Xoshiro128.fromSeed(1234 + index);
        const idx = pool.map((_, i) => i);
        for (let i = 0; i < Math.min(numFewshot, idx.length); i++) {
          const j = i + Math.floor(rng.nextFloat() * (idx.length - i));
          [idx[i], idx[j]] = [idx[j]!, idx[i]!];
        }
        shots = idx.slice(0, numFewshot).map((i) => pool[i]!);
      }
      for (const shot of shots) {
        const choices = docToChoice(config, shot, w);
        const target = docToTarget(config, shot, choices !== null, w);
        const t = Array.isArray(target) ? target[0] : target;
        const text = typeof t === 'number' && choices ? choices[t] : String(t);
        ctx += docToText(config, shot, w) + targetDelimiter + text + fewshotDelimiter;
      }
    }
    return ctx + docToText(config, doc, w);
  };

  const check = () => {
    if (unsupported) throw new TasksError('unsupported-task', `${w}: cannot run here: ${unsupported}`);
  };

  return defineYamlTask(options.file, {
    name,
    version,
    // lm-evaluation-harness's `description` is a prompt prefix, not prose about the task.
    description: `YAML task ${name}${typeof config.task_alias === 'string' ? ` (${config.task_alias})` : ''}`,
    outputType,
    languages: [],
    generation: params ? { params, seeds: [0] } : undefined,
    metrics: metrics.map((m) => m.spec),
    filters: pipelines.map((p) => p.name),
    numFewshot,
    source: options.file ?? 'yaml',
    async loadDocs() {
      check();
      if (!evalSplit)
        throw new TasksError(
          'bad-yaml',
          `${w}: give test_split or validation_split (the split that is evaluated)`,
        );
      const docs = await loadSplit(config, evalSplit, baseDir, w);
      if (numFewshot > 0) {
        if (!fewshotSplit)
          throw new TasksError(
            'bad-yaml',
            `${w}: num_fewshot needs a training_split, validation_split or fewshot_split`,
          );
        fewshotDocs = fewshotSplit === evalSplit ? docs : await loadSplit(config, fewshotSplit, baseDir, w);
      }
      return docs;
    },
    target(doc) {
      const choices = docToChoice(config, doc, w);
      return docToTarget(config, doc, choices !== null, w);
    },
    buildRequest(doc, _variant, _ctx, index): TaskRequest {
      const context = fewshotContext(doc, index);
      if (outputType === 'generate_until')
        return { type: 'generate_until', prompt: context, params: params!, trim: false };
      const choices = docToChoice(config, doc, w);
      if (outputType === 'multiple_choice') {
        if (!choices)
          throw new TasksError('bad-yaml', `${w}: output_type multiple_choice needs doc_to_choice`);
        return { type: 'multiple_choice', context, choices: choices.map((c) => targetDelimiter + c) };
      }
      const target = docToTarget(config, doc, choices !== null, w);
      const t = Array.isArray(target) ? target[0] : target;
      const text = typeof t === 'number' && choices ? choices[t]! : String(t);
      return { type: 'loglikelihood', context, continuation: targetDelimiter + text };
    },
    process(doc, response): ProcessResult {
      const choices = docToChoice(config, doc, w);
      const target = docToTarget(config, doc, choices !== null, w);
      const filtered: Record<string, unknown> = {};
      const scores: Record<string, number | null> = {};
      for (const p of pipelines) {
        if (response.type === 'generate_until') {
          const value = applyFilterPipeline(p, [response.text]);
          filtered[p.name] = value;
          const prediction =
            typeof value === 'string' ? value : Array.isArray(value) ? String(value[0] ?? '') : String(value);
          const refs = references(target, choices);
          for (const m of metrics) {
            scores[`${m.spec.name},${p.name}`] = m.fn.generation!({
              prediction,
              references: refs,
              kwargs: m.kwargs,
            });
          }
        } else if (response.type === 'multiple_choice') {
          if (!Array.isArray(response.logprobs) || response.logprobs.length !== (choices ?? []).length) {
            throw new TasksError(
              'bad-response',
              `${w}: the response has ${Array.isArray(response.logprobs) ? response.logprobs.length : 'no'} log-probabilities for ${(choices ?? []).length} choices`,
            );
          }
          const gold = goldIndices(target, choices ?? [], w);
          let best = 0;
          response.logprobs.forEach((lp, i) => {
            if (lp > response.logprobs[best]!) best = i;
          });
          filtered[p.name] = best;
          for (const m of metrics) {
            scores[`${m.spec.name},${p.name}`] = m.fn.choice!({
              logprobs: response.logprobs,
              isGreedy: response.is_greedy,
              choices: choices ?? [],
              gold,
              kwargs: m.kwargs,
            });
          }
        } else {
          filtered[p.name] = response.logprob;
          for (const m of metrics) {
            scores[`${m.spec.name},${p.name}`] = m.fn.loglikelihood!({
              logprob: response.logprob,
              isGreedy: response.is_greedy,
              kwargs: m.kwargs,
            });
          }
        }
      }
      return { filtered, scores };
    },
    config: () => ({ ...config }),
  });
}

/** {@link defineTask}, its errors (a name it refuses…) naming the YAML file. */
function defineYamlTask(file: string | undefined, definition: Parameters<typeof defineTask>[0]): Task {
  try {
    return defineTask(definition);
  } catch (e) {
    if (e instanceof TasksError && file !== undefined && !e.message.startsWith(file)) {
      throw new TasksError(e.code, `${file}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** Groups and tags a YAML file declares: `tag: NAME` / `group: NAME` on a task, or a group file listing tasks. */
export function yamlGroups(config: YamlTaskConfig): { groups: string[]; members?: string[] } {
  const names = (v: unknown) =>
    typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  if (Array.isArray(config.task)) {
    return {
      groups: names(config.group),
      members: (config.task as unknown[]).filter((t): t is string => typeof t === 'string'),
    };
  }
  return { groups: [...names(config.tag), ...names(config.group)] };
}

export interface YamlDirResult {
  tasks: Task[];
  /** group/tag name → task names. */
  groups: Record<string, string[]>;
  /** Files read. */
  files: string[];
}

async function walk(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new TasksError('cannot-read', `${dir}: cannot read the include path: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')) out.push(...(await walk(p)));
    else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out;
}

/**
 * Every task under a folder (recursively, `*.yaml` / `*.yml`), as `--include-path` reads them. Files without a
 * `task` (included fragments) are skipped; group files register groups.
 */
export async function loadYamlDir(dir: string): Promise<YamlDirResult> {
  const tasks: Task[] = [];
  const groups: Record<string, string[]> = {};
  const files = await walk(dir);
  for (const file of files) {
    const config = await readYamlConfig(file);
    if (config.task === undefined) continue;
    const g = yamlGroups(config);
    if (g.members) {
      for (const name of g.groups) groups[name] = [...(groups[name] ?? []), ...g.members];
      continue;
    }
    const task = yamlTask(config, { file });
    tasks.push(task);
    for (const name of g.groups) groups[name] = [...(groups[name] ?? []), task.name];
  }
  return { tasks, groups, files };
}
