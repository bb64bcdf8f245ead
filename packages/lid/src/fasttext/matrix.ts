// fastText's matrices: dense float32 (densematrix.cc) and product-quantized (quantmatrix.cc,
// productquantizer.cc). Arithmetic follows the C++ in float32, operation by operation: a Float32Array store
// rounds each sum, Math.fround each product, so results equal the reference bit for bit where the C++ does not
// call libm.
import { endianness } from 'node:os';
import type { BinaryReader } from './binary.js';

const LITTLE_ENDIAN = endianness() === 'LE';

/** Reads `count` little-endian float32 values straight into a new Float32Array (one copy, in chunks). */
export function readFloats(r: BinaryReader, count: number, what: string): Float32Array {
  const out = new Float32Array(count);
  r.readInto(new Uint8Array(out.buffer, out.byteOffset, out.byteLength), what);
  if (!LITTLE_ENDIAN) {
    const v = new DataView(out.buffer);
    for (let i = 0; i < count; i++) out[i] = v.getFloat32(i * 4, true);
  }
  return out;
}

export interface Matrix {
  readonly kind: 'dense' | 'quant';
  /** rows */
  readonly m: number;
  /** columns (the model's dim) */
  readonly n: number;
  /** x += row i (DenseMatrix/QuantMatrix::addRowToVector). */
  addRowTo(x: Float32Array, i: number): void;
  /** row i · x, accumulated in float32 (dotRow). */
  dotRow(x: Float32Array, i: number): number;
  /** Bytes held. */
  readonly bytes: number;
}

export class DenseMatrix implements Matrix {
  readonly kind = 'dense';
  constructor(
    readonly m: number,
    readonly n: number,
    readonly data: Float32Array,
  ) {}

  static load(r: BinaryReader, what: string, expectCols?: number): DenseMatrix {
    const m = r.i64(`${what} rows`);
    const n = r.i64(`${what} columns`);
    if (m < 0 || n <= 0 || (expectCols !== undefined && n !== expectCols)) {
      throw r.corrupt(
        `${what} has shape ${m} × ${n}${expectCols !== undefined ? ` (expected ${expectCols} columns)` : ''}`,
      );
    }
    if (m * n * 4 > r.remaining) throw r.truncated(`${what} (${m} × ${n} float32)`, m * n * 4);
    return new DenseMatrix(m, n, readFloats(r, m * n, `${what} (${m} × ${n} float32)`));
  }

  get bytes(): number {
    return this.data.byteLength;
  }

  addRowTo(x: Float32Array, i: number): void {
    const n = this.n;
    const d = this.data;
    const off = i * n;
    for (let j = 0; j < n; j++) x[j] += d[off + j]!;
  }

  dotRow(x: Float32Array, i: number): number {
    const n = this.n;
    const d = this.data;
    const off = i * n;
    let s = 0;
    for (let j = 0; j < n; j++) s = Math.fround(s + Math.fround(d[off + j]! * x[j]!));
    return s;
  }
}

/** ProductQuantizer: nsubq sub-quantizers of 256 centroids of dsub dims (the last one lastdsub dims). */
export class ProductQuantizer {
  static readonly KSUB = 256;
  constructor(
    readonly dim: number,
    readonly nsubq: number,
    readonly dsub: number,
    readonly lastdsub: number,
    readonly centroids: Float32Array,
  ) {}

  static load(r: BinaryReader, what: string): ProductQuantizer {
    const dim = r.i32(`${what} dim`);
    const nsubq = r.i32(`${what} nsubq`);
    const dsub = r.i32(`${what} dsub`);
    const lastdsub = r.i32(`${what} lastdsub`);
    const ok =
      dim > 0 &&
      nsubq > 0 &&
      dsub > 0 &&
      lastdsub > 0 &&
      lastdsub <= dsub &&
      (nsubq - 1) * dsub + lastdsub === dim;
    if (!ok) {
      throw r.corrupt(
        `${what} has inconsistent sizes (dim ${dim}, nsubq ${nsubq}, dsub ${dsub}, lastdsub ${lastdsub})`,
      );
    }
    const count = dim * ProductQuantizer.KSUB;
    if (count * 4 > r.remaining) throw r.truncated(`${what} centroids`, count * 4);
    return new ProductQuantizer(dim, nsubq, dsub, lastdsub, readFloats(r, count, `${what} centroids`));
  }

  /** Offset into centroids of centroid `code` of sub-quantizer m (get_centroids). */
  centroidOffset(m: number, code: number): number {
    return m === this.nsubq - 1
      ? m * ProductQuantizer.KSUB * this.dsub + code * this.lastdsub
      : (m * ProductQuantizer.KSUB + code) * this.dsub;
  }
}

export class QuantMatrix implements Matrix {
  readonly kind = 'quant';
  constructor(
    readonly m: number,
    readonly n: number,
    readonly codes: Uint8Array,
    readonly pq: ProductQuantizer,
    readonly normCodes: Uint8Array | null,
    readonly npq: ProductQuantizer | null,
  ) {}

  static load(r: BinaryReader, what: string, expectCols?: number): QuantMatrix {
    const qnorm = r.bool(`${what} qnorm flag`);
    const m = r.i64(`${what} rows`);
    const n = r.i64(`${what} columns`);
    const codesize = r.i32(`${what} code size`);
    if (m < 0 || n <= 0 || (expectCols !== undefined && n !== expectCols)) {
      throw r.corrupt(
        `${what} has shape ${m} × ${n}${expectCols !== undefined ? ` (expected ${expectCols} columns)` : ''}`,
      );
    }
    if (codesize < 0) throw r.corrupt(`${what} has a negative code size (${codesize})`);
    if (codesize > r.remaining) throw r.truncated(`${what} codes`, codesize);
    const codes = new Uint8Array(codesize);
    r.readInto(codes, `${what} codes`);
    const pq = ProductQuantizer.load(r, `${what} product quantizer`);
    if (pq.dim !== n || codesize !== m * pq.nsubq) {
      throw r.corrupt(
        `${what}: ${codesize} codes for ${m} rows of ${pq.nsubq} sub-quantizers, quantizer dim ${pq.dim} vs ${n} columns`,
      );
    }
    let normCodes: Uint8Array | null = null;
    let npq: ProductQuantizer | null = null;
    if (qnorm) {
      if (m > r.remaining) throw r.truncated(`${what} norm codes`, m);
      normCodes = new Uint8Array(m);
      r.readInto(normCodes, `${what} norm codes`);
      npq = ProductQuantizer.load(r, `${what} norm quantizer`);
      if (npq.dim !== 1 || npq.nsubq !== 1) throw r.corrupt(`${what} norm quantizer is not 1-dimensional`);
    }
    return new QuantMatrix(m, n, codes, pq, normCodes, npq);
  }

  get bytes(): number {
    return this.codes.byteLength + this.pq.centroids.byteLength + (this.normCodes?.byteLength ?? 0);
  }

  /**
   * All rows decoded into a dense array of exactly the float32 values addRowTo adds (norm × centroid, rounded
   * to float32 as the C++ product is), so summing decoded rows gives the same bits as addRowTo.
   */
  decode(): Float32Array {
    const { m, n, pq } = this;
    const out = new Float32Array(m * n);
    const c = pq.centroids;
    for (let i = 0; i < m; i++) {
      const alpha = this.norm(i);
      const base = pq.nsubq * i;
      for (let q = 0; q < pq.nsubq; q++) {
        const d = q === pq.nsubq - 1 ? pq.lastdsub : pq.dsub;
        const off = pq.centroidOffset(q, this.codes[base + q]!);
        const xo = i * n + q * pq.dsub;
        if (this.normCodes) for (let k = 0; k < d; k++) out[xo + k] = Math.fround(alpha * c[off + k]!);
        else for (let k = 0; k < d; k++) out[xo + k] = c[off + k]!;
      }
    }
    return out;
  }

  /** The row's norm (1 without quantized norms). */
  norm(i: number): number {
    return this.normCodes ? this.npq!.centroids[this.normCodes[i]!]! : 1;
  }

  addRowTo(x: Float32Array, i: number): void {
    const pq = this.pq;
    const c = pq.centroids;
    const nsubq = pq.nsubq;
    const dsub = pq.dsub;
    const codes = this.codes;
    const base = nsubq * i;
    if (this.normCodes) {
      const alpha = this.norm(i);
      for (let m = 0; m < nsubq; m++) {
        const d = m === nsubq - 1 ? pq.lastdsub : dsub;
        const off = pq.centroidOffset(m, codes[base + m]!);
        const xo = m * dsub;
        for (let k = 0; k < d; k++) x[xo + k] += Math.fround(alpha * c[off + k]!);
      }
    } else {
      // alpha = 1: alpha * c is c exactly
      const last = nsubq - 1;
      for (let m = 0; m < last; m++) {
        const off = (m * 256 + codes[base + m]!) * dsub;
        const xo = m * dsub;
        for (let k = 0; k < dsub; k++) x[xo + k] += c[off + k]!;
      }
      const d = pq.lastdsub;
      const off = last * 256 * dsub + codes[base + last]! * d;
      const xo = last * dsub;
      for (let k = 0; k < d; k++) x[xo + k] += c[off + k]!;
    }
  }

  dotRow(x: Float32Array, i: number): number {
    const pq = this.pq;
    const c = pq.centroids;
    const nsubq = pq.nsubq;
    const dsub = pq.dsub;
    const base = nsubq * i;
    let res = 0;
    for (let m = 0; m < nsubq; m++) {
      const d = m === nsubq - 1 ? pq.lastdsub : dsub;
      const off = pq.centroidOffset(m, this.codes[base + m]!);
      const xo = m * dsub;
      for (let k = 0; k < d; k++) res = Math.fround(res + Math.fround(x[xo + k]! * c[off + k]!));
    }
    return Math.fround(res * this.norm(i));
  }
}
