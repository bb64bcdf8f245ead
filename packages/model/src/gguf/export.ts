/**
 * Hugging Face Llama checkpoints (and PEFT LoRA adapters) as GGUF files for llama.cpp, following llama.cpp's
 * convert_hf_to_gguf.py / convert_lora_to_gguf.py: `llama.*` hyper-parameters, the tokenizer (see tokenizer.ts),
 * tensors renamed to ggml's names, q/k projections permuted from transformers' rotate-half layout to llama.cpp's
 * interleaved one, and the weights stored as F32, F16 or Q8_0 (norms stay F32, as llama.cpp keeps them).
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { type Adapter, type LoraModule, loadAdapterTensors, readAdapter } from '../adapter.js';
import { Checkpoint, validateLlamaCheckpoint } from '../checkpoint.js';
import type { LlamaConfig } from '../config.js';
import { ModelFormatError } from '../errors.js';
import { Tokenizer } from '../tokenizer.js';
import { GgmlType, GgufFileType, type GgufTensorSpec, type GgufValue, gguf, writeGguf } from './format.js';
import { encodeTensor, Q8_0_BLOCK } from './quant.js';
import { ggufTokenizerMetadata } from './tokenizer.js';

/** The weight types `exportGguf` writes. */
export const GGUF_DTYPES = ['f32', 'f16', 'q8_0'] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];

/**
 * Metadata keys of polyglot's own (llama.cpp ignores them): the source files, so a GGUF is self-contained for us.
 * Each holds the file's text as an array of strings of at most 16,384 UTF-16 units (join them: {@link ggufText}):
 * readers that fetch the header in chunks (Hugging Face's @huggingface/gguf, 2 MB) cut a long single string at a
 * chunk boundary, while arrays of strings read whole.
 */
export const POLYGLOT_GGUF_KEYS = {
  tokenizerJson: 'polyglot.tokenizer.json',
  tokenizerConfig: 'polyglot.tokenizer_config.json',
  specialTokensMap: 'polyglot.special_tokens_map.json',
  chatTemplate: 'polyglot.chat_template.jinja',
  config: 'polyglot.config.json',
  generationConfig: 'polyglot.generation_config.json',
  adapter: 'polyglot.merged_adapter',
} as const;

const TEXT_CHUNK = 16_384;

/** A text as GGUF string chunks (never splitting a surrogate pair). */
export function textChunks(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(text.length, i + TEXT_CHUNK);
    const c = text.charCodeAt(end - 1);
    if (end < text.length && c >= 0xd800 && c <= 0xdbff) end--;
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

/** A `polyglot.*` text value of a GGUF header (string chunks, or one string), or undefined. */
export function ggufText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join('');
  return undefined;
}

export interface ExportGgufOptions {
  /** Weight type of the matrices; default f16. Norms are F32 always; Q8_0 falls back to F16 for rows not a multiple of 32. */
  dtype?: GgufDtype;
  /** Directory of the tokenizer files (tokenizer.json, tokenizer_config.json, …); default the model directory. */
  tokenizer?: string;
  /** `general.name`; default the directory's name. */
  name?: string;
  /** A PEFT LoRA adapter to merge into the weights while exporting (W + scale · B·A in float32). */
  mergeAdapter?: string;
  /** Called after each tensor is written. */
  onTensor?: (index: number, total: number, name: string) => void;
}

export interface ExportGgufResult {
  file: string;
  bytes: number;
  dtype: GgufDtype;
  /** `llama` or `gpt2`. */
  tokenizerModel: string;
  /** GGUF tensor name → ggml type name (F32, F16, Q8_0). */
  tensorTypes: Record<string, string>;
}

const LAYER_MAP: [string, string][] = [
  ['self_attn.q_proj', 'attn_q'],
  ['self_attn.k_proj', 'attn_k'],
  ['self_attn.v_proj', 'attn_v'],
  ['self_attn.o_proj', 'attn_output'],
  ['mlp.gate_proj', 'ffn_gate'],
  ['mlp.up_proj', 'ffn_up'],
  ['mlp.down_proj', 'ffn_down'],
  ['input_layernorm', 'attn_norm'],
  ['post_attention_layernorm', 'ffn_norm'],
];

/** The GGUF (ggml) name of a Hugging Face Llama tensor, or null for ones llama.cpp does not use (rotary inv_freq). */
export function ggufTensorName(hfName: string): string | null {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  if (m) {
    const hit = LAYER_MAP.find(([hf]) => hf === m[2]);
    if (hit) return `blk.${m[1]}.${hit[1]}.${m[3]}`;
  }
  if (/rotary_emb\.inv_freq$/.test(hfName)) return null;
  throw new ModelFormatError('GGUF_UNKNOWN_TENSOR', `tensor ${hfName} has no GGUF name (not a Llama tensor)`);
}

/**
 * transformers' q/k rows (per head: the first halves of the rotary pairs, then the second halves) in llama.cpp's
 * order (pairs adjacent): convert_hf_to_gguf's `permute`, on rows of length `cols` (1 for a bias).
 */
export function permuteRotary(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const to = (h * headDim + 2 * i + j) * cols;
        const from = (h * headDim + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/** The `llama.*` and `general.*` keys of a model. */
function modelMetadata(config: LlamaConfig, name: string, fileType: GgufFileType): Map<string, GgufValue> {
  const m = new Map<string, GgufValue>();
  m.set('general.architecture', gguf.str('llama'));
  m.set('general.type', gguf.str('model'));
  m.set('general.name', gguf.str(name));
  m.set('general.file_type', gguf.u32(fileType));
  m.set('general.quantization_version', gguf.u32(2));
  m.set('llama.vocab_size', gguf.u32(config.vocabSize));
  m.set('llama.context_length', gguf.u32(config.maxPositionEmbeddings));
  m.set('llama.embedding_length', gguf.u32(config.hiddenSize));
  m.set('llama.block_count', gguf.u32(config.numHiddenLayers));
  m.set('llama.feed_forward_length', gguf.u32(config.intermediateSize));
  m.set('llama.rope.dimension_count', gguf.u32(config.headDim));
  m.set('llama.attention.head_count', gguf.u32(config.numAttentionHeads));
  m.set('llama.attention.head_count_kv', gguf.u32(config.numKeyValueHeads));
  m.set('llama.attention.key_length', gguf.u32(config.headDim));
  m.set('llama.attention.value_length', gguf.u32(config.headDim));
  m.set('llama.attention.layer_norm_rms_epsilon', gguf.f32(config.rmsNormEps));
  m.set('llama.rope.freq_base', gguf.f32(config.ropeTheta));
  const rs = config.ropeScaling;
  if (rs && rs.type !== 'default') {
    if (rs.type === 'linear' && typeof rs.factor === 'number') {
      m.set('llama.rope.scaling.type', gguf.str('linear'));
      m.set('llama.rope.scaling.factor', gguf.f32(rs.factor));
    } else if (rs.type !== 'llama3') {
      throw new ModelFormatError(
        'GGUF_ROPE_UNSUPPORTED',
        `rope scaling "${rs.type}" cannot be exported to GGUF yet (supported: default, linear, llama3)`,
      );
    }
  }
  return m;
}

/** Llama 3's rope frequency factors (the `rope_freqs.weight` tensor), as convert_hf_to_gguf computes them. */
function llama3RopeFactors(config: LlamaConfig): Float32Array {
  const rs = config.ropeScaling!;
  const factor = Number(rs.factor ?? 8);
  const low = Number(rs.low_freq_factor ?? 1);
  const high = Number(rs.high_freq_factor ?? 4);
  const oldCtx = Number(rs.original_max_position_embeddings ?? 8192);
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  const d = config.headDim;
  const out = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) {
    const freq = 1 / config.ropeTheta ** ((2 * i) / d);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (oldCtx / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

async function readJsonIf(file: string): Promise<string | null> {
  return existsSync(file) ? fsp.readFile(file, 'utf8') : null;
}

/** The ggml type of a tensor for a dtype: 1-D tensors F32; Q8_0 only where rows are a multiple of 32 (else F16). */
function tensorType(dtype: GgufDtype, shape: readonly number[]): GgmlType {
  if (shape.length < 2 || dtype === 'f32') return GgmlType.F32;
  if (dtype === 'q8_0' && shape[shape.length - 1] % Q8_0_BLOCK === 0) return GgmlType.Q8_0;
  return GgmlType.F16;
}

/** Checks that an adapter's LoRA factors apply to Llama's projections and nothing else is in it. */
function checkAdapterForGguf(adapter: Adapter, config: LlamaConfig): void {
  if (adapter.otherTensors.length > 0) {
    throw new ModelFormatError(
      'GGUF_ADAPTER_UNSUPPORTED',
      `${adapter.dir}: holds tensors that are not LoRA factors (${adapter.otherTensors.slice(0, 3).join(', ')}); ` +
        'merge it into the model with `polyglot merge` and export the merged model',
    );
  }
  if (adapter.config.fanInFanOut) {
    throw new ModelFormatError(
      'GGUF_ADAPTER_UNSUPPORTED',
      `${adapter.dir}: fan_in_fan_out adapters are not supported`,
    );
  }
  for (const mod of adapter.modules) {
    const name = ggufTensorName(mod.baseWeight);
    if (name === null || name === 'token_embd.weight') {
      throw new ModelFormatError(
        'GGUF_ADAPTER_UNSUPPORTED',
        `${adapter.dir}: LoRA on ${mod.module} cannot be exported; merge the adapter first (polyglot merge)`,
      );
    }
  }
  void config;
}

/** B·A (the update of one module, [out, in]) times scale, in float32 accumulation. */
function loraDelta(a: Float32Array, b: Float32Array, mod: LoraModule): Float32Array {
  const [r, inDim] = mod.aShape;
  const outDim = mod.bShape[0];
  const out = new Float32Array(outDim * inDim);
  for (let o = 0; o < outDim; o++) {
    const row = out.subarray(o * inDim, (o + 1) * inDim);
    for (let k = 0; k < r; k++) {
      const s = b[o * r + k] * mod.scale;
      if (s === 0) continue;
      const arow = a.subarray(k * inDim, (k + 1) * inDim);
      for (let i = 0; i < inDim; i++) row[i] += s * arow[i];
    }
  }
  return out;
}

/**
 * Exports a Hugging Face Llama model directory (config.json, safetensors, tokenizer.json) to a GGUF file that
 * llama.cpp (and node-llama-cpp) load. Tensors are read, converted and written one at a time; the file appears
 * complete or not at all. The source files needed to rebuild the exact tokenizer (tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json, chat_template.jinja) and config.json / generation_config.json are
 * kept under `polyglot.*` keys (see {@link POLYGLOT_GGUF_KEYS}).
 */
export async function exportGguf(
  modelDir: string,
  outFile: string,
  opts: ExportGgufOptions = {},
): Promise<ExportGgufResult> {
  const dtype = opts.dtype ?? 'f16';
  if (!(GGUF_DTYPES as readonly string[]).includes(dtype)) {
    throw new ModelFormatError(
      'GGUF_DTYPE',
      `unknown GGUF dtype ${JSON.stringify(dtype)}; use one of ${GGUF_DTYPES.join(', ')}`,
    );
  }
  const ckpt = await Checkpoint.open(modelDir);
  try {
    validateLlamaCheckpoint(ckpt);
    const config = ckpt.config;
    const tokDir = opts.tokenizer ?? modelDir;
    const tokenizer = await Tokenizer.fromDir(tokDir);
    const file = (n: string) => path.join(modelDir, n);
    const tokFile = (n: string) => path.join(tokDir, n);
    const tokenizerText = await fsp.readFile(tokFile('tokenizer.json'), 'utf8');
    const tok = ggufTokenizerMetadata({
      tokenizer: JSON.parse(tokenizerText),
      source: tokDir,
      vocabSize: config.vocabSize,
      bosId: tokenizer.bosId,
      eosId: tokenizer.eosId,
      unkId: tokenizer.unkId,
      padId: config.padTokenId ?? tokenizer.padId,
      addBosToken: tokenizer.addBosToken,
      addEosToken: tokenizer.addEosToken,
      chatTemplate: tokenizer.chatTemplate,
    });
    const fileType =
      dtype === 'f32'
        ? GgufFileType.ALL_F32
        : dtype === 'f16'
          ? GgufFileType.MOSTLY_F16
          : GgufFileType.MOSTLY_Q8_0;
    const metadata = modelMetadata(config, opts.name ?? path.basename(path.resolve(modelDir)), fileType);
    for (const [k, v] of tok.metadata) metadata.set(k, v);
    const own: [string, string | null][] = [
      [POLYGLOT_GGUF_KEYS.tokenizerJson, tokenizerText],
      [POLYGLOT_GGUF_KEYS.tokenizerConfig, await readJsonIf(tokFile('tokenizer_config.json'))],
      [POLYGLOT_GGUF_KEYS.specialTokensMap, await readJsonIf(tokFile('special_tokens_map.json'))],
      [POLYGLOT_GGUF_KEYS.chatTemplate, await readJsonIf(tokFile('chat_template.jinja'))],
      [POLYGLOT_GGUF_KEYS.config, await fsp.readFile(file('config.json'), 'utf8')],
      [POLYGLOT_GGUF_KEYS.generationConfig, await readJsonIf(file('generation_config.json'))],
    ];
    for (const [k, v] of own) if (v !== null) metadata.set(k, gguf.strings(textChunks(v)));

    let adapter: Adapter | null = null;
    let factors: Map<string, Float32Array> | null = null;
    const modules = new Map<string, LoraModule>();
    if (opts.mergeAdapter !== undefined) {
      adapter = await readAdapter(opts.mergeAdapter);
      checkAdapterForGguf(adapter, config);
      factors = await loadAdapterTensors(adapter);
      for (const mod of adapter.modules) {
        if (!ckpt.has(mod.baseWeight)) {
          throw new ModelFormatError(
            'ADAPTER_BASE_MISMATCH',
            `${adapter.dir}: module ${mod.module} has no weight ${mod.baseWeight} in ${modelDir}`,
          );
        }
        modules.set(mod.baseWeight, mod);
      }
      metadata.set(POLYGLOT_GGUF_KEYS.adapter, gguf.str(path.basename(path.resolve(opts.mergeAdapter))));
    }

    const tensors: GgufTensorSpec[] = [];
    if (config.ropeScaling?.type === 'llama3') {
      const factorsRope = llama3RopeFactors(config);
      tensors.push({
        name: 'rope_freqs.weight',
        shape: [factorsRope.length],
        type: GgmlType.F32,
        data: async () => encodeTensor(GgmlType.F32, factorsRope),
      });
    }
    const order = [
      'model.embed_tokens.weight',
      ...Array.from({ length: config.numHiddenLayers }, (_, i) =>
        ckpt.tensorNames().filter((n) => n.startsWith(`model.layers.${i}.`)),
      ).flat(),
      'model.norm.weight',
      ...(config.tieWordEmbeddings ? [] : ['lm_head.weight']),
    ];
    for (const hf of order) {
      const name = ggufTensorName(hf);
      if (name === null) continue;
      const shape = ckpt.tensorInfo(hf).shape;
      const type = tensorType(dtype, shape);
      tensors.push({
        name,
        shape,
        type,
        data: async () => {
          let w = await ckpt.readFloat32(hf);
          const mod = modules.get(hf);
          if (mod) {
            const delta = loraDelta(factors!.get(mod.aKey)!, factors!.get(mod.bKey)!, mod);
            const merged = new Float32Array(w.length);
            for (let i = 0; i < w.length; i++) merged[i] = w[i] + delta[i];
            w = merged;
          }
          const cols = shape.length === 2 ? shape[1] : 1;
          if (/\.attn_q\.(weight|bias)$/.test(name)) w = permuteRotary(w, config.numAttentionHeads, cols);
          else if (/\.attn_k\.(weight|bias)$/.test(name)) w = permuteRotary(w, config.numKeyValueHeads, cols);
          return encodeTensor(type, w);
        },
      });
    }
    const { bytes } = await writeGguf(outFile, metadata, tensors, { onTensor: opts.onTensor });
    return {
      file: outFile,
      bytes,
      dtype,
      tokenizerModel: tok.model,
      tensorTypes: Object.fromEntries(tensors.map((t) => [t.name, GgmlType[t.type]])),
    };
  } finally {
    await ckpt.close();
  }
}

export interface ExportLoraGgufOptions {
  /** Type of the LoRA factors: f32 (default) or f16. */
  dtype?: 'f32' | 'f16';
}

/**
 * Exports a PEFT LoRA adapter to llama.cpp's GGUF adapter format (convert_lora_to_gguf.py): `general.type = adapter`,
 * `adapter.type = lora`, `adapter.lora.alpha`, and for each module `<tensor>.lora_a` ([r, in]) and `.lora_b`
 * ([out, r], q/k rows permuted as the base weight's). llama.cpp scales by alpha / r per tensor; where PEFT's scale is
 * not alpha / r with one alpha for every module (rsLoRA with mixed ranks, alpha_pattern), the scale is folded into
 * lora_b and alpha is written as 0 (llama.cpp's "no scaling"). The base model's config (for q/k head counts) comes
 * from `baseModelDir`.
 */
export async function exportLoraGguf(
  adapterDir: string,
  baseConfig: LlamaConfig,
  outFile: string,
  opts: ExportLoraGgufOptions = {},
): Promise<{ file: string; bytes: number; alpha: number; modules: number }> {
  const adapter = await readAdapter(adapterDir);
  checkAdapterForGguf(adapter, baseConfig);
  const factors = await loadAdapterTensors(adapter);
  const effAlpha = adapter.modules.map((m) => m.scale * m.r);
  const common = effAlpha.every((a) => Math.abs(a - effAlpha[0]) <= 1e-6 * Math.abs(effAlpha[0]));
  const alpha = common && effAlpha.length > 0 ? effAlpha[0] : 0;
  const type = opts.dtype === 'f16' ? GgmlType.F16 : GgmlType.F32;
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.str('llama')],
    ['general.type', gguf.str('adapter')],
    ['general.name', gguf.str(path.basename(path.resolve(adapterDir)))],
    ['adapter.type', gguf.str('lora')],
    ['adapter.lora.alpha', gguf.f32(alpha)],
  ]);
  const tensors: GgufTensorSpec[] = [];
  const sorted = [...adapter.modules].sort((a, b) =>
    a.module.localeCompare(b.module, 'en', { numeric: true }),
  );
  for (const mod of sorted) {
    const name = ggufTensorName(mod.baseWeight)!;
    const base = name.replace(/\.weight$/, '');
    tensors.push({
      name: `${base}.weight.lora_a`,
      shape: mod.aShape,
      type,
      data: async () => encodeTensor(type, factors.get(mod.aKey)!),
    });
    tensors.push({
      name: `${base}.weight.lora_b`,
      shape: mod.bShape,
      type,
      data: async () => {
        let b = factors.get(mod.bKey)!;
        if (alpha === 0) b = b.map((v) => v * mod.scale);
        if (base.endsWith('.attn_q')) b = permuteRotary(b, baseConfig.numAttentionHeads, mod.r);
        else if (base.endsWith('.attn_k')) b = permuteRotary(b, baseConfig.numKeyValueHeads, mod.r);
        return encodeTensor(type, b);
      },
    });
  }
  const { bytes } = await writeGguf(outFile, metadata, tensors);
  return { file: outFile, bytes, alpha, modules: adapter.modules.length };
}
