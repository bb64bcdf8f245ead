// Writes fastText model files (format version 12, as fastText 0.9.2 saves them) from a plain description: small
// valid models to seed the fuzz tests, and files with chosen header values.
import { FASTTEXT_MAGIC } from '../../src/index.js';

export interface FtMatrixSpec {
  kind: 'dense' | 'quant';
  rows: number;
  /** Dense: rows × dim floats. Quantized: its codes and quantizer are derived from `seed`. */
  seed: number;
  /** Quantized: dims per sub-quantizer. */
  dsub?: number;
  qnorm?: boolean;
}

export interface FtModelSpec {
  dim: number;
  wordNgrams: number;
  /** 1 hs, 2 ns, 3 softmax, 4 ova */
  loss: number;
  bucket: number;
  minn: number;
  maxn: number;
  words: string[];
  labels: string[];
  /** -1: not pruned; otherwise the pruned-index pairs (bucket → row). */
  prune: [number, number][] | -1;
  input: FtMatrixSpec;
  output: FtMatrixSpec;
}

class Writer {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  i32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.parts.push(...b);
    return this;
  }
  i64(v: number | bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
    this.parts.push(...b);
    return this;
  }
  f32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(...b);
    return this;
  }
  f64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(...b);
    return this;
  }
  cstring(s: string): this {
    this.parts.push(...new TextEncoder().encode(s), 0);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** A deterministic float in [-1, 1) from a seed and an index. */
function value(seed: number, i: number): number {
  const x = Math.sin(seed * 12.9898 + i * 78.233) * 43758.5453;
  return (x - Math.floor(x)) * 2 - 1;
}

function writePq(w: Writer, dim: number, dsub: number, seed: number): number {
  const nsubq = Math.ceil(dim / dsub);
  const lastdsub = dim - (nsubq - 1) * dsub;
  w.i32(dim).i32(nsubq).i32(dsub).i32(lastdsub);
  for (let i = 0; i < dim * 256; i++) w.f32(value(seed + 1, i));
  return nsubq;
}

function writeMatrix(w: Writer, m: FtMatrixSpec, dim: number): void {
  if (m.kind === 'dense') {
    w.i64(m.rows).i64(dim);
    for (let i = 0; i < m.rows * dim; i++) w.f32(value(m.seed, i));
    return;
  }
  const dsub = Math.min(m.dsub ?? 2, dim);
  const nsubq = Math.ceil(dim / dsub);
  w.u8(m.qnorm ? 1 : 0)
    .i64(m.rows)
    .i64(dim)
    .i32(m.rows * nsubq);
  for (let i = 0; i < m.rows * nsubq; i++) w.u8(Math.floor((value(m.seed, i) + 1) * 128));
  writePq(w, dim, dsub, m.seed);
  if (m.qnorm) {
    for (let i = 0; i < m.rows; i++) w.u8(i * 37);
    writePq(w, 1, 1, m.seed + 7);
  }
}

/** The bytes of a supervised fastText model file. */
export function writeFastText(spec: FtModelSpec): Uint8Array {
  const w = new Writer();
  w.i32(FASTTEXT_MAGIC).i32(12);
  // args: dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate t
  w.i32(spec.dim).i32(5).i32(5).i32(1).i32(5).i32(spec.wordNgrams).i32(spec.loss).i32(3).i32(spec.bucket);
  w.i32(spec.minn).i32(spec.maxn).i32(100).f64(1e-4);
  const entries = [...spec.words, ...spec.labels];
  const prune = spec.prune;
  w.i32(entries.length).i32(spec.words.length).i32(spec.labels.length).i64(1000);
  w.i64(prune === -1 ? -1 : prune.length);
  entries.forEach((e, i) => {
    w.cstring(e)
      .i64(entries.length - i)
      .u8(i < spec.words.length ? 0 : 1);
  });
  if (prune !== -1) for (const [k, v] of prune) w.i32(k).i32(v);
  w.u8(spec.input.kind === 'quant' ? 1 : 0);
  writeMatrix(w, spec.input, spec.dim);
  w.u8(spec.output.kind === 'quant' ? 1 : 0);
  writeMatrix(w, spec.output, spec.dim);
  return w.bytes();
}

/** Offsets of the fields of a model's header, for targeted corruption. */
export function headerOffsets(spec: FtModelSpec): Record<string, number> {
  const entries = [...spec.words, ...spec.labels];
  let dictEntries = 0;
  for (const e of entries) dictEntries += new TextEncoder().encode(e).length + 1 + 8 + 1;
  const dict = 8 + 12 * 4 + 8;
  const prune = spec.prune === -1 ? 0 : spec.prune.length * 8;
  const input = dict + 12 + 16 + dictEntries + prune + 1;
  return {
    dim: 8,
    wordNgrams: 8 + 5 * 4,
    bucket: 8 + 8 * 4,
    maxn: 8 + 10 * 4,
    dictSize: dict,
    dictWords: dict + 4,
    dictLabels: dict + 8,
    pruneSize: dict + 20,
    firstEntry: dict + 28,
    inputRows: input + (spec.input.kind === 'quant' ? 1 : 0),
    inputCols: input + (spec.input.kind === 'quant' ? 1 : 0) + 8,
    codeSize: input + 17,
  };
}
