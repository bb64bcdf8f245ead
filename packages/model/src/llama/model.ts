/**
 * The Llama decoder (transformers' LlamaForCausalLM) on TensorFlow.js: RMSNorm, rotary embeddings, grouped-query
 * causal attention with padding masks, SwiGLU MLP, optional LoRA adapters (un-merged and switchable, or merged at
 * load), a KV cache for generation. Weights are uploaded once at load; a decode step uploads only its token ids
 * (and, on the tensor path, its small mask and rotary rows). On webgpu, fused WGSL kernels (./webgpu-kernels.ts)
 * replace op sequences, and greedy decoding keeps the token ids on the GPU between steps.
 */
import * as tf from '@tensorflow/tfjs';
import { Checkpoint } from '../checkpoint.js';
import type { LlamaConfig } from '../config.js';
import { PolyglotError } from '../errors.js';
import { type AttentionShape, hostAttention, hostData, MASKED, tensorAttention } from './attention.js';
import { type BackendName, checkWebgpuBinding, initBackend, switchBackendSync } from './backend.js';
import { combineCaches, HostKVCache, type KVCache, TensorKVCache } from './cache.js';
import { largestWeight } from './random.js';
import { RopeTable } from './rope.js';
import {
  ATTENTION_MAX_KEYS,
  attentionGpu,
  rmsNormGpu,
  ropeSplitGpu,
  swigluGpu,
  webgpuKernelsAvailable,
} from './webgpu-kernels.js';
import {
  type AdapterInput,
  checkConfig,
  checkWeights,
  disposeLora,
  disposeWeights,
  type LayerLora,
  type LinearWeights,
  type LoadedAdapter,
  type LoraPair,
  loadAdapter,
  loadModelWeights,
  type ModelWeights,
  uploadLora,
  type WeightSource,
} from './weights.js';

/** How attention runs: `host` = fused kernel over host memory (wasm, cpu); `tensor` = TensorFlow.js ops (any). */
export type AttentionImpl = 'host' | 'tensor';

export interface LlamaLoadOptions {
  /** Backend to start (default: keep the active one, or `auto` when none is active). */
  backend?: BackendName;
  /**
   * When the wasm backend starts here: its XNNPACK thread count (see {@link BackendOptions}; default
   * `POLYGLOT_WASM_THREADS`, else 1).
   */
  wasmThreads?: number;
  /** LoRA adapters by name: PEFT adapter directories (or adapters read with readAdapter). */
  adapters?: Record<string, AdapterInput>;
  /** Merge the (single) adapter into the weights at load: W + scale·BA, computed once. */
  mergeAdapter?: boolean;
  /** The adapter active after load (un-merged mode); default: the first of `adapters`. null: the base model. */
  activeAdapter?: string | null;
  /** Attention implementation; default `host` on wasm and `tensor` elsewhere (cpu stays the pure-ops oracle). */
  attention?: AttentionImpl;
  /**
   * `webgpu` only: the fused WGSL kernels of ./webgpu-kernels.ts (RMSNorm, rotary split, attention, SwiGLU) instead
   * of TensorFlow.js op sequences. Default true on webgpu; ignored elsewhere.
   */
  fusedKernels?: boolean;
}

export interface TokenScores {
  /** tokenLogprobs[i] = log p(ids[i+1] | ids[0..i]); length ids.length - 1. */
  tokenLogprobs: number[];
  sumLogprob: number;
  /**
   * With `{ greedy: true }`: greedy[i] = whether ids[i+1] is the argmax of the distribution it was scored under
   * (the lowest id on ties, as torch.argmax) — lm-evaluation-harness's `is_greedy` is `greedy.every(Boolean)`.
   */
  greedy?: boolean[];
}

export interface ScoreOptions {
  /** Also return {@link TokenScores.greedy}. Default false. */
  greedy?: boolean;
}

export interface DecodeStepOptions {
  /**
   * active[b] = false appends row b's token as padding: masked out (never attended to) and without advancing the
   * row's position, so a finished row can ride along in the batch for any number of steps. Default all true.
   */
  active?: readonly boolean[];
}

export interface Logits {
  /** Row-major [batch, length, vocab]. */
  data: Float32Array;
  batch: number;
  length: number;
  vocab: number;
}

export interface PrefillOptions {
  /** Token placed left of shorter prompts (masked out); default the config's pad_token_id, else 0. */
  padId?: number;
  /** Expected number of decode steps: sizes the preallocated KV cache (it grows if exceeded). */
  maxNewTokens?: number;
}

export interface GreedyOptions {
  /** true (default): one left-padded batch. false: each prompt runs alone. */
  leftPad?: boolean;
  padId?: number;
}

/**
 * New tokens per row up to which the fused attention kernel runs (decoding, short chunks). Longer prefills use the
 * op-by-op path: its tiled matmuls reuse each key across queries, the fused kernel re-reads the keys per query
 * (measured on an H100: 7B prefill 4×256 at 933 tok/s fused vs 1,534 tok/s op-by-op).
 */
const FUSED_ATTENTION_MAX_T = 16;

function inputError(code: string, message: string): PolyglotError {
  return new PolyglotError(code, message);
}

/**
 * log_softmax(row r)[target] for flat targets r·vocab + id, computed in float64, and whether each target is its
 * row's argmax (the first maximum, as torch.argmax).
 */
function pickLogSoftmax(
  logits: Float32Array,
  vocab: number,
  targets: number[],
): { values: Float64Array; greedy: boolean[] } {
  const values = new Float64Array(targets.length);
  const greedy: boolean[] = new Array(targets.length);
  for (let r = 0; r < targets.length; r++) {
    const o = r * vocab;
    let max = Number.NEGATIVE_INFINITY;
    let best = o;
    for (let i = 0; i < vocab; i++) {
      if (logits[o + i] > max) {
        max = logits[o + i];
        best = o + i;
      }
    }
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[o + i] - max);
    values[r] = logits[targets[r]] - max - Math.log(sum);
    greedy[r] = best === targets[r];
  }
  return { values, greedy };
}

/** Index of the largest value (the first one on ties, like torch.argmax). */
export function argmax(values: Float32Array, start = 0, end = values.length): number {
  let best = start;
  let max = values[start];
  for (let i = start + 1; i < end; i++) {
    if (values[i] > max) {
      max = values[i];
      best = i;
    }
  }
  return best - start;
}

/**
 * Generation state of one batch after {@link LlamaModel.prefill}: `logits` holds the last position's logits of
 * every row (`[batch, vocab]`); {@link decodeStep} appends one token per row and returns the next logits.
 */
export class DecodeState {
  logits: Float32Array;
  /** Tokens appended so far by decodeStep. */
  steps = 0;
  private busy = false;

  constructor(
    private readonly model: LlamaModel,
    readonly cache: KVCache,
    private readonly lora: LayerLora[] | null,
    logits: Float32Array,
  ) {
    this.logits = logits;
  }

  get batch(): number {
    return this.cache.batch;
  }

  /**
   * Appends `nextTokens[b]` to row b and returns the new last logits, [batch, vocab]. Every row takes one cache slot
   * per step; rows marked inactive in `opts.active` take it as masked padding (their logits are meaningless).
   */
  async decodeStep(nextTokens: number[], opts: DecodeStepOptions = {}): Promise<Float32Array> {
    if (this.cache.isDisposed) throw inputError('STATE_DISPOSED', 'decodeStep on a disposed DecodeState');
    if (nextTokens.length !== this.cache.batch) {
      throw inputError(
        'BATCH_MISMATCH',
        `decodeStep got ${nextTokens.length} tokens for a batch of ${this.cache.batch} rows (one token per row)`,
      );
    }
    if (this.busy)
      throw inputError('STATE_BUSY', 'decodeStep called again before the previous step finished');
    const active = opts.active;
    if (active !== undefined && active.length !== this.cache.batch) {
      throw inputError(
        'BATCH_MISMATCH',
        `decodeStep got ${active.length} active flags for a batch of ${this.cache.batch} rows`,
      );
    }
    const ids = nextTokens.map((t) => [t]);
    const mask = nextTokens.map((_, b) => [active === undefined || active[b] ? 1 : 0]);
    this.busy = true;
    try {
      this.logits = (await this.model.runLogits(ids, mask, this.cache, 'last', this.lora)).data;
    } finally {
      this.busy = false;
    }
    this.steps++;
    return this.logits;
  }

  /**
   * Continuous batching: a new state holding the listed rows of each part (default: all of them), in order — e.g.
   * the unfinished rows of a running batch followed by newly prefilled prompts. Every row keeps its KV cache,
   * position and last logits (see `combineCaches`: caches are aligned at their last slot, leading slots no kept row
   * uses are dropped), so decoding continues exactly as it would have in the row's own batch. The parts must come
   * from the same model and adapter and are disposed (their caches were copied). With `{ logits: false }` the last
   * logits are not carried over (a caller that has already sampled from them saves the copy); `logits` is then empty
   * until the next decodeStep.
   */
  static combine(
    parts: readonly { state: DecodeState; rows?: readonly number[] }[],
    opts: { logits?: boolean } = {},
  ): DecodeState {
    if (parts.length === 0) throw inputError('EMPTY_BATCH', 'DecodeState.combine got no states');
    const { model, lora } = parts[0].state;
    const picked = parts.map(({ state, rows }) => {
      if (state.cache.isDisposed)
        throw inputError('STATE_DISPOSED', 'DecodeState.combine got a disposed state');
      if (state.busy)
        throw inputError('STATE_BUSY', 'DecodeState.combine got a state in the middle of a step');
      if (state.model !== model)
        throw inputError('BATCH_MISMATCH', 'DecodeState.combine got states of different models');
      if (state.lora !== lora) {
        throw inputError(
          'ADAPTER_MISMATCH',
          'DecodeState.combine got states decoding with different adapters',
        );
      }
      const list = rows ?? Array.from({ length: state.batch }, (_, b) => b);
      for (const r of list) {
        if (!Number.isInteger(r) || r < 0 || r >= state.batch) {
          throw inputError(
            'BATCH_MISMATCH',
            `DecodeState.combine: row ${r} is outside a batch of ${state.batch}`,
          );
        }
      }
      return { state, rows: list };
    });
    const total = picked.reduce((n, p) => n + p.rows.length, 0);
    if (total === 0) throw inputError('EMPTY_BATCH', 'DecodeState.combine: no rows to keep');
    const cache = combineCaches(picked.map(({ state, rows }) => ({ cache: state.cache, rows })));
    const V = model.config.vocabSize;
    const keep = opts.logits ?? true;
    const logits = new Float32Array(keep ? total * V : 0);
    let b = 0;
    for (const { state, rows } of keep ? picked : []) {
      for (const r of rows) logits.set(state.logits.subarray(r * V, (r + 1) * V), V * b++);
    }
    const combined = new DecodeState(model, cache, lora, logits);
    combined.steps = Math.max(...picked.map((p) => p.state.steps));
    for (const state of new Set(picked.map((p) => p.state))) state.dispose();
    return combined;
  }

  /** Frees the KV cache. */
  dispose(): void {
    this.cache.dispose();
  }
}

export class LlamaModel {
  readonly config: LlamaConfig;
  /** The TensorFlow.js backend the weights live on. */
  readonly backend: string;
  readonly attention: AttentionImpl;
  /** Whether the fused WGSL kernels run (webgpu backend, tensor attention). */
  readonly fusedKernels: boolean;
  /** Names of the adapters merged into the weights at load. */
  readonly mergedAdapters: string[];
  private readonly weights: ModelWeights;
  private readonly adapters: Map<string, LayerLora[]>;
  private active: string | null;
  private readonly rope: RopeTable;
  private readonly shape: AttentionShape;
  private readonly padId: number;
  private disposed = false;

  private constructor(args: {
    config: LlamaConfig;
    backend: string;
    attention: AttentionImpl;
    weights: ModelWeights;
    adapters: Map<string, LayerLora[]>;
    active: string | null;
    mergedAdapters: string[];
    rope: RopeTable;
    fusedKernels: boolean;
  }) {
    this.fusedKernels = args.fusedKernels;
    this.config = args.config;
    this.backend = args.backend;
    this.attention = args.attention;
    this.weights = args.weights;
    this.adapters = args.adapters;
    this.active = args.active;
    this.mergedAdapters = args.mergedAdapters;
    this.rope = args.rope;
    const c = args.config;
    this.shape = { heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim };
    this.padId = c.padTokenId ?? 0;
  }

  /**
   * Loads a model from a Hugging Face checkpoint directory, an open {@link Checkpoint}, or any {@link WeightSource}
   * (weights are checked against the config first: missing tensors and shape mismatches are typed errors).
   */
  static async load(
    source: string | Checkpoint | WeightSource,
    opts: LlamaLoadOptions = {},
  ): Promise<LlamaModel> {
    const backendOpts = { wasmThreads: opts.wasmThreads };
    const backend =
      opts.backend !== undefined
        ? await initBackend(opts.backend, backendOpts)
        : (tf.getBackend() ?? (await initBackend('auto', backendOpts)));
    const attention = opts.attention ?? (backend === 'wasm' ? 'host' : 'tensor');
    const owned = typeof source === 'string' ? await Checkpoint.open(source) : null;
    const src: WeightSource = owned ?? (source as WeightSource);
    try {
      const config = src.config;
      checkConfig(config, src.dir ?? 'config');
      const rope = new RopeTable({
        dim: config.headDim,
        theta: config.ropeTheta,
        scaling: config.ropeScaling,
      });
      const expected = checkWeights(src);
      const big = largestWeight(config);
      checkWebgpuBinding(big.bytes, `${big.name} of ${src.dir ?? 'the model'}`);
      const adapterEntries = Object.entries(opts.adapters ?? {});
      if (opts.mergeAdapter && adapterEntries.length !== 1) {
        throw inputError(
          'ADAPTER_MERGE',
          `mergeAdapter needs exactly one adapter, got ${adapterEntries.length} (${adapterEntries.map(([n]) => n).join(', ') || 'none'})`,
        );
      }
      const loaded: LoadedAdapter[] = [];
      for (const [name, input] of adapterEntries)
        loaded.push(await loadAdapter(name, input, expected, config));
      const active =
        opts.mergeAdapter || adapterEntries.length === 0
          ? null
          : opts.activeAdapter === undefined
            ? adapterEntries[0][0]
            : opts.activeAdapter;
      if (active !== null && !adapterEntries.some(([n]) => n === active)) {
        throw inputError('ADAPTER_UNKNOWN', `activeAdapter '${active}' is not among the loaded adapters`);
      }
      const weights = await loadModelWeights(src, expected, opts.mergeAdapter ? loaded : [], backend);
      const adapters = new Map<string, LayerLora[]>();
      try {
        if (!opts.mergeAdapter) {
          switchBackendSync(backend); // uploadLora is synchronous
          for (const ad of loaded) adapters.set(ad.name, uploadLora(ad, expected, config.numHiddenLayers));
        }
      } catch (e) {
        disposeWeights(weights);
        for (const l of adapters.values()) disposeLora(l);
        throw e;
      }
      return new LlamaModel({
        config,
        backend,
        attention,
        weights,
        adapters,
        active,
        mergedAdapters: opts.mergeAdapter ? loaded.map((a) => a.name) : [],
        rope,
        fusedKernels:
          backend === 'webgpu' &&
          attention === 'tensor' &&
          (opts.fusedKernels ?? true) &&
          webgpuKernelsAvailable(),
      });
    } finally {
      await owned?.close();
    }
  }

  /** Names of the un-merged adapters that can be switched on. */
  get adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  get activeAdapter(): string | null {
    return this.active;
  }

  /** Switches the un-merged adapter applied from the next call on (null: the base model). */
  setActiveAdapter(name: string | null): void {
    if (name !== null && !this.adapters.has(name)) {
      throw inputError(
        'ADAPTER_UNKNOWN',
        `no adapter '${name}' loaded (loaded: ${this.adapterNames.join(', ') || 'none'}` +
          (this.mergedAdapters.length > 0
            ? `; merged into the weights: ${this.mergedAdapters.join(', ')}`
            : '') +
          ')',
      );
    }
    this.active = name;
  }

  /** A fresh KV cache for `batch` rows, preallocated for `capacity` slots (grows when exceeded). */
  createCache(batch: number, capacity = 64): KVCache {
    const c = this.config;
    return this.attention === 'host'
      ? new HostKVCache(c.numHiddenLayers, batch, c.numKeyValueHeads, c.headDim, capacity)
      : new TensorKVCache(c.numHiddenLayers, batch, capacity);
  }

  /**
   * Logits of a batch (`inputIds` rectangular, `attentionMask` 1 for tokens and 0 for padding, default all 1). With
   * a cache, the tokens are appended to it (positions continue from the cache). `positions: 'last'` returns only
   * the last column's logits ([batch, 1, vocab]).
   */
  async forward(
    inputIds: number[][],
    attentionMask?: number[][],
    opts: { cache?: KVCache; positions?: 'all' | 'last' } = {},
  ): Promise<Logits> {
    const cache = opts.cache ?? this.createCache(inputIds.length, inputIds[0]?.length ?? 1);
    try {
      const mask = attentionMask ?? inputIds.map((row) => row.map(() => 1));
      return await this.runLogits(inputIds, mask, cache, opts.positions ?? 'all', this.currentLora());
    } finally {
      if (!opts.cache) cache.dispose();
    }
  }

  /** Log-probabilities of each token given its prefix: tokenLogprobs[i] = log p(ids[i+1] | ids[..i]). */
  async scoreTokens(ids: number[], opts: ScoreOptions = {}): Promise<TokenScores> {
    return (await this.scoreBatch([ids], opts))[0];
  }

  /** {@link scoreTokens} for several sequences, run as one right-padded batch. */
  async scoreBatch(sequences: number[][], opts: ScoreOptions = {}): Promise<TokenScores[]> {
    this.activate();
    this.checkPrompts(sequences);
    const B = sequences.length;
    const T = Math.max(...sequences.map((s) => s.length));
    const V = this.config.vocabSize;
    const ids = sequences.map((s) => [...s, ...new Array<number>(T - s.length).fill(this.padId)]);
    const mask = sequences.map((s) => Array.from({ length: T }, (_, t) => (t < s.length ? 1 : 0)));
    // Only rows that predict a next token go through the LM head: row (b, t) predicts sequences[b][t + 1].
    const rows: number[] = [];
    const targets: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < sequences[b].length; t++) {
        targets.push(rows.length * V + sequences[b][t + 1]);
        rows.push(b * T + t);
      }
    }
    if (rows.length === 0) {
      return sequences.map(() =>
        opts.greedy ? { tokenLogprobs: [], sumLogprob: 0, greedy: [] } : { tokenLogprobs: [], sumLogprob: 0 },
      );
    }
    const cache = this.createCache(B, T);
    try {
      const lora = this.currentLora();
      let values: Float64Array | Float32Array;
      let greedy: boolean[];
      if (this.backend === 'wasm' || this.backend === 'cpu') {
        // In-process backends: the logits are in this process's memory; log-softmax on the host, in float64.
        const logits = tf.tidy(() => this.logitsTensor(ids, mask, cache, rows, lora));
        try {
          ({ values, greedy } = pickLogSoftmax(logits.dataSync() as Float32Array, V, targets));
        } finally {
          logits.dispose();
        }
      } else {
        const [picked, best] = tf.tidy(() => {
          const logits = this.logitsTensor(ids, mask, cache, rows, lora);
          const logp = tf.reshape(tf.logSoftmax(logits), [-1]);
          return [tf.gather(logp, tf.tensor1d(targets, 'int32')), tf.argMax(logits, 1)];
        });
        try {
          values = (await picked.data()) as Float32Array;
          const argmaxIds = await best.data();
          greedy = targets.map((t, r) => t - r * V === argmaxIds[r]);
        } finally {
          picked.dispose();
          best.dispose();
        }
      }
      const out: TokenScores[] = [];
      let k = 0;
      for (const s of sequences) {
        const n = Math.max(0, s.length - 1);
        const tokenLogprobs = Array.from(values.subarray(k, k + n));
        const score: TokenScores = { tokenLogprobs, sumLogprob: tokenLogprobs.reduce((a, b) => a + b, 0) };
        if (opts.greedy) score.greedy = greedy.slice(k, k + n);
        k += n;
        out.push(score);
      }
      return out;
    } finally {
      cache.dispose();
    }
  }

  /**
   * Runs the prompts as one left-padded batch (position ids from the attention mask, as `generate` does) and
   * returns the state holding each row's last logits, ready for {@link DecodeState.decodeStep}.
   */
  async prefill(prompts: number[][], opts: PrefillOptions = {}): Promise<DecodeState> {
    this.checkPrompts(prompts);
    const pad = opts.padId ?? this.padId;
    const T = Math.max(...prompts.map((p) => p.length));
    const ids = prompts.map((p) => [...new Array<number>(T - p.length).fill(pad), ...p]);
    const mask = prompts.map((p) => Array.from({ length: T }, (_, t) => (t >= T - p.length ? 1 : 0)));
    const cache = this.createCache(prompts.length, T + Math.max(1, opts.maxNewTokens ?? 64));
    const lora = this.currentLora();
    try {
      const { data } = await this.runLogits(ids, mask, cache, 'last', lora);
      return new DecodeState(this, cache, lora, data);
    } catch (e) {
      cache.dispose();
      throw e;
    }
  }

  /** Greedy decoding of `maxNewTokens` tokens per prompt (EOS is not a stop); returns the new ids per row. */
  async greedy(prompts: number[][], maxNewTokens: number, opts: GreedyOptions = {}): Promise<number[][]> {
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
      throw inputError('BAD_ARGUMENT', `maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
    }
    if (opts.leftPad === false && prompts.length > 1) {
      const out: number[][] = [];
      for (const p of prompts) out.push((await this.greedy([p], maxNewTokens, opts))[0]);
      return out;
    }
    if (!this.inProcess && maxNewTokens > 1) return this.greedyOnDevice(prompts, maxNewTokens, opts);
    const state = await this.prefill(prompts, { padId: opts.padId, maxNewTokens });
    try {
      const V = this.config.vocabSize;
      const out = prompts.map(() => [] as number[]);
      for (let step = 0; step < maxNewTokens; step++) {
        const next = prompts.map((_, b) => argmax(state.logits, b * V, (b + 1) * V));
        for (let b = 0; b < next.length; b++) out[b].push(next[b]);
        if (step + 1 < maxNewTokens) await state.decodeStep(next);
      }
      return out;
    } finally {
      state.dispose();
    }
  }

  /**
   * Greedy decoding on a GPU backend without a read-back per token: each step's argmax stays on the device and is
   * the next step's input (the embedding lookup gathers with it), so the host only enqueues work and the GPU runs
   * behind it; the ids come back in one read at the end. Same results as the per-step loop (argmax = the first
   * maximum on both).
   */
  private async greedyOnDevice(
    prompts: number[][],
    maxNewTokens: number,
    opts: GreedyOptions,
  ): Promise<number[][]> {
    const state = await this.prefill(prompts, { padId: opts.padId, maxNewTokens });
    const V = this.config.vocabSize;
    const steps: tf.Tensor1D[] = [];
    try {
      const lora = this.currentLora();
      const placeholder = prompts.map(() => [0]);
      const mask = prompts.map(() => [1]);
      this.activate();
      let cur = tf.tensor1d(
        prompts.map((_, b) => argmax(state.logits, b * V, (b + 1) * V)),
        'int32',
      );
      steps.push(cur);
      for (let step = 1; step < maxNewTokens; step++) {
        const ids = cur;
        this.activate();
        cur = tf.tidy(() =>
          tf.cast(
            tf.argMax(this.logitsTensor(placeholder, mask, state.cache, 'last', lora, ids), 1),
            'int32',
          ),
        ) as tf.Tensor1D;
        steps.push(cur);
      }
      const all = tf.stack(steps, 1);
      try {
        const flat = await all.data();
        return prompts.map((_, b) => Array.from(flat.subarray(b * maxNewTokens, (b + 1) * maxNewTokens)));
      } finally {
        all.dispose();
      }
    } finally {
      for (const t of steps) t.dispose();
      state.dispose();
    }
  }

  /** Frees the weights and adapters on the backend. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeWeights(this.weights);
    for (const l of this.adapters.values()) disposeLora(l);
    this.adapters.clear();
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** Backends whose tensors live in this process's memory (wasm, cpu): reading them back costs no GPU sync. */
  private get inProcess(): boolean {
    return this.backend === 'wasm' || this.backend === 'cpu';
  }

  private currentLora(): LayerLora[] | null {
    return this.active === null ? null : (this.adapters.get(this.active) ?? null);
  }

  /** Makes this model's backend the active one (synchronous for an initialised backend). */
  private activate(): void {
    if (this.disposed) throw inputError('MODEL_DISPOSED', 'the model was disposed');
    switchBackendSync(this.backend);
  }

  private checkPrompts(prompts: number[][]): void {
    if (!Array.isArray(prompts) || prompts.length === 0)
      throw inputError('EMPTY_BATCH', 'no sequences given');
    const V = this.config.vocabSize;
    const maxPos = this.config.maxPositionEmbeddings;
    prompts.forEach((p, b) => {
      if (!Array.isArray(p) || p.length === 0)
        throw inputError('EMPTY_PROMPT', `sequence ${b} is empty (no tokens)`);
      if (p.length > maxPos) {
        throw inputError(
          'PROMPT_TOO_LONG',
          `sequence ${b} has ${p.length} tokens, more than the model's max_position_embeddings (${maxPos})`,
        );
      }
      for (const t of p) {
        if (!Number.isInteger(t) || t < 0 || t >= V) {
          throw inputError(
            'TOKEN_OUT_OF_RANGE',
            `sequence ${b} holds token id ${t}, outside the vocabulary [0, ${V})`,
          );
        }
      }
    });
  }

  /** Runs the decoder and reads the logits back. Used by forward, prefill and DecodeState. */
  async runLogits(
    ids: number[][],
    mask: number[][],
    cache: KVCache,
    which: 'all' | 'last',
    lora: LayerLora[] | null,
  ): Promise<Logits> {
    this.activate();
    const logits = tf.tidy(() => this.logitsTensor(ids, mask, cache, which, lora));
    try {
      const data = (await logits.data()) as Float32Array;
      return {
        data,
        batch: ids.length,
        length: which === 'last' ? 1 : ids[0].length,
        vocab: this.config.vocabSize,
      };
    } finally {
      logits.dispose();
    }
  }

  /**
   * The decoder; call inside tf.tidy. Appends the tokens to `cache`. With `idsOnDevice` (the ids as a backend
   * tensor of B·T values, not read back), `ids` only gives the shape and is not looked up. Returns the logits of every position
   * ([batch·T, vocab]), of the last column ([batch, vocab]) or of the listed rows of [batch·T] ([rows, vocab]).
   */
  private logitsTensor(
    ids: number[][],
    mask: number[][],
    cache: KVCache,
    which: 'all' | 'last' | number[],
    lora: LayerLora[] | null,
    idsOnDevice?: tf.Tensor1D,
  ): tf.Tensor2D {
    const c = this.config;
    const B = ids.length;
    const T = ids[0]?.length ?? 0;
    if (cache.isDisposed) throw inputError('STATE_DISPOSED', 'the KV cache was disposed');
    if (B !== cache.batch)
      throw inputError('BATCH_MISMATCH', `batch of ${B} rows for a cache of ${cache.batch}`);
    if (T === 0) throw inputError('EMPTY_PROMPT', 'no tokens given');
    if (ids.some((r) => r.length !== T) || mask.length !== B || mask.some((r) => r.length !== T)) {
      throw inputError('BAD_SHAPE', 'inputIds and attentionMask must be rectangular and of the same shape');
    }
    // Position ids: cumsum(mask) - 1 per row, continuing from the cache (pads get 0; they are never attended to).
    const positions = new Int32Array(B * T);
    const nextPos = [...cache.nextPos];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const id = ids[b][t];
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
          throw inputError(
            'TOKEN_OUT_OF_RANGE',
            `row ${b} holds token id ${id}, outside the vocabulary [0, ${c.vocabSize})`,
          );
        }
        if (mask[b][t]) positions[b * T + t] = nextPos[b]++;
      }
      if (nextPos[b] > c.maxPositionEmbeddings) {
        throw inputError(
          'PROMPT_TOO_LONG',
          `row ${b} reaches position ${nextPos[b] - 1}, beyond the model's max_position_embeddings (${c.maxPositionEmbeddings})`,
        );
      }
    }
    const start = cache.length;
    cache.appendMask(mask, T);
    if (cache instanceof HostKVCache) cache.reserve(start + T);
    this.rope.ensure(Math.max(...nextPos) + 1);

    let cos: tf.Tensor4D | null = null;
    let sin: tf.Tensor4D | null = null;
    let addMask: tf.Tensor | null = null;
    if (cache instanceof TensorKVCache) {
      const rows = this.rope.fullRows(positions);
      cos = tf.tensor4d(rows.cos, [B, T, 1, c.headDim]);
      sin = tf.tensor4d(rows.sin, [B, T, 1, c.headDim]);
      const L = start + T;
      const m = new Float32Array(B * T * L);
      for (let b = 0; b < B; b++) {
        const km = cache.keyMask[b];
        for (let t = 0; t < T; t++) {
          for (let j = 0; j < L; j++) m[(b * T + t) * L + j] = j <= start + t && km[j] ? 0 : MASKED;
        }
      }
      addMask = tf.tensor(m, [B, 1, 1, T, L]);
    }

    let h: tf.Tensor2D;
    if (this.backend === 'wasm') {
      // The embedding rows copied on the host from the backend's memory (the wasm Gather kernel moves one
      // element at a time: ~15 ms for a 4 × 256 prefill).
      const H = c.hiddenSize;
      const table = hostData(this.weights.embed);
      const rows = new Float32Array(B * T * H);
      for (let b = 0, i = 0; b < B; b++) {
        for (let t = 0; t < T; t++, i++) rows.set(table.subarray(ids[b][t] * H, (ids[b][t] + 1) * H), i * H);
      }
      h = tf.tensor2d(rows, [B * T, H]);
    } else {
      // idsOnDevice: the token ids already on the backend (greedyOnDevice); `ids` then only gives the shape.
      h = tf.gather(this.weights.embed, idsOnDevice ?? tf.tensor1d(ids.flat(), 'int32'));
    }
    for (let l = 0; l < c.numHiddenLayers; l++) {
      // One tidy per layer: its intermediates are freed before the next layer, so the backend reuses their memory.
      const prev = h;
      h = tf.tidy(() => this.layer(prev, l, lora?.[l], cache, start, B, T, positions, cos, sin, addMask));
      prev.dispose();
    }
    cache.length = start + T;
    cache.nextPos.splice(0, B, ...nextPos);
    let out = this.rmsNorm(h, this.weights.finalNorm);
    if (which === 'last' && T > 1) {
      out = tf.gather(
        out,
        tf.tensor1d(
          Array.from({ length: B }, (_, b) => b * T + T - 1),
          'int32',
        ),
      );
    } else if (Array.isArray(which)) {
      out = tf.gather(out, tf.tensor1d(which, 'int32'));
    }
    return tf.matMul(out, this.weights.lmHead);
  }

  private layer(
    h: tf.Tensor2D,
    l: number,
    ad: LayerLora | undefined,
    cache: KVCache,
    start: number,
    B: number,
    T: number,
    positions: Int32Array,
    cos: tf.Tensor4D | null,
    sin: tf.Tensor4D | null,
    addMask: tf.Tensor | null,
  ): tf.Tensor2D {
    const c = this.config;
    const w = this.weights.layers[l];
    const x = this.rmsNorm(h, w.inputNorm);
    const qkv = this.linear(x, w.qkv, ad?.qkv);
    let attn: tf.Tensor2D;
    if (
      this.fusedKernels &&
      cache instanceof TensorKVCache &&
      T <= FUSED_ATTENTION_MAX_T &&
      start + T <= ATTENTION_MAX_KEYS
    ) {
      // One kernel per q/k/v (split + rotary + layout), the cache extended on the GPU, one attention kernel.
      const shape = {
        batch: B,
        T,
        heads: c.numAttentionHeads,
        kvHeads: c.numKeyValueHeads,
        headDim: c.headDim,
      };
      const cos2 = tf.reshape(cos!, [B * T, c.headDim]);
      const sin2 = tf.reshape(sin!, [B * T, c.headDim]);
      const q = ropeSplitGpu(qkv, cos2, sin2, 'q', shape, 1 / Math.sqrt(c.headDim));
      const kNew = ropeSplitGpu(qkv, cos2, sin2, 'k', shape);
      const vNew = ropeSplitGpu(qkv, cos2, sin2, 'v', shape);
      const prevK = cache.k[l];
      const prevV = cache.v[l];
      const k: tf.Tensor4D = prevK ? tf.concat([prevK, kNew], 2) : kNew;
      const v: tf.Tensor4D = prevV ? tf.concat([prevV, vNew], 2) : vNew;
      cache.set(l, k, v);
      attn = attentionGpu(q, k, v, addMask!);
    } else if (cache instanceof HostKVCache) {
      const out = hostAttention(hostData(qkv), cache, l, start, T, positions, this.rope, this.shape);
      attn = tf.tensor2d(out, [B * T, c.numAttentionHeads * c.headDim]);
    } else {
      attn = tensorAttention(qkv, cache, l, B, T, cos!, sin!, addMask!, this.shape);
    }
    const h1: tf.Tensor2D = tf.add(h, this.linear(attn, w.o, ad?.o));
    const x2 = this.rmsNorm(h1, w.postNorm);
    const gate = this.linear(x2, w.gate, ad?.gate);
    const up = this.linear(x2, w.up, ad?.up);
    const act = this.fusedKernels ? swigluGpu(gate, up) : tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
    return tf.add(h1, this.linear(act as tf.Tensor2D, w.down, ad?.down));
  }

  /** transformers' LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · weight, in float32. */
  private rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D): tf.Tensor2D {
    if (this.fusedKernels) return rmsNormGpu(x, weight, this.config.rmsNormEps);
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, this.config.rmsNormEps))), weight);
  }

  /** x W (+ bias) (+ (x A) B for an un-merged adapter). */
  private linear(x: tf.Tensor2D, lin: LinearWeights, lora: LoraPair | undefined): tf.Tensor2D {
    let y: tf.Tensor2D = lin.bias ? tf.add(tf.matMul(x, lin.w), lin.bias) : tf.matMul(x, lin.w);
    if (lora) y = tf.add(y, tf.matMul(tf.matMul(x, lora.a), lora.b));
    return y;
  }
}
