import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type BatchOptions, type BatchReport, runBatch } from './batch.js';
import { type ChatParams, type Completion, type JudgeClient, JudgeRequestError } from './client.js';
import { JudgeError } from './errors.js';
import { canonicalJson, sha256 } from './hash.js';
import {
  type JsonRecord,
  type Line,
  LineAppender,
  readJsonl,
  readResumable,
  writeFileAtomic,
} from './jsonl.js';
import { pool } from './limiter.js';
import {
  buildPairwiseMessages,
  combineVerdicts,
  HELPFULNESS_PAIRWISE,
  type Outcome,
  type PairwiseRubric,
  parsePairwiseResponse,
  type Verdict,
} from './pairwise.js';
import { parseJudgeResponse } from './parse.js';
import { buildJudgeMessages, HELPFULNESS_RUBRIC, type JudgeMessage, type Rubric } from './rubric.js';
import { sampleIndices } from './sample.js';

/** What selects and names a judging run (shared by single and pairwise runs). */
export interface SelectionOptions {
  /** Field holding the task; default `source` (the paper's run files). */
  instructionKey?: string;
  /** Field holding the response judged; default `system`. */
  responseKey?: string;
  /** Items judged per file (drawn with `dataSeed`); default all. */
  limit?: number;
  /** Seed of the item sample; default 42. */
  dataSeed?: number;
  /** `seed` sent to the judge; default 42; null sends none. */
  apiSeed?: number | null;
}

export interface RunOptions extends SelectionOptions {
  client: JudgeClient;
  /** Folder of the output; default the input's folder. */
  outputDir?: string;
  /** The output file itself (overrides `outputDir` and the naming). */
  output?: string;
  /** Judge temperature; default 0. */
  temperature?: number;
  /** Most tokens of a judge answer; default 512. */
  maxTokens?: number;
  /** Requests in flight at once; default 8. */
  concurrency?: number;
  /** Judge again the items recorded as failed (refused requests). */
  retryFailed?: boolean;
  /** Send the requests through the OpenAI Batch API first (see {@link runBatch}). */
  batch?: BatchOptions;
  /** Called after each item is written, with the items done (resumed ones included) and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Notices for logs: a cut-off last line repaired, items resumed, batch steps. */
  onNotice?: (message: string) => void;
}

export interface JudgeRunOptions extends RunOptions {
  /** JSON Lines file of the responses to judge. */
  input: string;
  /** Default {@link HELPFULNESS_RUBRIC}. */
  rubric?: Rubric;
}

/** Counts and totals of a run. */
export interface RunResult {
  output: string;
  /** Items in the sample. */
  total: number;
  /** Items in the output now (resumed + new). */
  done: number;
  /** Items found already judged in the output when the run started. */
  resumed: number;
  /** Items judged with a usable answer (in the output). */
  judged: number;
  /** Items whose judge answer could not be read (excluded from the mean). */
  unparseable: number;
  /** Items whose request was refused (excluded from the mean). */
  failed: number;
  /** Judge answers taken from the cache in this run. */
  cacheHits: number;
  /** HTTP requests sent in this run (retries included). */
  requests: number;
  /** USD spent in this run (new answers) and over every item of the output; null parts were unpriced. */
  cost: { run: number; output: number; unpriced: number };
  tokens: { prompt: number; completion: number };
  /** Why the run stopped before the end, if it did. */
  stopped: null | 'budget';
  batch?: BatchReport;
}

export interface SingleRunResult extends RunResult {
  input: string;
  /** Mean score over the judged items (null when none). */
  mean: number | null;
}

/**
 * `<input-stem>-l<limit|all>-ds<dataSeed>-as<apiSeed|none>-<instructionKey>-<responseKey>.jsonl`, the paper's
 * naming (e.g. `…-l300-ds42-as42-source-system.jsonl`).
 */
export function outputName(input: string, sel: SelectionOptions = {}, suffix = ''): string {
  const stem = path.basename(input).replace(/\.jsonl?$/i, '');
  const { limit, dataSeed = 42, apiSeed = 42, instructionKey = 'source', responseKey = 'system' } = sel;
  return `${stem}-l${limit ?? 'all'}-ds${dataSeed}-as${apiSeed ?? 'none'}-${instructionKey}-${responseKey}${suffix}.jsonl`;
}

function fieldError(file: string, l: Line, key: string, flag: string, what: string): JudgeError {
  const v = l.value[key];
  return new JudgeError(
    'bad-item',
    v === undefined
      ? `${file}:${l.line}: no "${key}" field (${what}); name the field with ${flag}`
      : `${file}:${l.line}: "${key}" must be a string, got ${v === null ? 'null' : typeof v}`,
  );
}

function textField(file: string, l: Line, key: string, flag: string, what: string): string {
  const v = l.value[key];
  if (typeof v !== 'string') throw fieldError(file, l, key, flag, what);
  return v;
}

interface Prepared<T> {
  output: string;
  indices: number[];
  done: Map<number, JsonRecord>;
  pending: T[];
  resumed: number;
}

/**
 * Removes the temp files (`.<output name>.<hex>.tmp`) that a process killed while rewriting `output` at the end
 * left beside it (one writer per output: a temp file of that name is never another live process's).
 */
function removeStaleTemps(output: string): void {
  const dir = path.dirname(output);
  const prefix = `.${path.basename(output)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix) && /^[0-9a-f]{8}\.tmp$/.test(name.slice(prefix.length))) {
      rmSync(path.join(dir, name), { force: true });
    }
  }
}

/** Reads what an earlier run left in `output`, checking it was judged with the same settings. */
function resume(
  output: string,
  indices: readonly number[],
  config: string,
  retryFailed: boolean,
  notice?: (m: string) => void,
): { done: Map<number, JsonRecord>; resumed: number } {
  removeStaleTemps(output);
  const inSample = new Set(indices);
  const done = new Map<number, JsonRecord>();
  const lines = readResumable(output, (line, text) =>
    notice?.(
      `${output}:${line}: cut off an unfinished last line (${text.length} bytes) left by an interrupted run`,
    ),
  );
  for (const l of lines) {
    const meta = l.value.eval_meta as JsonRecord | undefined;
    const item = meta?.item;
    if (typeof item !== 'number' || !inSample.has(item)) {
      throw new JudgeError(
        'bad-output',
        `${output}:${l.line}: not a judgement of this run's sample (eval_meta.item ${JSON.stringify(item)}); ` +
          'move the file away or choose another --output-dir',
      );
    }
    if (meta!.judge_config !== config) {
      throw new JudgeError(
        'bad-output',
        `${output}:${l.line}: judged with other settings (judge model, rubric or parameters: config ` +
          `${JSON.stringify(meta!.judge_config)}, now ${config}); move the file away or choose another --output-dir`,
      );
    }
    if (retryFailed && meta!.error !== undefined) done.delete(item);
    else done.set(item, l.value);
  }
  return { done, resumed: done.size };
}

/** Rewrites a finished output in sample order, one line per item (atomically). */
function finish(output: string, indices: readonly number[], done: Map<number, JsonRecord>): void {
  writeFileAtomic(output, indices.map((i) => `${JSON.stringify(done.get(i))}\n`).join(''));
}

function metaOf(c: Completion, judge: string): JsonRecord {
  const m: JsonRecord = {
    judge,
    model: c.model,
    fingerprint: c.fingerprint,
    prompt_tokens: c.usage?.prompt_tokens ?? null,
    completion_tokens: c.usage?.completion_tokens ?? null,
    cost: c.cost,
    cached: c.cached,
    json_mode: c.jsonMode,
  };
  if (c.batch) m.batch = true;
  return m;
}

interface Totals {
  judged: number;
  unparseable: number;
  failed: number;
  costOutput: number;
  unpricedOutput: number;
  sum: number;
}

function tally(done: Map<number, JsonRecord>, scoreKey: string): Totals {
  const t: Totals = { judged: 0, unparseable: 0, failed: 0, costOutput: 0, unpricedOutput: 0, sum: 0 };
  for (const r of done.values()) {
    const meta = (r.eval_meta ?? {}) as JsonRecord;
    if (meta.error !== undefined) t.failed++;
    else if (r[scoreKey] === null || r[scoreKey] === undefined) t.unparseable++;
    else {
      t.judged++;
      if (typeof r[scoreKey] === 'number') t.sum += r[scoreKey] as number;
    }
    const costs = Array.isArray(meta.costs) ? (meta.costs as unknown[]) : [meta.cost];
    for (const c of costs) {
      if (typeof c === 'number') t.costOutput += c;
      else if (meta.error === undefined) t.unpricedOutput++;
    }
  }
  return t;
}

/**
 * Drives a run: the pool of workers over the pending items, the budget stop, fatal errors (in-flight items are
 * still written, then the error is raised), the final rewrite in sample order once every item is in.
 */
async function drive<T extends { item: number }>(
  opts: RunOptions,
  prep: Prepared<T>,
  work: (task: T) => Promise<JsonRecord>,
  requestsOf: (task: T) => { messages: JudgeMessage[]; params: ChatParams }[],
  scoreKey: string,
): Promise<RunResult> {
  const { client } = opts;
  const start = { ...client.stats };
  let stopped: null | 'budget' = null;
  let fatal: unknown;
  let batch: BatchReport | undefined;
  if (opts.batch && prep.pending.length > 0) {
    const requests = prep.pending.flatMap((t) => requestsOf(t));
    batch = await runBatch(client, requests, {
      ...opts.batch,
      onNotice: opts.batch.onNotice ?? opts.onNotice,
    });
  }
  const appender = new LineAppender(prep.output);
  try {
    opts.onProgress?.(prep.done.size, prep.indices.length);
    await pool(
      prep.pending,
      opts.concurrency ?? 8,
      async (task) => {
        let record: JsonRecord;
        try {
          record = await work(task);
        } catch (e) {
          if (e instanceof JudgeError && e.code === 'budget') {
            stopped = 'budget';
            if (fatal === undefined) fatal = e;
          } else if (fatal === undefined) fatal = e;
          return;
        }
        appender.append(record);
        prep.done.set(task.item, record);
        opts.onProgress?.(prep.done.size, prep.indices.length);
      },
      () => fatal !== undefined,
    );
  } finally {
    appender.close();
  }
  if (prep.done.size === prep.indices.length) finish(prep.output, prep.indices, prep.done);
  if (fatal !== undefined && stopped === null) throw fatal;
  const t = tally(prep.done, scoreKey);
  const s = client.stats;
  return {
    output: prep.output,
    total: prep.indices.length,
    done: prep.done.size,
    resumed: prep.resumed,
    judged: t.judged,
    unparseable: t.unparseable,
    failed: t.failed,
    cacheHits: s.cacheHits - start.cacheHits,
    requests: s.requests - start.requests,
    cost: { run: s.spent - start.spent, output: t.costOutput, unpriced: t.unpricedOutput },
    tokens: {
      prompt: s.promptTokens - start.promptTokens,
      completion: s.completionTokens - start.completionTokens,
    },
    stopped,
    ...(batch ? { batch } : {}),
  };
}

function itemFailure(e: unknown): JsonRecord | undefined {
  if (e instanceof JudgeRequestError && e.kind === 'item') return { error: e.message, status: e.status };
  return undefined;
}

function configHash(parts: Record<string, unknown>): string {
  return sha256(canonicalJson(parts)).slice(0, 16);
}

/**
 * Judges the responses of one JSON Lines file on a rubric (single-answer grading): samples `limit` items with
 * `dataSeed`, asks the judge for each (answers cached; concurrency, rate limits, retries and the budget as the
 * client sets them), and appends `{…record, eval_score, eval_reasoning, eval_meta}` lines to the output as they
 * come, so that a rerun after a crash or a kill resumes where it stopped (nothing lost, nothing twice). Once every
 * item is in, the file is rewritten in sample order. Unparseable answers get `eval_score: null` with the reason
 * and the raw answer in `eval_meta`; refused requests are recorded as failed; both are left out of the mean.
 */
export async function judgeFile(opts: JudgeRunOptions): Promise<SingleRunResult> {
  const rubric = opts.rubric ?? HELPFULNESS_RUBRIC;
  const ik = opts.instructionKey ?? 'source';
  const rk = opts.responseKey ?? 'system';
  const apiSeed = opts.apiSeed === undefined ? 42 : opts.apiSeed;
  const params: ChatParams = {
    temperature: opts.temperature ?? 0,
    max_tokens: opts.maxTokens ?? 512,
    seed: apiSeed ?? undefined,
  };
  const lines = readJsonl(opts.input);
  const indices = sampleIndices(lines.length, opts.limit, opts.dataSeed ?? 42);
  const tasks = indices.map((item) => {
    const l = lines[item];
    const instruction = textField(opts.input, l, ik, '--instruction-key', 'the task');
    const response = textField(opts.input, l, rk, '--response-key', 'the response judged');
    if (instruction.trim() === '') {
      throw new JudgeError('bad-item', `${opts.input}:${l.line}: "${ik}" is empty`);
    }
    return { item, record: l.value, messages: buildJudgeMessages(instruction, response, rubric) };
  });
  const output =
    opts.output ??
    path.join(opts.outputDir ?? path.dirname(opts.input), outputName(opts.input, { ...opts, apiSeed }));
  mkdirSync(path.dirname(output), { recursive: true });
  const config = configHash({ model: opts.client.model, rubric, params, ik, rk });
  const { done, resumed } = resume(output, indices, config, opts.retryFailed ?? false, opts.onNotice);
  if (resumed > 0)
    opts.onNotice?.(`${output}: ${resumed} of ${indices.length} items already judged; resuming`);
  const pending = tasks.filter((t) => !done.has(t.item));
  const base = { rubric: rubric.name, judge_config: config, seed: apiSeed, temperature: params.temperature };
  const result = await drive(
    opts,
    { output, indices, done, pending, resumed },
    async (t) => {
      const meta: JsonRecord = { ...base, item: t.item };
      let c: Completion;
      try {
        c = await opts.client.complete(t.messages, params);
      } catch (e) {
        const failure = itemFailure(e);
        if (!failure) throw e;
        return { ...t.record, eval_score: null, eval_reasoning: null, eval_meta: { ...meta, ...failure } };
      }
      Object.assign(meta, metaOf(c, opts.client.model));
      const parsed = parseJudgeResponse(c.content ?? '', rubric);
      if (!parsed.ok) {
        return {
          ...t.record,
          eval_score: null,
          eval_reasoning: null,
          eval_meta: { ...meta, unparseable: parsed.error, raw: c.content },
        };
      }
      return {
        ...t.record,
        eval_score: parsed.score,
        eval_reasoning: parsed.reasoning,
        eval_meta: { ...meta, via: parsed.via },
      };
    },
    (t) => [{ messages: t.messages, params }],
    'eval_score',
  );
  const t = tally(done, 'eval_score');
  return { input: opts.input, ...result, mean: t.judged > 0 ? t.sum / t.judged : null };
}

export interface PairwiseRunOptions extends RunOptions {
  /** The responses of system a. */
  inputA: string;
  /** The responses of system b to the same tasks, line by line. */
  inputB: string;
  /** Names of the two systems; default their folders' names (their file names when in one folder). */
  labels?: [string, string];
  /** Default {@link HELPFULNESS_PAIRWISE}. */
  rubric?: PairwiseRubric;
}

export interface PairwiseRunResult extends RunResult {
  labels: [string, string];
  wins: { a: number; b: number; tie: number };
  /** Items where the two orders agreed. */
  consistent: number;
  /** Share of decisive verdicts (not tie) that picked the response shown first; 0.5 = no position bias. */
  firstPositionRate: number | null;
  /** (wins of a + ties / 2) / judged. */
  winRateA: number | null;
}

function defaultLabels(a: string, b: string): [string, string] {
  const da = path.basename(path.dirname(path.resolve(a)));
  const db = path.basename(path.dirname(path.resolve(b)));
  if (da !== db) return [da, db];
  const stem = (f: string) => path.basename(f).replace(/\.jsonl?$/i, '');
  return [stem(a), stem(b)];
}

/**
 * Compares the responses of two systems to the same tasks (files aligned line by line; the task text must be
 * equal): each sampled item is judged twice, with a's response shown first and with b's shown first, and the
 * verdicts combined by {@link combineVerdicts} (disagreement = tie, counted as inconsistent). Writes
 * `<a-stem>-l…-vs-<label b>.jsonl` lines `{…, response_a, response_b, eval_winner, eval_consistent,
 * eval_verdicts, eval_reasoning, eval_meta}`, resumable like {@link judgeFile}, and reports wins, consistency and
 * the rate at which the first position wins (position bias).
 */
export async function judgePairwise(opts: PairwiseRunOptions): Promise<PairwiseRunResult> {
  const rubric = opts.rubric ?? HELPFULNESS_PAIRWISE;
  const ik = opts.instructionKey ?? 'source';
  const rk = opts.responseKey ?? 'system';
  const apiSeed = opts.apiSeed === undefined ? 42 : opts.apiSeed;
  const labels = opts.labels ?? defaultLabels(opts.inputA, opts.inputB);
  const params: ChatParams = {
    temperature: opts.temperature ?? 0,
    max_tokens: opts.maxTokens ?? 512,
    seed: apiSeed ?? undefined,
  };
  const linesA = readJsonl(opts.inputA);
  const linesB = readJsonl(opts.inputB);
  if (linesA.length !== linesB.length) {
    throw new JudgeError(
      'not-parallel',
      `${opts.inputA} has ${linesA.length} records and ${opts.inputB} ${linesB.length}: a comparison needs the ` +
        'responses of both systems to the same tasks, in the same order',
    );
  }
  const indices = sampleIndices(linesA.length, opts.limit, opts.dataSeed ?? 42);
  const tasks = indices.map((item) => {
    const la = linesA[item];
    const lb = linesB[item];
    const instruction = textField(opts.inputA, la, ik, '--instruction-key', 'the task');
    const other = textField(opts.inputB, lb, ik, '--instruction-key', 'the task');
    if (other !== instruction) {
      throw new JudgeError(
        'not-parallel',
        `${opts.inputA}:${la.line} and ${opts.inputB}:${lb.line}: different tasks in "${ik}"; the files must hold ` +
          'the same tasks in the same order',
      );
    }
    const a = textField(opts.inputA, la, rk, '--response-key', 'the response judged');
    const b = textField(opts.inputB, lb, rk, '--response-key', 'the response judged');
    return {
      item,
      record: la.value,
      a,
      b,
      ab: buildPairwiseMessages(instruction, a, b, rubric),
      ba: buildPairwiseMessages(instruction, b, a, rubric),
    };
  });
  const safeLabel = labels[1].replace(/[^A-Za-z0-9._-]+/g, '_');
  const output =
    opts.output ??
    path.join(
      opts.outputDir ?? path.dirname(opts.inputA),
      outputName(opts.inputA, { ...opts, apiSeed }, `-vs-${safeLabel}`),
    );
  mkdirSync(path.dirname(output), { recursive: true });
  const config = configHash({ model: opts.client.model, rubric, params, ik, rk, pairwise: true, labels });
  const { done, resumed } = resume(output, indices, config, opts.retryFailed ?? false, opts.onNotice);
  const pending = tasks.filter((t) => !done.has(t.item));
  const base = { rubric: rubric.name, judge_config: config, seed: apiSeed, temperature: params.temperature };
  const result = await drive(
    { ...opts, concurrency: Math.max(1, Math.ceil((opts.concurrency ?? 8) / 2)) },
    { output, indices, done, pending, resumed },
    async (t) => {
      const { [rk]: _dropped, ...rest } = t.record;
      const head: JsonRecord = { ...rest, response_a: t.a, response_b: t.b };
      const meta: JsonRecord = { ...base, item: t.item, labels: { a: labels[0], b: labels[1] } };
      let answers: Completion[];
      try {
        answers = await Promise.all([opts.client.complete(t.ab, params), opts.client.complete(t.ba, params)]);
      } catch (e) {
        const failure = itemFailure(e);
        if (!failure) throw e;
        return { ...head, eval_winner: null, eval_consistent: null, eval_meta: { ...meta, ...failure } };
      }
      const [ab, ba] = answers;
      Object.assign(meta, {
        judge: opts.client.model,
        model: ab.model,
        fingerprint: ab.fingerprint,
        prompt_tokens: (ab.usage?.prompt_tokens ?? 0) + (ba.usage?.prompt_tokens ?? 0),
        completion_tokens: (ab.usage?.completion_tokens ?? 0) + (ba.usage?.completion_tokens ?? 0),
        costs: [ab.cost, ba.cost],
        cost: ab.cost === null || ba.cost === null ? null : ab.cost + ba.cost,
        cached: ab.cached && ba.cached,
      });
      const pa = parsePairwiseResponse(ab.content ?? '');
      const pb = parsePairwiseResponse(ba.content ?? '');
      const verdicts = { ab: pa.ok ? pa.winner : null, ba: pb.ok ? pb.winner : null };
      const reasoning = { ab: pa.ok ? pa.reasoning : null, ba: pb.ok ? pb.reasoning : null };
      if (!pa.ok || !pb.ok) {
        return {
          ...head,
          eval_winner: null,
          eval_consistent: null,
          eval_verdicts: verdicts,
          eval_reasoning: reasoning,
          eval_meta: {
            ...meta,
            unparseable: [pa.ok ? null : pa.error, pb.ok ? null : pb.error]
              .filter((x) => x !== null)
              .join('; '),
            raw: { ab: ab.content, ba: ba.content },
          },
        };
      }
      const { outcome, consistent } = combineVerdicts(pa.winner, pb.winner);
      return {
        ...head,
        eval_winner: outcome,
        eval_consistent: consistent,
        eval_verdicts: verdicts,
        eval_reasoning: reasoning,
        eval_meta: meta,
      };
    },
    (t) => [
      { messages: t.ab, params },
      { messages: t.ba, params },
    ],
    'eval_winner',
  );
  return { ...result, labels, ...pairwiseStats([...done.values()]) };
}

/** Wins, consistency and position bias over pairwise records. */
export function pairwiseStats(
  records: JsonRecord[],
): Pick<PairwiseRunResult, 'wins' | 'consistent' | 'firstPositionRate' | 'winRateA'> {
  const wins = { a: 0, b: 0, tie: 0 };
  let consistent = 0;
  let first = 0;
  let decisive = 0;
  for (const r of records) {
    const w = r.eval_winner as Outcome | null | undefined;
    if (w !== 'a' && w !== 'b' && w !== 'tie') continue;
    wins[w]++;
    if (r.eval_consistent === true) consistent++;
    const v = (r.eval_verdicts ?? {}) as { ab?: Verdict | null; ba?: Verdict | null };
    for (const x of [v.ab, v.ba]) {
      if (x === 'A' || x === 'B') {
        decisive++;
        if (x === 'A') first++;
      }
    }
  }
  const n = wins.a + wins.b + wins.tie;
  return {
    wins,
    consistent,
    firstPositionRate: decisive > 0 ? first / decisive : null,
    winRateA: n > 0 ? (wins.a + wins.tie / 2) / n : null,
  };
}
