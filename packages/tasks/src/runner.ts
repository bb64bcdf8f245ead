/**
 * Runs tasks over any engine of `@polyglot/infer` (local or OpenAI-compatible): documents → requests → engine →
 * filters and metrics → per-sample JSONL (appended as it goes, so a killed run resumes) → results.json.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { appendJsonl, readJsonl } from '@polyglot/data';
import {
  type Engine,
  type GenerateParams,
  type GenerateRequest,
  itemSeed,
  LocalEngine,
} from '@polyglot/infer';
import { writeFileAtomic } from '@polyglot/lid';
import pkg from '../package.json' with { type: 'json' };
import { type AggregateOptions, aggregateSamples, type ScoredSample } from './aggregate.js';
import { defaultDataDir } from './datasets.js';
import { TasksError } from './errors.js';
import { buildResults, type ResultsFile, type VariantOutcome } from './results.js';
import type {
  Doc,
  HelpfulnessJudge,
  ProcessResult,
  Task,
  TaskContext,
  TaskRequest,
  TaskResponse,
  Variant,
} from './task.js';

/** The version of @polyglot/tasks, recorded in results.json. */
export const TASKS_VERSION: string = pkg.version;

/** One line of a samples file (`samples_<variant>.jsonl`). */
export interface SampleRecord {
  doc_id: string | number;
  /** Position of the document in the variant's data. */
  doc_index: number;
  /** The sampling seed of the run (null for log-likelihood tasks). */
  seed: number | null;
  doc: Doc;
  target: unknown;
  /** What was asked of the engine, with the sampling parameters and the request's own seed. */
  request: TaskRequest;
  response: TaskResponse;
  /** The response after the first filter pipeline (`none` unless the task has others). */
  filtered_response: unknown;
  /** Every filter pipeline's result, where there are several. */
  filtered_responses?: Record<string, unknown>;
  /** `metric,filter` → value (null: left out of that metric). */
  scores: Record<string, number | null>;
  doc_hash: string;
  request_hash: string;
}

export interface RunProgress {
  variant: string;
  /** Samples (document × seed) finished, of `total`; `resumed` of them were in the samples file already. */
  done: number;
  total: number;
  resumed: number;
}

/** A task and the variants of it to run. */
export interface TaskSelection {
  task: Task;
  variants: Variant[];
}

export interface RunTasksOptions {
  tasks: readonly TaskSelection[];
  engine: Engine;
  /** The engine as the user named it (`local:DIR`, `openai:URL`), for results.json and resume checks. */
  engineSpec?: string;
  outputDir: string;
  /** Only the first N documents of each variant. */
  limit?: number;
  /** Sampling seeds of generation tasks (default each task's own, the paper's 0, 42, 723 for the built-ins). */
  seeds?: readonly number[];
  /** Sampling parameters overriding the tasks' (vLLM names: temperature, max_tokens, stop, …). */
  genKwargs?: GenerateParams;
  /** Requests per engine call, and per append to the samples file; default 8. */
  batchSize?: number;
  /**
   * Folder of the data: a task reads `<dataDir>/<dataset>` where that folder exists, else `dataDir` itself. Default
   * {@link defaultDataDir}`/<dataset>`.
   */
  dataDir?: string;
  /** Task options (`--set key=value`); a key no selected task declares raises. */
  taskOptions?: Record<string, unknown>;
  judge?: HelpfulnessJudge;
  /** LoRA adapter to apply (by name). */
  adapter?: string | null;
  bootstrapIters?: number;
  onProgress?: (p: RunProgress) => void;
  log?: (message: string) => void;
  /**
   * Prompts longer than this many tokens lose words from the start of their instruction until they fit (the paper:
   * 4,096); also at most the model's context minus the tokens to generate. Needs the local engine's tokenizer; with a
   * remote engine prompts are sent as they are. Default 4096.
   */
  maxPromptTokens?: number;
  /** A tokenizer to fit prompts with a remote engine (the local engine's own is used otherwise). */
  tokenizer?: { encode(text: string): number[] };
  /** Extra fields for results.json `config`. */
  extraConfig?: Record<string, unknown>;
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The samples file of a variant. */
export function samplesFileName(variant: string): string {
  return `samples_${variant}.jsonl`;
}

/** The data folder of a task under `--data-dir` (see {@link RunTasksOptions.dataDir}). */
export function taskDataDir(task: Task, dataDir?: string): string {
  const name = task.dataset ?? task.name;
  if (!dataDir) return path.join(defaultDataDir(), name);
  const sub = path.join(dataDir, name);
  return existsSync(sub) && statSync(sub).isDirectory() ? sub : dataDir;
}

/** Checks `--set` options against the selected tasks' declared options. */
export function checkTaskOptions(tasks: readonly Task[], options: Record<string, unknown> = {}): void {
  for (const key of Object.keys(options)) {
    if (!tasks.some((t) => t.options && Object.hasOwn(t.options, key))) {
      const known = [...new Set(tasks.flatMap((t) => Object.keys(t.options ?? {})))];
      throw new TasksError(
        'bad-option',
        `unknown task option "${key}" for ${tasks.map((t) => t.name).join(', ')}; ${known.length ? `known: ${known.join(', ')}` : 'these tasks take no options'}`,
      );
    }
  }
}

function contextFor(
  task: Task,
  opts: {
    dataDir?: string;
    taskOptions?: Record<string, unknown>;
    judge?: HelpfulnessJudge;
    log?: (m: string) => void;
  },
): TaskContext {
  return {
    dataDir: taskDataDir(task, opts.dataDir),
    options: { ...opts.taskOptions },
    judge: opts.judge,
    log: opts.log,
  };
}

/**
 * The prompt fitter of a task on an engine (see `TaskContext.fitPrompt`): with the local engine's tokenizer, the
 * most words from the end of the instruction whose rendered prompt fits in
 * min(maxPromptTokens, max_position_embeddings − tokens to generate) tokens.
 */
function promptFitter(engine: Engine, task: Task, opts: RunTasksOptions): TaskContext['fitPrompt'] {
  const local = engine instanceof LocalEngine ? engine : null;
  const tokenizer = opts.tokenizer ?? local?.tokenizer;
  if (!tokenizer) return undefined;
  const maxPos = local ? local.model.config.maxPositionEmbeddings : Number.POSITIVE_INFINITY;
  const maxNew =
    task.outputType === 'generate_until'
      ? (opts.genKwargs?.max_tokens ?? task.generation?.params.max_tokens ?? 16)
      : 16;
  const limit = Math.min(opts.maxPromptTokens ?? 4096, maxPos - maxNew);
  const fits = (prompt: string) => tokenizer.encode(prompt).length <= limit;
  return (instruction, render) => {
    const whole = render(instruction);
    if (fits(whole)) return whole;
    const words = instruction.split(/\s+/).filter((w) => w !== '');
    let lo = 1;
    let hi = words.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fits(render(words.slice(mid).join(' ')))) hi = mid;
      else lo = mid + 1;
    }
    return render(words.slice(lo).join(' '));
  };
}

/** Sends a chunk of requests to the engine; responses in request order. */
async function execute(
  engine: Engine,
  reqs: readonly TaskRequest[],
  opts: { batchSize: number; adapter?: string | null },
): Promise<TaskResponse[]> {
  const batch = {
    batchSize: opts.batchSize,
    ...(opts.adapter !== undefined ? { adapter: opts.adapter } : {}),
  };
  if (reqs.length === 0) return [];
  const type = reqs[0]!.type;
  if (reqs.some((r) => r.type !== type)) throw new TasksError('bad-task', 'a task mixes request types');
  if (type === 'generate_until') {
    const gen = reqs as Extract<TaskRequest, { type: 'generate_until' }>[];
    const results = await engine.generate(
      gen.map((r): GenerateRequest => ({ prompt: r.prompt, params: r.params, trim: r.trim ?? true })),
      batch,
    );
    return results.map((g) => ({ type: 'generate_until', text: g.text, finish_reason: g.finishReason }));
  }
  if (type === 'multiple_choice') {
    const mc = reqs as Extract<TaskRequest, { type: 'multiple_choice' }>[];
    const flat = mc.flatMap((r) => r.choices.map((c) => ({ context: r.context, continuation: c })));
    const lls = await engine.loglikelihood(flat, batch);
    let k = 0;
    return mc.map((r) => {
      const part = lls.slice(k, k + r.choices.length);
      k += r.choices.length;
      return {
        type: 'multiple_choice',
        logprobs: part.map((p) => p.logprob),
        is_greedy: part.map((p) => p.isGreedy),
      };
    });
  }
  const ll = reqs as Extract<TaskRequest, { type: 'loglikelihood' }>[];
  const lls = await engine.loglikelihood(
    ll.map((r) => ({ context: r.context, continuation: r.continuation })),
    batch,
  );
  return lls.map((p) => ({ type: 'loglikelihood', logprob: p.logprob, is_greedy: p.isGreedy }));
}

/** Scores responses with the task (its processBatch where it has one). */
export async function processAll(
  task: Task,
  variant: Variant,
  ctx: TaskContext,
  items: { doc: Doc; response: TaskResponse; index: number }[],
): Promise<ProcessResult[]> {
  if (task.processBatch) return task.processBatch(items, variant, ctx);
  const out: ProcessResult[] = [];
  for (const it of items) out.push(await task.process(it.doc, it.response, variant, ctx));
  return out;
}

/** A samples-file record for a scored response. */
export function sampleRecord(
  task: Task,
  variant: Variant,
  doc: Doc,
  index: number,
  seed: number | null,
  request: TaskRequest,
  response: TaskResponse,
  result: ProcessResult,
): SampleRecord {
  const filters = task.filters ?? ['none'];
  const rec: SampleRecord = {
    doc_id: task.docId ? task.docId(doc, index) : index,
    doc_index: index,
    seed,
    doc,
    target: task.target ? task.target(doc, variant) : null,
    request,
    response,
    filtered_response: result.filtered[filters[0]!] ?? result.filtered.none ?? null,
    scores: result.scores,
    doc_hash: hashOf(doc),
    request_hash: hashOf(request),
  };
  if (Object.keys(result.filtered).length > 1) rec.filtered_responses = result.filtered;
  return rec;
}

function withSeed(
  req: TaskRequest,
  genKwargs: GenerateParams | undefined,
  seed: number | null,
  index: number,
): TaskRequest {
  if (req.type !== 'generate_until') return req;
  const { seed: _ignored, ...overrides } = genKwargs ?? {};
  return {
    ...req,
    params: { ...req.params, ...overrides, seed: seed === null ? 0 : itemSeed(seed, index) },
  };
}

interface RunMeta {
  engine: string;
  model: string;
  adapter: string | null;
}

async function checkRunMeta(outputDir: string, meta: RunMeta): Promise<void> {
  const file = path.join(outputDir, 'run.json');
  if (existsSync(file)) {
    let old: Partial<RunMeta>;
    try {
      old = JSON.parse(await fsp.readFile(file, 'utf8'));
    } catch {
      old = {};
    }
    if (old.engine !== meta.engine || old.model !== meta.model || (old.adapter ?? null) !== meta.adapter) {
      throw new TasksError(
        'resume-mismatch',
        `${outputDir} holds a run of ${old.engine} (model ${old.model}, adapter ${old.adapter ?? 'none'}), not of ${meta.engine} (model ${meta.model}, adapter ${meta.adapter ?? 'none'}); choose another --output-dir to keep both`,
      );
    }
    return;
  }
  await writeFileAtomic(file, `${JSON.stringify(meta, null, 2)}\n`);
}

/** Whether a process with this id runs (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files (`.<name>.<pid>.<hex>.tmp`) that atomic writes of `targets` (run.json, results.json) by
 * processes no longer running left in `dir`.
 */
async function removeStaleTemps(dir: string, targets: readonly string[]): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name);
    if (m && targets.includes(m[1]!) && Number(m[2]) !== process.pid && !alive(Number(m[2]))) {
      await fsp.rm(path.join(dir, name), { force: true });
    }
  }
}

/** Reads a samples file for resuming: records by `doc_index:seed`. A partial last line (a killed append) is ignored. */
async function readDone(file: string): Promise<Map<string, { rec: SampleRecord; line: number }>> {
  const done = new Map<string, { rec: SampleRecord; line: number }>();
  if (!existsSync(file)) return done;
  for await (const { value, line } of readJsonl<SampleRecord>(file, { allowTruncatedTail: true })) {
    done.set(`${value.doc_index}:${value.seed}`, { rec: value, line });
  }
  return done;
}

/**
 * Runs every selected variant and writes `<outputDir>/samples_<variant>.jsonl` (one line per document and seed,
 * appended after each batch) and `<outputDir>/results.json` (atomically, at the end). Rerunning with the same output
 * folder resumes: documents already in a samples file are not asked again (their requests must be the same, else
 * `resume-mismatch`).
 */
export async function runTasks(opts: RunTasksOptions): Promise<ResultsFile> {
  const startedAt = Date.now();
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new TasksError('bad-option', `batchSize must be a positive integer, got ${batchSize}`);
  }
  if (opts.limit !== undefined && !(Number.isSafeInteger(opts.limit) && opts.limit > 0)) {
    throw new TasksError('bad-option', `limit must be a positive integer, got ${opts.limit}`);
  }
  checkTaskOptions(
    opts.tasks.map((t) => t.task),
    opts.taskOptions,
  );
  await fsp.mkdir(opts.outputDir, { recursive: true });
  await removeStaleTemps(opts.outputDir, ['run.json', 'results.json']);
  const info = opts.engine.info;
  const engineSpec = opts.engineSpec ?? `${info.kind}:${info.model}`;
  await checkRunMeta(opts.outputDir, {
    engine: engineSpec,
    model: info.model,
    adapter: opts.adapter ?? info.adapter ?? null,
  });
  const outcomes: VariantOutcome[] = [];
  for (const { task, variants } of opts.tasks) {
    const ctx = { ...contextFor(task, opts), fitPrompt: promptFitter(opts.engine, task, opts) };
    await task.setup?.(ctx);
    for (const variant of variants) {
      outcomes.push(await runVariant(task, variant, ctx, opts, batchSize));
    }
  }
  const results = buildResults(
    outcomes,
    {
      model: info.model,
      engine: engineSpec,
      engine_kind: info.kind,
      backend: info.backend,
      adapter: opts.adapter ?? info.adapter ?? null,
      batch_size: batchSize,
      limit: opts.limit ?? null,
      seeds: opts.seeds ?? null,
      gen_kwargs: (opts.genKwargs as Record<string, unknown>) ?? null,
      bootstrap_iters: opts.bootstrapIters ?? 0,
      task_options: opts.taskOptions ?? {},
      judge: opts.judge?.name ?? null,
      ...opts.extraConfig,
    },
    { version: TASKS_VERSION, startedAt },
  );
  await writeFileAtomic(path.join(opts.outputDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  return results;
}

async function runVariant(
  task: Task,
  variant: Variant,
  baseCtx: TaskContext,
  opts: RunTasksOptions,
  batchSize: number,
): Promise<VariantOutcome> {
  const all = await task.loadDocs(variant, baseCtx);
  const docs = opts.limit !== undefined ? all.slice(0, opts.limit) : all;
  const ctx: TaskContext = { ...baseCtx, docCount: docs.length };
  const seeds: (number | null)[] =
    task.outputType === 'generate_until' ? [...(opts.seeds ?? task.generation?.seeds ?? [0])] : [null];
  const file = path.join(opts.outputDir, samplesFileName(variant.name));
  const done = await readDone(file);
  const todo: { index: number; seed: number | null; request: TaskRequest }[] = [];
  const kept: SampleRecord[] = [];
  for (const seed of seeds) {
    docs.forEach((doc, index) => {
      const request = withSeed(task.buildRequest(doc, variant, ctx, index), opts.genKwargs, seed, index);
      const old = done.get(`${index}:${seed}`);
      if (!old) {
        todo.push({ index, seed, request });
        return;
      }
      if (old.rec.request_hash !== hashOf(request) || old.rec.doc_hash !== hashOf(doc)) {
        throw new TasksError(
          'resume-mismatch',
          `${file}:${old.line}: document ${index} (seed ${seed}) was run with another ${old.rec.doc_hash !== hashOf(doc) ? 'document' : 'request (prompt or sampling parameters)'}; rerun with the settings of that run, or choose another --output-dir`,
        );
      }
      kept.push(old.rec);
    });
  }
  const total = todo.length + kept.length;
  const resumed = kept.length;
  opts.onProgress?.({ variant: variant.name, done: resumed, total, resumed });
  const records = [...kept];
  for (let start = 0; start < todo.length; start += batchSize) {
    const chunk = todo.slice(start, start + batchSize);
    const responses = await execute(
      opts.engine,
      chunk.map((c) => c.request),
      { batchSize, adapter: opts.adapter },
    );
    const processed = await processAll(
      task,
      variant,
      ctx,
      chunk.map((c, k) => ({ doc: docs[c.index]!, response: responses[k]!, index: c.index })),
    );
    const fresh = chunk.map((c, k) =>
      sampleRecord(task, variant, docs[c.index]!, c.index, c.seed, c.request, responses[k]!, processed[k]!),
    );
    await appendJsonl(file, fresh);
    records.push(...fresh);
    opts.onProgress?.({ variant: variant.name, done: records.length, total, resumed });
  }
  return outcomeOf(
    task,
    variant,
    all.length,
    docs.length,
    seeds,
    records,
    task.config ? task.config(variant) : {},
    opts,
    file,
  );
}

/** Aggregates the records of one variant. */
export function outcomeOf(
  task: Task,
  variant: Variant,
  docsTotal: number,
  docsUsed: number,
  seeds: readonly (number | null)[],
  records: readonly Pick<SampleRecord, 'doc_index' | 'seed' | 'scores'>[],
  config: Record<string, unknown>,
  aggregate: AggregateOptions & { bootstrapIters?: number },
  samplesFile?: string,
): VariantOutcome {
  const samples: ScoredSample[] = records.map((r) => ({
    docIndex: r.doc_index,
    seed: r.seed,
    scores: r.scores,
  }));
  return {
    task,
    variant,
    docsTotal,
    docsUsed,
    seeds,
    summaries: aggregateSamples(samples, task.metrics, task.filters ?? ['none'], {
      bootstrapIters: aggregate.bootstrapIters,
    }),
    config,
    samplesFile: samplesFile ? path.basename(samplesFile) : undefined,
  };
}
