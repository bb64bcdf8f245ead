/**
 * LoRA training of the Llama decoder on TensorFlow.js: the forward pass of transformers' LlamaForCausalLM with
 * PEFT LoRA layers (`y = x W + scale · (dropout(x) A^T) B^T` on any subset of the q/k/v/o/gate/up/down
 * projections), the causal-LM loss (the sum of token cross-entropies, log-softmax in float32 with the row maximum
 * subtracted), and a hand-written backward pass that returns the gradients of the LoRA factors only. The base
 * weights and the embeddings are frozen: no gradient is ever formed for them, and the embedding lookup is outside
 * the differentiated computation.
 *
 * Why by hand rather than `tf.grads`: the wasm backend multiplies matrices fast only when neither operand is
 * transposed and there is no batch dimension (XNNPACK's fully-connected path); autodiff's matmul gradients use
 * transposed operands and batched attention products, which run a naive loop there. Here every product is arranged
 * for the fast path: the base weights are also kept transposed (`[out, in]`, wasm only) for the input gradients,
 * small activations are transposed explicitly, and attention runs per (row, key/value head) as 2-D products.
 *
 * Attention: grouped-query, causal, within a segment (`segments` gives each token its example: packed rows never
 * attend across examples, padding (segment 0) is never attended to); position ids restart at each segment.
 */
import * as tf from '@tensorflow/tfjs';
import { Checkpoint } from '../checkpoint.js';
import type { LlamaConfig } from '../config.js';
import { PolyglotError } from '../errors.js';
import { hostData, MASKED } from './attention.js';
import {
  type BackendName,
  checkWebgpuBinding,
  initBackend,
  switchBackendSync,
  webgpuBindingLimit,
} from './backend.js';
import { largestWeight } from './random.js';
import { RopeTable } from './rope.js';
import {
  checkConfig,
  checkWeights,
  disposeWeights,
  loadModelWeights,
  PROJECTIONS,
  type Projection,
  projectionWeightName,
  type WeightSource,
} from './weights.js';

type T2 = tf.Tensor2D;
type T3 = tf.Tensor3D;

/** Label value that is not trained on (transformers' ignore_index). */
export const IGNORE_INDEX = -100;

/** One LoRA layer to train: the module (PEFT name without `base_model.model.`), its rank and scale. */
export interface LoraTarget {
  /** e.g. `model.layers.0.self_attn.q_proj` */
  module: string;
  r: number;
  /** alpha / r (alpha / sqrt(r) with rsLoRA). */
  scale: number;
}

/** A target as the trainer resolved it. */
export interface LoraTargetInfo extends LoraTarget {
  layer: number;
  projection: Projection;
  inDim: number;
  outDim: number;
}

/** LoRA factors in PEFT's layouts: `a` = lora_A.weight `[r, in]`, `b` = lora_B.weight `[out, r]`, row-major. */
export interface LoraFactors {
  a: Float32Array;
  b: Float32Array;
}

/**
 * One batch, row-major `[batch, length]`. As in transformers, position t is trained to predict `labels[t + 1]`
 * (the shift happens here); labels equal to {@link IGNORE_INDEX} are not trained on.
 */
export interface TrainBatch {
  batch: number;
  length: number;
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
  /**
   * The example each token belongs to: 0 = padding (never attended to), k ≥ 1 = the k-th example of its row.
   * Attention is causal within a segment; position ids restart at 0 in each. Default: every token is segment 1.
   */
  segments?: ArrayLike<number>;
}

export interface LossAndGradsOptions {
  /**
   * Where to add the gradients of `gradScale × (sum of the token losses)` (one entry per target, in the order of
   * {@link LlamaLoraTrainer.targets}, PEFT layouts). Absent: loss only (no backward pass, no saved activations).
   */
  grads?: LoraFactors[];
  /** Factor on the loss sum for the gradients (1 / tokens of the whole accumulated batch); default 1. */
  gradScale?: number;
  /** LoRA dropout probability (PEFT's nn.Dropout before lora_A); default 0 (exact, no masks drawn). */
  dropout?: number;
  /** Seed of the dropout masks (a counter-based generator: the same seed gives the same masks). */
  dropoutSeed?: number;
  /** Adds the milliseconds spent in the forward and backward passes. */
  timings?: { forwardMs: number; backwardMs: number };
}

export interface LossResult {
  /** Sum of the cross-entropies of the trained positions (float64 sum of float32 terms). */
  lossSum: number;
  /** Trained positions (shifted labels that are not ignored). */
  tokens: number;
}

export interface LoraTrainerLoadOptions {
  /** Backend to start (default: keep the active one, or `auto`). */
  backend?: BackendName;
  /** wasm only: XNNPACK threads when the backend starts here. */
  wasmThreads?: number;
  /** The LoRA layers to train. */
  targets: LoraTarget[];
  /**
   * Attention as batched products over all (row, key/value head) pairs at once (a handful of kernels per layer)
   * instead of one 2-D product per pair. Default: on for GPU backends (webgpu, tensorflow), where every kernel is
   * a dispatch; off on wasm (XNNPACK's fast GEMM takes no batch dimension) and cpu (the oracle).
   */
  batchedAttention?: boolean;
}

interface LinearW {
  /** [in, out] */
  w: T2;
  /** [out, in], kept on wasm only (elsewhere the products take the transposed flag). */
  wt: T2 | null;
  bias: tf.Tensor1D | null;
}

interface LayerW {
  inputNorm: tf.Tensor1D;
  postNorm: tf.Tensor1D;
  proj: Record<Projection, LinearW>;
}

/** A target's factors on the backend, in the layouts the products need. */
interface LoraDev {
  /** A^T [in, r] */
  at: T2;
  /** A [r, in] */
  a: T2;
  /** scale · B^T [r, out] */
  bs: T2;
  /** scale · B [out, r] */
  bsT: T2;
}

interface LinSaved {
  /** The (dropped-out) input of lora_A and its output, for the factor gradients. */
  xd: T2;
  u: T2;
  /** Dropout mask scaled by 1 / (1 − p); null without dropout. */
  mask: T2 | null;
}

interface LayerSaved {
  h: T2;
  r1: T2;
  lin: Partial<Record<Projection, LinSaved>>;
  /** Per (row, key/value head): the scaled, rotated queries transposed [d, group·T], keys [T, d], values
   * transposed [d, T] and attention probabilities [group·T, T]. */
  qT: T2[];
  ks: T2[];
  vT: T2[];
  probs: T2[];
  /** Batched attention: queries [B·kv, group·T, d], keys scaled by 1/√d and values [B·kv, T, d], probs [B·kv, group·T, T]. */
  att: { q: T3; ks: T3; v: T3; probs: T3 } | null;
  h1: T2;
  r2: T2;
  gate: T2;
  up: T2;
  sig: T2;
}

/** Logit values per chunk of LM-head rows (16 MiB of float32). */
const HEAD_CHUNK_VALUES = 1 << 22;
/** On GPU backends (each chunk costs a read-back): 256 MiB of float32 per chunk. */
const GPU_HEAD_CHUNK_VALUES = 1 << 26;
/** Vocabulary block of the LM head's input gradient on wasm. */
const HEAD_BLOCK = 4096;

/** −log_softmax(row r of logits)[target] in float64 (for probabilities below float32's good range). */
async function exactNll(logits: T2, r: number, target: number): Promise<number> {
  const V = logits.shape[1];
  const row = tf.tidy(() => tf.slice(logits, [r, 0], [1, V]));
  const v = await readValues(row);
  row.dispose();
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) if (v[i] > max) max = v[i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(v[i] - max);
  return Math.log(sum) + max - v[target];
}

/**
 * A tensor's values on the host. In-process backends (wasm, cpu) read synchronously; GPU backends through the
 * asynchronous read (the webgpu backend's synchronous read needs OffscreenCanvas, which Node lacks).
 */
async function readValues(t: tf.Tensor): Promise<Float32Array> {
  const name = tf.getBackend();
  if (name === 'wasm' || name === 'cpu') return t.dataSync() as Float32Array;
  return (await t.data()) as Float32Array;
}

/** LoRA factor gradients still on the backend (GPU backends: read back once per batch, not per projection). */
interface PendingGrad {
  ti: number;
  /** dL/dA [r, in] */
  dA: T2;
  /** dL/d(scale·B^T) [r, out] */
  dBs: T2;
}

/** Adds a target's factor gradients (dA in PEFT's layout, dBs = dL/d(scale·B^T)) into its host accumulators. */
function addFactorGrads(
  t: LoraTargetInfo,
  g: LoraFactors,
  dAv: ArrayLike<number>,
  dBv: ArrayLike<number>,
): void {
  const ga = g.a;
  const gb = g.b;
  for (let i = 0; i < ga.length; i++) ga[i] += dAv[i];
  for (let k = 0; k < t.r; k++) {
    for (let o = 0; o < t.outDim; o++) gb[o * t.r + k] += dBv[k * t.outDim + o] * t.scale;
  }
}

function trainError(code: string, message: string): PolyglotError {
  return new PolyglotError(code, message);
}

const PROJ_MODULE =
  /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$/;

/** splitmix32-style hash of a few integers into a 32-bit seed. */
function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A dropout mask of n values: 0 with probability p, else 1 / (1 − p); mulberry32 from `seed`. */
function dropoutMask(n: number, p: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const keep = 1 / (1 - p);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = u < p ? 0 : keep;
  }
  return out;
}

/**
 * The Llama decoder with trainable LoRA layers. Load once; set the factors with {@link setLora} (after every
 * optimizer step); {@link lossAndGrads} runs a batch forward (and backward when asked).
 */
export class LlamaLoraTrainer {
  readonly config: LlamaConfig;
  readonly backend: string;
  readonly targets: readonly LoraTargetInfo[];
  private readonly embed: T2;
  private readonly lmHead: LinearW;
  /** wasm: the LM head transposed, in vocabulary blocks `[block, hidden]`, for its input gradient. */
  private readonly headBlocks: T2[];
  private readonly finalNorm: tf.Tensor1D;
  private readonly layers: LayerW[];
  private readonly rope: RopeTable;
  /** Per layer and projection: the index of its target, if trained. */
  private readonly targetIndex: Map<string, number>;
  private lora: (LoraDev | null)[];
  /** Attention as batched products (see {@link LoraTrainerLoadOptions.batchedAttention}). */
  readonly batchedAttention: boolean;
  private disposed = false;

  private constructor(args: {
    config: LlamaConfig;
    backend: string;
    targets: LoraTargetInfo[];
    embed: T2;
    lmHead: LinearW;
    headBlocks: T2[];
    finalNorm: tf.Tensor1D;
    layers: LayerW[];
    batchedAttention: boolean;
  }) {
    this.batchedAttention = args.batchedAttention;
    this.config = args.config;
    this.backend = args.backend;
    this.targets = args.targets;
    this.embed = args.embed;
    this.lmHead = args.lmHead;
    this.headBlocks = args.headBlocks;
    this.finalNorm = args.finalNorm;
    this.layers = args.layers;
    this.rope = new RopeTable({
      dim: args.config.headDim,
      theta: args.config.ropeTheta,
      scaling: args.config.ropeScaling,
    });
    this.targetIndex = new Map(args.targets.map((t, i) => [`${t.layer}.${t.projection}`, i]));
    this.lora = args.targets.map(() => null);
  }

  /**
   * Loads the frozen base model (a checkpoint directory, an open {@link Checkpoint} or any {@link WeightSource})
   * and checks the targets against it: each must be a q/k/v/o/gate/up/down projection of an existing layer.
   */
  static async load(
    source: string | Checkpoint | WeightSource,
    opts: LoraTrainerLoadOptions,
  ): Promise<LlamaLoraTrainer> {
    const backendOpts = { wasmThreads: opts.wasmThreads };
    const backend =
      opts.backend !== undefined
        ? await initBackend(opts.backend, backendOpts)
        : (tf.getBackend() ?? (await initBackend('auto', backendOpts)));
    const owned = typeof source === 'string' ? await Checkpoint.open(source) : null;
    const src: WeightSource = owned ?? (source as WeightSource);
    try {
      const config = src.config;
      const where = src.dir ?? 'the model';
      checkConfig(config, where);
      const expected = checkWeights(src);
      const big = largestWeight(config);
      checkWebgpuBinding(big.bytes, `${big.name} of ${where}`);
      if (opts.targets.length === 0) throw trainError('LORA_NO_TARGETS', 'no LoRA layers to train');
      const seen = new Set<string>();
      const targets = opts.targets.map((t): LoraTargetInfo => {
        const m = PROJ_MODULE.exec(t.module);
        if (!m) {
          throw trainError(
            'LORA_UNKNOWN_MODULE',
            `LoRA target "${t.module}" is not a projection the trainer supports ` +
              `(model.layers.N.self_attn.{q,k,v,o}_proj or model.layers.N.mlp.{gate,up,down}_proj)`,
          );
        }
        const layer = Number(m[1]);
        const projection = m[2] as Projection;
        const shape = expected.get(`${projectionWeightName(layer, projection)}.weight`);
        if (!shape) {
          throw trainError(
            'ADAPTER_MODEL_MISMATCH',
            `LoRA target ${t.module} does not exist in ${where} (${config.numHiddenLayers} layers): ` +
              'the adapter was made for a different model',
          );
        }
        const key = `${layer}.${projection}`;
        if (seen.has(key)) throw trainError('LORA_DUPLICATE_TARGET', `LoRA target ${t.module} given twice`);
        seen.add(key);
        if (!(Number.isSafeInteger(t.r) && t.r > 0) || !Number.isFinite(t.scale)) {
          throw trainError(
            'LORA_BAD_TARGET',
            `LoRA target ${t.module}: r must be a positive integer and scale finite (r ${t.r}, scale ${t.scale})`,
          );
        }
        return {
          module: `model.layers.${layer}.${projection === 'gate_proj' || projection === 'up_proj' || projection === 'down_proj' ? 'mlp' : 'self_attn'}.${projection}`,
          r: t.r,
          scale: t.scale,
          layer,
          projection,
          inDim: shape[1],
          outDim: shape[0],
        };
      });
      const weights = await loadModelWeights(src, expected, [], backend);
      switchBackendSync(backend);
      const wasm = backend === 'wasm';
      const created: tf.Tensor[] = [];
      const keep = <T extends tf.Tensor>(t: T): T => {
        created.push(t);
        return tf.keep(t);
      };
      try {
        const transposed = (w: T2): T2 | null => (wasm ? keep(tf.tidy(() => tf.transpose(w))) : null);
        const layers = weights.layers.map((lw): LayerW => {
          const H = config.hiddenSize;
          const qDim = config.numAttentionHeads * config.headDim;
          const kvDim = config.numKeyValueHeads * config.headDim;
          // q/k/v come fused; training keeps them apart (each may carry its own LoRA and dropout mask).
          const split = (lin: { w: T2; bias: tf.Tensor1D | null }, sizes: number[]): LinearW[] => {
            let off = 0;
            return sizes.map((n) => {
              const w = keep(tf.slice(lin.w, [0, off], [H, n]));
              const bias = lin.bias ? keep(tf.slice(lin.bias, [off], [n])) : null;
              off += n;
              return { w, wt: transposed(w), bias };
            });
          };
          const [q, k, v] = split(lw.qkv, [qDim, kvDim, kvDim]);
          lw.qkv.w.dispose();
          lw.qkv.bias?.dispose();
          const own = (lin: { w: T2; bias: tf.Tensor1D | null }): LinearW => {
            created.push(lin.w);
            if (lin.bias) created.push(lin.bias);
            return { w: lin.w, wt: transposed(lin.w), bias: lin.bias };
          };
          created.push(lw.inputNorm, lw.postNorm);
          return {
            inputNorm: lw.inputNorm,
            postNorm: lw.postNorm,
            proj: {
              q_proj: q,
              k_proj: k,
              v_proj: v,
              o_proj: own(lw.o),
              gate_proj: own(lw.gate),
              up_proj: own(lw.up),
              down_proj: own(lw.down),
            },
          };
        });
        created.push(weights.embed, weights.lmHead, weights.finalNorm);
        return new LlamaLoraTrainer({
          config,
          backend,
          targets,
          embed: weights.embed,
          lmHead: { w: weights.lmHead, wt: null, bias: null },
          headBlocks: wasm
            ? tf
                .tidy(() => {
                  const V = config.vocabSize;
                  const blocks: T2[] = [];
                  for (let s = 0; s < V; s += HEAD_BLOCK) {
                    const n = Math.min(HEAD_BLOCK, V - s);
                    blocks.push(tf.transpose(tf.slice(weights.lmHead, [0, s], [config.hiddenSize, n])));
                  }
                  return blocks;
                })
                .map((t) => {
                  created.push(t);
                  return t;
                })
            : [],
          finalNorm: weights.finalNorm,
          layers,
          batchedAttention: opts.batchedAttention ?? !(wasm || backend === 'cpu'),
        });
      } catch (e) {
        for (const t of created) t.dispose();
        disposeWeights(weights);
        throw e;
      }
    } finally {
      await owned?.close();
    }
  }

  /** Uploads the current LoRA factors (PEFT layouts, one per target in order); call after every update. */
  setLora(factors: readonly LoraFactors[]): void {
    this.activate();
    if (factors.length !== this.targets.length) {
      throw trainError(
        'LORA_SHAPE',
        `setLora got ${factors.length} factor pairs for ${this.targets.length} targets`,
      );
    }
    const next = this.targets.map((t, i): LoraDev => {
      const f = factors[i];
      if (f.a.length !== t.r * t.inDim || f.b.length !== t.outDim * t.r) {
        throw trainError(
          'LORA_SHAPE',
          `LoRA factors of ${t.module}: lora_A needs ${t.r}×${t.inDim} and lora_B ${t.outDim}×${t.r} values, ` +
            `got ${f.a.length} and ${f.b.length}`,
        );
      }
      const bs = new Float32Array(t.r * t.outDim);
      const bsT = new Float32Array(t.outDim * t.r);
      for (let o = 0; o < t.outDim; o++) {
        for (let k = 0; k < t.r; k++) {
          const v = Math.fround(f.b[o * t.r + k] * t.scale);
          bs[k * t.outDim + o] = v;
          bsT[o * t.r + k] = v;
        }
      }
      const a = tf.tensor2d(f.a, [t.r, t.inDim]);
      return {
        a,
        at: tf.tidy(() => tf.transpose(a)),
        bs: tf.tensor2d(bs, [t.r, t.outDim]),
        bsT: tf.tensor2d(bsT, [t.outDim, t.r]),
      };
    });
    this.disposeLora();
    this.lora = next;
  }

  /**
   * The summed cross-entropy of a batch's trained positions and, with `opts.grads`, the gradients of
   * `gradScale × lossSum` added into `opts.grads`.
   */
  async lossAndGrads(batch: TrainBatch, opts: LossAndGradsOptions = {}): Promise<LossResult> {
    this.activate();
    if (this.lora.some((l) => l === null)) throw trainError('LORA_NOT_SET', 'call setLora before training');
    const c = this.config;
    const { batch: B, length: T } = batch;
    const N = B * T;
    if (!(Number.isSafeInteger(B) && B > 0 && Number.isSafeInteger(T) && T > 0)) {
      throw trainError('BAD_SHAPE', `batch ${B} × length ${T} must be positive integers`);
    }
    if (batch.inputIds.length !== N || batch.labels.length !== N || (batch.segments?.length ?? N) !== N) {
      throw trainError('BAD_SHAPE', `inputIds, labels and segments must hold batch × length = ${N} values`);
    }
    if (T > c.maxPositionEmbeddings) {
      throw trainError(
        'PROMPT_TOO_LONG',
        `rows of ${T} tokens exceed the model's max_position_embeddings (${c.maxPositionEmbeddings})`,
      );
    }
    const grads = opts.grads;
    if (grads && grads.length !== this.targets.length) {
      throw trainError('LORA_SHAPE', `grads has ${grads.length} entries for ${this.targets.length} targets`);
    }
    const dropout = opts.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1))
      throw trainError('BAD_ARGUMENT', `dropout must be in [0, 1), got ${dropout}`);
    const gradScale = opts.gradScale ?? 1;
    const timings = opts.timings;

    // Host-side inputs: ids, positions, the additive mask [B, 1, T, T], the trained rows and their targets.
    const ids = new Int32Array(N);
    const seg = new Int32Array(N);
    const positions = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      const id = batch.inputIds[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw trainError(
          'TOKEN_OUT_OF_RANGE',
          `token id ${id} at row ${Math.floor(i / T)}, position ${i % T} is outside the vocabulary [0, ${c.vocabSize})`,
        );
      }
      ids[i] = id;
      seg[i] = batch.segments ? batch.segments[i] : 1;
    }
    for (let b = 0; b < B; b++) {
      let p = 0;
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (t > 0 && seg[i] !== seg[i - 1]) p = 0;
        positions[i] = seg[i] === 0 ? t : p;
        p++;
      }
    }
    const mask = new Float32Array(B * T * T).fill(MASKED);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < T; i++) {
        const si = seg[b * T + i];
        if (si === 0) continue;
        const o = (b * T + i) * T;
        for (let j = i; j >= 0 && seg[b * T + j] === si; j--) mask[o + j] = 0;
      }
    }
    const rows: number[] = [];
    const targets: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < T; t++) {
        const label = batch.labels[b * T + t + 1];
        if (label === IGNORE_INDEX) continue;
        if (!Number.isInteger(label) || label < 0 || label >= c.vocabSize) {
          throw trainError(
            'TOKEN_OUT_OF_RANGE',
            `label ${label} at row ${b}, position ${t + 1} is outside the vocabulary [0, ${c.vocabSize}) and not ${IGNORE_INDEX}`,
          );
        }
        rows.push(b * T + t);
        targets.push(label);
      }
    }
    if (rows.length === 0) return { lossSum: 0, tokens: 0 };
    this.rope.ensure(T + 1);
    const full = this.rope.fullRows(positions);

    const t0 = performance.now();
    const consts: tf.Tensor[] = [];
    const saved: LayerSaved[] = [];
    let hL: T2 | null = null;
    let hf: T2 | null = null;
    let rF: T2 | null = null;
    const dropSeed = opts.dropoutSeed ?? 0;
    /** The pending gradients of this call (disposed in `finally` whatever happens). */
    const pendingAll: PendingGrad[] = [];
    try {
      const d = c.headDim;
      const cos = tf.tensor3d(full.cos, [N, 1, d]);
      const sin = tf.tensor3d(full.sin, [N, 1, d]);
      const batched = this.batchedAttention;
      const masks = batched
        ? []
        : Array.from({ length: B }, (_, b) =>
            tf.tensor3d(mask.subarray(b * T * T, (b + 1) * T * T), [1, T, T]),
          );
      const maskAll = batched ? tf.tensor(mask, [B, 1, 1, T, T]) : null;
      consts.push(cos, sin, ...masks);
      if (maskAll) consts.push(maskAll);
      const pending: PendingGrad[] | null = this.inProcess ? null : pendingAll;
      const env: Env = {
        B,
        T,
        cos,
        sin,
        masks,
        maskAll,
        dropout,
        dropSeed,
        keep: grads !== undefined,
        pending,
      };

      let h: T2 = tf.tidy(() => tf.gather(this.embed, tf.tensor1d(ids, 'int32')));
      for (let l = 0; l < c.numHiddenLayers; l++) {
        const prev = h;
        const out = this.layerForward(l, prev, env);
        h = out.h;
        if (out.saved) saved.push(out.saved);
        else prev.dispose();
      }
      hL = h;
      const nf = tf.tidy(() => this.rmsNorm(hL!, this.finalNorm));
      hf = nf.y;
      rF = nf.r;

      // LM head and loss over the trained rows, in chunks (the logits of all rows at once can be large):
      // p = softmax(logits) (the row maximum subtracted, float32), loss = −log p[target] summed in float64,
      // dL/dlogits = (p − onehot) · gradScale.
      const V = c.vocabSize;
      // GPU: large chunks (each costs a read-back), within the device's binding limit (one logits chunk is a tensor).
      const gpuChunk = Math.min(
        GPU_HEAD_CHUNK_VALUES,
        Math.floor((webgpuBindingLimit() ?? 4 * GPU_HEAD_CHUNK_VALUES) / 4),
      );
      const chunk = Math.max(1, Math.floor((this.inProcess ? HEAD_CHUNK_VALUES : gpuChunk) / V));
      let lossSum = 0;
      const dRows: T2[] = [];
      let tb = 0;
      for (let s = 0; s < rows.length; s += chunk) {
        const rowIdx = rows.slice(s, s + chunk);
        const tgt = targets.slice(s, s + chunk);
        const C = rowIdx.length;
        const { logits, probs } = tf.tidy(() => {
          const x = tf.gather(hf!, tf.tensor1d(rowIdx, 'int32'));
          const lg = tf.matMul(x, this.lmHead.w) as T2;
          return { logits: lg, probs: tf.softmax(lg) as T2 };
        });
        try {
          const flat = tgt.map((t, r) => r * V + t);
          const picked = tf.tidy(() => tf.gather(tf.reshape(probs, [-1]), tf.tensor1d(flat, 'int32')));
          const pt = await readValues(picked);
          picked.dispose();
          for (let r = 0; r < C; r++) {
            // A probability that float32 cannot resolve well: the row's log-softmax in float64 instead.
            lossSum += pt[r] > 1e-30 ? -Math.log(pt[r]) : await exactNll(logits, r, tgt[r]);
          }
          if (grads) {
            const tg = performance.now();
            dRows.push(
              tf.tidy(() => {
                // dL/dlogits = (p − onehot(target)) · gradScale: p with p[target] − 1 written in (the wasm backend's
                // OneHot kernel returns zeros for float32), scaled before the product as torch's backward does.
                const g = tf.tensorScatterUpdate(
                  probs,
                  tf.tensor2d(
                    tgt.map((t, r) => [r, t]),
                    [C, 2],
                    'int32',
                  ),
                  tf.tensor1d(Float32Array.from(pt, (v) => v - 1)),
                ) as T2;
                return this.headInputGrad(tf.mul(g, gradScale) as T2);
              }),
            );
            tb += performance.now() - tg;
          }
        } finally {
          logits.dispose();
          probs.dispose();
        }
      }
      if (timings) timings.forwardMs += performance.now() - t0 - tb;
      if (!grads) return { lossSum, tokens: rows.length };

      // Backward: LM head rows → final norm → layers in reverse order.
      const tbw = performance.now();
      let dh: T2 = tf.tidy(() => {
        const dRowsAll = dRows.length === 1 ? dRows[0] : tf.concat(dRows, 0);
        const dhf = tf.scatterND(
          tf.tensor2d(
            rows.map((r) => [r]),
            [rows.length, 1],
            'int32',
          ),
          dRowsAll,
          [N, c.hiddenSize],
        ) as T2;
        return this.rmsNormGrad(dhf, hL!, rF!, this.finalNorm);
      });
      for (const t of dRows) t.dispose();
      dRows.length = 0;
      for (let l = c.numHiddenLayers - 1; l >= 0; l--) {
        const s = saved[l];
        const prev = dh;
        dh = this.layerBackward(l, prev, s, env, grads, l > 0);
        prev.dispose();
        disposeSaved(s);
        saved[l] = undefined as unknown as LayerSaved;
      }
      dh.dispose();
      if (pending && pending.length > 0) await this.flushGrads(pending, grads);
      if (timings) timings.backwardMs += performance.now() - tbw + tb;
      return { lossSum, tokens: rows.length };
    } finally {
      for (const t of consts) t.dispose();
      for (const p of pendingAll) {
        if (!p.dA.isDisposed) p.dA.dispose();
        if (!p.dBs.isDisposed) p.dBs.dispose();
      }
      for (const s of saved) if (s) disposeSaved(s);
      hL?.dispose();
      hf?.dispose();
      rF?.dispose();
    }
  }

  /** Frees the weights and factors on the backend. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.disposeLora();
    this.embed.dispose();
    this.finalNorm.dispose();
    for (const t of this.headBlocks) t.dispose();
    for (const lin of [this.lmHead, ...this.layers.flatMap((l) => Object.values(l.proj))]) {
      lin.w.dispose();
      lin.wt?.dispose();
      lin.bias?.dispose();
    }
    for (const l of this.layers) {
      l.inputNorm.dispose();
      l.postNorm.dispose();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------

  private activate(): void {
    if (this.disposed) throw trainError('MODEL_DISPOSED', 'the trainer was disposed');
    switchBackendSync(this.backend);
  }

  private disposeLora(): void {
    for (const l of this.lora) {
      if (!l) continue;
      l.a.dispose();
      l.at.dispose();
      l.bs.dispose();
      l.bsT.dispose();
    }
    this.lora = this.targets.map(() => null);
  }

  private get wasm(): boolean {
    return this.backend === 'wasm';
  }

  /** Backends whose tensors live in this process's memory (synchronous reads are cheap there). */
  private get inProcess(): boolean {
    return this.backend === 'wasm' || this.backend === 'cpu';
  }

  /**
   * GPU backends: every pending factor gradient of the batch in one read-back (one concatenation, one copy to the
   * host) instead of one synchronous read per projection, then added into the host accumulators.
   */
  private async flushGrads(pending: PendingGrad[], grads: LoraFactors[]): Promise<void> {
    const flat = tf.tidy(() =>
      tf.concat(
        pending.flatMap((p) => [tf.reshape(p.dA, [-1]), tf.reshape(p.dBs, [-1])]),
        0,
      ),
    );
    let all: Float32Array;
    try {
      all = (await flat.data()) as Float32Array;
    } finally {
      flat.dispose();
    }
    let off = 0;
    for (const p of pending) {
      const t = this.targets[p.ti];
      const na = p.dA.size;
      const nb = p.dBs.size;
      addFactorGrads(t, grads[p.ti], all.subarray(off, off + na), all.subarray(off + na, off + na + nb));
      off += na + nb;
      p.dA.dispose();
      p.dBs.dispose();
    }
    pending.length = 0;
  }

  /** a·b with optional transposes; on wasm the transposes are explicit copies (its fast GEMM takes none). */
  private mm(a: T2, b: T2, ta = false, tb = false): T2 {
    if (!this.wasm) return tf.matMul(a, b, ta, tb);
    return tf.matMul(ta ? tf.transpose(a) : a, tb ? tf.transpose(b) : b);
  }

  /**
   * The matrices of a [n, m, k] tensor. On wasm through one host copy: its Slice and Unpack kernels copy the whole
   * input for every piece they cut.
   */
  private unstack3(x: T3): T2[] {
    const [n, m, k] = x.shape;
    if (!this.wasm) return tf.unstack(x) as T2[];
    const all = hostData(x).slice();
    const out: T2[] = [];
    for (let i = 0; i < n; i++) out.push(tf.tensor2d(all.subarray(i * m * k, (i + 1) * m * k), [m, k]));
    return out;
  }

  /** Column blocks of a [rows, cols] tensor (widths `sizes`); on wasm through one host copy (see unstack3). */
  private splitColumns(x: T2, sizes: number[]): T2[] {
    if (!this.wasm) return tf.split(x, sizes, 1) as T2[];
    const [rows, cols] = x.shape;
    const all = hostData(x).slice();
    const out: T2[] = [];
    let off = 0;
    for (const n of sizes) {
      const blk = new Float32Array(rows * n);
      for (let r = 0; r < rows; r++) blk.set(all.subarray(r * cols + off, r * cols + off + n), r * n);
      out.push(tf.tensor2d(blk, [rows, n]));
      off += n;
    }
    return out;
  }

  /** transformers' LlamaRMSNorm; also returns rsqrt(mean(x²) + eps) `[N, 1]` for the backward pass. */
  private rmsNorm(x: T2, weight: tf.Tensor1D): { y: T2; r: T2 } {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), this.config.rmsNormEps)) as T2;
    return { y: tf.mul(tf.mul(x, r), weight), r };
  }

  /** dL/dx of y = x·r·w given dL/dy: r·g − x·r³·mean(g·x), g = dy·w. */
  private rmsNormGrad(dy: T2, x: T2, r: T2, weight: tf.Tensor1D): T2 {
    const g = tf.mul(dy, weight);
    const dot = tf.mean(tf.mul(g, x), -1, true);
    return tf.sub(tf.mul(g, r), tf.mul(x, tf.mul(tf.mul(tf.mul(r, r), r), dot)));
  }

  /** x·cos + rotate_half(x)·sin over [N, heads, d]. */
  private ropeApply(x: T3, cos: T3, sin: T3): T3 {
    return tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin));
  }

  /** The transpose of ropeApply: dy·cos − rotate_half(dy·sin). */
  private ropeGrad(dy: T3, cos: T3, sin: T3): T3 {
    return tf.sub(tf.mul(dy, cos), rotateHalf(tf.mul(dy, sin)));
  }

  /**
   * dL/dx of the LM head from dL/dlogits. On wasm by vocabulary blocks: XNNPACK's GEMM over the whole vocabulary
   * as the inner dimension loses its cache locality.
   */
  private headInputGrad(g: T2): T2 {
    if (this.headBlocks.length === 0) return this.linearInputGrad(g, this.lmHead);
    const parts = this.splitColumns(
      g,
      this.headBlocks.map((b) => b.shape[0]),
    );
    let acc: T2 | null = null;
    for (const [i, blk] of this.headBlocks.entries()) {
      const part = tf.matMul(parts[i], blk) as T2;
      acc = acc ? (tf.add(acc, part) as T2) : part;
    }
    return acc!;
  }

  /** dL/dx of x·W from dL/dy. */
  private linearInputGrad(dy: T2, lin: LinearW): T2 {
    return lin.wt ? tf.matMul(dy, lin.wt) : tf.matMul(dy, lin.w, false, true);
  }

  private linearForward(
    l: number,
    p: Projection,
    x: T2,
    env: Env,
    saved: Partial<Record<Projection, LinSaved>> | null,
  ): T2 {
    const lin = this.layers[l].proj[p];
    let y: T2 = tf.matMul(x, lin.w);
    if (lin.bias) y = tf.add(y, lin.bias) as T2;
    const ti = this.targetIndex.get(`${l}.${p}`);
    if (ti === undefined) return y;
    const ad = this.lora[ti]!;
    let xd = x;
    let mask: T2 | null = null;
    if (env.dropout > 0) {
      const [n, k] = x.shape;
      mask = tf.tensor2d(dropoutMask(n * k, env.dropout, mixSeed(env.dropSeed, l, ti)), [n, k]);
      xd = tf.mul(x, mask) as T2;
    }
    const u = tf.matMul(xd, ad.at) as T2;
    if (saved) saved[p] = { xd, u, mask };
    return tf.add(y, tf.matMul(u, ad.bs)) as T2;
  }

  /** dL/dx of a projection, adding its LoRA factor gradients (scaled by nothing more: dy is already scaled). */
  private linearBackward(
    l: number,
    p: Projection,
    dy: T2,
    s: Partial<Record<Projection, LinSaved>>,
    grads: LoraFactors[],
    needInput: boolean,
    pending: PendingGrad[] | null,
  ): T2 | null {
    const lin = this.layers[l].proj[p];
    let dx: T2 | null = needInput ? this.linearInputGrad(dy, lin) : null;
    const ti = this.targetIndex.get(`${l}.${p}`);
    if (ti === undefined) return dx;
    const ad = this.lora[ti]!;
    const sv = s[p]!;
    const t = this.targets[ti];
    const du = tf.matMul(dy, ad.bsT) as T2; // [N, r]
    // dL/dA = du^T · xd  ([r, in], PEFT's layout); dL/d(scale·B^T) = u^T · dy ([r, out]).
    const dA = this.mm(du, sv.xd, true, false);
    const dBs = this.mm(sv.u, dy, true, false);
    if (pending) {
      // GPU: kept on the backend (out of the layer's tidy) and read back with the others after the last layer.
      pending.push({ ti, dA: tf.keep(dA), dBs: tf.keep(dBs) });
    } else {
      addFactorGrads(t, grads[ti], dA.dataSync(), dBs.dataSync());
    }
    if (needInput) {
      let dxd: T2 = tf.matMul(du, ad.a);
      if (sv.mask) dxd = tf.mul(dxd, sv.mask) as T2;
      dx = tf.add(dx!, dxd) as T2;
    }
    return dx;
  }

  private layerForward(l: number, h: T2, env: Env): { h: T2; saved: LayerSaved | null } {
    const c = this.config;
    const { B, T } = env;
    const N = B * T;
    const nH = c.numAttentionHeads;
    const nKV = c.numKeyValueHeads;
    const d = c.headDim;
    const group = nH / nKV;
    const w = this.layers[l];
    const out = tf.tidy(() => {
      const lin: Partial<Record<Projection, LinSaved>> | null = env.keep ? {} : null;
      const n1 = this.rmsNorm(h, w.inputNorm);
      const q = this.linearForward(l, 'q_proj', n1.y, env, lin);
      const k = this.linearForward(l, 'k_proj', n1.y, env, lin);
      const v = this.linearForward(l, 'v_proj', n1.y, env, lin);
      const scale = 1 / Math.sqrt(d);
      const qr = tf.mul(this.ropeApply(tf.reshape(q, [N, nH, d]), env.cos, env.sin), scale);
      const kr = this.ropeApply(tf.reshape(k, [N, nKV, d]), env.cos, env.sin);
      // Per (row b, key/value head kv), index b·kvHeads + kv, as 2-D matrices: Q [group·T, d] with rows (j, t)
      // of query heads kv·group + j, K and V [T, d], and their transposes where a product needs them.
      const q4 = tf.reshape(qr, [B, T, nH, d]);
      const k4 = tf.reshape(kr, [B, T, nKV, d]);
      const v4 = tf.reshape(v, [B, T, nKV, d]);
      const q3 = tf.reshape(tf.transpose(q4, [0, 2, 1, 3]), [B * nKV, group * T, d]) as T3;
      let attn: T2;
      let att: LayerSaved['att'] = null;
      let qT: T2[] = [];
      let ks: T2[] = [];
      let vT: T2[] = [];
      const probs: T2[] = [];
      if (this.batchedAttention) {
        // All (row, key/value head) pairs at once: batched products, one softmax over [B, kv, group, T, T].
        const k3 = tf.reshape(tf.transpose(k4, [0, 2, 1, 3]), [B * nKV, T, d]) as T3;
        const v3 = tf.reshape(tf.transpose(v4, [0, 2, 1, 3]), [B * nKV, T, d]) as T3;
        const scores = tf.reshape(tf.matMul(q3, k3, false, true), [B, nKV, group, T, T]);
        const p3 = tf.reshape(tf.softmax(tf.add(scores, env.maskAll!)), [B * nKV, group * T, T]) as T3;
        const ctx = tf.matMul(p3, v3); // [B·kv, group·T, d] = [B, heads, T, d]
        attn = tf.reshape(tf.transpose(tf.reshape(ctx, [B, nH, T, d]), [0, 2, 1, 3]), [N, nH * d]) as T2;
        att = { q: q3, ks: tf.mul(k3, scale) as T3, v: v3, probs: p3 };
      } else {
        const qs = this.unstack3(q3);
        qT = this.unstack3(tf.transpose(q3, [0, 2, 1]) as T3);
        const kT = this.unstack3(tf.reshape(tf.transpose(k4, [0, 2, 3, 1]), [B * nKV, d, T]) as T3);
        // Keys scaled by 1/√d for the query gradient dQ = dS · K / √d.
        ks = this.unstack3(tf.mul(tf.reshape(tf.transpose(k4, [0, 2, 1, 3]), [B * nKV, T, d]), scale) as T3);
        const vs = this.unstack3(tf.reshape(tf.transpose(v4, [0, 2, 1, 3]), [B * nKV, T, d]) as T3);
        vT = this.unstack3(tf.reshape(tf.transpose(v4, [0, 2, 3, 1]), [B * nKV, d, T]) as T3);
        const ctxs: T2[] = [];
        for (let i = 0; i < B * nKV; i++) {
          const scores = tf.reshape(tf.matMul(qs[i], kT[i]), [group, T, T]);
          const p = tf.reshape(tf.softmax(tf.add(scores, env.masks[Math.floor(i / nKV)])), [
            group * T,
            T,
          ]) as T2;
          probs.push(p);
          ctxs.push(tf.matMul(p, vs[i]));
        }
        const ctx = tf.stack(ctxs); // [B·kv, group·T, d] = [B, heads, T, d]
        attn = tf.reshape(tf.transpose(tf.reshape(ctx, [B, nH, T, d]), [0, 2, 1, 3]), [N, nH * d]) as T2;
      }
      const h1 = tf.add(h, this.linearForward(l, 'o_proj', attn, env, lin)) as T2;
      const n2 = this.rmsNorm(h1, w.postNorm);
      const gate = this.linearForward(l, 'gate_proj', n2.y, env, lin);
      const up = this.linearForward(l, 'up_proj', n2.y, env, lin);
      const sig = tf.sigmoid(gate) as T2;
      const act = tf.mul(tf.mul(gate, sig), up) as T2;
      const hOut = tf.add(h1, this.linearForward(l, 'down_proj', act, env, lin)) as T2;
      const saved: LayerSaved | null = lin
        ? { h, r1: n1.r, lin, qT, ks, vT, probs, att, h1, r2: n2.r, gate, up, sig }
        : null;
      return { hOut, saved } as unknown as tf.TensorContainer;
    }) as unknown as { hOut: T2; saved: LayerSaved | null };
    return { h: out.hOut, saved: out.saved };
  }

  private layerBackward(
    l: number,
    dOut: T2,
    s: LayerSaved,
    env: Env,
    grads: LoraFactors[],
    needInput: boolean,
  ): T2 {
    const c = this.config;
    const { B, T } = env;
    const N = B * T;
    const nH = c.numAttentionHeads;
    const nKV = c.numKeyValueHeads;
    const d = c.headDim;
    const group = nH / nKV;
    const w = this.layers[l];
    return tf.tidy(() => {
      // MLP: out = h1 + down(silu(gate)·up), with the residual.
      const dAct = this.linearBackward(l, 'down_proj', dOut, s.lin, grads, true, env.pending)!;
      const silu = tf.mul(s.gate, s.sig);
      const dUp = tf.mul(dAct, silu) as T2;
      const dSilu = tf.mul(s.sig, tf.add(1, tf.mul(s.gate, tf.sub(1, s.sig))));
      const dGate = tf.mul(tf.mul(dAct, s.up), dSilu) as T2;
      const dx2 = tf.add(
        this.linearBackward(l, 'gate_proj', dGate, s.lin, grads, true, env.pending)!,
        this.linearBackward(l, 'up_proj', dUp, s.lin, grads, true, env.pending)!,
      ) as T2;
      const dh1 = tf.add(dOut, this.rmsNormGrad(dx2, s.h1, s.r2, w.postNorm)) as T2;

      // Attention.
      const dAttn = this.linearBackward(l, 'o_proj', dh1, s.lin, grads, true, env.pending)!;
      const dCtx = tf.reshape(tf.transpose(tf.reshape(dAttn, [B, T, nH, d]), [0, 2, 1, 3]), [
        B * nKV,
        group * T,
        d,
      ]) as T3;
      let dQ: T3;
      let dK: T3;
      let dV: T3;
      if (s.att) {
        // Batched: dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS K/√d, dK = dSᵀ Q.
        const { q, ks, v, probs: p } = s.att;
        const dV3 = tf.matMul(p, dCtx, true, false) as T3; // [B·kv, T, d]
        const dP = tf.matMul(dCtx, v, false, true); // [B·kv, group·T, T]
        const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true))) as T3;
        const dQ3 = tf.matMul(dS, ks); // [B·kv, group·T, d]
        const dK3 = tf.matMul(dS, q, true, false) as T3; // [B·kv, T, d]
        dQ = tf.reshape(tf.transpose(tf.reshape(dQ3, [B, nH, T, d]), [0, 2, 1, 3]), [N, nH, d]) as T3;
        const fromBT = (x: T3): T3 =>
          tf.reshape(tf.transpose(tf.reshape(x, [B, nKV, T, d]), [0, 2, 1, 3]), [N, nKV, d]) as T3;
        dK = fromBT(dK3);
        dV = fromBT(dV3);
      } else {
        const dOs = this.unstack3(dCtx);
        const dOT = this.unstack3(tf.transpose(dCtx, [0, 2, 1]) as T3);
        const dQs: T2[] = [];
        const dKT: T2[] = [];
        const dVT: T2[] = [];
        for (let i = 0; i < B * nKV; i++) {
          const p = s.probs[i];
          dVT.push(tf.matMul(dOT[i], p)); // dV^T = dO^T P  [d, T]
          const dP = tf.matMul(dOs[i], s.vT[i]); // [group·T, T]
          const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true))) as T2;
          dQs.push(tf.matMul(dS, s.ks[i])); // [group·T, d]; the keys carry the 1/√d
          dKT.push(tf.matMul(s.qT[i], dS)); // dK^T = Q^T dS  [d, T] (the queries are scaled already)
        }
        // Back to token rows [N, heads, d].
        dQ = tf.reshape(tf.transpose(tf.reshape(tf.stack(dQs), [B, nH, T, d]), [0, 2, 1, 3]), [
          N,
          nH,
          d,
        ]) as T3;
        const fromT = (xs: T2[]): T3 =>
          tf.reshape(tf.transpose(tf.reshape(tf.stack(xs), [B, nKV, d, T]), [0, 3, 1, 2]), [N, nKV, d]) as T3;
        dK = fromT(dKT);
        dV = fromT(dVT);
      }
      const dq = tf.reshape(this.ropeGrad(dQ, env.cos, env.sin), [N, nH * d]) as T2;
      const dk = tf.reshape(this.ropeGrad(dK, env.cos, env.sin), [N, nKV * d]) as T2;
      const dv = tf.reshape(dV, [N, nKV * d]) as T2;
      const dxq = this.linearBackward(l, 'q_proj', dq, s.lin, grads, needInput, env.pending);
      const dxk = this.linearBackward(l, 'k_proj', dk, s.lin, grads, needInput, env.pending);
      const dxv = this.linearBackward(l, 'v_proj', dv, s.lin, grads, needInput, env.pending);
      if (!needInput) return tf.zeros([1, 1]) as T2;
      const dx1 = tf.add(tf.add(dxq!, dxk!), dxv!) as T2;
      return tf.add(dh1, this.rmsNormGrad(dx1, s.h, s.r1, w.inputNorm)) as T2;
    });
  }
}

interface Env {
  B: number;
  T: number;
  cos: T3;
  sin: T3;
  /** Per row: the additive causal/segment mask [1, T, T]. */
  masks: T3[];
  /** Batched attention: the additive mask of every row [B, 1, 1, T, T]. */
  maskAll: tf.Tensor | null;
  dropout: number;
  dropSeed: number;
  keep: boolean;
  /** GPU backends: where the factor gradients wait for the one read-back; null: read at once. */
  pending: PendingGrad[] | null;
}

/** `[-x2, x1]` along the last axis of [N, heads, d]. */
function rotateHalf(x: T3): T3 {
  const half = (x.shape[2] as number) >> 1;
  const x1 = tf.slice(x, [0, 0, 0], [-1, -1, half]);
  const x2 = tf.slice(x, [0, 0, half], [-1, -1, half]);
  return tf.concat([tf.neg(x2), x1], 2);
}

function disposeSaved(s: LayerSaved): void {
  const ts: tf.Tensor[] = [s.h, s.r1, ...s.qT, ...s.ks, ...s.vT, ...s.probs, s.h1, s.r2, s.gate, s.up, s.sig];
  if (s.att) ts.push(s.att.q, s.att.ks, s.att.v, s.att.probs);
  for (const lin of Object.values(s.lin)) {
    if (!lin) continue;
    ts.push(lin.xd, lin.u);
    if (lin.mask) ts.push(lin.mask);
  }
  for (const t of ts) if (!t.isDisposed) t.dispose();
}

export { PROJECTIONS as LORA_PROJECTIONS };
