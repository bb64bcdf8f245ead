/**
 * Full-parameter training of a (small) Llama with TensorFlow.js autodiff: the forward pass of transformers'
 * LlamaForCausalLM (RMSNorm, HF rotary, SwiGLU, grouped-query causal attention, tied or untied head) over
 * `[batch, seqLen]` windows with the mean next-token NLL as the loss, and its gradients for every weight. The
 * optimizer lives with the caller (`@polyglot/sft`'s `pretrain`): parameters come in and gradients go out as host
 * Float32Arrays in the layouts of {@link fullTrainParamSpecs}.
 *
 * The embedding lookup is `oneHot(ids) · E` (a product rather than a gather): the gather's gradient needs the
 * UnsortedSegmentSum kernel, which the wasm backend lacks. That makes the cost grow with the vocabulary: meant for
 * byte-level and other small vocabularies. Linear weights are kept as `[in, out]` so that the forward products
 * take wasm's fast path (no transposed operand).
 */
import * as tf from '@tensorflow/tfjs';
import { expectedLlamaTensors } from '../checkpoint.js';
import type { LlamaConfig } from '../config.js';
import { PolyglotError } from '../errors.js';
import { type BackendName, initBackend, switchBackendSync } from './backend.js';
import { RopeTable } from './rope.js';

/** One trainable tensor: its Hugging Face name, the layout kept here and whether that is HF's transposed. */
export interface FullTrainParamSpec {
  name: string;
  /** Shape here: linear weights as [in, out] (HF stores [out, in]); others as HF stores them. */
  shape: number[];
  /** true: HF's tensor is the transpose of this one. */
  transposed: boolean;
  /** Whether weight decay applies (not to norm weights and biases). */
  decay: boolean;
}

/** Every weight of the config's checkpoint, in the order of {@link expectedLlamaTensors}. */
export function fullTrainParamSpecs(config: LlamaConfig): FullTrainParamSpec[] {
  const specs: FullTrainParamSpec[] = [];
  for (const [name, shape] of expectedLlamaTensors(config)) {
    if (name.endsWith('.bias')) {
      specs.push({ name, shape, transposed: false, decay: false });
    } else if (shape.length === 2 && name !== 'model.embed_tokens.weight') {
      specs.push({ name, shape: [shape[1], shape[0]], transposed: true, decay: true });
    } else {
      specs.push({ name, shape, transposed: false, decay: !name.endsWith('norm.weight') });
    }
  }
  return specs;
}

/**
 * `a · b` for 2-D operands, with gradients `dy · bᵀ` and `aᵀ · dy` formed from explicitly transposed operands:
 * the wasm backend multiplies fast only when neither operand is flagged as transposed (XNNPACK's path).
 */
const mm2 = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[1]) as tf.Tensor2D),
      tf.matMul(tf.transpose(saved[0]) as tf.Tensor2D, dy as tf.Tensor2D),
    ],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor2D;

/**
 * Batched `a · b` over [n, m, k] × [n, k, p], with gradients from explicitly transposed operands as
 * {@link mm2}'s.
 */
const bmm = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
      tf.matMul(dy as tf.Tensor3D, tf.transpose(saved[1], [0, 2, 1]) as tf.Tensor3D),
      tf.matMul(tf.transpose(saved[0], [0, 2, 1]) as tf.Tensor3D, dy as tf.Tensor3D),
    ],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor3D;

/** A row-major [rows, cols] matrix transposed. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

export interface FullTrainerOptions {
  /** Positions per row of every batch. */
  seqLen: number;
  /** Backend to start (default: keep the active one, or `wasm`). */
  backend?: BackendName;
  /** wasm only: XNNPACK threads when the backend starts here. */
  wasmThreads?: number;
}

/**
 * The Llama decoder with every weight trainable. {@link lossAndGrads} runs a batch forward and backward;
 * {@link setParams} uploads new values after an optimizer step.
 */
export class LlamaFullTrainer {
  readonly specs: readonly FullTrainParamSpec[];
  private readonly vars: Map<string, tf.Variable>;
  private readonly cos: tf.Tensor4D;
  private readonly sin: tf.Tensor4D;
  private readonly mask: tf.Tensor2D;
  private disposed = false;

  private constructor(
    readonly config: LlamaConfig,
    readonly seqLen: number,
    readonly backend: string,
    params: readonly Float32Array[],
  ) {
    this.specs = fullTrainParamSpecs(config);
    const d = config.headDim;
    const rope = new RopeTable({ dim: d, theta: config.ropeTheta, scaling: config.ropeScaling });
    const { cos, sin } = rope.fullRows(Array.from({ length: seqLen }, (_, i) => i));
    this.cos = tf.tensor4d(cos, [1, seqLen, 1, d]);
    this.sin = tf.tensor4d(sin, [1, seqLen, 1, d]);
    const m = new Float32Array(seqLen * seqLen);
    for (let i = 0; i < seqLen; i++) for (let j = i + 1; j < seqLen; j++) m[i * seqLen + j] = -1e9;
    this.mask = tf.tensor2d(m, [seqLen, seqLen]);
    this.vars = new Map();
    this.specs.forEach((s, i) => {
      this.vars.set(s.name, tf.variable(tf.tensor(params[i], s.shape), true));
    });
  }

  /**
   * Starts the backend and uploads the parameters (one per {@link fullTrainParamSpecs} entry, in its layout).
   */
  static async create(
    config: LlamaConfig,
    params: readonly Float32Array[],
    opts: FullTrainerOptions,
  ): Promise<LlamaFullTrainer> {
    if (!(Number.isSafeInteger(opts.seqLen) && opts.seqLen > 0)) {
      throw new PolyglotError('TRAIN_BAD_ARG', `seqLen must be a positive integer, got ${opts.seqLen}`);
    }
    if (config.numAttentionHeads % config.numKeyValueHeads !== 0) {
      throw new PolyglotError('TRAIN_BAD_ARG', 'num_key_value_heads must divide num_attention_heads');
    }
    const backend =
      opts.backend !== undefined
        ? await initBackend(opts.backend, { wasmThreads: opts.wasmThreads })
        : (tf.getBackend() ?? (await initBackend('wasm', { wasmThreads: opts.wasmThreads })));
    switchBackendSync(backend);
    const specs = fullTrainParamSpecs(config);
    if (params.length !== specs.length) {
      throw new PolyglotError(
        'TRAIN_SHAPE',
        `LlamaFullTrainer: ${params.length} parameters given, the config has ${specs.length}`,
      );
    }
    specs.forEach((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (params[i].length !== n) {
        throw new PolyglotError(
          'TRAIN_SHAPE',
          `LlamaFullTrainer: ${s.name} has ${params[i].length} values, expected ${n} ([${s.shape.join(', ')}])`,
        );
      }
    });
    return new LlamaFullTrainer(config, opts.seqLen, backend, params);
  }

  /** Uploads new parameter values (after an optimizer step), in the order and layouts of {@link specs}. */
  setParams(params: readonly Float32Array[]): void {
    this.check();
    switchBackendSync(this.backend);
    this.specs.forEach((s, i) => {
      const t = tf.tensor(params[i], s.shape);
      this.vars.get(s.name)!.assign(t);
      t.dispose();
    });
  }

  /** Mean next-token NLL of a batch: `ids` and `labels` row-major [batch, seqLen], labels[t] following ids[t]. */
  async loss(ids: Int32Array, labels: Int32Array, batch: number): Promise<number> {
    this.check();
    switchBackendSync(this.backend);
    const l = tf.tidy(() => this.forward(ids, labels, batch));
    const v = (await l.data())[0];
    l.dispose();
    return v;
  }

  /** The loss and the gradient of every parameter (host copies, in the order and layouts of {@link specs}). */
  async lossAndGrads(
    ids: Int32Array,
    labels: Int32Array,
    batch: number,
  ): Promise<{ loss: number; grads: Float32Array[] }> {
    this.check();
    switchBackendSync(this.backend);
    const list = this.specs.map((s) => this.vars.get(s.name)!);
    const { value, grads } = tf.variableGrads(() => this.forward(ids, labels, batch), list);
    try {
      const loss = (await value.data())[0];
      const out = list.map((v) => {
        const g = grads[v.name];
        return g ? (g.dataSync() as Float32Array).slice() : new Float32Array(v.size);
      });
      return { loss, grads: out };
    } finally {
      value.dispose();
      for (const g of Object.values(grads)) g.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.vars.values()) v.dispose();
    this.cos.dispose();
    this.sin.dispose();
    this.mask.dispose();
  }

  private check(): void {
    if (this.disposed) throw new PolyglotError('TRAIN_DISPOSED', 'LlamaFullTrainer was disposed');
  }

  private p(name: string): tf.Tensor {
    return this.vars.get(name)!;
  }

  private rmsNorm(x: tf.Tensor, w: tf.Tensor): tf.Tensor2D {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), this.config.rmsNormEps));
    return tf.mul(tf.mul(x, r), w) as tf.Tensor2D;
  }

  private linear(x: tf.Tensor, name: string): tf.Tensor2D {
    const y = mm2(x, this.p(`${name}.weight`));
    const b = this.vars.get(`${name}.bias`);
    return b ? (tf.add(y, b) as tf.Tensor2D) : y;
  }

  /** x·cos + rotate_half(x)·sin over [B, T, heads, d]. */
  private rope(x4: tf.Tensor): tf.Tensor4D {
    const x = x4 as tf.Tensor4D;
    const half = x.shape[3] / 2;
    const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
    const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
    const rot = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, this.cos), tf.mul(rot, this.sin)) as tf.Tensor4D;
  }

  private forward(ids: Int32Array, labels: Int32Array, B: number): tf.Scalar {
    const c = this.config;
    const T = this.seqLen;
    const N = B * T;
    if (ids.length !== N || labels.length !== N) {
      throw new PolyglotError(
        'TRAIN_SHAPE',
        `LlamaFullTrainer: a batch of ${B}×${T} needs ${N} ids and labels, got ${ids.length} and ${labels.length}`,
      );
    }
    const V = c.vocabSize;
    const nH = c.numAttentionHeads;
    const nKV = c.numKeyValueHeads;
    const d = c.headDim;
    const group = nH / nKV;
    const embed = this.p('model.embed_tokens.weight') as tf.Tensor2D;
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(ids, 'int32'), V), 'float32') as tf.Tensor2D;
    let h: tf.Tensor = mm2(onehot, embed);
    const scale = 1 / Math.sqrt(d);
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const pre = `model.layers.${l}`;
      const x = this.rmsNorm(h, this.p(`${pre}.input_layernorm.weight`));
      const q = this.rope(tf.reshape(this.linear(x, `${pre}.self_attn.q_proj`), [B, T, nH, d]));
      const k = this.rope(tf.reshape(this.linear(x, `${pre}.self_attn.k_proj`), [B, T, nKV, d]));
      const v = tf.reshape(this.linear(x, `${pre}.self_attn.v_proj`), [B, T, nKV, d]);
      const qh = tf.transpose(q, [0, 2, 1, 3]); // [B, nH, T, d]
      let kh: tf.Tensor = tf.transpose(k, [0, 2, 1, 3]); // [B, nKV, T, d]
      let vh: tf.Tensor = tf.transpose(v, [0, 2, 1, 3]);
      if (group > 1) {
        const rep = (t: tf.Tensor) =>
          tf.reshape(tf.tile(tf.reshape(t, [B * nKV, 1, T * d]), [1, group, 1]), [B, nH, T, d]);
        kh = rep(kh);
        vh = rep(vh);
      }
      const BH = B * nH;
      const q3 = tf.reshape(qh, [BH, T, d]) as tf.Tensor3D;
      const kT3 = tf.reshape(tf.transpose(kh, [0, 1, 3, 2]), [BH, d, T]) as tf.Tensor3D;
      const v3 = tf.reshape(vh, [BH, T, d]) as tf.Tensor3D;
      const scores = tf.add(tf.mul(bmm(q3, kT3), scale), this.mask);
      const ctx = tf.reshape(bmm(tf.softmax(scores) as tf.Tensor3D, v3), [B, nH, T, d]);
      const attn = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [N, nH * d]) as tf.Tensor2D;
      h = tf.add(h, this.linear(attn, `${pre}.self_attn.o_proj`));
      const y = this.rmsNorm(h, this.p(`${pre}.post_attention_layernorm.weight`));
      const gate = this.linear(y, `${pre}.mlp.gate_proj`);
      const up = this.linear(y, `${pre}.mlp.up_proj`);
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
      h = tf.add(h, this.linear(act, `${pre}.mlp.down_proj`));
    }
    h = this.rmsNorm(h, this.p('model.norm.weight'));
    const logits = c.tieWordEmbeddings ? tf.matMul(h, embed, false, true) : mm2(h, this.p('lm_head.weight'));
    const logp = tf.logSoftmax(logits);
    const target = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), V), 'float32');
    return tf.div(tf.neg(tf.sum(tf.mul(logp, target))), N) as tf.Scalar;
  }
}
