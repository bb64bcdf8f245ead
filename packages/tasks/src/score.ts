/**
 * Scoring of existing run files without generating: our samples files (rescored from their documents and
 * responses), lm-evaluation-harness samples (`doc`, `resps`), and foreign generation files (the paper's
 * `{prompt, system, source, reference}` lines, vLLM outputs) matched to their documents.
 */
import path from 'node:path';
import { type JsonObject, readJsonl } from '@polyglot/data';
import { TasksError } from './errors.js';
import type { VariantOutcome } from './results.js';
import { outcomeOf, processAll, type SampleRecord, sampleRecord, taskDataDir } from './runner.js';
import type { Doc, HelpfulnessJudge, Task, TaskContext, TaskRequest, TaskResponse, Variant } from './task.js';
import { taskVariants } from './variants.js';

/** Fields a foreign run file's response may be in, in the order they are tried. */
export const RESPONSE_KEYS = ['response', 'system', 'output', 'text', 'generation', 'completion'] as const;

export interface ScoreFilesOptions {
  task: Task;
  /** The variant (language) the files are of; default inferred from the first file's name. */
  variant?: Variant;
  /** Run files (JSON Lines); several are several seeds of the same documents. */
  inputs: readonly string[];
  /** For foreign files whose lines do not carry the document: the task's data, matched line by line. */
  dataDir?: string;
  taskOptions?: Record<string, unknown>;
  judge?: HelpfulnessJudge;
  /** The field holding the response in foreign files (default the first of {@link RESPONSE_KEYS} present). */
  responseKey?: string;
  bootstrapIters?: number;
  log?: (message: string) => void;
}

export interface ScoreFilesResult {
  outcome: VariantOutcome;
  /** The rescored records, as `tasks run` writes them. */
  records: SampleRecord[];
}

/**
 * The variant a run file is of, from its name: our `samples_<variant>.jsonl`, or the paper's
 * `{testset}-…` whose test set ends in `_<data>` or `_<prompt>_<data>` (`xquad_dev_en_de`,
 * `alpaca_eval_instructions_de`). Null where the name says nothing the task knows.
 */
export function variantFromFileName(task: Task, file: string): Variant | null {
  const base = path.basename(file).replace(/\.jsonl?$/i, '');
  const name = base.startsWith('samples_') ? base.slice('samples_'.length) : base.split('-')[0]!;
  if (task.languages.length === 0) return taskVariants(task)[0]!;
  const pair = /_([a-z]{2,3})_([a-z]{2,3})$/.exec(name);
  const tryVariant = (spec: string): Variant | null => {
    try {
      return taskVariants(task, [spec])[0] ?? null;
    } catch {
      return null;
    }
  };
  if (pair) {
    const v = tryVariant(pair[1] === pair[2] ? pair[2]! : `${pair[1]}:${pair[2]}`);
    if (v) return v;
  }
  const mono = /_([a-z]{2,3})$/.exec(name);
  return mono ? tryVariant(mono[1]!) : null;
}

function seedFromFileName(file: string): number | null {
  const m = /-s(\d+)-/.exec(path.basename(file));
  return m ? Number(m[1]) : null;
}

function isResponse(v: unknown): v is TaskResponse {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

/** A response from an lm-evaluation-harness sample's `resps` (`[[text]]`, or `[[[ll, greedy]], …]` per choice). */
function responseFromHarness(rec: JsonObject, task: Task): TaskResponse | null {
  const resps = rec.resps;
  if (!Array.isArray(resps) || resps.length === 0) return null;
  if (task.outputType === 'generate_until') {
    const first = Array.isArray(resps[0]) ? resps[0][0] : resps[0];
    return typeof first === 'string' ? { type: 'generate_until', text: first } : null;
  }
  const pairs = resps.map((r) => (Array.isArray(r) && Array.isArray(r[0]) ? r[0] : r)) as unknown[][];
  if (!pairs.every((p) => Array.isArray(p) && typeof p[0] === 'number')) return null;
  if (task.outputType === 'loglikelihood') {
    return { type: 'loglikelihood', logprob: pairs[0]![0] as number, is_greedy: Boolean(pairs[0]![1]) };
  }
  return {
    type: 'multiple_choice',
    logprobs: pairs.map((p) => p[0] as number),
    is_greedy: pairs.map((p) => Boolean(p[1])),
  };
}

/**
 * Scores run files with a task. Each line is, in the order tried: one of our samples records (`doc` and a typed
 * `response`: rescored as it is); an lm-evaluation-harness sample (`doc` and `resps`); a foreign generation line
 * whose response is in `responseKey` (or the first of {@link RESPONSE_KEYS}) and whose document the task rebuilds
 * from the line (`docFromRecord`) or, failing that, is line k of the task's data for the variant.
 */
export async function scoreFiles(opts: ScoreFilesOptions): Promise<ScoreFilesResult> {
  const { task } = opts;
  if (opts.inputs.length === 0) throw new TasksError('bad-option', 'give at least one run file to score');
  const variant = opts.variant ?? variantFromFileName(task, opts.inputs[0]!);
  if (!variant) {
    throw new TasksError(
      'unknown-variant',
      `${opts.inputs[0]}: cannot tell the language from the file name; give it (--langs de, or en:de for a prompt/data pair)`,
    );
  }
  const ctx: TaskContext = {
    dataDir: taskDataDir(task, opts.dataDir),
    options: { ...opts.taskOptions },
    judge: opts.judge,
    log: opts.log,
  };
  await task.setup?.(ctx);
  let dataDocs: Doc[] | null = null;
  const alignedDoc = async (k: number, where: string): Promise<Doc> => {
    dataDocs ??= await task.loadDocs(variant, ctx);
    const d = dataDocs[k];
    if (!d) {
      throw new TasksError(
        'bad-record',
        `${where}: line ${k + 1} has no document of ${variant.name} to match (the data has ${dataDocs.length})`,
      );
    }
    return d;
  };
  interface Item {
    doc: Doc;
    index: number;
    seed: number | null;
    request: TaskRequest;
    response: TaskResponse;
  }
  const items: Item[] = [];
  for (const [fileNo, file] of opts.inputs.entries()) {
    const fileSeed = seedFromFileName(file) ?? (opts.inputs.length > 1 ? fileNo : null);
    let k = 0;
    for await (const { value: rec, line } of readJsonl(file, { allowTruncatedTail: true })) {
      const where = `${file}:${line}`;
      const seed = typeof rec.seed === 'number' ? rec.seed : rec.seed === null ? null : fileSeed;
      const doc0 = typeof rec.doc === 'object' && rec.doc !== null ? (rec.doc as Doc) : null;
      let item: Item | null = null;
      if (doc0 && isResponse(rec.response)) {
        item = {
          doc: doc0,
          index: typeof rec.doc_index === 'number' ? rec.doc_index : k,
          seed,
          request: (rec.request as TaskRequest) ?? { type: task.outputType, context: '', choices: [] },
          response: rec.response,
        };
      } else if (doc0 && rec.resps !== undefined) {
        const response = responseFromHarness(rec, task);
        if (!response)
          throw new TasksError(
            'bad-record',
            `${where}: cannot read "resps" as a ${task.outputType} response`,
          );
        const index = typeof rec.doc_id === 'number' ? rec.doc_id : k;
        item = {
          doc: doc0,
          index,
          seed,
          request: { type: 'generate_until', prompt: '', params: {} },
          response,
        };
      } else {
        if (task.outputType !== 'generate_until') {
          throw new TasksError(
            'bad-record',
            `${where}: ${task.name} scores log-likelihoods; only its own samples files (or lm-evaluation-harness samples) carry them`,
          );
        }
        const key = opts.responseKey ?? RESPONSE_KEYS.find((r) => typeof rec[r] === 'string');
        const text = key === undefined ? undefined : rec[key];
        if (typeof text !== 'string') {
          throw new TasksError(
            'bad-record',
            `${where}: no response ${opts.responseKey ? `field "${opts.responseKey}"` : `(looked for ${RESPONSE_KEYS.join(', ')})`}; the line has ${Object.keys(rec).slice(0, 12).join(', ')} — choose it with --response-key`,
          );
        }
        const doc = task.docFromRecord?.(rec, variant) ?? (await alignedDoc(k, where));
        item = {
          doc,
          index: k,
          seed,
          request: {
            type: 'generate_until',
            prompt: typeof rec.prompt === 'string' ? rec.prompt : '',
            params: {},
          },
          response: { type: 'generate_until', text, finish_reason: (rec.finish_reason as string) ?? null },
        };
      }
      items.push(item);
      k++;
    }
  }
  const docCount = new Set(items.map((i) => i.index)).size;
  const scoringCtx = { ...ctx, docCount };
  const records: SampleRecord[] = [];
  const CHUNK = 64;
  for (let start = 0; start < items.length; start += CHUNK) {
    const chunk = items.slice(start, start + CHUNK);
    const results = await processAll(task, variant, scoringCtx, chunk);
    chunk.forEach((it, j) => {
      records.push(
        sampleRecord(task, variant, it.doc, it.index, it.seed, it.request, it.response, results[j]!),
      );
    });
  }
  const seeds = [...new Set(items.map((i) => i.seed))];
  const outcome = outcomeOf(
    task,
    variant,
    docCount,
    docCount,
    seeds,
    records,
    task.config ? task.config(variant) : {},
    { bootstrapIters: opts.bootstrapIters },
  );
  return { outcome, records };
}
