// fastText's dictionary (dictionary.cc), for prediction: the vocabulary as bytes, an open-addressing table
// over the same FNV-1a hash, the word/char n-gram hashing and the pruned-bucket map of quantized models.
import type { BinaryReader } from './binary.js';

export const EOS = '</s>';
const EOS_BYTES = new TextEncoder().encode(EOS);
const LABEL_PREFIX = new TextEncoder().encode('__label__');

export const FNV_OFFSET = 2166136261 | 0;
export const FNV_PRIME = 16777619;

/**
 * fastText's hash: FNV-1a over the bytes taken as *signed* chars (bytes ≥ 0x80 are sign-extended before the
 * xor, as in `h = h ^ uint32_t(int8_t(str[i]))`). Returns the uint32.
 */
export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ ((bytes[i]! << 24) >> 24), FNV_PRIME);
  return h >>> 0;
}

/**
 * The pruned-index map of quantized models (n-gram bucket → kept row), as a compact open-addressing table: a
 * few hundred KiB that stay in cache, where a dense bucket-indexed array would take 4 bytes per bucket.
 */
export class PruneMap {
  /** Interleaved (key, value) slots; key −1 marks an empty slot. */
  readonly slots: Int32Array;
  readonly shift: number;
  readonly mask: number;
  /** Largest kept row (−1 when empty). */
  readonly maxValue: number;
  /** One bit per bucket up to the largest key: set where the bucket may be kept (a cheap first test). */
  readonly bits: Uint32Array;

  constructor(pairs: Int32Array) {
    let bits = 4;
    while (1 << bits < pairs.length) bits++; // ≥ 2 slots per pair
    this.slots = new Int32Array(2 << bits).fill(-1);
    this.shift = 32 - bits;
    this.mask = (1 << bits) - 1;
    let max = -1;
    const slots = this.slots;
    for (let i = 0; i < pairs.length; i += 2) {
      const key = pairs[i]!;
      let at = Math.imul(key, 0x9e3779b1) >>> this.shift;
      while (slots[2 * at] !== -1 && slots[2 * at] !== key) at = (at + 1) & this.mask;
      slots[2 * at] = key;
      slots[2 * at + 1] = pairs[i + 1]!; // a repeated key keeps its last value, as std::unordered_map's operator[]
      if (pairs[i + 1]! > max) max = pairs[i + 1]!;
    }
    this.maxValue = max;
    let maxKey = 0;
    for (let i = 0; i < pairs.length; i += 2) if (pairs[i]! > maxKey) maxKey = pairs[i]!;
    // at most 16 MiB of bits; beyond that every key passes the first test
    this.bits = new Uint32Array(maxKey < 1 << 27 ? (maxKey >>> 5) + 1 : 0);
    if (this.bits.length)
      for (let i = 0; i < pairs.length; i += 2) this.bits[pairs[i]! >>> 5]! |= 1 << (pairs[i]! & 31);
  }

  /** The row kept for bucket `key`, or -1. */
  get(key: number): number {
    const slots = this.slots;
    let at = Math.imul(key, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const k = slots[2 * at]!;
      if (k === key) return slots[2 * at + 1]!;
      if (k === -1) return -1;
      at = (at + 1) & this.mask;
    }
  }
}

export const WORD = 0;
export const LABEL = 1;

export class Dictionary {
  /** Word bytes: entry i is pool[offsets[i] .. offsets[i+1]). */
  readonly pool: Uint8Array;
  readonly offsets: Int32Array;
  readonly counts: Float64Array;
  readonly types: Uint8Array;
  private readonly table: Int32Array;
  private readonly mask: number;
  /** Pruned models: bucket id → kept row (-1: dropped). null: not pruned. */
  readonly pruneMap: PruneMap | null;
  readonly eosId: number;
  readonly eosHash: number;

  constructor(
    readonly size: number,
    readonly nwords: number,
    readonly nlabels: number,
    readonly ntokens: number,
    /** -1 when the model is not pruned, otherwise the number of kept n-gram buckets (possibly 0). */
    readonly pruneidxSize: number,
    pool: Uint8Array,
    offsets: Int32Array,
    counts: Float64Array,
    types: Uint8Array,
    pruneMap: PruneMap | null,
  ) {
    this.pool = pool;
    this.offsets = offsets;
    this.counts = counts;
    this.types = types;
    this.pruneMap = pruneMap;
    let cap = 16;
    while (cap < size * 2) cap *= 2;
    this.table = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (let i = 0; i < size; i++) {
      const s = offsets[i]!;
      const e = offsets[i + 1]!;
      // a word stored twice resolves to its last entry, as word2int_[find(w)] = i does in the C++
      this.table[this.slot(pool, s, e, fnv1a(pool, s, e))] = i;
    }
    this.eosHash = fnv1a(EOS_BYTES);
    this.eosId = this.find(EOS_BYTES, 0, EOS_BYTES.length, this.eosHash);
  }

  static load(r: BinaryReader): Dictionary {
    const size = r.i32('dictionary size');
    const nwords = r.i32('dictionary word count');
    const nlabels = r.i32('dictionary label count');
    const ntokens = r.i64('dictionary token count');
    const pruneidxSize = r.i64('dictionary pruned-index size');
    if (size < 0 || nwords < 0 || nlabels < 0 || nwords + nlabels !== size) {
      throw r.corrupt(`dictionary sizes do not add up (size ${size}, ${nwords} words, ${nlabels} labels)`);
    }
    // each entry takes at least 10 bytes (NUL, count, type)
    if (size * 10 > r.remaining) throw r.truncated(`a dictionary of ${size} entries`, size * 10);
    if (pruneidxSize < -1) throw r.corrupt(`negative pruned-index size ${pruneidxSize}`);
    let pool = new Uint8Array(Math.max(1024, size * 8));
    let len = 0;
    const offsets = new Int32Array(size + 1);
    const counts = new Float64Array(size);
    const types = new Uint8Array(size);
    const sink = (piece: Uint8Array) => {
      if (len + piece.length > pool.length) {
        const bigger = new Uint8Array(Math.max(pool.length * 2, len + piece.length));
        bigger.set(pool.subarray(0, len));
        pool = bigger;
      }
      pool.set(piece, len);
      len += piece.length;
    };
    for (let i = 0; i < size; i++) {
      r.cstring(`dictionary entry ${i}`, sink);
      offsets[i + 1] = len;
      counts[i] = r.i64(`count of dictionary entry ${i}`);
      const type = r.u8(`type of dictionary entry ${i}`);
      if (type !== (i < nwords ? WORD : LABEL)) {
        throw r.corrupt(
          `dictionary entry ${i} has type ${type}; expected ${nwords} words (type 0) followed by ${nlabels} labels (type 1)`,
        );
      }
      types[i] = type;
    }
    let pruneMap: PruneMap | null = null;
    if (pruneidxSize > 0) {
      if (pruneidxSize * 8 > r.remaining) throw r.truncated('the pruned-index map', pruneidxSize * 8);
      const pairs = new Int32Array(pruneidxSize * 2);
      for (let i = 0; i < pairs.length; i += 2) {
        const first = r.i32('pruned-index key');
        const second = r.i32('pruned-index value');
        if (first < 0 || second < 0) throw r.corrupt(`negative pruned-index entry (${first} → ${second})`);
        pairs[i] = first;
        pairs[i + 1] = second;
      }
      pruneMap = new PruneMap(pairs);
    }
    return new Dictionary(
      size,
      nwords,
      nlabels,
      ntokens,
      pruneidxSize,
      pool.subarray(0, len),
      offsets,
      counts,
      types,
      pruneMap,
    );
  }

  /** The table slot of bytes[s, e) with hash h: where it is, or the empty slot where it would go. */
  private slot(bytes: Uint8Array, s: number, e: number, h: number): number {
    const table = this.table;
    const pool = this.pool;
    const offsets = this.offsets;
    const n = e - s;
    let at = h & this.mask;
    for (;;) {
      const id = table[at]!;
      if (id < 0) return at;
      const ws = offsets[id]!;
      if (offsets[id + 1]! - ws === n) {
        let k = 0;
        while (k < n && pool[ws + k] === bytes[s + k]) k++;
        if (k === n) return at;
      }
      at = (at + 1) & this.mask;
    }
  }

  /** Entry id of bytes[s, e) (hash h), or -1. */
  find(bytes: Uint8Array, s: number, e: number, h: number): number {
    return this.table[this.slot(bytes, s, e, h)]!;
  }

  word(i: number): string {
    return new TextDecoder().decode(this.pool.subarray(this.offsets[i]!, this.offsets[i + 1]!));
  }

  label(i: number): string {
    return this.word(this.nwords + i);
  }

  /** The counts of the labels, in order (the hierarchical softmax builds its tree from them). */
  labelCounts(): number[] {
    return Array.from(this.counts.subarray(this.nwords));
  }

  /** True when bytes[s, e) starts with `__label__` (how the C++ types a token it does not know). */
  static isLabelToken(bytes: Uint8Array, s: number, e: number): boolean {
    if (e - s < LABEL_PREFIX.length) return false;
    for (let k = 0; k < LABEL_PREFIX.length; k++) if (bytes[s + k] !== LABEL_PREFIX[k]) return false;
    return true;
  }

  static isEos(bytes: Uint8Array, s: number, e: number): boolean {
    if (e - s !== 4) return false;
    return bytes[s] === 0x3c && bytes[s + 1] === 0x2f && bytes[s + 2] === 0x73 && bytes[s + 3] === 0x3e;
  }
}
