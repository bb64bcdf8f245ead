/** config.json of a Hugging Face Llama-family model (what `transformers` `save_pretrained` writes, 4.x and 5.x). */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ModelFormatError } from './errors.js';

export interface LlamaConfig {
  modelType: string;
  architectures: string[];
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Defaults to numAttentionHeads (no GQA). */
  numKeyValueHeads: number;
  /** Defaults to hiddenSize / numAttentionHeads. */
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  /** From rope_theta, or rope_parameters.rope_theta (transformers 5); default 10000. */
  ropeTheta: number;
  /** From rope_scaling, or rope_parameters when its rope_type is not 'default'; `type` is the rope type. */
  ropeScaling: { type: string; factor?: number; [k: string]: unknown } | null;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** 'float32' | 'float16' | 'bfloat16', from dtype (transformers 5) or torch_dtype. */
  dtype: string | null;
  /** The parsed config.json. */
  raw: Record<string, unknown>;
}

const MODEL_TYPES = new Set(['llama', 'mistral']);
const DTYPES = new Set(['float32', 'float16', 'bfloat16']);

/** Validate a parsed config.json; errors name `where` (the file) and the field. */
export function parseLlamaConfig(json: unknown, where: string): LlamaConfig {
  const bad = (field: string, what: string): never => {
    throw new ModelFormatError('CONFIG_INVALID', `${where}: "${field}" ${what}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelFormatError('CONFIG_INVALID', `${where}: config.json is not a JSON object`);
  }
  const raw = json as Record<string, unknown>;
  const has = (k: string) => raw[k] !== undefined && raw[k] !== null;

  const modelType = raw.model_type;
  if (typeof modelType !== 'string' || !MODEL_TYPES.has(modelType)) {
    throw new ModelFormatError(
      'CONFIG_ARCHITECTURE',
      `unknown architecture ${modelType === undefined ? '(no model_type)' : JSON.stringify(modelType)} in ${where}: ` +
        'polyglot runs Llama-family models (LlamaForCausalLM)',
    );
  }
  const posInt = (k: string, fallback?: number): number => {
    if (!has(k)) return fallback ?? bad(k, 'is missing');
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
      bad(k, `must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const posNumber = (v: unknown, field: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      bad(field, `must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (k: string, fallback: boolean): boolean => {
    if (!has(k)) return fallback;
    if (typeof raw[k] !== 'boolean') bad(k, `must be true or false, got ${JSON.stringify(raw[k])}`);
    return raw[k] as boolean;
  };
  const tokenId = (k: string, fallback: number | null): number | null => {
    if (raw[k] === undefined) return fallback;
    if (raw[k] === null) return null;
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      bad(k, `must be a token id, got ${JSON.stringify(v)}`);
    return v as number;
  };

  let architectures: string[] = [];
  if (has('architectures')) {
    const a = raw.architectures;
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string'))
      bad('architectures', 'must be a list of names');
    architectures = [...(a as string[])];
  }
  if (has('hidden_act') && raw.hidden_act !== 'silu') {
    bad('hidden_act', `is ${JSON.stringify(raw.hidden_act)}: Llama-family models use "silu"`);
  }

  const hiddenSize = posInt('hidden_size');
  const intermediateSize = posInt('intermediate_size');
  const numHiddenLayers = posInt('num_hidden_layers');
  const numAttentionHeads = posInt('num_attention_heads');
  const numKeyValueHeads = posInt('num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    bad(
      'num_key_value_heads',
      `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`,
    );
  }
  if (!has('head_dim') && hiddenSize % numAttentionHeads !== 0) {
    bad(
      'num_attention_heads',
      `(${numAttentionHeads}) must divide hidden_size (${hiddenSize}) when head_dim is not given`,
    );
  }
  const headDim = posInt('head_dim', hiddenSize / numAttentionHeads);
  const vocabSize = posInt('vocab_size');
  // transformers' defaults where config.json leaves a field out
  const maxPositionEmbeddings = posInt('max_position_embeddings', modelType === 'mistral' ? 4096 * 32 : 2048);
  const rmsNormEps = has('rms_norm_eps') ? posNumber(raw.rms_norm_eps, 'rms_norm_eps') : 1e-6;

  // RoPE: transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; older files rope_theta + rope_scaling.
  let ropeTheta = 10000;
  let ropeScaling: LlamaConfig['ropeScaling'] = null;
  const ropeField = has('rope_parameters') ? 'rope_parameters' : has('rope_scaling') ? 'rope_scaling' : null;
  if (has('rope_theta')) ropeTheta = posNumber(raw.rope_theta, 'rope_theta');
  if (ropeField) {
    const rp = raw[ropeField];
    if (typeof rp !== 'object' || rp === null || Array.isArray(rp)) bad(ropeField, 'must be an object');
    const { rope_theta, ...rest } = rp as Record<string, unknown>;
    if (rope_theta !== undefined) ropeTheta = posNumber(rope_theta, `${ropeField}.rope_theta`);
    const type = rest.rope_type ?? rest.type ?? 'default';
    if (typeof type !== 'string') bad(`${ropeField}.rope_type`, 'must be a string');
    if (rest.factor !== undefined) posNumber(rest.factor, `${ropeField}.factor`);
    if (type !== 'default') ropeScaling = { ...rest, type: type as string };
  }

  let eosTokenId: number | number[] | null;
  if (Array.isArray(raw.eos_token_id)) {
    if (!raw.eos_token_id.every((v) => Number.isSafeInteger(v) && v >= 0))
      bad('eos_token_id', 'must be token ids');
    eosTokenId = [...(raw.eos_token_id as number[])];
  } else {
    eosTokenId = tokenId('eos_token_id', 2);
  }

  let dtype: string | null = null;
  const dtypeField = has('dtype') ? 'dtype' : has('torch_dtype') ? 'torch_dtype' : null;
  if (dtypeField) {
    const d = raw[dtypeField];
    if (typeof d !== 'string' || !DTYPES.has(d))
      bad(dtypeField, `must be float32, float16 or bfloat16, got ${JSON.stringify(d)}`);
    dtype = d as string;
  }

  return {
    modelType,
    architectures,
    hiddenSize,
    intermediateSize,
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings,
    rmsNormEps,
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias: bool('attention_bias', false),
    mlpBias: bool('mlp_bias', false),
    bosTokenId: tokenId('bos_token_id', 1),
    eosTokenId,
    padTokenId: tokenId('pad_token_id', null),
    dtype,
    raw,
  };
}

/** Read and validate DIR/config.json. */
export async function readLlamaConfig(dir: string): Promise<LlamaConfig> {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ModelFormatError(
      missing ? 'CONFIG_MISSING' : 'CONFIG_UNREADABLE',
      missing
        ? `${file} not found: a model directory needs the config.json that transformers' save_pretrained writes`
        : `cannot read ${file}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError('CONFIG_INVALID', `${file} is not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return parseLlamaConfig(json, file);
}
