/**
 * Random Llama weights in memory (a {@link WeightSource}): for benchmarks and tests of model shapes that no
 * checkpoint on disk has. Seeded and deterministic; linear weights ~N(0, std²), norm weights 1.
 */
import { expectedLlamaTensors } from '../checkpoint.js';
import type { LlamaConfig } from '../config.js';
import type { WeightSource } from './weights.js';

/** mulberry32: a small seeded PRNG giving floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Llama configuration with the given sizes and the usual defaults (no biases, untied, rope theta 10000). */
export function llamaConfig(sizes: {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads?: number;
  vocabSize: number;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings?: boolean;
}): LlamaConfig {
  const heads = sizes.numAttentionHeads;
  return {
    modelType: 'llama',
    architectures: ['LlamaForCausalLM'],
    hiddenSize: sizes.hiddenSize,
    intermediateSize: sizes.intermediateSize,
    numHiddenLayers: sizes.numHiddenLayers,
    numAttentionHeads: heads,
    numKeyValueHeads: sizes.numKeyValueHeads ?? heads,
    headDim: sizes.hiddenSize / heads,
    vocabSize: sizes.vocabSize,
    maxPositionEmbeddings: sizes.maxPositionEmbeddings ?? 2048,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: sizes.tieWordEmbeddings ?? false,
    attentionBias: false,
    mlpBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
    padTokenId: null,
    dtype: 'float32',
    raw: {},
  };
}

/** Every tensor the config implies, filled with seeded random values (generated when read). */
export function randomWeightSource(
  config: LlamaConfig,
  opts: { seed?: number; std?: number } = {},
): WeightSource {
  const shapes = expectedLlamaTensors(config);
  const names = [...shapes.keys()];
  const std = opts.std ?? 0.02;
  const seed = opts.seed ?? 0;
  return {
    config,
    dir: `random weights (seed ${seed})`,
    tensorNames: () => names,
    tensorInfo: (name) => {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`no tensor ${name}`);
      return { shape };
    },
    readFloat32: async (name) => {
      const shape = shapes.get(name)!;
      const n = shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      if (name.endsWith('norm.weight')) return out.fill(1);
      let h = seed;
      for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1);
      const rand = prng(h);
      for (let i = 0; i < n; i += 2) {
        // Box-Muller: two normals per pair of uniforms.
        const r = std * Math.sqrt(-2 * Math.log(1 - rand()));
        const a = 2 * Math.PI * rand();
        out[i] = r * Math.cos(a);
        if (i + 1 < n) out[i + 1] = r * Math.sin(a);
      }
      return out;
    },
  };
}

/**
 * The largest float32 weight the runtime uploads for a config, in bytes, and which one: the embedding / LM head
 * `[vocab, hidden]`, the fused q|k|v `[hidden, (heads + 2·kvHeads)·headDim]`, the MLP projections `[hidden, inter]`.
 */
export function largestWeight(config: LlamaConfig): { name: string; bytes: number } {
  const c = config;
  const list = [
    { name: 'model.embed_tokens.weight / lm_head.weight', n: c.vocabSize * c.hiddenSize },
    {
      name: 'the fused q|k|v projection',
      n: c.hiddenSize * (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim,
    },
    { name: 'an MLP projection', n: c.hiddenSize * c.intermediateSize },
  ];
  const top = list.reduce((a, b) => (b.n > a.n ? b : a));
  return { name: top.name, bytes: top.n * 4 };
}
