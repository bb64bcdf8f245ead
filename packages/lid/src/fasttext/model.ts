// A fastText supervised model (fasttext.cc, model.cc, loss.cc of fastText 0.9.2): loading `.bin` and `.ftz`
// files and predicting labels with probabilities exactly as `fasttext predict-prob` does.
import { LidError } from '../errors.js';
import { BinaryReader, type ByteSource, bytesSource, fileSource } from './binary.js';
import { Dictionary, FNV_OFFSET, FNV_PRIME, LABEL, WORD } from './dictionary.js';
import { DenseMatrix, type Matrix, QuantMatrix } from './matrix.js';
import { TokenCache } from './token-cache.js';

export const FASTTEXT_MAGIC = 793712314;
export const FASTTEXT_VERSION = 12;

export type LossName = 'hs' | 'ns' | 'softmax' | 'ova';
export type ModelKind = 'cbow' | 'sg' | 'sup';
const LOSSES: Record<number, LossName> = { 1: 'hs', 2: 'ns', 3: 'softmax', 4: 'ova' };
const MODELS: Record<number, ModelKind> = { 1: 'cbow', 2: 'sg', 3: 'sup' };

/** The training arguments stored in a model file (Args::load). */
export interface FastTextArgs {
  dim: number;
  ws: number;
  epoch: number;
  minCount: number;
  neg: number;
  wordNgrams: number;
  loss: LossName;
  model: ModelKind;
  bucket: number;
  minn: number;
  maxn: number;
  lrUpdateRate: number;
  t: number;
}

export interface PredictOptions {
  /** How many labels (default 1; -1: all). */
  k?: number;
  /** Drop labels whose probability is below this (default 0), as fastText's `threshold`. */
  threshold?: number;
}

/** Labels (`__label__de`) best first, and their probabilities as fastText reports them. */
export interface Prediction {
  labels: string[];
  probs: number[];
}

// bytes fastText's readWord treats as word separators: space \n \r \t \v \f \0
const WS = new Uint8Array(256);
for (const c of [0x20, 0x0a, 0x0d, 0x09, 0x0b, 0x0c, 0x00]) WS[c] = 1;
const NL = 0x0a;

// loss.cc's sigmoid lookup table (one-vs-all and negative-sampling models), built in float32 as the C++ does
const SIGMOID_TABLE_SIZE = 512;
const MAX_SIGMOID = 8;
const T_SIGMOID = new Float32Array(SIGMOID_TABLE_SIZE + 1);
for (let i = 0; i <= SIGMOID_TABLE_SIZE; i++) {
  const x = Math.fround(Math.fround((i * 2 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE) - MAX_SIGMOID);
  T_SIGMOID[i] = 1 / (1 + Math.fround(Math.exp(-x)));
}
function tableSigmoid(x: number): number {
  if (x < -MAX_SIGMOID) return 0;
  if (x > MAX_SIGMOID) return 1;
  const i = Math.trunc(
    Math.fround(
      Math.fround(Math.fround(Math.fround(x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE) / MAX_SIGMOID) / 2,
    ),
  );
  return T_SIGMOID[i]!;
}

/** loss.cc's std_log: log(x + 1e-5) in double, returned as float. */
function stdLog(x: number): number {
  return Math.fround(Math.log(x + 1e-5));
}

const TWO32 = 4294967296;
const NGRAM_MULT = 116049371;

/** (x * y) mod b for non-negative integers x, y < 2^32 and 0 < b < 2^31, exactly. */
function mulmod(x: number, y: number, b: number): number {
  const yh = Math.floor(y / 65536);
  const yl = y % 65536;
  return (((((x * yh) % b) * 65536) % b) + ((x * yl) % b)) % b;
}

/** Quantized input matrices up to this size are decoded to dense float32 rows at load (exactly equal sums). */
const DECODE_LIMIT_BYTES = 64 * 2 ** 20;

export interface LoadOptions {
  /**
   * Decode a quantized input matrix into float32 rows at load when that takes at most 64 MiB (default true):
   * faster prediction, identical results. With false, rows are summed from the product-quantizer codes.
   */
  decodeQuantized?: boolean;
}

interface HsNode {
  left: Int32Array;
  right: Int32Array;
  /** Scratch stack of the depth-first search (node, score). */
  stackNode: Int32Array;
  stackScore: Float64Array;
}

/**
 * A fastText supervised model. Prediction follows fastText 0.9.2 step by step in float32 (the sentence vector is
 * the average of the input rows of its words, their character n-grams, the end-of-line token and the word
 * n-grams; then softmax, hierarchical softmax or one-vs-all), so labels and probabilities equal
 * `fasttext predict-prob` (probabilities are exp(log(p + 1e-5)), i.e. p + 1e-5, as fastText prints them).
 */
export class FastTextModel {
  readonly version: number;
  readonly args: FastTextArgs;
  readonly dict: Dictionary;
  readonly input: Matrix;
  readonly output: Matrix;
  /** The model's labels (`__label__…`), in the model's order. */
  readonly labels: readonly string[];
  /** The file it was loaded from (or `<bytes>`). */
  readonly source: string;
  /** Size of the model file in bytes. */
  readonly fileBytes: number;

  private readonly hidden: Float32Array;
  private readonly out: Float32Array;
  private rows = new Int32Array(1024);
  private nrows = 0;
  private hashes = new Int32Array(256);
  private nhashes = 0;
  private scratch = new Uint8Array(256);
  private readonly tokenCache = new TokenCache();
  /** While reading a line for prediction: rows are summed into `hidden` as tokens are read (`count` of them). */
  private direct = false;
  private count = 0;
  /** Dense rows that the sentence vector sums: the input matrix, or its decoded rows where quantized. */
  private readonly inputRows: Float32Array | null;
  private readonly tree: HsNode | null;
  private heapS = new Float64Array(2);
  private heapI = new Int32Array(2);
  private heapN = 0;
  private readonly hasSubwords: boolean;
  private readonly ngramBase: number;

  private constructor(r: BinaryReader, options: LoadOptions) {
    this.source = r.source.name;
    this.fileBytes = r.source.size;
    const magic = r.i32('the magic number');
    if (magic !== FASTTEXT_MAGIC) {
      const gz = r.source.size >= 2 && (magic & 0xffff) === 0x8b1f;
      throw new LidError(
        'not-a-fasttext-model',
        `${r.source.name}: not a fastText model (magic number ${magic}, expected ${FASTTEXT_MAGIC})` +
          (gz ? '; the file is gzip-compressed: decompress it first (gunzip)' : '') +
          '; pass a fastText .bin or .ftz file',
      );
    }
    this.version = r.i32('the format version');
    if (this.version > FASTTEXT_VERSION || this.version < 0) {
      throw new LidError(
        'unsupported-model-version',
        `${r.source.name}: fastText model format version ${this.version} is not supported (this reader knows versions up to ${FASTTEXT_VERSION}, as fastText 0.9.2)`,
      );
    }
    this.args = readArgs(r);
    if (this.version === 11 && this.args.model === 'sup') this.args.maxn = 0; // as fastText: old supervised models had no char n-grams
    if (this.args.model !== 'sup') {
      throw new LidError(
        'not-supervised',
        `${r.source.name}: a ${this.args.model} model (word vectors) cannot predict labels; language identification needs a supervised fastText model`,
      );
    }
    this.dict = Dictionary.load(r);
    const { dim } = this.args;
    const quantInput = r.bool('the quantized-input flag');
    this.input = quantInput
      ? QuantMatrix.load(r, 'input matrix', dim)
      : DenseMatrix.load(r, 'input matrix', dim);
    if (!quantInput && this.dict.pruneidxSize >= 0) {
      throw r.corrupt('the dictionary is pruned but the input matrix is not quantized');
    }
    const qout = r.bool('the quantized-output flag');
    this.output =
      quantInput && qout
        ? QuantMatrix.load(r, 'output matrix', dim)
        : DenseMatrix.load(r, 'output matrix', dim);

    const d = this.dict;
    if (d.nlabels === 0) throw r.corrupt('the model has no labels');
    if (this.output.m !== d.nlabels) {
      throw r.corrupt(`the output matrix has ${this.output.m} rows for ${d.nlabels} labels`);
    }
    this.hasSubwords = this.args.maxn > 0;
    const usesBuckets = this.args.maxn > 0 || this.args.wordNgrams > 1;
    const buckets = d.pruneidxSize >= 0 ? d.pruneidxSize : usesBuckets ? this.args.bucket : 0;
    if (this.input.m < d.nwords + buckets) {
      throw r.corrupt(
        `the input matrix has ${this.input.m} rows, fewer than ${d.nwords} words + ${buckets} n-gram buckets`,
      );
    }
    if (d.pruneMap && d.pruneMap.maxValue >= this.input.m - d.nwords) {
      throw r.corrupt(`a pruned n-gram maps to row ${d.nwords + d.pruneMap.maxValue} of ${this.input.m}`);
    }
    if (usesBuckets && d.pruneidxSize < 0 && this.args.bucket <= 0) {
      throw r.corrupt(`bucket is ${this.args.bucket} but the model uses n-grams`);
    }
    this.ngramBase = d.nwords;
    this.labels = Array.from({ length: d.nlabels }, (_, i) => d.label(i));
    this.hidden = new Float32Array(dim);
    this.out = new Float32Array(d.nlabels);
    this.inputRows =
      this.input instanceof DenseMatrix
        ? this.input.data
        : options.decodeQuantized !== false && this.input.m * dim * 4 <= DECODE_LIMIT_BYTES
          ? (this.input as QuantMatrix).decode()
          : null;
    this.tree = this.args.loss === 'hs' ? buildTree(d.labelCounts()) : null;
  }

  /** Loads a `.bin` or `.ftz` model file (matrices are read straight into their typed arrays, in chunks). */
  static async load(file: string, options: LoadOptions = {}): Promise<FastTextModel> {
    return FastTextModel.loadSync(file, options);
  }

  static loadSync(file: string, options: LoadOptions = {}): FastTextModel {
    return FastTextModel.fromSource(fileSource(file), options);
  }

  /** A model from the bytes of a model file. */
  static fromBytes(bytes: Uint8Array, name = '<bytes>', options: LoadOptions = {}): FastTextModel {
    return FastTextModel.fromSource(bytesSource(bytes, name), options);
  }

  static fromSource(source: ByteSource, options: LoadOptions = {}): FastTextModel {
    try {
      return new FastTextModel(new BinaryReader(source), options);
    } finally {
      source.close();
    }
  }

  get dim(): number {
    return this.args.dim;
  }

  get quantized(): boolean {
    return this.input.kind === 'quant';
  }

  /** Bytes of memory held by the matrices. */
  get matrixBytes(): number {
    return this.input.bytes + this.output.bytes;
  }

  /**
   * Predicts one line of text, as fastText's Python `predict` does (the text is one line followed by the
   * end-of-line token). Text with a newline is an error (`newline-in-text`): replace newlines first, or use
   * {@link predictLines} to read it as the CLI reads a file.
   */
  predict(text: string, options: PredictOptions = {}): Prediction {
    if (text.includes('\n')) {
      throw new LidError(
        'newline-in-text',
        'predict() reads one line; the text contains a newline: replace newlines (e.g. with spaces), or use predictLines() to predict each line',
      );
    }
    return this.predictBytes(new TextEncoder().encode(`${text}\n`), options);
  }

  /** Predicts the first line of UTF-8 bytes (up to and including its newline, or the end). */
  predictBytes(bytes: Uint8Array, options: PredictOptions = {}): Prediction {
    const k = this.checkK(options.k);
    const threshold = Math.fround(options.threshold ?? 0);
    this.readLine(bytes, 0, bytes.length);
    return this.predictHidden(k, threshold);
  }

  /**
   * Reads text (or UTF-8 bytes) the way `fasttext predict-prob MODEL FILE k threshold` reads FILE, and returns
   * one prediction per line it prints: lines end at `\n` (a final line without one has no end-of-line token),
   * and a literal `</s>` token ends a line as the C++ does.
   */
  predictLines(text: string | Uint8Array, options: PredictOptions = {}): Prediction[] {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    const k = this.checkK(options.k);
    const threshold = Math.fround(options.threshold ?? 0);
    const results: Prediction[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      pos = this.readLine(bytes, pos, bytes.length);
      results.push(this.predictHidden(k, threshold));
    }
    return results;
  }

  /**
   * The input rows of a line (words with their char n-grams, end-of-line token, word n-grams), in fastText's
   * order: what `getLine` produces. For tests and debugging.
   */
  lineRows(text: string): number[] {
    const bytes = new TextEncoder().encode(text.includes('\n') ? text : `${text}\n`);
    this.collectLine(bytes, 0, bytes.length);
    return Array.from(this.rows.subarray(0, this.nrows));
  }

  private checkK(k: number | undefined): number {
    if (k === undefined) return 1;
    if (k === -1) return this.dict.nlabels;
    if (!Number.isInteger(k) || k <= 0) {
      throw new LidError('bad-k', `k must be a positive integer (or -1 for all labels), got ${k}`);
    }
    return Math.min(k, this.dict.nlabels);
  }

  // ---- input: dictionary.cc getLine / addSubwords / computeSubwords / addWordNgrams / pushHash

  private pushRow(row: number): void {
    if (this.nrows === this.rows.length) {
      const bigger = new Int32Array(this.rows.length * 2);
      bigger.set(this.rows);
      this.rows = bigger;
    }
    this.rows[this.nrows++] = row;
  }

  private pushHash(id: number): void {
    const d = this.dict;
    const prune = d.pruneidxSize;
    if (prune === 0) return;
    if (prune > 0) {
      id = d.pruneMap!.get(id);
      if (id < 0) return;
    }
    this.pushRow(this.ngramBase + id);
  }

  /** Char n-grams of `<` + bytes[s, e) + `>` (computeSubwords, with pushHash inlined). */
  private computeSubwords(bytes: Uint8Array, s: number, e: number): void {
    const d = this.dict;
    if (d.pruneidxSize === 0) return; // pruned to no n-grams at all
    const W = e - s + 2;
    if (this.scratch.length < W) this.scratch = new Uint8Array(W * 2);
    const w = this.scratch;
    w[0] = 0x3c;
    for (let k = s; k < e; k++) w[k - s + 1] = bytes[k]!;
    w[W - 1] = 0x3e;
    const { minn, maxn, bucket } = this.args;
    // at most min(maxn, W) n-grams start at each of the W positions (maxn comes from the file: never size by it)
    const need = this.nrows + W * Math.min(maxn, W);
    if (need > this.rows.length) {
      const bigger = new Int32Array(Math.max(this.rows.length * 2, need));
      bigger.set(this.rows.subarray(0, this.nrows));
      this.rows = bigger;
    }
    const rows = this.rows;
    let nr = this.nrows;
    const base = this.ngramBase;
    const pm = d.pruneMap;
    const slots = pm ? pm.slots : null;
    const bits = pm ? pm.bits : null;
    const nbits = bits ? bits.length * 32 : 0;
    const shift = pm ? pm.shift : 0;
    const mask = pm ? pm.mask : 0;
    for (let i = 0; i < W; i++) {
      if ((w[i]! & 0xc0) === 0x80) continue;
      let h = FNV_OFFSET;
      let j = i;
      for (let n = 1; j < W && n <= maxn; n++) {
        h = Math.imul(h ^ ((w[j]! << 24) >> 24), FNV_PRIME);
        j++;
        while (j < W && (w[j]! & 0xc0) === 0x80) {
          h = Math.imul(h ^ ((w[j]! << 24) >> 24), FNV_PRIME);
          j++;
        }
        if (n >= minn && !(n === 1 && (i === 0 || j === W))) {
          const u = h >>> 0;
          const id = u - Math.floor(u / bucket) * bucket; // u % bucket, exactly, without fmod
          if (slots === null) {
            rows[nr++] = base + id;
          } else if (nbits === 0 || (id < nbits && (bits![id >>> 5]! & (1 << (id & 31))) !== 0)) {
            let at = Math.imul(id, 0x9e3779b1) >>> shift;
            for (;;) {
              const k = slots[2 * at]!;
              if (k === id) {
                rows[nr++] = base + slots[2 * at + 1]!;
                break;
              }
              if (k === -1) break;
              at = (at + 1) & mask;
            }
          }
        }
      }
    }
    this.nrows = nr;
  }

  private pushWordHash(h: number): void {
    if (this.nhashes === this.hashes.length) {
      const bigger = new Int32Array(this.hashes.length * 2);
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    this.hashes[this.nhashes++] = h | 0;
  }

  /** The end-of-line token (from a newline or a literal `</s>`). */
  private addEos(): void {
    const d = this.dict;
    // an EOS the dictionary lacks adds no rows (it is never split into char n-grams)
    if (d.eosId >= 0) this.pushRow(d.eosId);
    if (this.args.wordNgrams > 1) this.pushWordHash(d.eosHash);
  }

  /**
   * One token of a line (getLine: getId, getType, addSubwords, word hash). The rows of a token depend on its
   * bytes alone, so they are remembered per token (the C++ remembers them for vocabulary words only).
   */
  private addToken(bytes: Uint8Array, s: number, e: number): void {
    let h = FNV_OFFSET;
    for (let i = s; i < e; i++) h = Math.imul(h ^ ((bytes[i]! << 24) >> 24), FNV_PRIME);
    h >>>= 0;
    const cache = this.tokenCache;
    const id = cache.find(h, bytes, s, e);
    if (id < 0) {
      const d = this.dict;
      const wid = d.find(bytes, s, e, h);
      const type = wid < 0 ? (Dictionary.isLabelToken(bytes, s, e) ? LABEL : WORD) : d.types[wid]!;
      if (type !== WORD) return; // a label in the text: not an input
      const start = this.nrows;
      if (wid >= 0) this.pushRow(wid);
      if (this.hasSubwords) {
        if (wid >= 0) this.computeSubwords(d.pool, d.offsets[wid]!, d.offsets[wid + 1]!);
        else this.computeSubwords(bytes, s, e);
      }
      cache.add(h, bytes, s, e, this.rows, start, this.nrows);
      if (this.direct) {
        this.addRows(this.rows, start, this.nrows);
        this.nrows = start;
      }
    } else if (this.direct) {
      this.addRows(cache.rows, cache.rowStart(id), cache.rowEnd(id));
    } else {
      const rs = cache.rowStart(id);
      const n = cache.rowEnd(id) - rs;
      if (this.nrows + n > this.rows.length) {
        const bigger = new Int32Array(Math.max(this.rows.length * 2, this.nrows + n));
        bigger.set(this.rows.subarray(0, this.nrows));
        this.rows = bigger;
      }
      const src = cache.rows;
      const dst = this.rows;
      const at = this.nrows;
      for (let k = 0; k < n; k++) dst[at + k] = src[rs + k]!;
      this.nrows += n;
    }
    if (this.args.wordNgrams > 1) this.pushWordHash(h);
  }

  private addWordNgrams(): void {
    const n = this.args.wordNgrams;
    const bucket = this.args.bucket;
    const hashes = this.hashes;
    const len = this.nhashes;
    const two32ModB = TWO32 % bucket;
    for (let i = 0; i < len; i++) {
      // uint64_t h = hashes[i]: the int32 hash, sign-extended to 64 bits
      const hi0 = hashes[i]!;
      let lo = hi0 >>> 0;
      let hi = hi0 < 0 ? 0xffffffff : 0;
      for (let j = i + 1; j < len && j < i + n; j++) {
        // h = h * 116049371 + hashes[j] (mod 2^64)
        const a = lo >>> 16;
        const b = lo & 0xffff;
        const p1 = b * NGRAM_MULT;
        const p2 = a * NGRAM_MULT;
        const low = p1 + (p2 % 65536) * 65536;
        const newLo = low % TWO32;
        const carry = Math.floor(low / TWO32) + Math.floor(p2 / 65536);
        let newHi = (Math.imul(hi, NGRAM_MULT) + carry) >>> 0;
        const add = hashes[j]!;
        let sumLo = newLo + (add >>> 0);
        if (sumLo >= TWO32) {
          sumLo -= TWO32;
          newHi = (newHi + 1) >>> 0;
        }
        if (add < 0) newHi = (newHi + 0xffffffff) >>> 0;
        lo = sumLo;
        hi = newHi;
        // h % bucket
        const r = (mulmod(hi % bucket, two32ModB, bucket) + (lo % bucket)) % bucket;
        this.pushHash(r);
      }
    }
  }

  /** getLine from `pos`: the rows of one line into this.rows; returns the position after it. */
  private collectLine(bytes: Uint8Array, pos: number, end: number): number {
    this.nrows = 0;
    this.nhashes = 0;
    while (pos < end) {
      let c = bytes[pos]!;
      while (WS[c] === 1 && c !== NL) {
        if (++pos >= end) break;
        c = bytes[pos]!;
      }
      if (pos >= end) break;
      if (c === NL) {
        pos++;
        this.addEos();
        break;
      }
      const s = pos;
      while (pos < end && WS[bytes[pos]!] !== 1) pos++;
      // a literal </s> is the end-of-line token too: the C++ stops the line after it
      if (Dictionary.isEos(bytes, s, pos)) {
        this.addEos();
        // readWord consumed one separator after the token unless it was a newline
        if (pos < end && bytes[pos] !== NL) pos++;
        break;
      }
      this.addToken(bytes, s, pos);
      if (pos < end && bytes[pos] !== NL) pos++;
    }
    if (this.args.wordNgrams > 1) this.addWordNgrams();
    return pos;
  }

  /** hidden += the (dense) input rows src[a, b), in order. */
  private addRows(src: Int32Array, a: number, b: number): void {
    const h = this.hidden;
    const dense = this.inputRows!;
    const dim = h.length;
    for (let i = a; i < b; i++) {
      const off = src[i]! * dim;
      for (let j = 0; j < dim; j++) h[j] += dense[off + j]!;
    }
    this.count += b - a;
  }

  /**
   * Model::computeHidden over the rows of one line; returns the next position. With dense rows, each token's
   * rows are added as it is read (the order of the sum is the C++'s: token by token, then the word n-grams).
   */
  private readLine(bytes: Uint8Array, pos: number, end: number): number {
    const h = this.hidden;
    h.fill(0);
    this.count = 0;
    this.direct = this.inputRows !== null;
    let next: number;
    try {
      next = this.collectLine(bytes, pos, end);
    } finally {
      this.direct = false;
    }
    // what is left: the end-of-line token and word n-grams (dense), or every row (product-quantized)
    if (this.inputRows) {
      this.addRows(this.rows, 0, this.nrows);
    } else {
      const input = this.input;
      for (let i = 0; i < this.nrows; i++) input.addRowTo(h, this.rows[i]!);
      this.count += this.nrows;
    }
    const n = this.count;
    if (n > 0) {
      const inv = Math.fround(1 / n);
      for (let j = 0; j < h.length; j++) h[j] = h[j]! * inv;
    }
    return next;
  }

  // ---- output: loss.cc predict / findKBest / dfs, with libstdc++'s heap algorithms for identical tie order

  private predictHidden(k: number, threshold: number): Prediction {
    const result: Prediction = { labels: [], probs: [] };
    if (this.count === 0) return result; // FastText::predict returns nothing for an empty input
    if (this.heapS.length < k + 1) {
      this.heapS = new Float64Array(k + 1);
      this.heapI = new Int32Array(k + 1);
    }
    this.heapN = 0;
    if (this.tree) {
      this.dfs(k, stdLog(threshold));
    } else {
      this.computeOutput();
      this.findKBest(k, threshold);
    }
    this.sortHeap();
    for (let i = 0; i < this.heapN; i++) {
      result.labels.push(this.labels[this.heapI[i]!]!);
      result.probs.push(Math.fround(Math.exp(this.heapS[i]!)));
    }
    return result;
  }

  private computeOutput(): void {
    const out = this.out;
    const osz = out.length;
    const wo = this.output;
    const h = this.hidden;
    for (let i = 0; i < osz; i++) out[i] = wo.dotRow(h, i);
    if (this.args.loss === 'softmax') {
      let max = out[0]!;
      for (let i = 0; i < osz; i++) if (out[i]! > max) max = out[i]!;
      let z = 0;
      for (let i = 0; i < osz; i++) {
        out[i] = Math.exp(Math.fround(out[i]! - max));
        z = Math.fround(z + out[i]!);
      }
      for (let i = 0; i < osz; i++) out[i] = out[i]! / z;
    } else {
      for (let i = 0; i < osz; i++) out[i] = tableSigmoid(out[i]!);
    }
  }

  private findKBest(k: number, threshold: number): void {
    const out = this.out;
    const S = this.heapS;
    const I = this.heapI;
    for (let i = 0; i < out.length; i++) {
      const o = out[i]!;
      if (o < threshold) continue;
      const s = stdLog(o);
      if (this.heapN === k && s < S[0]!) continue;
      S[this.heapN] = s;
      I[this.heapN] = i;
      this.heapN++;
      this.pushHeap(this.heapN - 1, 0, s, i);
      if (this.heapN > k) {
        this.popHeap(this.heapN);
        this.heapN--;
      }
    }
  }

  /**
   * HierarchicalSoftmaxLoss::dfs, iteratively: a node's children are visited left subtree first, each with the
   * same pruning checks at the moment the C++ recursion would make them, so the heap sees the same sequence.
   */
  private dfs(k: number, logThreshold: number): void {
    const tree = this.tree!;
    const left = tree.left;
    const right = tree.right;
    const osz = this.dict.nlabels;
    const stackNode = tree.stackNode;
    const stackScore = tree.stackScore;
    const S = this.heapS;
    const h = this.hidden;
    const dim = h.length;
    const wo = this.output;
    const dense = wo instanceof DenseMatrix ? wo.data : null;
    let sp = 0;
    stackNode[sp] = 2 * osz - 2;
    stackScore[sp] = 0;
    sp++;
    while (sp > 0) {
      sp--;
      const node = stackNode[sp]!;
      const score = stackScore[sp]!;
      if (score < logThreshold) continue;
      if (this.heapN === k && score < S[0]!) continue;
      const l = left[node]!;
      const r = right[node]!;
      if (l === -1 && r === -1) {
        S[this.heapN] = score;
        this.heapI[this.heapN] = node;
        this.heapN++;
        this.pushHeap(this.heapN - 1, 0, score, node);
        if (this.heapN > k) {
          this.popHeap(this.heapN);
          this.heapN--;
        }
        continue;
      }
      let f: number;
      if (dense) {
        const off = (node - osz) * dim;
        f = 0;
        for (let j = 0; j < dim; j++) f = Math.fround(f + Math.fround(dense[off + j]! * h[j]!));
      } else {
        f = wo.dotRow(h, node - osz);
      }
      f = Math.fround(1 / Math.fround(1 + Math.fround(Math.exp(-f))));
      // the right child goes below the left one on the stack, so the left subtree is finished first
      stackNode[sp] = r;
      stackScore[sp] = Math.fround(score + stdLog(f));
      sp++;
      stackNode[sp] = l;
      stackScore[sp] = Math.fround(score + stdLog(Math.fround(1 - f)));
      sp++;
    }
  }

  // libstdc++ __push_heap with comp(a, b) = a.score > b.score (a min-heap on score)
  private pushHeap(hole: number, top: number, vs: number, vi: number): void {
    const S = this.heapS;
    const I = this.heapI;
    let parent = Math.trunc((hole - 1) / 2);
    while (hole > top && S[parent]! > vs) {
      S[hole] = S[parent]!;
      I[hole] = I[parent]!;
      hole = parent;
      parent = Math.trunc((hole - 1) / 2);
    }
    S[hole] = vs;
    I[hole] = vi;
  }

  // libstdc++ __adjust_heap
  private adjustHeap(hole: number, len: number, vs: number, vi: number): void {
    const S = this.heapS;
    const I = this.heapI;
    const top = hole;
    let second = hole;
    while (second < Math.trunc((len - 1) / 2)) {
      second = 2 * (second + 1);
      if (S[second]! > S[second - 1]!) second--;
      S[hole] = S[second]!;
      I[hole] = I[second]!;
      hole = second;
    }
    if ((len & 1) === 0 && second === Math.trunc((len - 2) / 2)) {
      second = 2 * (second + 1);
      S[hole] = S[second - 1]!;
      I[hole] = I[second - 1]!;
      hole = second - 1;
    }
    this.pushHeap(hole, top, vs, vi);
  }

  // std::pop_heap over [0, len): moves the front to len - 1
  private popHeap(len: number): void {
    if (len <= 1) return;
    const S = this.heapS;
    const I = this.heapI;
    const last = len - 1;
    const vs = S[last]!;
    const vi = I[last]!;
    S[last] = S[0]!;
    I[last] = I[0]!;
    this.adjustHeap(0, last, vs, vi);
  }

  // std::sort_heap: best first
  private sortHeap(): void {
    for (let len = this.heapN; len > 1; len--) this.popHeap(len);
  }
}

function readArgs(r: BinaryReader): FastTextArgs {
  const dim = r.i32('args.dim');
  const ws = r.i32('args.ws');
  const epoch = r.i32('args.epoch');
  const minCount = r.i32('args.minCount');
  const neg = r.i32('args.neg');
  const wordNgrams = r.i32('args.wordNgrams');
  const lossId = r.i32('args.loss');
  const modelId = r.i32('args.model');
  const bucket = r.i32('args.bucket');
  const minn = r.i32('args.minn');
  const maxn = r.i32('args.maxn');
  const lrUpdateRate = r.i32('args.lrUpdateRate');
  const t = r.f64('args.t');
  const loss = LOSSES[lossId];
  const model = MODELS[modelId];
  if (!loss) throw r.corrupt(`unknown loss ${lossId} in the header (1 hs, 2 ns, 3 softmax, 4 ova)`);
  if (!model)
    throw r.corrupt(`unknown model type ${modelId} in the header (1 cbow, 2 skipgram, 3 supervised)`);
  if (dim <= 0 || dim > 1 << 16) throw r.corrupt(`dim ${dim} is out of range`);
  if (bucket < 0 || minn < 0 || maxn < 0 || wordNgrams < 0) {
    throw r.corrupt(
      `negative n-gram settings (bucket ${bucket}, minn ${minn}, maxn ${maxn}, wordNgrams ${wordNgrams})`,
    );
  }
  return { dim, ws, epoch, minCount, neg, wordNgrams, loss, model, bucket, minn, maxn, lrUpdateRate, t };
}

/** HierarchicalSoftmaxLoss::buildTree: the Huffman tree over the label counts (leaves 0..osz-1). */
function buildTree(counts: number[]): HsNode {
  const osz = counts.length;
  const size = 2 * osz - 1;
  const left = new Int32Array(size).fill(-1);
  const right = new Int32Array(size).fill(-1);
  const count = new Float64Array(size).fill(1e15);
  for (let i = 0; i < osz; i++) count[i] = counts[i]!;
  let leaf = osz - 1;
  let node = osz;
  for (let i = osz; i < size; i++) {
    const mini = [0, 0];
    for (let j = 0; j < 2; j++) {
      if (leaf >= 0 && count[leaf]! < count[node]!) mini[j] = leaf--;
      else mini[j] = node++;
    }
    left[i] = mini[0]!;
    right[i] = mini[1]!;
    count[i] = count[mini[0]!]! + count[mini[1]!]!;
  }
  return { left, right, stackNode: new Int32Array(size + 1), stackScore: new Float64Array(size + 1) };
}
