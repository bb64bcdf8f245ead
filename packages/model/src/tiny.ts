/**
 * Tiny, self-contained Llama models that the project defines itself (nothing downloaded): a byte-level
 * tokenizer (3 special tokens + the 256 bytes, vocabulary 259), a chat template, a few small configurations and
 * a seeded Hugging Face-style random initialisation written as a normal checkpoint directory (config.json,
 * model.safetensors in F32, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
 * generation_config.json). `polyglot reproduce` pre-trains one of these into its English-centric base model.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expectedLlamaTensors } from './checkpoint.js';
import type { LlamaConfig } from './config.js';
import { PolyglotError } from './errors.js';
import { writeJsonAtomic } from './fsutil.js';
import { llamaConfig } from './llama/random.js';
import { type TensorToWrite, writeSafetensors } from './safetensors.js';
import { BUILTIN_TEMPLATES } from './template.js';

/** Special tokens of the byte-level tokenizer, ids 0, 1, 2; the 256 bytes follow at ids 3..258. */
export const BYTE_SPECIAL_TOKENS = ['<unk>', '<s>', '</s>'] as const;
/** Id of byte b is b + BYTE_OFFSET. */
export const BYTE_OFFSET = 3;
/** Vocabulary of the byte-level tokenizer. */
export const BYTE_VOCAB_SIZE = 256 + BYTE_OFFSET;

/** GPT-2's bytes_to_unicode: the printable character that stands for each byte in ByteLevel vocabularies. */
export function byteToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => {
    out[b] = String.fromCodePoint(cs[i]);
  });
  return out;
}

/**
 * tokenizer.json of the byte-level tokenizer (Hugging Face tokenizers format): a BPE model without merges over
 * `<unk>` `<s>` `</s>` (ids 0–2) and the 256 ByteLevel byte symbols (ids 3–258, byte b at b + 3), a ByteLevel
 * pre-tokenizer (no prefix space; `use_regex` false: with no merges the GPT-2 split changes nothing) and decoder,
 * and a post-processor that adds `<s>` in front as Llama's does. Every UTF-8 text round-trips byte for byte.
 */
export function byteLevelTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  BYTE_SPECIAL_TOKENS.forEach((t, i) => {
    vocab[t] = i;
  });
  byteToUnicode().forEach((ch, b) => {
    vocab[ch] = b + BYTE_OFFSET;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: BYTE_SPECIAL_TOKENS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export interface TokenizerConfigOptions {
  /** model_max_length; default 2048. */
  modelMaxLength?: number;
  /** Chat template source; default the builtin `guanaco` template (the paper's format). */
  chatTemplate?: string;
}

/** tokenizer_config.json for {@link byteLevelTokenizerJson}: BOS added, no EOS, guanaco chat template. */
export function tokenizerConfigJson(opts: TokenizerConfigOptions = {}): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  BYTE_SPECIAL_TOKENS.forEach((content, id) => {
    decoder[String(id)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  });
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    chat_template: opts.chatTemplate ?? BUILTIN_TEMPLATES.guanaco,
    clean_up_tokenization_spaces: false,
    model_max_length: opts.modelMaxLength ?? 2048,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}

/** special_tokens_map.json for {@link byteLevelTokenizerJson}. */
export function specialTokensMapJson(): Record<string, unknown> {
  return { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
}

export type TinyPreset = 'smoke' | 'tiny';

/**
 * The project's tiny Llama configurations (byte-level vocabulary 259, untied head, no GQA, rope theta 10000,
 * rms_norm_eps 1e-5): `smoke` (~0.13 M parameters) pre-trains in seconds; `tiny` (~0.87 M) in a few minutes on
 * two CPU cores with the wasm backend.
 */
export const TINY_CONFIGS: Record<TinyPreset, LlamaConfig> = {
  smoke: llamaConfig({
    hiddenSize: 64,
    intermediateSize: 176,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    vocabSize: BYTE_VOCAB_SIZE,
    maxPositionEmbeddings: 512,
  }),
  tiny: llamaConfig({
    hiddenSize: 128,
    intermediateSize: 352,
    numHiddenLayers: 4,
    numAttentionHeads: 4,
    vocabSize: BYTE_VOCAB_SIZE,
    maxPositionEmbeddings: 1024,
  }),
};

/** config.json (transformers' LlamaConfig, as save_pretrained writes it) for a {@link LlamaConfig}. */
export function llamaConfigJson(config: LlamaConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: config.architectures.length > 0 ? config.architectures : ['LlamaForCausalLM'],
    attention_bias: config.attentionBias,
    attention_dropout: 0.0,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    head_dim: config.headDim,
    hidden_act: 'silu',
    hidden_size: config.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: config.intermediateSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    mlp_bias: config.mlpBias,
    model_type: config.modelType,
    num_attention_heads: config.numAttentionHeads,
    num_hidden_layers: config.numHiddenLayers,
    num_key_value_heads: config.numKeyValueHeads,
    pretraining_tp: 1,
    rms_norm_eps: config.rmsNormEps,
    rope_scaling: config.ropeScaling,
    rope_theta: config.ropeTheta,
    tie_word_embeddings: config.tieWordEmbeddings,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: config.vocabSize,
  };
  if (config.padTokenId !== null) json.pad_token_id = config.padTokenId;
  return json;
}

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

/**
 * transformers' `LlamaPreTrainedModel._init_weights` in float32: every linear and embedding weight ~N(0, std²)
 * (std = initializer_range, 0.02), norm weights 1. Deterministic: tensor `name` draws from a generator seeded by
 * (seed, name), so the values do not depend on the order tensors are made in.
 */
export function initLlamaWeights(
  config: LlamaConfig,
  opts: { seed?: number; std?: number } = {},
): Map<string, { shape: number[]; data: Float32Array }> {
  const std = opts.std ?? 0.02;
  const seed = opts.seed ?? 0;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedLlamaTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('norm.weight')) {
      data.fill(1);
    } else {
      let h = Math.imul(seed >>> 0, 0x85ebca6b) ^ 0x9e3779b9;
      for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1);
      const rand = prng(h);
      for (let i = 0; i < n; i += 2) {
        // Box–Muller: two normals per pair of uniforms.
        const r = std * Math.sqrt(-2 * Math.log(1 - rand()));
        const a = 2 * Math.PI * rand();
        data[i] = r * Math.cos(a);
        if (i + 1 < n) data[i + 1] = r * Math.sin(a);
      }
    }
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Writes the tokenizer files of the byte-level tokenizer into `dir` (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json), each atomically.
 */
export async function writeByteTokenizer(dir: string, opts: TokenizerConfigOptions = {}): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await writeJsonAtomic(path.join(dir, 'tokenizer.json'), byteLevelTokenizerJson());
  await writeJsonAtomic(path.join(dir, 'tokenizer_config.json'), tokenizerConfigJson(opts));
  await writeJsonAtomic(path.join(dir, 'special_tokens_map.json'), specialTokensMapJson());
}

/**
 * Writes a complete checkpoint directory for `config` with the given weights (Hugging Face names and layouts,
 * F32): model.safetensors, config.json, generation_config.json and the byte-level tokenizer files. Each file is
 * written atomically; config.json last.
 */
export async function writeLlamaCheckpoint(
  dir: string,
  config: LlamaConfig,
  weights: Map<string, { shape: number[]; data: Float32Array }>,
  opts: { metadata?: Record<string, string> } = {},
): Promise<void> {
  const expected = expectedLlamaTensors(config);
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (!w || w.data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new PolyglotError(
        'TINY_MISSING_WEIGHT',
        `writeLlamaCheckpoint: weight "${name}" [${shape.join(', ')}] is missing or has the wrong size`,
      );
    }
    tensors[name] = { dtype: 'F32', shape, data: w.data };
  }
  await fsp.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, {
    format: 'pt',
    ...opts.metadata,
  });
  await writeByteTokenizer(dir, { modelMaxLength: config.maxPositionEmbeddings });
  await writeJsonAtomic(path.join(dir, 'generation_config.json'), {
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
  });
  await writeJsonAtomic(path.join(dir, 'config.json'), llamaConfigJson(config));
}

/**
 * A freshly initialised model of `config` (see {@link initLlamaWeights}) written to `dir` as a normal
 * checkpoint directory with the byte-level tokenizer. The config's vocabulary must be {@link BYTE_VOCAB_SIZE}.
 */
export async function writeRandomLlama(
  dir: string,
  config: LlamaConfig,
  opts: { seed?: number; std?: number } = {},
): Promise<void> {
  if (config.vocabSize !== BYTE_VOCAB_SIZE) {
    throw new PolyglotError(
      'TINY_BAD_CONFIG',
      `writeRandomLlama: the byte-level tokenizer has ${BYTE_VOCAB_SIZE} tokens but the config's vocab_size is ` +
        `${config.vocabSize}`,
    );
  }
  await writeLlamaCheckpoint(dir, config, initLlamaWeights(config, opts));
}
