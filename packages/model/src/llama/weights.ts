/**
 * Loading Llama weights and LoRA adapters into the layout the runtime computes with.
 *
 * Linear weights are stored transposed, `[in, out]`, so that `x @ W` is a plain matmul (the wasm backend's fast
 * XNNPACK path takes only untransposed operands, and packs each weight once). q/k/v are fused into one
 * `[hidden, (heads + 2·kvHeads)·headDim]` matrix (the attention consumes it whole); gate and up stay separate
 * (splitting a fused output would cost a copy of it on wasm, more than the second matmul's call). LoRA factors follow the same fusion: the A factors of a fused group are concatenated
 * (`[in, Σr]`), the B factors form a block matrix `[Σr, out]` with the scale folded in, so an un-merged adapter
 * adds two small matmuls per fused projection: `y = x W + (x A) B`.
 */
import * as tf from '@tensorflow/tfjs';
import { type Adapter, loadAdapterTensors, readAdapter } from '../adapter.js';
import { expectedLlamaTensors } from '../checkpoint.js';
import type { LlamaConfig } from '../config.js';
import { ModelFormatError } from '../errors.js';
import { mergeLoraInto } from '../lora-kernel.js';
import { switchBackendSync } from './backend.js';

/** Where the weights come from: a {@link Checkpoint} satisfies it; tests and tools can pass their own. */
export interface WeightSource {
  readonly config: LlamaConfig;
  /** Where the weights are, for messages (a checkpoint's directory). */
  readonly dir?: string;
  tensorNames(): string[];
  tensorInfo(name: string): { shape: number[] };
  readFloat32(name: string): Promise<Float32Array>;
}

/** A LoRA adapter: a PEFT adapter directory, or one already read with {@link readAdapter}. */
export type AdapterInput = string | Adapter;

export const PROJECTIONS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** The fused projection groups and their members, in column order. */
export const GROUPS = {
  qkv: ['q_proj', 'k_proj', 'v_proj'],
  o: ['o_proj'],
  gate: ['gate_proj'],
  up: ['up_proj'],
  down: ['down_proj'],
} as const satisfies Record<string, readonly Projection[]>;
export type Group = keyof typeof GROUPS;

export function projectionWeightName(layer: number, proj: Projection): string {
  const part = proj === 'gate_proj' || proj === 'up_proj' || proj === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${part}.${proj}`;
}

const PROJ_WEIGHT =
  /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

export interface LinearWeights {
  /** [in, out] */
  w: tf.Tensor2D;
  bias: tf.Tensor1D | null;
}

export interface LayerWeights {
  inputNorm: tf.Tensor1D;
  postNorm: tf.Tensor1D;
  qkv: LinearWeights;
  o: LinearWeights;
  gate: LinearWeights;
  up: LinearWeights;
  down: LinearWeights;
}

export interface LoraPair {
  /** [in, Σr] */
  a: tf.Tensor2D;
  /** [Σr, out], scale folded in */
  b: tf.Tensor2D;
}

export type LayerLora = Partial<Record<Group, LoraPair>>;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Checks the model configuration the runtime depends on. */
export function checkConfig(config: LlamaConfig, where: string): void {
  const { numAttentionHeads: h, numKeyValueHeads: kv, headDim: d } = config;
  if (!(h > 0 && kv > 0 && h % kv === 0)) {
    throw new ModelFormatError(
      'CONFIG_INVALID',
      `${where}: num_attention_heads (${h}) must be a positive multiple of num_key_value_heads (${kv})`,
    );
  }
  if (!(d > 0 && d % 2 === 0)) {
    throw new ModelFormatError('CONFIG_INVALID', `${where}: head_dim (${d}) must be a positive even number`);
  }
}

/**
 * Checks that the source holds every tensor the config implies with the implied shape (extra tensors are
 * ignored). Returns the expected shapes.
 */
export function checkWeights(src: WeightSource): Map<string, number[]> {
  const where = src.dir ?? 'the weights';
  const expected = expectedLlamaTensors(src.config);
  const names = new Set(src.tensorNames());
  const missing = [...expected.keys()].filter((n) => !names.has(n));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).map((n) => `"${n}" ${fmt(expected.get(n)!)}`);
    throw new ModelFormatError(
      'CHECKPOINT_MISSING_TENSOR',
      `${where}: ${missing.length} tensor(s) the config implies are missing: ${shown.join(', ')}` +
        (missing.length > 5 ? ', …' : '') +
        ' (config.json does not match the weights, or the checkpoint is incomplete)',
    );
  }
  for (const [name, shape] of expected) {
    const found = src.tensorInfo(name).shape;
    if (!sameShape(found, shape)) {
      throw new ModelFormatError(
        'CHECKPOINT_SHAPE_MISMATCH',
        `${where}: tensor "${name}" has shape ${fmt(found)} but the config implies ${fmt(shape)}`,
      );
    }
  }
  return expected;
}

async function readChecked(src: WeightSource, name: string, shape: readonly number[]): Promise<Float32Array> {
  const data = await src.readFloat32(name);
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new ModelFormatError(
      'CHECKPOINT_SHAPE_MISMATCH',
      `${src.dir ?? 'the weights'}: tensor "${name}" holds ${data.length} values, expected ${fmt(shape)} (${n})`,
    );
  }
  return data;
}

/** Writes `src` ([rows, cols], row-major) transposed into columns `colOffset..` of `dst` ([cols, dstCols]). */
export function transposeInto(
  src: Float32Array,
  rows: number,
  cols: number,
  dst: Float32Array,
  dstCols: number,
  colOffset: number,
): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let c = c0; c < c1; c++) {
        const o = c * dstCols + colOffset;
        for (let r = r0; r < r1; r++) dst[o + r] = src[r * cols + c];
      }
    }
  }
}

interface AdapterFactors {
  r: number;
  scale: number;
  /** [r, in] */
  a: Float32Array;
  /** [out, r] */
  b: Float32Array;
}

/** One adapter's factors by base weight name, checked against the model's expected shapes. */
export interface LoadedAdapter {
  name: string;
  dir: string;
  modules: Map<string, AdapterFactors>;
}

/** Reads and checks an adapter against the model (every target must be a projection the model has, same shapes). */
export async function loadAdapter(
  name: string,
  input: AdapterInput,
  expected: Map<string, number[]>,
  config: LlamaConfig,
): Promise<LoadedAdapter> {
  const adapter = typeof input === 'string' ? await readAdapter(input) : input;
  const where = `adapter '${name}' (${adapter.dir})`;
  if (adapter.otherTensors.length > 0) {
    throw new ModelFormatError(
      'ADAPTER_UNSUPPORTED',
      `${where} holds tensors that are not LoRA factors (${adapter.otherTensors.slice(0, 3).join(', ')}): ` +
        'modules_to_save and trained biases are not supported by the runtime; merge the adapter with PEFT instead',
    );
  }
  if (adapter.modules.length === 0) {
    throw new ModelFormatError('ADAPTER_EMPTY', `${where} has no LoRA modules`);
  }
  for (const m of adapter.modules) {
    const shape = expected.get(m.baseWeight);
    if (!shape) {
      throw new ModelFormatError(
        'ADAPTER_MODEL_MISMATCH',
        `${where} targets ${m.module}, which this model does not have (${config.numHiddenLayers} layers): ` +
          'the adapter was trained for a different model',
      );
    }
    if (!PROJ_WEIGHT.test(m.baseWeight)) {
      throw new ModelFormatError(
        'ADAPTER_UNSUPPORTED',
        `${where} targets ${m.module}; the runtime applies LoRA to the attention and MLP projections only`,
      );
    }
    const [out, inDim] = shape;
    const wantA = [m.r, inDim];
    const wantB = [out, m.r];
    if (!sameShape(m.aShape, wantA) || !sameShape(m.bShape, wantB)) {
      const bad = !sameShape(m.aShape, wantA)
        ? { key: m.aKey, got: m.aShape, want: wantA }
        : { key: m.bKey, got: m.bShape, want: wantB };
      throw new ModelFormatError(
        'ADAPTER_SHAPE_MISMATCH',
        `${where}: tensor "${bad.key}" has shape ${fmt(bad.got)} but ${m.baseWeight} ${fmt(shape)} with r=${m.r} ` +
          `needs ${fmt(bad.want)}: the adapter was trained for a different model`,
      );
    }
  }
  const keys = adapter.modules.flatMap((m) => [m.aKey, m.bKey]);
  const data = await loadAdapterTensors(adapter, keys);
  const modules = new Map<string, AdapterFactors>();
  for (const m of adapter.modules) {
    modules.set(m.baseWeight, { r: m.r, scale: m.scale, a: data.get(m.aKey)!, b: data.get(m.bKey)! });
  }
  return { name, dir: adapter.dir, modules };
}

export interface ModelWeights {
  embed: tf.Tensor2D;
  /** [hidden, vocab] */
  lmHead: tf.Tensor2D;
  finalNorm: tf.Tensor1D;
  layers: LayerWeights[];
}

export function disposeWeights(w: ModelWeights): void {
  w.embed.dispose();
  w.lmHead.dispose();
  w.finalNorm.dispose();
  for (const l of w.layers) {
    for (const t of [l.inputNorm, l.postNorm]) t.dispose();
    for (const lin of [l.qkv, l.o, l.gate, l.up, l.down]) {
      lin.w.dispose();
      lin.bias?.dispose();
    }
  }
}

export function disposeLora(layers: LayerLora[]): void {
  for (const l of layers) {
    for (const p of Object.values(l)) {
      p?.a.dispose();
      p?.b.dispose();
    }
  }
}

/**
 * Reads the weights, merges `merged` adapters into them (W + scale·BA, in host memory), fuses and transposes the
 * projections and uploads every tensor once.
 */
export async function loadModelWeights(
  src: WeightSource,
  expected: Map<string, number[]>,
  merged: LoadedAdapter[],
  backend: string,
): Promise<ModelWeights> {
  const c = src.config;
  const created: tf.Tensor[] = [];
  // Reads are awaited between uploads: each upload re-selects the model's backend in case other work switched it.
  const up1 = (data: Float32Array): tf.Tensor1D => {
    switchBackendSync(backend);
    const t = tf.tensor1d(data, 'float32');
    created.push(t);
    return t;
  };
  const up2 = (data: Float32Array, shape: [number, number]): tf.Tensor2D => {
    switchBackendSync(backend);
    const t = tf.tensor2d(data, shape, 'float32');
    created.push(t);
    return t;
  };
  try {
    const embedData = await readChecked(
      src,
      'model.embed_tokens.weight',
      expected.get('model.embed_tokens.weight')!,
    );
    const embed = up2(embedData, [c.vocabSize, c.hiddenSize]);
    const headData = c.tieWordEmbeddings
      ? embedData
      : await readChecked(src, 'lm_head.weight', [c.vocabSize, c.hiddenSize]);
    const headT = new Float32Array(headData.length);
    transposeInto(headData, c.vocabSize, c.hiddenSize, headT, c.vocabSize, 0);
    const lmHead = up2(headT, [c.hiddenSize, c.vocabSize]);
    const finalNorm = up1(await readChecked(src, 'model.norm.weight', [c.hiddenSize]));

    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const prefix = `model.layers.${l}`;
      const inputNorm = up1(await readChecked(src, `${prefix}.input_layernorm.weight`, [c.hiddenSize]));
      const postNorm = up1(
        await readChecked(src, `${prefix}.post_attention_layernorm.weight`, [c.hiddenSize]),
      );
      const group = async (g: Group, bias: boolean): Promise<LinearWeights> => {
        const parts = GROUPS[g].map((p) => projectionWeightName(l, p));
        const shapes = parts.map((p) => expected.get(`${p}.weight`)!);
        const inDim = shapes[0][1];
        const outTotal = shapes.reduce((s, sh) => s + sh[0], 0);
        const fused = new Float32Array(inDim * outTotal);
        const fusedBias = bias ? new Float32Array(outTotal) : null;
        let off = 0;
        for (let i = 0; i < parts.length; i++) {
          const [out] = shapes[i];
          const w = await readChecked(src, `${parts[i]}.weight`, shapes[i]);
          for (const ad of merged) {
            const f = ad.modules.get(`${parts[i]}.weight`);
            if (f) mergeLoraInto(w, [out, inDim], f.a, f.b, f.scale, { name: parts[i] });
          }
          transposeInto(w, out, inDim, fused, outTotal, off);
          if (fusedBias) fusedBias.set(await readChecked(src, `${parts[i]}.bias`, [out]), off);
          off += out;
        }
        return { w: up2(fused, [inDim, outTotal]), bias: fusedBias ? up1(fusedBias) : null };
      };
      layers.push({
        inputNorm,
        postNorm,
        qkv: await group('qkv', c.attentionBias),
        o: await group('o', c.attentionBias),
        gate: await group('gate', c.mlpBias),
        up: await group('up', c.mlpBias),
        down: await group('down', c.mlpBias),
      });
    }
    return { embed, lmHead, finalNorm, layers };
  } catch (e) {
    for (const t of created) t.dispose();
    throw e;
  }
}

/** An un-merged adapter as per-layer fused factors on the backend. */
export function uploadLora(
  ad: LoadedAdapter,
  expected: Map<string, number[]>,
  numLayers: number,
): LayerLora[] {
  const created: tf.Tensor[] = [];
  try {
    const layers: LayerLora[] = [];
    for (let l = 0; l < numLayers; l++) {
      const layer: LayerLora = {};
      for (const g of Object.keys(GROUPS) as Group[]) {
        const parts = GROUPS[g].map((p) => `${projectionWeightName(l, p)}.weight`);
        const shapes = parts.map((p) => expected.get(p)!);
        const factors = parts.map((p) => ad.modules.get(p));
        if (factors.every((f) => !f)) continue;
        const inDim = shapes[0][1];
        const outTotal = shapes.reduce((s, sh) => s + sh[0], 0);
        const rTotal = factors.reduce((s, f) => s + (f?.r ?? 0), 0);
        const a = new Float32Array(inDim * rTotal);
        const b = new Float32Array(rTotal * outTotal);
        let rOff = 0;
        let outOff = 0;
        for (let i = 0; i < parts.length; i++) {
          const f = factors[i];
          const out = shapes[i][0];
          if (f) {
            transposeInto(f.a, f.r, inDim, a, rTotal, rOff); // A [r, in] -> columns of [in, Σr]
            // B [out, r] -> rows rOff.. of [Σr, outTotal], columns outOff..; scale folded in.
            for (let o = 0; o < out; o++) {
              for (let k = 0; k < f.r; k++)
                b[(rOff + k) * outTotal + outOff + o] = f.b[o * f.r + k] * f.scale;
            }
            rOff += f.r;
          }
          outOff += out;
        }
        const at = tf.tensor2d(a, [inDim, rTotal]);
        created.push(at);
        const bt = tf.tensor2d(b, [rTotal, outTotal]);
        created.push(bt);
        layer[g] = { a: at, b: bt };
      }
      layers.push(layer);
    }
    return layers;
  } catch (e) {
    for (const t of created) t.dispose();
    throw e;
  }
}
