import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ChatMessage,
  exportGguf,
  exportLoraGguf,
  type GgufDtype,
  type GgufMetadataValue,
  ggufText,
  POLYGLOT_GGUF_KEYS,
  parseLlamaConfig,
  readAdapter,
  readGgufHeader,
  readLlamaConfig,
  Tokenizer,
} from '@polyglot/model';
import { encodeLoglikelihoodPair, isTokenIds, show } from './encode-pair.js';
import type {
  BatchOptions,
  Engine,
  EngineInfo,
  GenerateChoice,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ScoreOptions,
  ScoreRequest,
  ScoreResult,
} from './engine.js';
import { InferError, RequestError } from './errors.js';
import type { TokenLogprob } from './logprobs.js';
import { isGreedy, type SamplingParams, samplingParams } from './params.js';
import { Xoshiro128 } from './rng.js';
import { type PreparedGenerate, Row } from './row.js';

/** The node-llama-cpp version this engine is written and tested against (its optional peer dependency). */
export const NODE_LLAMA_CPP_VERSION = '3.21.1';

export interface LlamaCppEngineOptions {
  /**
   * A GGUF file, or a Hugging Face model directory, which is exported to GGUF first (`dtype`) into the cache
   * (`cacheDir`), keyed by the directory's files (path, sizes, modification times) so a changed model is exported again.
   */
  model: string;
  /** Weight type when `model` is a directory: f32, f16 (default) or q8_0. */
  dtype?: GgufDtype;
  /**
   * A PEFT LoRA adapter directory. Applied by llama.cpp's adapter support (exported to a GGUF adapter) where that is
   * exact (LoRA factors on the linear projections only), else merged into the weights first; `mergeAdapter` forces
   * the merge (needs `model` to be a directory).
   */
  adapter?: string;
  mergeAdapter?: boolean;
  /**
   * Tokenizer directory or instance. Default: the tokenizer files the GGUF carries (our export stores them under
   * `polyglot.*` keys), else the model directory. A GGUF of another converter needs this.
   */
  tokenizer?: string | Tokenizer;
  /**
   * llama.cpp's compute: false (default: CPU), 'auto' (the best GPU node-llama-cpp finds — on a host without a GPU it
   * may pick a software Vulkan device, which is slow), or 'cuda' | 'vulkan' | 'metal'.
   */
  gpu?: false | 'auto' | 'cuda' | 'vulkan' | 'metal';
  /** Layers offloaded to the GPU (with `gpu`); default all. */
  gpuLayers?: number | 'max';
  /** CPU threads; default $POLYGLOT_LLAMACPP_THREADS, else one fewer than the machine's cores (at least 1). */
  threads?: number;
  /** Positions per sequence (KV cache cells); default the model's max_position_embeddings, at most 4096. */
  contextSize?: number;
  /** Requests run together (llama.cpp sequences of one context); default 8. */
  batchSize?: number;
  /** Seed of the engine's generator, which draws seeds for requests without one. Default random. */
  seed?: number | null;
  /** Chat template for `messages` requests (as {@link LocalEngineOptions.chatTemplate}). */
  chatTemplate?: string;
  /**
   * llama.cpp's flash attention; default false. On CPU it computes attention in F16 (log-probs move by ~1e-3), so it
   * is off unless asked.
   */
  flashAttention?: boolean;
  /** Type of the KV cache: f32 (default, exact) or f16 (llama.cpp's default: half the memory). */
  kvCacheType?: 'f32' | 'f16';
  /** Cache root for GGUF files exported from directories; default $POLYGLOT_CACHE or ~/.cache/polyglot (then gguf/). */
  cacheDir?: string;
}

// The parts of node-llama-cpp used here (it is an optional peer, imported at run time).
interface NlcProbabilities {
  next: { token?: number | null; probabilities?: Map<number, number> };
}
type NlcInput = [number, { generateNext?: Record<string, unknown> }] | number;
interface NlcSequence {
  controlledEvaluate(input: NlcInput[]): Promise<(NlcProbabilities | undefined)[]>;
  clearHistory(): Promise<void>;
  dispose(): void;
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(opts: Record<string, unknown>): Promise<NlcContext>;
  dispose(): Promise<void>;
  tokenize(text: string, special?: boolean): number[];
  detokenize(tokens: readonly number[], special?: boolean): string;
}
interface NlcLlama {
  loadModel(opts: Record<string, unknown>): Promise<NlcModel>;
  gpu: string | false;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(opts: Record<string, unknown>): Promise<NlcLlama>;
}

/** Imports node-llama-cpp, with a clear error when it is not installed. */
export async function importNodeLlamaCpp(): Promise<NlcModule> {
  try {
    return (await import('node-llama-cpp')) as unknown as NlcModule;
  } catch (e) {
    throw new InferError(
      'LLAMACPP_MISSING',
      `the llamacpp engine needs node-llama-cpp, an optional peer dependency: install it with ` +
        `\`npm install node-llama-cpp@${NODE_LLAMA_CPP_VERSION}\` (${(e as Error).message})`,
      { cause: e },
    );
  }
}

const DEFAULT_BATCH_SIZE = 8;
const MAX_DEFAULT_CONTEXT = 4096;
const MAX_N = 128;

/** Cache root: `cacheDir`, else $POLYGLOT_CACHE, else ~/.cache/polyglot. */
function cacheRoot(cacheDir?: string): string {
  return cacheDir ?? process.env.POLYGLOT_CACHE ?? path.join(os.homedir(), '.cache', 'polyglot');
}

/** A key of a directory's files (names, sizes, modification times) and the export's parameters. */
function dirKey(dir: string, parts: string[]): string {
  const h = createHash('sha256');
  h.update(path.resolve(dir));
  for (const name of (existsSync(dir) ? readdirSync(dir) : []).sort()) {
    const st = statSync(path.join(dir, name));
    if (st.isFile()) h.update(`\0${name}\0${st.size}\0${st.mtimeMs}`);
  }
  for (const p of parts) h.update(`\0${p}`);
  return h.digest('hex').slice(0, 24);
}

/**
 * The GGUF of a model directory (exported once into the cache, then reused while its files are unchanged). With
 * `mergeAdapter`, the adapter is merged into the exported weights.
 */
export async function cachedGguf(
  dir: string,
  opts: { dtype?: GgufDtype; mergeAdapter?: string; cacheDir?: string } = {},
): Promise<string> {
  const dtype = opts.dtype ?? 'f16';
  const parts = [dtype, 'v1'];
  if (opts.mergeAdapter) parts.push(dirKey(opts.mergeAdapter, []));
  const folder = path.join(cacheRoot(opts.cacheDir), 'gguf');
  const file = path.join(folder, `${path.basename(path.resolve(dir))}-${dirKey(dir, parts)}-${dtype}.gguf`);
  if (existsSync(file)) return file;
  await fsp.mkdir(folder, { recursive: true });
  await exportGguf(dir, file, { dtype, mergeAdapter: opts.mergeAdapter });
  return file;
}

function metaString(meta: Map<string, GgufMetadataValue>, key: string): string | undefined {
  return ggufText(meta.get(key));
}

/** What one prepared request needs besides its ids and parameters. */
type Prepared = PreparedGenerate & { n: number };

/**
 * An engine on llama.cpp through node-llama-cpp (an optional peer dependency): GGUF models on CPU (default) or GPU,
 * behind the {@link Engine} interface of the local and OpenAI engines.
 *
 * Sampling is this package's own (vLLM's semantics, the same {@link Row} as the local engine, seeded per request):
 * llama.cpp computes each step's logits and returns the full next-token distribution, which our sampler draws from.
 * Greedy requests without logprobs or penalties take llama.cpp's argmax directly (no distribution crosses into JS),
 * which is the fast path. See the README for the differences from the local engine (repetition_penalty).
 */
export class LlamaCppEngine implements Engine {
  readonly info: EngineInfo;
  readonly tokenizer: Tokenizer;
  readonly eosTokenIds: readonly number[];
  readonly vocabSize: number;
  /** The GGUF file loaded. */
  readonly ggufFile: string;
  /** Positions per sequence. */
  readonly contextSize: number;
  readonly chatTemplate: string | null;
  private readonly rng: Xoshiro128;
  private readonly batchSize: number;
  private readonly contexts = new Map<string | null, Promise<{ ctx: NlcContext; seqs: NlcSequence[] }>>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly llama: NlcLlama,
    private readonly model: NlcModel,
    private readonly contextOptions: Record<string, unknown>,
    private readonly adapterFile: string | null,
    private readonly adapterName: string | null,
    args: {
      file: string;
      tokenizer: Tokenizer;
      eos: number[];
      vocabSize: number;
      contextSize: number;
      batchSize: number;
      seed: number | null;
      chatTemplate: string | null;
      backend: string;
      mergedAdapter: string | null;
    },
  ) {
    this.ggufFile = args.file;
    this.tokenizer = args.tokenizer;
    this.eosTokenIds = args.eos;
    this.vocabSize = args.vocabSize;
    this.contextSize = args.contextSize;
    this.batchSize = args.batchSize;
    this.rng = Xoshiro128.forRequest(args.seed);
    this.chatTemplate = args.chatTemplate;
    this.info = {
      kind: 'llamacpp',
      model: args.file,
      backend: args.backend,
      adapter: adapterName ?? args.mergedAdapter,
    };
  }

  static async load(opts: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
    const batchSize = checkPositive(opts.batchSize ?? DEFAULT_BATCH_SIZE, 'batchSize');
    if (opts.seed !== undefined && opts.seed !== null && !Number.isSafeInteger(opts.seed)) {
      throw new InferError('INFER_BAD_SEED', `the engine seed must be an integer, got ${show(opts.seed)}`);
    }
    const nlc = await importNodeLlamaCpp();
    const isDir = existsSync(opts.model) && statSync(opts.model).isDirectory();
    if (!isDir && !existsSync(opts.model)) {
      throw new InferError('LLAMACPP_MODEL_MISSING', `${opts.model}: no such GGUF file or model directory`);
    }
    // The adapter: llama.cpp applies it where that is exact, else it is merged into an export of the directory.
    let mergeAdapter: string | undefined;
    let adapterFile: string | null = null;
    let adapterName: string | null = null;
    if (opts.adapter !== undefined) {
      const adapter = await readAdapter(opts.adapter);
      const exact = adapter.otherTensors.length === 0 && !adapter.config.fanInFanOut;
      if (opts.mergeAdapter || !exact) {
        if (!isDir) {
          throw new InferError(
            'LLAMACPP_ADAPTER',
            `${opts.adapter}: merging an adapter needs the model as a directory, not a GGUF file; ` +
              'merge it with `polyglot merge` and export the merged model',
          );
        }
        mergeAdapter = opts.adapter;
      }
    }
    const file = isDir
      ? await cachedGguf(opts.model, { dtype: opts.dtype, mergeAdapter, cacheDir: opts.cacheDir })
      : opts.model;
    const header = await readGgufHeader(file);
    const meta = header.metadata;
    if (meta.get('general.architecture') !== 'llama') {
      throw new InferError(
        'LLAMACPP_ARCH',
        `${file}: architecture ${show(meta.get('general.architecture'))}; the llamacpp engine runs Llama-family GGUF models`,
      );
    }
    const tokenizer = await engineTokenizer(opts, meta, isDir, file);
    const configText = metaString(meta, POLYGLOT_GGUF_KEYS.config);
    const config = configText
      ? parseLlamaConfig(JSON.parse(configText), `${file}: ${POLYGLOT_GGUF_KEYS.config}`)
      : isDir
        ? await readLlamaConfig(opts.model)
        : null;
    const vocabSize = Number(
      meta.get('llama.vocab_size') ?? (meta.get('tokenizer.ggml.tokens') as unknown[] | undefined)?.length,
    );
    const maxPos = Number(meta.get('llama.context_length') ?? 2048);
    const contextSize = checkPositive(
      opts.contextSize ?? Math.min(maxPos, MAX_DEFAULT_CONTEXT),
      'contextSize',
    );
    const genText = metaString(meta, POLYGLOT_GGUF_KEYS.generationConfig);
    const genEos = genText ? eosList((JSON.parse(genText) as { eos_token_id?: unknown }).eos_token_id) : [];
    const configEos = config ? eosList(config.eosTokenId) : eosList(meta.get('tokenizer.ggml.eos_token_id'));
    const eos = [
      ...new Set([...configEos, ...genEos, ...(tokenizer.eosId === null ? [] : [tokenizer.eosId])]),
    ];

    if (opts.adapter !== undefined && mergeAdapter === undefined) {
      if (!config) {
        throw new InferError(
          'LLAMACPP_ADAPTER',
          `${file}: has no polyglot.config.json; give the model directory to apply an adapter`,
        );
      }
      adapterName = path.basename(path.resolve(opts.adapter));
      const folder = path.join(cacheRoot(opts.cacheDir), 'gguf');
      await fsp.mkdir(folder, { recursive: true });
      adapterFile = path.join(folder, `${adapterName}-lora-${dirKey(opts.adapter, [file, 'v1'])}.gguf`);
      if (!existsSync(adapterFile)) await exportLoraGguf(opts.adapter, config, adapterFile);
    }

    const gpu = opts.gpu ?? false;
    const llama = await nlc.getLlama({
      gpu,
      build: 'never',
      logLevel: 'error',
      logger: (level: string, message: string) => {
        // The embeddings read of applyOutputOrderBeforeSampling fails on purpose; everything else is shown.
        if (!message.includes('get_embeddings_ith'))
          process.stderr.write(`[llama.cpp ${level}] ${message.trimEnd()}\n`);
      },
    });
    const model = await llama.loadModel({
      modelPath: file,
      ...(gpu !== false ? { gpuLayers: opts.gpuLayers ?? 'max' } : { gpuLayers: 0 }),
    });
    const kv = opts.kvCacheType ?? 'f32';
    if (kv !== 'f32' && kv !== 'f16') {
      throw new InferError('INFER_BAD_PARAM', `kvCacheType must be f32 or f16, got ${show(kv)}`);
    }
    const envThreads = process.env.POLYGLOT_LLAMACPP_THREADS;
    // Default: one core fewer than the machine has (at least 1). The JavaScript thread works between decode steps,
    // and llama.cpp's threads spin while waiting for each other, so using every core makes each step wait for a
    // preempted thread: on a 2-core machine 2 threads decode ~4× slower than 1 (see bench/llamacpp.bench.ts).
    const threads =
      opts.threads ??
      (envThreads
        ? checkPositive(Number(envThreads), 'POLYGLOT_LLAMACPP_THREADS')
        : Math.max(1, os.availableParallelism() - 1));
    const contextOptions: Record<string, unknown> = {
      contextSize,
      sequences: batchSize,
      batchSize: Math.min(2048, contextSize * batchSize),
      flashAttention: opts.flashAttention ?? false,
      experimentalKvCacheKeyType: kv.toUpperCase(),
      experimentalKvCacheValueType: kv.toUpperCase(),
      threads,
    };
    const backend = llama.gpu === false ? 'llamacpp-cpu' : `llamacpp-${llama.gpu}`;
    const merged = mergeAdapter ? path.basename(path.resolve(mergeAdapter)) : null;
    const engine = new LlamaCppEngine(llama, model, contextOptions, adapterFile, adapterName, {
      file,
      tokenizer,
      eos,
      vocabSize,
      contextSize,
      batchSize,
      seed: opts.seed ?? null,
      chatTemplate: opts.chatTemplate ?? null,
      backend,
      mergedAdapter: merged ?? (metaString(meta, POLYGLOT_GGUF_KEYS.adapter) || null),
    });
    // Fail now (not at the first request) if the context cannot be made, e.g. too little memory.
    await engine.context(adapterName);
    return engine;
  }

  /** Generates for every request, in request order, `batchSize` rows (llama.cpp sequences) at a time. */
  async generate(reqs: GenerateRequest[], opts: GenerateOptions = {}): Promise<GenerateResult[]> {
    return this.exclusive(async () => {
      const batchSize = this.checkBatch(opts.batchSize);
      const adapter = this.resolveAdapter(opts.adapter);
      const prepared = reqs.map((r, i) => this.prepareGenerate(r, i));
      const samples = prepared.flatMap((p) =>
        Array.from({ length: p.n }, (_, k) => ({
          k,
          req: { ...p, seed: p.seed === null ? this.drawSeed() : p.seed + k } as PreparedGenerate,
        })),
      );
      const choices: GenerateChoice[][] = prepared.map((p) => new Array(p.n));
      const left = prepared.map((p) => p.n);
      const { seqs } = await this.context(adapter);
      for (let start = 0; start < samples.length; start += batchSize) {
        const rows = samples.slice(start, start + batchSize).map((s) => ({
          k: s.k,
          row: new Row(s.req, this.eosTokenIds, this.tokenizer),
        }));
        await this.runBatch(rows, seqs, ({ k, row }) => {
          const i = row.req.index;
          choices[i][k] = row.result();
          if (--left[i] === 0) opts.onResult?.(i, toResult(prepared[i].ids, choices[i]));
        });
      }
      return prepared.map((p, i) => toResult(p.ids, choices[i]));
    });
  }

  /** Token log-probabilities of each sequence (text encoded with BOS), optionally with the top n per position. */
  async score(reqs: ScoreRequest[], opts: ScoreOptions = {}): Promise<ScoreResult[]> {
    return this.exclusive(async () => {
      const batchSize = this.checkBatch(opts.batchSize);
      const adapter = this.resolveAdapter(opts.adapter);
      const top = opts.topLogprobs ?? 0;
      if (!Number.isSafeInteger(top) || top < 0 || top > this.vocabSize) {
        throw new InferError(
          'INFER_BAD_PARAM',
          `topLogprobs must be an integer in [0, ${this.vocabSize}], got ${show(top)}`,
        );
      }
      const seqsIds = reqs.map((r, i) => {
        if (typeof r !== 'object' || r === null)
          throw new RequestError(i, 'INFER_BAD_REQUEST', 'not an object');
        const ids = this.promptIds(r.text, r.inputIds, i, 'text');
        this.checkLength(ids.length, 0, i);
        return ids;
      });
      const scored = await this.scoreAll(seqsIds, batchSize, adapter, top);
      return scored.map((s, i) => {
        const out: ScoreResult = {
          inputIds: seqsIds[i],
          tokenLogprobs: s.logprobs,
          sumLogprob: s.logprobs.reduce((a, b) => a + b, 0),
        };
        if (top > 0) out.topLogprobs = s.top;
        return out;
      });
    });
  }

  /** lm-evaluation-harness's loglikelihood, encoding as the local engine does (BOS unless addSpecialTokens false). */
  async loglikelihood(
    reqs: LoglikelihoodRequest[],
    opts: BatchOptions & { addSpecialTokens?: boolean } = {},
  ): Promise<LoglikelihoodResult[]> {
    return this.exclusive(async () => {
      const batchSize = this.checkBatch(opts.batchSize);
      const adapter = this.resolveAdapter(opts.adapter);
      const special = opts.addSpecialTokens ?? true;
      const pairs = reqs.map((r, i) => {
        if (typeof r !== 'object' || r === null)
          throw new RequestError(i, 'INFER_BAD_REQUEST', 'not an object');
        const { context, continuation } = this.encodePair(r, i, special);
        const whole = [...context, ...continuation];
        return { seq: whole.slice(Math.max(0, whole.length - this.contextSize)), n: continuation.length };
      });
      const todo = pairs.map((p, i) => (p.n > 0 ? i : -1)).filter((i) => i >= 0);
      const scored = await this.scoreAll(
        todo.map((i) => pairs[i].seq),
        batchSize,
        adapter,
        0,
      );
      const out: LoglikelihoodResult[] = pairs.map(() => ({ logprob: 0, isGreedy: true, tokens: 0 }));
      todo.forEach((i, k) => {
        const { n } = pairs[i];
        out[i] = {
          logprob: scored[k].logprobs.slice(-n).reduce((a, b) => a + b, 0),
          isGreedy: scored[k].greedy.slice(-n).every(Boolean),
          tokens: n,
        };
      });
      return out;
    });
  }

  /** The token ids of a conversation rendered with the chat template (as the local engine renders it). */
  renderChat(
    messages: ChatMessage[],
    opts: { addGenerationPrompt?: boolean; chatTemplate?: string } = {},
  ): number[] {
    const text = this.tokenizer.applyChatTemplate(messages, {
      addGenerationPrompt: opts.addGenerationPrompt ?? true,
      chatTemplate: opts.chatTemplate ?? this.chatTemplate ?? undefined,
    });
    return this.tokenizer.encode(text, { addSpecialTokens: false });
  }

  /** Frees the contexts, the model and llama.cpp once the calls already made have finished. Idempotent. */
  async close(): Promise<void> {
    await this.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      for (const c of this.contexts.values()) {
        const { ctx } = await c.catch(() => ({ ctx: null }));
        await ctx?.dispose();
      }
      await this.model.dispose();
      await this.llama.dispose();
    }, true);
  }

  // ---------------------------------------------------------------------------------------------------------------

  private exclusive<T>(fn: () => Promise<T>, evenClosed = false): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed && !evenClosed) throw new InferError('ENGINE_CLOSED', 'the engine was closed');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The context (and its sequences) for an adapter (null: the base model), made on first use. */
  private context(adapter: string | null): Promise<{ ctx: NlcContext; seqs: NlcSequence[] }> {
    let c = this.contexts.get(adapter);
    if (!c) {
      c = (async () => {
        const ctx = await this.model.createContext({
          ...this.contextOptions,
          ...(adapter !== null && this.adapterFile !== null
            ? { lora: { adapters: [{ filePath: this.adapterFile, scale: 1 }] } }
            : {}),
        });
        applyOutputOrderBeforeSampling(ctx, this.llama);
        const seqs = Array.from({ length: this.batchSize }, () => ctx.getSequence());
        return { ctx, seqs };
      })();
      this.contexts.set(adapter, c);
      c.catch(() => this.contexts.delete(adapter));
    }
    return c;
  }

  private checkBatch(n: number | undefined): number {
    const b = checkPositive(n ?? this.batchSize, 'batchSize');
    // A call may ask for fewer rows than the context has sequences, not more.
    return Math.min(b, this.batchSize);
  }

  private resolveAdapter(adapter: string | null | undefined): string | null {
    if (adapter === undefined) return this.adapterName;
    if (adapter === null) return null;
    if (adapter === this.adapterName) return adapter;
    if (adapter === this.info.adapter) return null; // merged into the weights
    throw new InferError(
      'ADAPTER_UNKNOWN',
      `no adapter '${adapter}' is loaded (${this.info.adapter ? `loaded: ${this.info.adapter}` : 'none is loaded'})`,
    );
  }

  private drawSeed(): number {
    return this.rng.nextUint32() * 65536 + (this.rng.nextUint32() >>> 16);
  }

  /**
   * One batch of rows: each row is a llama.cpp sequence; all rows' evaluations are issued together so node-llama-cpp
   * decodes them as one llama.cpp batch (the prompts in the first, then one token per unfinished row per step).
   */
  private async runBatch<T extends { row: Row }>(
    items: T[],
    seqs: NlcSequence[],
    finished: (item: T) => void,
  ): Promise<void> {
    for (const item of items) if (item.row.done) finished(item);
    const live = items.filter((r) => !r.row.done);
    if (live.length === 0) return;
    await Promise.all(live.map((_, b) => seqs[b].clearHistory()));
    const V = this.vocabSize;
    const logits = new Float32Array(V);
    let inputs = live.map((r) => r.row.req.ids);
    const active = live.map(() => true);
    try {
      for (;;) {
        const outs = await Promise.all(
          live.map((item, b) => {
            if (!active[b]) return Promise.resolve(null);
            const ids = inputs[b];
            const generateNext = this.nextOptions(item.row);
            const input: NlcInput[] = ids.map((t, j) => (j === ids.length - 1 ? [t, { generateNext }] : t));
            return seqs[b].controlledEvaluate(input).then((o) => o[ids.length - 1] ?? null);
          }),
        );
        let running = 0;
        const next: number[][] = live.map(() => []);
        for (let b = 0; b < live.length; b++) {
          if (!active[b]) continue;
          const { row } = live[b];
          const out = outs[b];
          if (!out) throw new InferError('LLAMACPP_FAILED', 'llama.cpp returned no output for a decode step');
          fillLogits(logits, out, V);
          const token = row.step(logits);
          if (row.done) {
            active[b] = false;
            finished(live[b]);
          } else {
            next[b] = [token];
            running++;
          }
        }
        if (running === 0) break;
        inputs = next;
      }
    } finally {
      await Promise.all(live.map((_, b) => seqs[b].clearHistory().catch(() => undefined)));
    }
  }

  /**
   * What llama.cpp returns for a row's next position: the argmax only (greedy without logprobs, penalties or a
   * pending min_tokens mask), else the full distribution; repetition_penalty is applied by llama.cpp's penalties
   * sampler on the raw logits (vLLM's formula over prompt ∪ output tokens).
   */
  private nextOptions(row: Row): Record<string, unknown> {
    const p = row.req.params;
    const fast =
      isGreedy(p) &&
      p.logprobs === null &&
      p.repetition_penalty === 1 &&
      p.frequency_penalty === 0 &&
      p.presence_penalty === 0 &&
      row.generated >= p.min_tokens;
    if (fast) return { token: true, options: { temperature: 0 } };
    if (!isGreedy(p) && p.top_k > 0 && p.logprobs === null && p.repetition_penalty === 1) {
      // Only the top K' tokens of the raw distribution can survive penalties (which only lower the output tokens'
      // logits), the min_tokens mask and top-k: K' = top_k + distinct output tokens + stop tokens. Every later step
      // (temperature, min_p, top-k, top-p over the renormalised top-k set, the draw) sees only these, so sampling
      // from their renormalised distribution is exact — and llama.cpp sorts and returns K' values, not the vocabulary.
      const outputs = new Set(row.result().outputIds).size;
      const k = Math.min(
        this.vocabSize,
        p.top_k + outputs + this.eosTokenIds.length + p.stop_token_ids.length,
      );
      return { probabilities: true, options: { temperature: 1, topK: k, topP: 1, minP: 0, seed: 0 } };
    }
    const options: Record<string, unknown> = { temperature: 0 };
    if (p.repetition_penalty !== 1) {
      const seen = [...new Set([...row.req.ids, ...row.result().outputIds])];
      options.repeatPenalty = {
        penalty: p.repetition_penalty,
        punishTokens: seen,
        maxPunishTokens: seen.length,
        frequencyPenalty: 0,
        presencePenalty: 0,
      };
    }
    return { probabilities: true, options };
  }

  /** log p of each next token (and the top n, and whether it is the argmax) of each sequence. */
  private async scoreAll(
    seqsIds: number[][],
    batchSize: number,
    adapter: string | null,
    top: number,
  ): Promise<{ logprobs: number[]; greedy: boolean[]; top: TokenLogprob[][] }[]> {
    const { seqs } = await this.context(adapter);
    const out: { logprobs: number[]; greedy: boolean[]; top: TokenLogprob[][] }[] = new Array(seqsIds.length);
    for (let start = 0; start < seqsIds.length; start += batchSize) {
      const chunk = seqsIds.slice(start, start + batchSize);
      await Promise.all(chunk.map((_, b) => seqs[b].clearHistory()));
      try {
        const results = await Promise.all(
          chunk.map((ids, b) =>
            seqs[b].controlledEvaluate(
              ids.map((t, j) =>
                j < ids.length - 1
                  ? [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]
                  : t,
              ),
            ),
          ),
        );
        results.forEach((res, k) => {
          const ids = chunk[k];
          const r = { logprobs: [] as number[], greedy: [] as boolean[], top: [] as TokenLogprob[][] };
          for (let j = 0; j + 1 < ids.length; j++) {
            const probs = res[j]?.next.probabilities;
            if (!probs) throw new InferError('LLAMACPP_FAILED', 'llama.cpp returned no probabilities');
            const p = probs.get(ids[j + 1]) ?? 0;
            r.logprobs.push(Math.fround(Math.log(p)));
            const first = probs.entries().next().value as [number, number];
            r.greedy.push(first[0] === ids[j + 1] || first[1] === p);
            if (top > 0) {
              const t: TokenLogprob[] = [];
              for (const [token, prob] of probs) {
                if (t.length >= top) break;
                t.push({ token, logprob: Math.fround(Math.log(prob)) });
              }
              r.top.push(t);
            }
          }
          out[start + k] = r;
        });
      } finally {
        await Promise.all(chunk.map((_, b) => seqs[b].clearHistory().catch(() => undefined)));
      }
    }
    return out;
  }

  private prepareGenerate(r: GenerateRequest, i: number): Prepared {
    if (typeof r !== 'object' || r === null) throw new RequestError(i, 'INFER_BAD_REQUEST', 'not an object');
    let ids: number[];
    if (r.messages !== undefined) {
      if (r.prompt !== undefined || r.inputIds !== undefined) {
        throw new RequestError(i, 'INFER_BAD_REQUEST', 'give exactly one of prompt, inputIds and messages');
      }
      try {
        ids = this.renderChat(r.messages);
      } catch (e) {
        const err = e as InferError;
        throw new RequestError(i, err.code ?? 'TEMPLATE_RENDER', err.message, { cause: e });
      }
      if (ids.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', 'the rendered conversation is empty');
    } else ids = this.promptIds(r.prompt, r.inputIds, i, 'prompt');
    const n = r.n ?? 1;
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_N) {
      throw new RequestError(i, 'INFER_BAD_PARAM', `n must be an integer in [1, ${MAX_N}], got ${show(r.n)}`);
    }
    let params: SamplingParams;
    try {
      params = samplingParams((r.params ?? {}) as Record<string, unknown>);
    } catch (e) {
      throw new RequestError(i, (e as InferError).code ?? 'INFER_BAD_PARAM', (e as Error).message, {
        cause: e,
      });
    }
    const bad = params.stop_token_ids.find((t) => t >= this.vocabSize);
    if (bad !== undefined) {
      throw new RequestError(
        i,
        'INFER_BAD_PARAM',
        `invalid sampling parameter stop_token_ids: ${bad} is outside the vocabulary [0, ${this.vocabSize})`,
      );
    }
    if (params.logprobs !== null && params.logprobs > this.vocabSize) {
      throw new RequestError(
        i,
        'INFER_BAD_PARAM',
        `invalid sampling parameter logprobs: at most the vocabulary size (${this.vocabSize}), got ${params.logprobs}`,
      );
    }
    if (r.trim !== undefined && typeof r.trim !== 'boolean') {
      throw new RequestError(i, 'INFER_BAD_REQUEST', `trim must be true or false, got ${show(r.trim)}`);
    }
    this.checkLength(ids.length, params.max_tokens, i);
    return { index: i, ids, params, seed: params.seed, trim: r.trim ?? true, n };
  }

  private checkLength(prompt: number, maxTokens: number, i: number): void {
    if (prompt + maxTokens > this.contextSize) {
      throw new RequestError(
        i,
        'PROMPT_TOO_LONG',
        `the prompt has ${prompt} tokens and max_tokens is ${maxTokens}: ${prompt + maxTokens} positions, more than ` +
          `the engine's context size (${this.contextSize}); lower max_tokens, shorten the prompt or raise contextSize`,
      );
    }
  }

  private promptIds(text: unknown, ids: unknown, i: number, textName: 'prompt' | 'text'): number[] {
    if ((text === undefined) === (ids === undefined)) {
      throw new RequestError(
        i,
        'INFER_BAD_REQUEST',
        `give exactly one of ${textName} and inputIds${text === undefined ? '' : ', not both'}`,
      );
    }
    if (text !== undefined) {
      if (typeof text !== 'string') {
        throw new RequestError(i, 'INFER_BAD_REQUEST', `${textName} must be a string, got ${show(text)}`);
      }
      if (text.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', `the ${textName} is empty`);
      return this.tokenizer.encode(text);
    }
    if (!isTokenIds(ids)) {
      throw new RequestError(
        i,
        'INFER_BAD_REQUEST',
        `inputIds must be a list of token ids, got ${show(ids)}`,
      );
    }
    if (ids.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', 'inputIds is empty');
    this.checkIds(ids, i, 'inputIds');
    return [...ids];
  }

  private checkIds(ids: readonly number[], i: number, what: string): void {
    const bad = ids.findIndex((t) => !Number.isSafeInteger(t) || t < 0 || t >= this.vocabSize);
    if (bad >= 0) {
      throw new RequestError(
        i,
        'TOKEN_OUT_OF_RANGE',
        `${what}[${bad}] = ${ids[bad]} is not a token id of the model (vocabulary [0, ${this.vocabSize}))`,
      );
    }
  }

  /** lm-evaluation-harness's `_encode_pair`, as the local engine does it. */
  private encodePair(
    r: LoglikelihoodRequest,
    i: number,
    special: boolean,
  ): { context: number[]; continuation: number[] } {
    return encodeLoglikelihoodPair(r, i, special, {
      tokenizer: this.tokenizer,
      prefix: this.tokenizer.bosId ?? this.eosTokenIds[0] ?? 0,
      checkIds: (ids, j, what) => this.checkIds(ids, j, what),
    });
  }
}

/** Row.step's input from llama.cpp's output: log p of the distribution (-inf elsewhere), or a one-hot argmax. */
function fillLogits(logits: Float32Array, out: NlcProbabilities, V: number): void {
  logits.fill(Number.NEGATIVE_INFINITY);
  const probs = out.next.probabilities;
  if (probs) {
    for (const [t, p] of probs) if (t < V && p > 0) logits[t] = Math.log(p);
    return;
  }
  const t = out.next.token;
  if (t === null || t === undefined || t < 0 || t >= V) {
    throw new InferError('LLAMACPP_FAILED', `llama.cpp sampled no valid token (${show(t)})`);
  }
  logits[t] = 0;
}

function eosList(v: unknown): number[] {
  if (v === null || v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map(Number).filter((t) => Number.isSafeInteger(t) && t >= 0);
}

function checkPositive(n: unknown, name: string): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1) {
    throw new InferError('INFER_BAD_PARAM', `${name} must be a positive integer, got ${show(n)}`);
  }
  return n as number;
}

function toResult(inputIds: number[], choices: GenerateChoice[]): GenerateResult {
  const result: GenerateResult = { inputIds, ...choices[0] };
  if (choices.length > 1) result.choices = choices;
  return result;
}

/** The tokenizer: given, else the files the GGUF carries, else the model directory. */
async function engineTokenizer(
  opts: LlamaCppEngineOptions,
  meta: Map<string, GgufMetadataValue>,
  isDir: boolean,
  file: string,
): Promise<Tokenizer> {
  if (opts.tokenizer instanceof Tokenizer) return opts.tokenizer;
  if (typeof opts.tokenizer === 'string') return Tokenizer.fromDir(opts.tokenizer);
  const json = metaString(meta, POLYGLOT_GGUF_KEYS.tokenizerJson);
  if (json !== undefined) {
    const parse = (key: string) => {
      const s = metaString(meta, key);
      return s === undefined ? undefined : JSON.parse(s);
    };
    return Tokenizer.fromJSON({
      tokenizer: JSON.parse(json),
      config: parse(POLYGLOT_GGUF_KEYS.tokenizerConfig),
      specialTokensMap: parse(POLYGLOT_GGUF_KEYS.specialTokensMap),
      chatTemplate: metaString(meta, POLYGLOT_GGUF_KEYS.chatTemplate),
      source: file,
    });
  }
  if (isDir) return Tokenizer.fromDir(opts.model);
  throw new InferError(
    'LLAMACPP_TOKENIZER',
    `${file}: carries no tokenizer.json (it was not exported by polyglot); pass the tokenizer directory (tokenizer option, --tokenizer)`,
  );
}

/**
 * Works around a race in node-llama-cpp 3.21.1 with several sequences in one batch: llama.cpp reorders a batch's
 * output rows lazily, at the first read of the logits after a decode (`output_reorder` in `get_logits_ith`), and
 * node-llama-cpp reads them from several libuv worker threads at once (one sampling job per sequence), so rows
 * could be swapped twice and a sequence read another's logits (seen as wrong log-probs for a batch of prompts of
 * different lengths). Reading the embeddings once on the main thread right after each decode (which fails, as
 * embeddings are off, but applies the reorder first) leaves nothing to reorder when the workers run.
 */
function applyOutputOrderBeforeSampling(ctx: NlcContext, llama: NlcLlama): void {
  // Silence llama.cpp's log of the failed read (internal API of node-llama-cpp 3.21.1; without it the read still works).
  const quiet = (llama as unknown as { _createLogLevelOverride?: (level: string) => () => void })
    ._createLogLevelOverride;
  const addon = (
    ctx as unknown as { _ctx?: { decodeBatch(): Promise<void>; getEmbedding(n: number): unknown } }
  )._ctx;
  if (!addon || typeof addon.decodeBatch !== 'function' || typeof addon.getEmbedding !== 'function') return;
  const decode = addon.decodeBatch.bind(addon);
  // The addon's methods are read-only properties of its prototype: shadow the method on the instance.
  Object.defineProperty(addon, 'decodeBatch', {
    configurable: true,
    writable: true,
    value: async () => {
      await decode();
      const restore = quiet?.call(llama, 'disabled');
      try {
        addon.getEmbedding(1);
      } catch {
        // "Failed to get embeddings": expected; the reorder has happened.
      } finally {
        restore?.();
      }
    },
  });
}
