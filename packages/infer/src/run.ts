import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  loadTemplate,
  Progress,
  type ProgressStream,
  type PromptTemplate,
  renderInstruction,
  type Tokenizer,
  writeFileAtomic,
} from '@polyglot/model';
import type { Engine, GenerateParams, GenerateRequest } from './engine.js';
import { InferError } from './errors.js';
import { appendLines, readLogRepairing, readRecords } from './jsonl.js';
import { samplingParams } from './params.js';
import { findStop } from './stop.js';

/** The paper's chat inference settings (temperature 0.8, top-p 0.9, top-k 50, frequency penalty 0.2, …). */
export const PAPER_SAMPLING: Readonly<GenerateParams> & { stop: string[] } = {
  temperature: 0.8,
  top_p: 0.9,
  top_k: 50,
  frequency_penalty: 0.2,
  max_tokens: 1024,
  stop: ['### Human:', '### Assistant:', '### Human', '### Assistant'],
};
/** Arguments that must equal those of the run being resumed. */
const RESUME_KEYS = [
  'src_key',
  'tgt_key',
  'seed',
  'batch_size',
  'max_prompt_tokens',
  'adapter',
  'sampling',
] as const;

/** The paper's sampling seeds. */
export const PAPER_SEEDS: readonly number[] = [0, 42, 723];

export interface RunOptions {
  engine: Engine;
  /** The model's name; its basename names the output folder (`{outputDir}/{model_id}/`). */
  model: string;
  /** The test set: `.json` (an array, or JSON Lines as pandas writes) or `.jsonl`; its name without them is `testset`. */
  input: string;
  /** A prompt template file (Jinja: a text template such as guanaco_prompt.txt, or a chat template) or built-in name. */
  promptTemplate: string;
  /** The field holding the instruction (the template's `instruction`); default `instruction`. */
  srcKey?: string;
  /** A field copied to the output as `reference`. */
  tgtKey?: string;
  outputDir: string;
  /** Sampling parameters (vLLM names); default {@link PAPER_SAMPLING}. `seed` is ignored: see `seeds`. */
  params?: GenerateParams;
  /** One output file per seed; default {@link PAPER_SEEDS}. */
  seeds?: readonly number[];
  /** Requests run together (the local engine's batch; the `b` of the file name); default 8. */
  batchSize?: number;
  /**
   * Prompts longer than this many tokens lose words from the start of the instruction until they fit (the paper:
   * 4,096); default 4096. Needs `tokenizer` (the local engine's by default); without one nothing is cut.
   */
  maxPromptTokens?: number;
  tokenizer?: Tokenizer | null;
  /** Only the first `limit` items. */
  limit?: number;
  /** Adapter to apply (by name; a remote engine sends it as the model). */
  adapter?: string | null;
  /** Progress (items/s, ETA) goes here; default process.stderr. */
  progress?: ProgressStream;
  quiet?: boolean;
  /** Arguments to record in the `.json` besides the generation settings (e.g. the engine spec). */
  extraArgs?: Record<string, unknown>;
}

export interface RunFileResult {
  seed: number;
  /** The JSON Lines file and its `.json` of arguments. */
  file: string;
  argsFile: string;
  /** Items already there when the run started (resumed), generated now, in the file at the end. */
  resumed: number;
  generated: number;
  total: number;
  /** Whether a partial last line (a killed append) was cut off first. */
  droppedTail: boolean;
}

/** Python's `str(float)`: `0.8`, `1.0`, `0.001`, `1e-05` (repr: shortest round trip, exponent below 1e-4). */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    return `${sign}${digits[0]}${frac}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  return `${sign}${int}.${digits.slice(exp + 1) || '0'}`;
}

/** The parts of a run file's name. */
export interface RunFileNameParts {
  testset: string;
  prompt: string;
  seed: number;
  topK: number;
  topP: number;
  temperature: number;
  batchSize: number;
}

/**
 * The paper's run file name, `{testset}-none-{prompt}-s{seed}-k{top_k}-p{top_p}-t{temperature}-b{batch}.jsonl`, with
 * the numbers as Python prints them (top_p and temperature are floats: `p0.9`, `t1.0`, `t0.001`; the rest ints).
 */
export function runFileName(p: RunFileNameParts): string {
  return `${p.testset}-none-${p.prompt}-s${p.seed}-k${p.topK}-p${pyFloat(p.topP)}-t${pyFloat(p.temperature)}-b${p.batchSize}.jsonl`;
}

/** `testset` of an input file: its name without `.jsonl` / `.json`. */
export function testsetName(input: string): string {
  return path.basename(input).replace(/\.jsonl?$/i, '');
}

/** `prompt` of a template: the file's name without its extension (a built-in template: its name). */
export function promptName(template: string): string {
  const base = path.basename(template);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** `model_id`: the model name's basename (`models/llama-2-7b-hf/` → `llama-2-7b-hf`). */
export function modelId(model: string): string {
  return path.basename(model.replace(/[/\\]+$/, ''));
}

/**
 * The seed of item `index` in a run with `seed`: SplitMix64's finaliser of (seed, index), 48 bits. Each item's
 * sampling depends only on it, so a resumed run continues exactly where a killed one stopped.
 */
export function itemSeed(seed: number, index: number): number {
  const M = (1n << 64n) - 1n;
  let z =
    ((BigInt.asUintN(64, BigInt(seed)) * 0x9e3779b97f4a7c15n + BigInt(index) + 1n) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  z ^= z >> 31n;
  return Number(z >> 16n);
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
 * Removes the temp files (`.<name>.<pid>.<hex>.tmp`) that atomic writes of `target` by processes no longer running
 * left beside it: a run killed while writing its `.json` leaves one. Only `target`'s: other runs may share the folder.
 */
async function removeStaleTemps(target: string): Promise<void> {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length)) : null;
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      await fsp.rm(path.join(dir, name), { force: true });
    }
  }
}

/** The prompt of one item; over-long instructions lose words from the start until the prompt fits. */
function renderPrompt(
  template: PromptTemplate,
  item: Record<string, unknown>,
  srcKey: string,
  tokenizer: Tokenizer | null,
  maxTokens: number,
  where: string,
): { prompt: string; source: string } {
  const source = item[srcKey];
  if (typeof source !== 'string') {
    throw new InferError('RUN_INPUT', `${where}: field "${srcKey}" must be a string (--src-key names it)`);
  }
  const render = (text: string) => {
    const { [srcKey]: _, ...vars } = item;
    return renderInstruction(template, text, {
      vars,
      bosToken: tokenizer?.bosToken ?? undefined,
      eosToken: tokenizer?.eosToken ?? undefined,
    });
  };
  const prompt = render(source);
  if (tokenizer === null || tokenizer.encode(prompt).length <= maxTokens) return { prompt, source };
  const words = source.split(/\s+/).filter((w) => w !== '');
  // The most words from the end that fit: binary search on how many are dropped from the start.
  let lo = 1;
  let hi = words.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tokenizer.encode(render(words.slice(mid).join(' '))).length <= maxTokens) hi = mid;
    else lo = mid + 1;
  }
  return { prompt: render(words.slice(lo).join(' ')), source };
}

/**
 * The paper's `inference.py`: renders every item's prompt, generates (one file per seed), cuts each response at the
 * first stop string and strips it, and appends `{prompt, system, finish_reason, source, secs[, reference]}` lines to
 * `{outputDir}/{model_id}/{testset}-none-{prompt}-s{seed}-k{top_k}-p{top_p}-t{temperature}-b{batch}.jsonl`, next to
 * the `.json` of its arguments (written atomically first). Lines are appended in input order as they finish (fsync'd);
 * a run that was killed resumes after its last complete line (a partial one is cut off), and since each item's seed
 * is derived from the run's seed and its index ({@link itemSeed}) the finished file equals that of an uninterrupted
 * run (all but `secs`). An existing `.json` with other arguments is an error (`RUN_ARGS_MISMATCH`).
 */
export async function runInference(opts: RunOptions): Promise<RunFileResult[]> {
  const srcKey = opts.srcKey ?? 'instruction';
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new InferError('INFER_BAD_PARAM', `batchSize must be a positive integer, got ${batchSize}`);
  }
  const seeds = opts.seeds ?? PAPER_SEEDS;
  if (seeds.length === 0 || !seeds.every((s) => Number.isSafeInteger(s))) {
    throw new InferError('INFER_BAD_PARAM', `seeds must be integers, got ${JSON.stringify(seeds)}`);
  }
  const { seed: _ignored, ...given } = opts.params ?? PAPER_SAMPLING;
  const params = samplingParams(given as Record<string, unknown>);
  const template = await loadTemplate(opts.promptTemplate);
  const tokenizer =
    opts.tokenizer !== undefined
      ? opts.tokenizer
      : ((opts.engine as { tokenizer?: Tokenizer }).tokenizer ?? null);
  const maxPromptTokens = opts.maxPromptTokens ?? 4096;
  let items = await readRecords(opts.input);
  if (opts.limit !== undefined) items = items.slice(0, opts.limit);
  const rendered = items.map((item, i) =>
    renderPrompt(template, item, srcKey, tokenizer, maxPromptTokens, `${opts.input} item ${i}`),
  );
  const references = opts.tgtKey === undefined ? null : items.map((item) => item[opts.tgtKey!]);

  const dir = path.join(opts.outputDir, modelId(opts.model));
  await fsp.mkdir(dir, { recursive: true });
  const out: RunFileResult[] = [];
  for (const seed of seeds) {
    const name = runFileName({
      testset: testsetName(opts.input),
      prompt: promptName(opts.promptTemplate),
      seed,
      // The file name shows the sampling settings as given (as the paper's script prints its arguments; a greedy
      // run keeps the top-k/top-p it was given though vLLM ignores them), defaults as vLLM's (top-k off: -1).
      topK: (given.top_k as number | undefined) ?? -1,
      topP: (given.top_p as number | undefined) ?? 1,
      temperature: (given.temperature as number | undefined) ?? 1,
      batchSize,
    });
    const file = path.join(dir, name);
    const argsFile = file.replace(/\.jsonl$/, '.json');
    const args = {
      model: opts.model,
      input_file: opts.input,
      prompt_template: opts.promptTemplate,
      src_key: srcKey,
      tgt_key: opts.tgtKey ?? null,
      output_file: file,
      seed,
      item_seeds: 'splitmix64(seed, index) >> 16 (polyglot itemSeed)',
      batch_size: batchSize,
      max_prompt_tokens: maxPromptTokens,
      limit: opts.limit ?? null,
      adapter: opts.adapter ?? null,
      engine: opts.engine.info.kind,
      sampling: { ...params, seed: null },
      ...opts.extraArgs,
    };
    if (existsSync(argsFile)) {
      const before = JSON.parse(await fsp.readFile(argsFile, 'utf8')) as Record<string, unknown>;
      // What decides the lines (paths, the engine and `limit` may change between a run and its resumption).
      const differs = RESUME_KEYS.filter(
        (k) => JSON.stringify(before[k]) !== JSON.stringify((args as Record<string, unknown>)[k]),
      );
      if (differs.length > 0 && existsSync(file)) {
        throw new InferError(
          'RUN_ARGS_MISMATCH',
          `${file} exists from a run with other arguments (${differs.join(', ')} differ, see ${argsFile}); ` +
            'use another --output-dir or remove the files to start over',
        );
      }
    }
    await removeStaleTemps(argsFile);
    await writeFileAtomic(argsFile, `${JSON.stringify(args, null, 2)}\n`);

    const { records, droppedTail } = await readLogRepairing(file);
    if (records.length > items.length) {
      throw new InferError(
        'RUN_OUTPUT_CORRUPT',
        `${file} has ${records.length} lines but the input only ${items.length} items`,
      );
    }
    records.forEach((r, i) => {
      if (r.source !== rendered[i].source) {
        throw new InferError(
          'RUN_OUTPUT_CORRUPT',
          `${file}:${i + 1}: its source is not item ${i} of ${opts.input}; the file belongs to another input — remove it to start over`,
        );
      }
    });
    const start = records.length;
    const todo = items.length - start;
    const progress = new Progress({
      total: todo,
      label: `infer run ${name}`,
      stream: opts.progress,
      quiet: opts.quiet ?? false,
    });
    // Items finish out of order (remote engines); lines go out in input order, each contiguous run at once.
    const done = new Map<number, Record<string, unknown>>();
    let next = start;
    let writing: Promise<void> = Promise.resolve();
    const flush = () => {
      const rows: Record<string, unknown>[] = [];
      while (done.has(next)) {
        rows.push(done.get(next)!);
        done.delete(next);
        next++;
      }
      if (rows.length === 0) return;
      writing = writing.then(async () => {
        await appendLines(file, rows);
        progress.tick(rows.length);
      });
    };
    const idx = Array.from({ length: todo }, (_, k) => start + k);
    const reqs: GenerateRequest[] = idx.map((i) => ({
      prompt: rendered[i].prompt,
      params: { ...given, seed: itemSeed(seed, i) },
    }));
    let lastAt = performance.now();
    if (reqs.length > 0) {
      // Lines finished before an error are still written (the run resumes after them).
      const generating = opts.engine.generate(reqs, {
        batchSize,
        adapter: opts.adapter,
        onResult: (k, r) => {
          const i = idx[k];
          const t = performance.now();
          const row: Record<string, unknown> = {
            prompt: rendered[i].prompt,
            // Cut at the first stop string and stripped (the engines already cut; a remote one may not strip).
            system: findStop(r.text, params.stop).text,
            finish_reason: r.finishReason,
            source: rendered[i].source,
            secs: Math.round((t - lastAt) * 1e3) / 1e6,
          };
          lastAt = t;
          if (references !== null) row.reference = references[i] ?? null;
          done.set(i, row);
          flush();
        },
      });
      try {
        await generating;
      } finally {
        await writing;
      }
    }
    await writing;
    progress.done();
    out.push({ seed, file, argsFile, resumed: start, generated: todo, total: items.length, droppedTail });
  }
  return out;
}
