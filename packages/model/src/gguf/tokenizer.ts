/**
 * A Hugging Face tokenizer.json as llama.cpp's GGUF tokenizer metadata:
 * - SentencePiece-style BPE with byte fallback (Llama 1/2, Mistral: normalizer Prepend("▁") + Replace(" ", "▁") or a
 *   Metaspace pre-tokenizer) → `tokenizer.ggml.model = "llama"`: tokens, scores, token types. tokenizer.json has no
 *   SentencePiece scores; a token's score is minus the rank of the first merge that makes it, so that llama.cpp's
 *   SPM tokenizer (which merges the highest-scoring pair first) applies the merges in BPE's order.
 * - byte-level BPE (GPT-2, Llama 3 and our byte-level models: a ByteLevel pre-tokenizer) → `"gpt2"`: tokens, token
 *   types, merges and the name of the pre-tokenizer (`tokenizer.ggml.pre`), which llama.cpp maps to its split regex.
 */
import { ModelFormatError } from '../errors.js';
import { type GgufValue, gguf } from './format.js';

/** llama.cpp's token types (gguf-py TokenType). */
export enum GgufTokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** GPT-2's split regex (tokenizers' ByteLevel with use_regex). */
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
/** Llama 3's split regex. */
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface GgufTokenizerInput {
  /** Parsed tokenizer.json. */
  tokenizer: unknown;
  /** Where it came from (for messages). */
  source: string;
  /** The model's vocabulary size (config.json); the token list is padded with `[PAD{id}]` up to it. */
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  padId: number | null;
  addBosToken: boolean;
  addEosToken: boolean;
  /** The default chat template's Jinja source, if any. */
  chatTemplate: string | null;
}

export interface GgufTokenizerMetadata {
  /** `llama` (SentencePiece-style) or `gpt2` (byte-level BPE). */
  model: 'llama' | 'gpt2';
  /** For gpt2: the pre-tokenizer name (`gpt-2`, `llama-bpe`); `default` for llama. */
  pre: string;
  metadata: Map<string, GgufValue>;
}

function components(node: unknown): Json[] {
  if (!isObject(node)) return [];
  if (node.type === 'Sequence') {
    const list = (node.normalizers ?? node.pretokenizers ?? node.decoders) as unknown;
    return Array.isArray(list) ? list.flatMap(components) : [];
  }
  return [node];
}

function mergeList(model: Json, where: string): [string, string][] {
  const merges = model.merges ?? [];
  if (!Array.isArray(merges))
    throw new ModelFormatError('TOKENIZER_INVALID', `${where}: model.merges is not a list`);
  return merges.map((m, i) => {
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp < 0)
        throw new ModelFormatError(
          'TOKENIZER_INVALID',
          `${where}: merges[${i}] ${JSON.stringify(m)} has no space`,
        );
      return [m.slice(0, sp), m.slice(sp + 1)];
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return [m[0], m[1]];
    }
    throw new ModelFormatError('TOKENIZER_INVALID', `${where}: merges[${i}] is not "a b" or ["a", "b"]`);
  });
}

/** Builds the `tokenizer.*` metadata of a GGUF file from a tokenizer.json (see the module comment). */
export function ggufTokenizerMetadata(input: GgufTokenizerInput): GgufTokenizerMetadata {
  const where = `${input.source}: tokenizer.json`;
  const tok = input.tokenizer;
  if (!isObject(tok) || !isObject(tok.model)) {
    throw new ModelFormatError('TOKENIZER_INVALID', `${where} has no "model" object`);
  }
  const model = tok.model;
  if (model.type !== 'BPE') {
    throw new ModelFormatError(
      'GGUF_TOKENIZER_UNSUPPORTED',
      `${where}: a ${String(model.type)} model cannot be exported to GGUF yet; supported: BPE (SentencePiece-style with byte fallback, or byte-level)`,
    );
  }
  if (!isObject(model.vocab))
    throw new ModelFormatError('TOKENIZER_INVALID', `${where}: model.vocab is not an object`);
  const added = (Array.isArray(tok.added_tokens) ? tok.added_tokens : []) as {
    id: number;
    content: string;
    special?: boolean;
  }[];
  const byId = new Map<number, string>();
  for (const [text, id] of Object.entries(model.vocab)) {
    if (!Number.isSafeInteger(id))
      throw new ModelFormatError(
        'TOKENIZER_INVALID',
        `${where}: vocab[${JSON.stringify(text)}] is not an id`,
      );
    byId.set(id as number, text);
  }
  for (const t of added) byId.set(t.id, t.content);
  const n = Math.max(input.vocabSize, byId.size);
  if (byId.size > input.vocabSize) {
    throw new ModelFormatError(
      'GGUF_VOCAB_MISMATCH',
      `${where} has ${byId.size} tokens but config.json's vocab_size is ${input.vocabSize}; the model cannot produce the extra ids`,
    );
  }
  for (const id of byId.keys()) {
    if (id < 0 || id >= n) {
      throw new ModelFormatError('GGUF_VOCAB_MISMATCH', `${where}: token id ${id} is outside [0, ${n})`);
    }
  }

  const norms = components(tok.normalizer);
  const pres = components(tok.pre_tokenizer);
  const byteLevel = pres.find((p) => p.type === 'ByteLevel');
  const metaspace = pres.find((p) => p.type === 'Metaspace');
  const prepends = norms.some((c) => c.type === 'Prepend' && c.prepend === '▁');
  const spaceToMeta = norms.some(
    (c) => c.type === 'Replace' && isObject(c.pattern) && c.pattern.String === ' ' && c.content === '▁',
  );
  const specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
  for (const id of [input.bosId, input.eosId, input.unkId, input.padId]) if (id !== null) specialIds.add(id);
  const addedIds = new Set(added.map((t) => t.id));
  const merges = mergeList(model, where);

  const tokens: string[] = new Array(n);
  const types = new Int32Array(n);
  for (let id = 0; id < n; id++) {
    const text = byId.get(id);
    if (text === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = GgufTokenType.UNUSED;
    } else {
      tokens[id] = text;
      types[id] =
        id === input.unkId
          ? GgufTokenType.UNKNOWN
          : specialIds.has(id)
            ? GgufTokenType.CONTROL
            : addedIds.has(id)
              ? GgufTokenType.USER_DEFINED
              : GgufTokenType.NORMAL;
    }
  }

  const metadata = new Map<string, GgufValue>();
  let kind: 'llama' | 'gpt2';
  let pre: string;
  if (byteLevel) {
    kind = 'gpt2';
    pre = byteLevelPre(pres, where, merges.length);
    if (byteLevel.add_prefix_space === true) {
      throw new ModelFormatError(
        'GGUF_TOKENIZER_UNSUPPORTED',
        `${where}: a ByteLevel pre-tokenizer with add_prefix_space has no llama.cpp equivalent`,
      );
    }
    metadata.set('tokenizer.ggml.model', gguf.str('gpt2'));
    metadata.set('tokenizer.ggml.pre', gguf.str(pre));
    metadata.set('tokenizer.ggml.tokens', gguf.strings(tokens));
    metadata.set('tokenizer.ggml.token_type', gguf.i32s(types));
    metadata.set('tokenizer.ggml.merges', gguf.strings(merges.map(([a, b]) => `${a} ${b}`)));
  } else if (model.byte_fallback === true && ((prepends && spaceToMeta) || metaspace)) {
    kind = 'llama';
    pre = 'default';
    const scores = new Float32Array(n);
    const made = new Set<string>();
    const vocab = model.vocab as Record<string, number>;
    merges.forEach(([a, b], rank) => {
      const text = a + b;
      if (made.has(text)) return;
      made.add(text);
      const id = vocab[text];
      if (id !== undefined) scores[id] = -(rank + 1);
    });
    for (let id = 0; id < n; id++) {
      if (/^<0x[0-9A-Fa-f]{2}>$/.test(tokens[id]) && !addedIds.has(id)) types[id] = GgufTokenType.BYTE;
      else if (types[id] === GgufTokenType.NORMAL && !made.has(tokens[id]) && [...tokens[id]].length > 1) {
        // A piece no merge makes: BPE never produces it; merge it last.
        scores[id] = -1e9;
      }
    }
    const addSpacePrefix = metaspace
      ? metaspace.prepend_scheme !== 'never' && metaspace.add_prefix_space !== false
      : prepends;
    metadata.set('tokenizer.ggml.model', gguf.str('llama'));
    metadata.set('tokenizer.ggml.pre', gguf.str(pre));
    metadata.set('tokenizer.ggml.tokens', gguf.strings(tokens));
    metadata.set('tokenizer.ggml.scores', gguf.f32s(scores));
    metadata.set('tokenizer.ggml.token_type', gguf.i32s(types));
    metadata.set('tokenizer.ggml.add_space_prefix', gguf.bool(addSpacePrefix));
  } else {
    throw new ModelFormatError(
      'GGUF_TOKENIZER_UNSUPPORTED',
      `${where}: this BPE tokenizer is neither SentencePiece-style (byte_fallback with a "▁" normalizer or Metaspace) ` +
        'nor byte-level (a ByteLevel pre-tokenizer); llama.cpp has no matching tokenizer model',
    );
  }
  const id = (key: string, v: number | null) => {
    if (v !== null) metadata.set(`tokenizer.ggml.${key}`, gguf.u32(v));
  };
  id('bos_token_id', input.bosId);
  id('eos_token_id', input.eosId);
  id('unknown_token_id', input.unkId);
  id('padding_token_id', input.padId);
  metadata.set('tokenizer.ggml.add_bos_token', gguf.bool(input.addBosToken));
  metadata.set('tokenizer.ggml.add_eos_token', gguf.bool(input.addEosToken));
  if (input.chatTemplate !== null) metadata.set('tokenizer.chat_template', gguf.str(input.chatTemplate));
  return { model: kind, pre, metadata };
}

/** llama.cpp's name for the split of a byte-level pre-tokenizer. */
function byteLevelPre(pres: Json[], where: string, merges: number): string {
  const split = pres.find((p) => p.type === 'Split');
  const byteLevel = pres.find((p) => p.type === 'ByteLevel')!;
  if (!split) {
    // Without merges every byte is its own token however the text is split: llama.cpp's GPT-2 split is exact then.
    if (byteLevel.use_regex === false && merges > 0) {
      throw new ModelFormatError(
        'GGUF_TOKENIZER_UNSUPPORTED',
        `${where}: a ByteLevel pre-tokenizer without a regex (use_regex false) and with merges has no llama.cpp equivalent`,
      );
    }
    return 'gpt-2';
  }
  const pattern = isObject(split.pattern) ? split.pattern.Regex : undefined;
  if (pattern === LLAMA3_REGEX) return 'llama-bpe';
  if (pattern === GPT2_REGEX) return 'gpt-2';
  throw new ModelFormatError(
    'GGUF_TOKENIZER_UNSUPPORTED',
    `${where}: the Split regex of the pre-tokenizer is not one llama.cpp knows (GPT-2's or Llama 3's)`,
  );
}
