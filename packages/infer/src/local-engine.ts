import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type AttentionImpl,
  type BackendName,
  type ChatMessage,
  initBackend,
  LlamaModel,
  ModelFormatError,
  Tokenizer,
} from '@polyglot/model';
import { type BatcherStats, ContinuousBatcher } from './batcher.js';
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

export { RequestError } from './errors.js';

import { encodeLoglikelihoodPair, isTokenIds, show } from './encode-pair.js';
import { InferError, RequestError } from './errors.js';
import { logSoftmax, positionLogprobs, type TokenLogprob } from './logprobs.js';
import { type SamplingParams, samplingParams } from './params.js';
import { Xoshiro128 } from './rng.js';
import { type PreparedGenerate, Row, type TokenEvent } from './row.js';

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
  /**
   * The chat template for requests given as `messages`: a name of one of the tokenizer's templates, a built-in name
   * (`guanaco`, `alpaca`, `chatml`, `llama-2-chat`, `zephyr`) or Jinja source. Default: the tokenizer's own.
   */
  chatTemplate?: string;
  /** Most sequences decoding at once in {@link LocalEngine.submit}'s continuous batch (vLLM's max_num_seqs); default 64. */
  maxNumSeqs?: number;
}

export interface SubmitOptions {
  /** The adapter to apply, by name (null: the base model); default the engine's active one. */
  adapter?: string | null;
  /** Called for each generated token of sample `choice` (streaming): its id, the text it made final, logprobs. */
  onToken?: (choice: number, event: TokenEvent) => void;
  /** Aborting drops the request (waiting or running); the promise rejects with `REQUEST_ABORTED`. */
  signal?: AbortSignal;
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
const DEFAULT_MAX_NUM_SEQS = 64;
/** The most samples one request may ask for (`n`). */
const MAX_N = 128;

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
  /** The id fed for padding (config pad_token_id, else the tokenizer's pad, else the first EOS). */
  readonly padId: number;
  /** The chat template for `messages` requests (see {@link LocalEngineOptions.chatTemplate}), or null: the tokenizer's. */
  readonly chatTemplate: string | null;
  private readonly rng: Xoshiro128;
  private readonly batchSize: number;
  private readonly maxNumSeqs: number;
  private batcher: ContinuousBatcher | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(args: {
    dir: string;
    model: LlamaModel;
    tokenizer: Tokenizer;
    eos: number[];
    seed: number | null;
    batchSize: number;
    chatTemplate: string | null;
    maxNumSeqs: number;
  }) {
    this.model = args.model;
    this.tokenizer = args.tokenizer;
    this.eosTokenIds = args.eos;
    const c = args.model.config;
    this.padId = c.padTokenId ?? args.tokenizer.padId ?? args.eos[0] ?? 0;
    this.rng = Xoshiro128.forRequest(args.seed);
    this.batchSize = args.batchSize;
    this.chatTemplate = args.chatTemplate;
    this.maxNumSeqs = args.maxNumSeqs;
    this.info = {
      kind: 'local',
      model: args.dir,
      backend: args.model.backend,
      adapter: args.model.activeAdapter ?? args.model.mergedAdapters[0] ?? null,
    };
  }

  static async load(opts: LocalEngineOptions): Promise<LocalEngine> {
    const batchSize = checkBatchSize(opts.batchSize ?? DEFAULT_BATCH_SIZE);
    const maxNumSeqs = checkBatchSize(opts.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS, 'maxNumSeqs');
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
    return new LocalEngine({
      dir: opts.model,
      model,
      tokenizer,
      eos,
      seed: opts.seed ?? null,
      batchSize,
      chatTemplate: opts.chatTemplate ?? null,
      maxNumSeqs,
    });
  }

  get backend(): string {
    return this.model.backend;
  }

  /**
   * Generates for every request. All requests are checked first (nothing runs if one is bad: a
   * {@link RequestError} names it); requests without a seed get one drawn from the engine's generator, in order
   * (one per sample with `n` > 1). Requests run in request order, `batchSize` rows at a time (a request with `n`
   * samples takes n rows).
   */
  async generate(reqs: GenerateRequest[], opts: GenerateOptions = {}): Promise<GenerateResult[]> {
    return this.exclusive(async () => {
      const batchSize = checkBatchSize(opts.batchSize ?? this.batchSize);
      const adapter = this.resolveAdapter(opts.adapter);
      const prepared = reqs.map((r, i) => this.prepareGenerate(r, i));
      // Seeds are drawn only once every request is valid, so a rejected call leaves the engine's stream alone.
      const samples = prepared.flatMap((p) => this.seedSamples(p));
      const choices: GenerateChoice[][] = prepared.map((p) => new Array(p.n));
      const left = prepared.map((p) => p.n);
      return this.withAdapter(adapter, async () => {
        for (let start = 0; start < samples.length; start += batchSize) {
          const rows = samples
            .slice(start, start + batchSize)
            .map((s) => ({ k: s.k, row: new Row(s.req, this.eosTokenIds, this.tokenizer) }));
          await this.runBatch(rows, ({ k, row }) => {
            const i = row.req.index;
            choices[i][k] = row.result();
            if (--left[i] === 0) opts.onResult?.(i, toResult(prepared[i].ids, choices[i]));
          });
        }
        return prepared.map((p, i) => toResult(p.ids, choices[i]));
      });
    });
  }

  /**
   * Continuous batching: queues one request (with all of its `n` samples) into the engine's running batch, which
   * admits new requests between decode steps and drops finished ones (see {@link ContinuousBatcher}); resolves when
   * every sample is finished. Concurrent calls share the batch, up to `maxNumSeqs` rows; other engine calls run
   * between steps. Tokens depend only on the request and its seed, as with {@link generate}. A bad request throws
   * a {@link RequestError} (index 0) before anything is queued.
   */
  async submit(req: GenerateRequest, opts: SubmitOptions = {}): Promise<GenerateResult> {
    if (this.closed) throw new InferError('ENGINE_CLOSED', 'the engine was closed');
    const adapter = this.resolveAdapter(opts.adapter);
    const prepared = this.prepareGenerate(req, 0);
    const samples = this.seedSamples(prepared);
    this.batcher ??= new ContinuousBatcher(
      { model: this.model, padId: this.padId, exclusive: (fn) => this.exclusive(fn) },
      this.maxNumSeqs,
    );
    const batcher = this.batcher;
    const choices = await Promise.all(
      samples.map(({ k, req: sample }) => {
        const onToken = opts.onToken;
        const row = new Row(
          sample,
          this.eosTokenIds,
          this.tokenizer,
          onToken ? (event) => onToken(k, event) : undefined,
        );
        return batcher.submit(row, adapter, opts.signal);
      }),
    );
    return toResult(prepared.ids, choices);
  }

  /** Counters of the continuous batch ({@link submit}): steps, tokens, largest batch…; null before the first submit. */
  get batchStats(): BatcherStats | null {
    return this.batcher ? { ...this.batcher.stats } : null;
  }

  /**
   * The token ids of a conversation: rendered with the chat template (the engine's `chatTemplate`, else the
   * tokenizer's; `opts.chatTemplate` overrides) and encoded without special tokens unless `addSpecialTokens` — the
   * template prints them — as vLLM's chat API does. Template errors are `TemplateError`/`TokenizerError`s.
   */
  renderChat(
    messages: ChatMessage[],
    opts: {
      addGenerationPrompt?: boolean;
      addSpecialTokens?: boolean;
      chatTemplate?: string;
      vars?: Record<string, unknown>;
    } = {},
  ): number[] {
    const text = this.tokenizer.applyChatTemplate(messages, {
      addGenerationPrompt: opts.addGenerationPrompt ?? true,
      chatTemplate: opts.chatTemplate ?? this.chatTemplate ?? undefined,
      vars: opts.vars,
    });
    return this.tokenizer.encode(text, { addSpecialTokens: opts.addSpecialTokens ?? false });
  }

  /** Requests decoding in the continuous batch ({@link submit}) and waiting to join it. */
  get load(): { running: number; waiting: number } {
    return { running: this.batcher?.running ?? 0, waiting: this.batcher?.waitingCount ?? 0 };
  }

  /** Names of the adapters that requests can select (loaded un-merged). */
  get adapterNames(): string[] {
    return this.model.adapterNames;
  }

  /**
   * Token log-probabilities of each sequence (text is encoded with BOS), in right-padded batches. With
   * `topLogprobs` n > 0 also the n most likely tokens at each position (one full forward pass per sequence).
   */
  async score(reqs: ScoreRequest[], opts: ScoreOptions = {}): Promise<ScoreResult[]> {
    return this.exclusive(async () => {
      const batchSize = checkBatchSize(opts.batchSize ?? this.batchSize);
      const top = opts.topLogprobs ?? 0;
      if (!Number.isSafeInteger(top) || top < 0 || top > this.model.config.vocabSize) {
        throw new InferError(
          'INFER_BAD_PARAM',
          `topLogprobs must be an integer in [0, ${this.model.config.vocabSize}], got ${show(top)}`,
        );
      }
      const adapter = this.resolveAdapter(opts.adapter);
      const seqs = reqs.map((r, i) => this.promptIds(r.text, r.inputIds, i, 'text'));
      seqs.forEach((ids, i) => {
        this.checkLength(ids, i);
      });
      return this.withAdapter(adapter, async () => {
        if (top > 0) {
          const out: ScoreResult[] = [];
          for (const ids of seqs) out.push(await this.scoreWithTop(ids, top));
          return out;
        }
        const scores = await this.scoreSorted(seqs, batchSize, false);
        return scores.map((s, i) => ({
          inputIds: seqs[i],
          tokenLogprobs: s.tokenLogprobs,
          sumLogprob: s.sumLogprob,
        }));
      });
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
      const adapter = this.resolveAdapter(opts.adapter);
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
      const scores = await this.withAdapter(adapter, () =>
        this.scoreSorted(
          todo.map((i) => pairs[i].seq),
          batchSize,
          true,
        ),
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

  /** Samples of a prepared request, each with its seed: `seed + k` where the request has one, else drawn. */
  private seedSamples(p: PreparedGenerate & { n: number }): { k: number; req: PreparedGenerate }[] {
    return Array.from({ length: p.n }, (_, k) => ({
      k,
      req: { ...p, seed: p.seed === null ? this.drawSeed() : p.seed + k },
    }));
  }

  /** The adapter a call asks for, checked: undefined = the active one; a merged adapter's name = the weights. */
  private resolveAdapter(adapter: string | null | undefined): string | null {
    if (adapter === undefined) return this.model.activeAdapter;
    if (adapter !== null && !this.model.adapterNames.includes(adapter)) {
      if (this.model.mergedAdapters.includes(adapter)) return null;
      const known = this.model.adapterNames;
      throw new InferError(
        'ADAPTER_UNKNOWN',
        `no adapter '${adapter}' is loaded (${known.length > 0 ? `loaded: ${known.join(', ')}` : 'none is loaded'})`,
      );
    }
    if (adapter === null && this.model.mergedAdapters.length > 0) {
      throw new InferError(
        'ADAPTER_UNKNOWN',
        `the base model is not available: adapter ${this.model.mergedAdapters.join(', ')} was merged into the weights`,
      );
    }
    return adapter;
  }

  /** Runs fn with `adapter` active (inside exclusive), then restores the previous one. */
  private async withAdapter<T>(adapter: string | null, fn: () => Promise<T>): Promise<T> {
    const before = this.model.activeAdapter;
    if (adapter === before) return fn();
    this.model.setActiveAdapter(adapter);
    try {
      return await fn();
    } finally {
      this.model.setActiveAdapter(before);
    }
  }

  private async runBatch<T extends { row: Row }>(items: T[], finished: (item: T) => void): Promise<void> {
    for (const item of items) if (item.row.done) finished(item); // max_tokens 0
    const live = items.filter((r) => !r.row.done);
    if (live.length === 0) return;
    const V = this.model.config.vocabSize;
    const maxNew = Math.max(...live.map((r) => r.row.req.params.max_tokens));
    const state = await this.model.prefill(
      live.map((r) => r.row.req.ids),
      { padId: this.padId, maxNewTokens: maxNew },
    );
    try {
      for (;;) {
        const next = new Array<number>(live.length).fill(this.padId);
        const active = new Array<boolean>(live.length).fill(false);
        let running = 0;
        for (let b = 0; b < live.length; b++) {
          const { row } = live[b];
          if (row.done) continue;
          next[b] = row.step(state.logits.subarray(b * V, (b + 1) * V));
          if (row.done) finished(live[b]);
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
        // Let I/O in between steps (callers append results to files, servers answer): on the in-process backends
        // a step's promises resolve without ever returning to the event loop.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      state.dispose();
    }
  }

  /** log p of each next token and the top n at every position of one sequence (a full forward pass). */
  private async scoreWithTop(ids: number[], n: number): Promise<ScoreResult> {
    const V = this.model.config.vocabSize;
    const logits = await this.model.forward([ids]);
    const tokenLogprobs: number[] = [];
    const topLogprobs: TokenLogprob[][] = [];
    for (let t = 0; t + 1 < ids.length; t++) {
      const pos = positionLogprobs(logSoftmax(logits.data.subarray(t * V, (t + 1) * V)), ids[t + 1], n);
      tokenLogprobs.push(pos.logprob);
      topLogprobs.push(pos.top);
    }
    return {
      inputIds: ids,
      tokenLogprobs,
      sumLogprob: tokenLogprobs.reduce((a, b) => a + b, 0),
      topLogprobs,
    };
  }

  private prepareGenerate(r: GenerateRequest, i: number): PreparedGenerate & { n: number } {
    if (typeof r !== 'object' || r === null) throw new RequestError(i, 'INFER_BAD_REQUEST', 'not an object');
    const ids =
      r.messages !== undefined ? this.chatIds(r, i) : this.promptIds(r.prompt, r.inputIds, i, 'prompt');
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
    return { index: i, ids, params, seed: params.seed, trim: r.trim ?? true, n };
  }

  /** The ids of a chat request: its messages rendered with the chat template and generation prompt. */
  private chatIds(r: GenerateRequest, i: number): number[] {
    if (r.prompt !== undefined || r.inputIds !== undefined) {
      throw new RequestError(i, 'INFER_BAD_REQUEST', 'give exactly one of prompt, inputIds and messages');
    }
    const messages = r.messages as unknown;
    if (
      !Array.isArray(messages) ||
      messages.length === 0 ||
      !messages.every(
        (m) =>
          typeof m === 'object' && m !== null && typeof m.role === 'string' && typeof m.content === 'string',
      )
    ) {
      throw new RequestError(
        i,
        'INFER_BAD_REQUEST',
        'messages must be a non-empty list of { role, content } with string role and content',
      );
    }
    let ids: number[];
    try {
      ids = this.renderChat(messages as ChatMessage[]);
    } catch (e) {
      const err = e as InferError;
      throw new RequestError(i, err.code ?? 'TEMPLATE_RENDER', err.message, { cause: e });
    }
    if (ids.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', 'the rendered conversation is empty');
    return ids;
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
    return encodeLoglikelihoodPair(r, i, special, {
      tokenizer: this.tokenizer,
      prefix: this.tokenizer.bosId ?? this.eosTokenIds[0] ?? this.padId,
      checkIds: (ids, j, what) => this.checkIds(ids, j, what),
    });
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

function toResult(inputIds: number[], choices: GenerateChoice[]): GenerateResult {
  const result: GenerateResult = { inputIds, ...choices[0] };
  if (choices.length > 1) result.choices = choices;
  return result;
}

function checkBatchSize(n: unknown, name = 'batchSize'): number {
  if (!Number.isSafeInteger(n) || (n as number) < 1) {
    throw new InferError('INFER_BAD_PARAM', `${name} must be a positive integer, got ${show(n)}`);
  }
  return n as number;
}
