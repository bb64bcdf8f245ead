import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type AttentionImpl,
  type BackendName,
  type DecodeStream,
  initBackend,
  LlamaModel,
  ModelFormatError,
  Tokenizer,
  TokenizerError,
} from '@polyglot/model';
import type {
  BatchOptions,
  Engine,
  EngineInfo,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ScoreRequest,
  ScoreResult,
} from './engine.js';
import { InferError } from './errors.js';
import { logSoftmax, positionLogprobs, type TokenLogprob } from './logprobs.js';
import { type SamplingParams, samplingParams } from './params.js';
import { Xoshiro128 } from './rng.js';
import { sampleToken } from './sampler.js';
import { type FinishReason, SequenceState } from './state.js';
import { pyRstrip, pyStrip, StopChecker } from './stop.js';

/** A request that cannot run (empty or too long prompt, token ids outside the vocabulary, bad parameters). */
export class RequestError extends InferError {
  /** Index of the request in the call. */
  readonly request: number;
  /** The message without the `request N: ` prefix (callers that know a better place, e.g. file:line, use it). */
  readonly detail: string;
  constructor(request: number, code: string, detail: string, options?: { cause?: unknown }) {
    super(code, `request ${request}: ${detail}`, options);
    this.name = 'RequestError';
    this.request = request;
    this.detail = detail;
  }
}

export interface LocalEngineOptions {
  /** Hugging Face model directory (config.json, safetensors, tokenizer.json). */
  model: string;
  /** A PEFT LoRA adapter directory, or several by name (the first is applied), applied un-merged. */
  adapter?: string | Record<string, string>;
  /** Merge the (single) adapter into the weights at load: faster, no switching. Default false. */
  mergeAdapter?: boolean;
  /** TensorFlow.js backend; default `auto` (tensorflow, else a hardware WebGPU adapter, else wasm). */
  backend?: BackendName;
  /**
   * Attention implementation; default `host` on the in-process backends (wasm, cpu), `tensor` elsewhere. `host`
   * attends over each row's valid cache slots only, which makes a row's logits bitwise independent of the batch
   * it runs in (see README, "Seeds and batches").
   */
  attention?: AttentionImpl;
  /** Tokenizer directory or instance; default the model directory. */
  tokenizer?: string | Tokenizer;
  /**
   * Seed of the engine's generator, which draws a seed for each request that has none (in request order, call
   * after call). Default: a random one.
   */
  seed?: number | null;
  /** Default batch size of generate/score/loglikelihood; default 8. */
  batchSize?: number;
}

export interface LoglikelihoodOptions extends BatchOptions {
  /**
   * Encode text with the tokenizer's special tokens (Llama: BOS first), as transformers and this engine's
   * generate do. Default true. lm-evaluation-harness's HF model encodes without them unless `add_bos_token=True`;
   * pass false to reproduce it (an empty context then becomes BOS, lm-eval's prefix token).
   */
  addSpecialTokens?: boolean;
}

const DEFAULT_BATCH_SIZE = 8;

interface PreparedGenerate {
  index: number;
  ids: number[];
  params: SamplingParams;
  /** The request's seed; null until the engine draws one. */
  seed: number | null;
  trim: boolean;
}

/** One request in flight: its sampler state, random stream, detokenizer and stop strings. */
class Row {
  private readonly seq: SequenceState;
  private readonly rng: Xoshiro128;
  private readonly stream: DecodeStream;
  private readonly stops: StopChecker;
  private readonly eos: ReadonlySet<number>;
  private readonly out: number[] = [];
  private readonly lps: number[] | null;
  private readonly tops: TokenLogprob[][] | null;
  finish: FinishReason | null = null;
  private stopReason: string | number | null = null;

  constructor(
    readonly req: PreparedGenerate,
    eosIds: readonly number[],
    tokenizer: Tokenizer,
  ) {
    this.seq = new SequenceState(req.ids, eosIds);
    this.rng = Xoshiro128.fromSeed(req.seed!);
    this.stream = tokenizer.decodeStream({ promptIds: req.ids });
    this.stops = new StopChecker(req.params.stop);
    this.eos = new Set(req.params.ignore_eos ? [] : eosIds);
    this.lps = req.params.logprobs === null ? null : [];
    this.tops = req.params.logprobs ? [] : null;
    if (req.params.max_tokens === 0) this.finish = 'length';
  }

  get done(): boolean {
    return this.finish !== null;
  }

  /** Samples the next token from this row's logits, records it, and decides whether the request is finished. */
  step(logits: Float32Array): number {
    const { params } = this.req;
    const token = sampleToken(logits, params, this.seq, this.rng);
    this.seq.append(token);
    this.out.push(token);
    if (this.lps !== null) {
      const pos = positionLogprobs(logSoftmax(logits), token, params.logprobs ?? 0);
      this.lps.push(pos.logprob);
      this.tops?.push(pos.top);
    }
    const reason = this.seq.finishReason(params);
    if (reason === 'stop') {
      // A stop token (EOS or one of stop_token_ids): kept in the ids, its text left out of the output (vLLM).
      this.finish = 'stop';
      this.stopReason = this.eos.has(token) ? null : token;
      return token;
    }
    const chunk = this.detokenize(token);
    // vLLM looks for stop strings only once more than min_tokens tokens exist.
    if (this.seq.numGenerated > params.min_tokens) this.stops.push(chunk);
    else this.stops.pushUnchecked(chunk);
    if (this.stops.stopped) {
      this.finish = 'stop';
      this.stopReason = this.stops.stopped.stop;
    } else if (reason === 'length') {
      this.finish = 'length';
    }
    return token;
  }

  result(): GenerateResult {
    // An incomplete UTF-8 character at the very end is dropped, as vLLM's detokenizer never emits one.
    const text = this.stops.text;
    const r: GenerateResult = {
      inputIds: this.req.ids,
      outputIds: this.out,
      text: this.req.trim ? pyStrip(text) : text,
      finishReason: this.finish ?? 'length',
      stopReason: this.stopReason,
      seed: this.req.seed!,
    };
    if (this.lps !== null) r.tokenLogprobs = this.lps;
    if (this.tops !== null) r.topLogprobs = this.tops;
    return r;
  }

  private detokenize(token: number): string {
    try {
      return this.stream.step(token);
    } catch (e) {
      // An id the model can produce but the tokenizer lacks (a vocabulary padded for speed) has no text.
      if (e instanceof TokenizerError) return '';
      throw e;
    }
  }
}

function isTokenIds(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((t) => Number.isSafeInteger(t));
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

async function generationConfigEos(dir: string): Promise<number[]> {
  const file = path.join(dir, 'generation_config.json');
  if (!existsSync(file)) return [];
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new ModelFormatError(
      'GENERATION_CONFIG_INVALID',
      `${file}: not valid JSON: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const eos = (json as { eos_token_id?: unknown } | null)?.eos_token_id;
  if (eos === undefined || eos === null) return [];
  const ids = typeof eos === 'number' ? [eos] : eos;
  if (!Array.isArray(ids) || !ids.every((t) => Number.isSafeInteger(t) && t >= 0)) {
    throw new ModelFormatError(
      'GENERATION_CONFIG_INVALID',
      `${file}: eos_token_id must be a token id or a list of them, got ${show(eos)}`,
    );
  }
  return ids;
}

/**
 * The local engine: a {@link LlamaModel} on TensorFlow.js and its tokenizer, with vLLM's sampling.
 *
 * Generation runs requests in batches (in request order, `batchSize` at a time): one left-padded prefill, then one
 * decode step per token in which every unfinished row samples its next token with its own {@link SequenceState}
 * and its own seeded {@link Xoshiro128}. A request's tokens therefore depend only on its prompt, parameters and
 * seed — not on the other requests of its batch — as long as the model's logits for a row do not depend on the
 * batch; with `host` attention (the default on wasm and cpu) they are bitwise identical (tested).
 */
export class LocalEngine implements Engine {
  readonly info: EngineInfo;
  readonly model: LlamaModel;
  readonly tokenizer: Tokenizer;
  /** Ids that end generation unless ignore_eos: config.json and generation_config.json eos_token_id, the tokenizer's EOS. */
  readonly eosTokenIds: readonly number[];
  private readonly padId: number;
  private readonly rng: Xoshiro128;
  private readonly batchSize: number;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(args: {
    dir: string;
    model: LlamaModel;
    tokenizer: Tokenizer;
    eos: number[];
    seed: number | null;
    batchSize: number;
  }) {
    this.model = args.model;
    this.tokenizer = args.tokenizer;
    this.eosTokenIds = args.eos;
    const c = args.model.config;
    this.padId = c.padTokenId ?? args.tokenizer.padId ?? args.eos[0] ?? 0;
    this.rng = Xoshiro128.forRequest(args.seed);
    this.batchSize = args.batchSize;
    this.info = {
      kind: 'local',
      model: args.dir,
      backend: args.model.backend,
      adapter: args.model.activeAdapter ?? args.model.mergedAdapters[0] ?? null,
    };
  }

  static async load(opts: LocalEngineOptions): Promise<LocalEngine> {
    const batchSize = checkBatchSize(opts.batchSize ?? DEFAULT_BATCH_SIZE);
    if (opts.seed !== undefined && opts.seed !== null && !Number.isSafeInteger(opts.seed)) {
      throw new InferError('INFER_BAD_SEED', `the engine seed must be an integer, got ${show(opts.seed)}`);
    }
    const backend = await initBackend(opts.backend ?? 'auto');
    const attention = opts.attention ?? (backend === 'wasm' || backend === 'cpu' ? 'host' : 'tensor');
    const tokenizer =
      opts.tokenizer instanceof Tokenizer
        ? opts.tokenizer
        : await Tokenizer.fromDir(opts.tokenizer ?? opts.model);
    const genEos = await generationConfigEos(opts.model);
    const adapters =
      opts.adapter === undefined
        ? undefined
        : typeof opts.adapter === 'string'
          ? { [path.basename(path.resolve(opts.adapter))]: opts.adapter }
          : opts.adapter;
    const model = await LlamaModel.load(opts.model, {
      backend: backend as BackendName,
      attention,
      adapters,
      mergeAdapter: opts.mergeAdapter,
    });
    const configEos = model.config.eosTokenId;
    const eos = [
      ...new Set([
        ...(configEos === null ? [] : Array.isArray(configEos) ? configEos : [configEos]),
        ...genEos,
        ...(tokenizer.eosId === null ? [] : [tokenizer.eosId]),
      ]),
    ];
    return new LocalEngine({ dir: opts.model, model, tokenizer, eos, seed: opts.seed ?? null, batchSize });
  }

  get backend(): string {
    return this.model.backend;
  }

  /**
   * Generates for every request. All requests are checked first (nothing runs if one is bad: a
   * {@link RequestError} names it); requests without a seed get one drawn from the engine's generator, in order.
   */
  async generate(reqs: GenerateRequest[], opts: GenerateOptions = {}): Promise<GenerateResult[]> {
    return this.exclusive(async () => {
      const batchSize = checkBatchSize(opts.batchSize ?? this.batchSize);
      const prepared = reqs.map((r, i) => this.prepareGenerate(r, i));
      // Seeds are drawn only once every request is valid, so a rejected call leaves the engine's stream alone.
      for (const p of prepared) p.seed ??= this.drawSeed();
      const results: GenerateResult[] = new Array(reqs.length);
      for (let start = 0; start < prepared.length; start += batchSize) {
        const rows = prepared
          .slice(start, start + batchSize)
          .map((p) => new Row(p, this.eosTokenIds, this.tokenizer));
        await this.runBatch(rows, (row) => {
          const result = row.result();
          results[row.req.index] = result;
          opts.onResult?.(row.req.index, result);
        });
      }
      return results;
    });
  }

  /** Token log-probabilities of each sequence (text is encoded with BOS), in right-padded batches. */
  async score(reqs: ScoreRequest[], opts: BatchOptions = {}): Promise<ScoreResult[]> {
    return this.exclusive(async () => {
      const batchSize = checkBatchSize(opts.batchSize ?? this.batchSize);
      const seqs = reqs.map((r, i) => this.promptIds(r.text, r.inputIds, i, 'text'));
      seqs.forEach((ids, i) => {
        this.checkLength(ids, i);
      });
      const scores = await this.scoreSorted(seqs, batchSize, false);
      return scores.map((s, i) => ({
        inputIds: seqs[i],
        tokenLogprobs: s.tokenLogprobs,
        sumLogprob: s.sumLogprob,
      }));
    });
  }

  /**
   * lm-evaluation-harness's `loglikelihood`: for text, trailing whitespace of the context moves to the start of
   * the continuation, `context + continuation` and `context` are encoded, and the continuation's tokens are those
   * of the whole past the context's length (`_encode_pair`). The result sums their log-probabilities and says
   * whether each is the argmax (`is_greedy`). A sequence longer than max_position_embeddings loses context tokens
   * from the left.
   */
  async loglikelihood(
    reqs: LoglikelihoodRequest[],
    opts: LoglikelihoodOptions = {},
  ): Promise<LoglikelihoodResult[]> {
    return this.exclusive(async () => {
      const batchSize = checkBatchSize(opts.batchSize ?? this.batchSize);
      const special = opts.addSpecialTokens ?? true;
      const maxPos = this.model.config.maxPositionEmbeddings;
      const pairs = reqs.map((r, i) => {
        const { context, continuation } = this.encodePair(r, i, special);
        if (continuation.length >= maxPos) {
          throw new RequestError(
            i,
            'PROMPT_TOO_LONG',
            `the continuation has ${continuation.length} tokens; with at least one context token it exceeds ` +
              `the model's max_position_embeddings (${maxPos})`,
          );
        }
        const whole = [...context, ...continuation];
        return { seq: whole.slice(Math.max(0, whole.length - maxPos)), n: continuation.length };
      });
      const todo = pairs.map((p, i) => (p.n > 0 ? i : -1)).filter((i) => i >= 0);
      const scores = await this.scoreSorted(
        todo.map((i) => pairs[i].seq),
        batchSize,
        true,
      );
      const out: LoglikelihoodResult[] = pairs.map(() => ({ logprob: 0, isGreedy: true, tokens: 0 }));
      todo.forEach((i, k) => {
        const { n } = pairs[i];
        const lps = scores[k].tokenLogprobs.slice(-n);
        out[i] = {
          logprob: lps.reduce((a, b) => a + b, 0),
          isGreedy: scores[k].greedy!.slice(-n).every(Boolean),
          tokens: n,
        };
      });
      return out;
    });
  }

  /** Frees the model's weights once the calls already made have finished. Idempotent. */
  async close(): Promise<void> {
    await this.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      this.model.dispose();
    }, true);
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** Runs calls one at a time (a later call waits for the earlier ones), so they never interleave on the model. */
  private exclusive<T>(fn: () => Promise<T>, evenClosed = false): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed && !evenClosed) throw new InferError('ENGINE_CLOSED', 'the engine was closed');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A seed for a request that has none: 48 bits from the engine's generator. */
  private drawSeed(): number {
    return this.rng.nextUint32() * 65536 + (this.rng.nextUint32() >>> 16);
  }

  private async runBatch(rows: Row[], finished: (row: Row) => void): Promise<void> {
    for (const row of rows) if (row.done) finished(row); // max_tokens 0
    const live = rows.filter((r) => !r.done);
    if (live.length === 0) return;
    const V = this.model.config.vocabSize;
    const maxNew = Math.max(...live.map((r) => r.req.params.max_tokens));
    const state = await this.model.prefill(
      live.map((r) => r.req.ids),
      { padId: this.padId, maxNewTokens: maxNew },
    );
    try {
      for (;;) {
        const next = new Array<number>(live.length).fill(this.padId);
        const active = new Array<boolean>(live.length).fill(false);
        let running = 0;
        for (let b = 0; b < live.length; b++) {
          const row = live[b];
          if (row.done) continue;
          next[b] = row.step(state.logits.subarray(b * V, (b + 1) * V));
          if (row.done) finished(row);
          else {
            active[b] = true;
            running++;
          }
        }
        if (running === 0) break;
        // The decode state advances every row of the batch in lock-step (one KV-cache slot per row per step), so
        // finished rows still take a token: the pad id, masked out and without advancing their position (their
        // logits are ignored). The batch ends when its last row finishes.
        await state.decodeStep(next, { active });
      }
    } finally {
      state.dispose();
    }
  }

  private prepareGenerate(r: GenerateRequest, i: number): PreparedGenerate {
    if (typeof r !== 'object' || r === null) throw new RequestError(i, 'INFER_BAD_REQUEST', 'not an object');
    const ids = this.promptIds(r.prompt, r.inputIds, i, 'prompt');
    let params: SamplingParams;
    try {
      params = samplingParams((r.params ?? {}) as Record<string, unknown>);
    } catch (e) {
      throw new RequestError(i, (e as InferError).code ?? 'INFER_BAD_PARAM', (e as Error).message, {
        cause: e,
      });
    }
    const V = this.model.config.vocabSize;
    const badStop = params.stop_token_ids.find((t) => t >= V);
    if (badStop !== undefined) {
      throw new RequestError(
        i,
        'INFER_BAD_PARAM',
        `invalid sampling parameter stop_token_ids: ${badStop} is outside the vocabulary [0, ${V})`,
      );
    }
    if (params.logprobs !== null && params.logprobs > V) {
      throw new RequestError(
        i,
        'INFER_BAD_PARAM',
        `invalid sampling parameter logprobs: at most the vocabulary size (${V}), got ${params.logprobs}`,
      );
    }
    if (r.trim !== undefined && typeof r.trim !== 'boolean') {
      throw new RequestError(i, 'INFER_BAD_REQUEST', `trim must be true or false, got ${show(r.trim)}`);
    }
    this.checkLength(ids, i);
    const maxPos = this.model.config.maxPositionEmbeddings;
    if (ids.length + params.max_tokens > maxPos) {
      throw new RequestError(
        i,
        'PROMPT_TOO_LONG',
        `the prompt has ${ids.length} tokens and max_tokens is ${params.max_tokens}: ${ids.length + params.max_tokens} ` +
          `positions, more than the model's max_position_embeddings (${maxPos}); lower max_tokens to at most ` +
          `${maxPos - ids.length} or shorten the prompt`,
      );
    }
    return { index: i, ids, params, seed: params.seed, trim: r.trim ?? true };
  }

  /** The token ids of a request given as text (encoded with special tokens) or as ids; exactly one of them. */
  private promptIds(text: unknown, ids: unknown, i: number, textName: 'prompt' | 'text'): number[] {
    const idsName = 'inputIds';
    if ((text === undefined) === (ids === undefined)) {
      throw new RequestError(
        i,
        'INFER_BAD_REQUEST',
        `give exactly one of ${textName} and ${idsName}${text === undefined ? '' : ', not both'}`,
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
        `${idsName} must be a list of token ids, got ${show(ids)}`,
      );
    }
    if (ids.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', `${idsName} is empty`);
    this.checkIds(ids, i, idsName);
    return [...ids];
  }

  private checkIds(ids: readonly number[], i: number, what: string): void {
    const V = this.model.config.vocabSize;
    const bad = ids.findIndex((t) => !Number.isSafeInteger(t) || t < 0 || t >= V);
    if (bad >= 0) {
      throw new RequestError(
        i,
        'TOKEN_OUT_OF_RANGE',
        `${what}[${bad}] = ${ids[bad]} is not a token id of the model (vocabulary [0, ${V}))`,
      );
    }
  }

  private checkLength(ids: readonly number[], i: number): void {
    const maxPos = this.model.config.maxPositionEmbeddings;
    if (ids.length > maxPos) {
      throw new RequestError(
        i,
        'PROMPT_TOO_LONG',
        `the prompt has ${ids.length} tokens, more than the model's max_position_embeddings (${maxPos})`,
      );
    }
  }

  /** Context and continuation token ids of a loglikelihood request (lm-evaluation-harness's `_encode_pair`). */
  private encodePair(
    r: LoglikelihoodRequest,
    i: number,
    special: boolean,
  ): { context: number[]; continuation: number[] } {
    const prefix = this.tokenizer.bosId ?? this.eosTokenIds[0] ?? this.padId;
    const byText = r.context !== undefined || r.continuation !== undefined;
    const byIds = r.contextIds !== undefined || r.continuationIds !== undefined;
    if (byText === byIds) {
      throw new RequestError(
        i,
        'INFER_BAD_REQUEST',
        'give context and continuation (text) or contextIds and continuationIds (token ids)',
      );
    }
    if (byIds) {
      for (const [name, v] of [
        ['contextIds', r.contextIds],
        ['continuationIds', r.continuationIds],
      ] as const) {
        if (!isTokenIds(v)) {
          throw new RequestError(
            i,
            'INFER_BAD_REQUEST',
            `${name} must be a list of token ids, got ${show(v)}`,
          );
        }
        this.checkIds(v, i, name);
      }
      const context = r.contextIds!.length > 0 ? [...r.contextIds!] : [prefix];
      return { context, continuation: [...r.continuationIds!] };
    }
    let context = r.context;
    let continuation = r.continuation;
    if (typeof context !== 'string' || typeof continuation !== 'string') {
      throw new RequestError(i, 'INFER_BAD_REQUEST', 'context and continuation must both be strings');
    }
    const kept = pyRstrip(context);
    if (kept.length < context.length) {
      continuation = context.slice(kept.length) + continuation;
      context = kept;
    }
    const opts = { addSpecialTokens: special };
    const contextIds = this.tokenizer.encode(context, opts);
    if (contextIds.length === 0) {
      // lm-eval: an empty context is the prefix token (BOS) and the continuation is encoded on its own.
      const ids = { context: [prefix], continuation: this.tokenizer.encode(continuation, opts) };
      this.checkIds(ids.continuation, i, 'the encoded continuation');
      return ids;
    }
    const whole = this.tokenizer.encode(context + continuation, opts);
    const ids = { context: contextIds, continuation: whole.slice(contextIds.length) };
    this.checkIds([...ids.context, ...ids.continuation], i, 'the encoded text');
    return ids;
  }

  /** scoreBatch over sequences sorted by length (less padding), in batches; results in the input order. */
  private async scoreSorted(
    seqs: number[][],
    batchSize: number,
    greedy: boolean,
  ): Promise<{ tokenLogprobs: number[]; sumLogprob: number; greedy?: boolean[] }[]> {
    const order = seqs.map((_, i) => i).sort((a, b) => seqs[b].length - seqs[a].length || a - b);
    const out: { tokenLogprobs: number[]; sumLogprob: number; greedy?: boolean[] }[] = new Array(seqs.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.slice(start, start + batchSize);
      const scores = await this.model.scoreBatch(
        idx.map((i) => seqs[i]),
        { greedy },
      );
      idx.forEach((i, k) => {
        out[i] = scores[k];
      });
    }
    return out;
  }
}

function checkBatchSize(n: unknown): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1) {
    throw new InferError('INFER_BAD_PARAM', `batchSize must be a positive integer, got ${show(n)}`);
  }
  return n as number;
}
