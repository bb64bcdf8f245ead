/**
 * Causal grouped-query attention with rotary embeddings, two implementations with one meaning:
 *
 * - {@link hostAttention}: a fused kernel over host memory for the in-process backends (wasm, cpu). It applies
 *   RoPE to the new queries and keys and writes the new keys/values into the preallocated {@link HostKVCache}
 *   slots. A few new tokens per row (decoding) attend over the valid slots only, in JavaScript (no masked work, no
 *   intermediate tensors); 8 or more (prefill) run per key/value head as backend GEMMs around the backend's
 *   softmax kernel (the scores never come back to JavaScript).
 * - {@link tensorAttention}: TensorFlow.js ops (works on every backend, GPU ones included), with a
 *   {@link TensorKVCache} extended by concat and an additive mask.
 *
 * Both follow transformers' LlamaAttention: scores `(q·k) / sqrt(head_dim)`, key `j` visible from query `i` when
 * `j <= i` and `j` is not padding, softmax in float32, `probs · v`; query head `h` reads key/value head
 * `floor(h / (heads / kvHeads))` (`repeat_kv`).
 */
import * as tf from '@tensorflow/tfjs';
import type { HostKVCache, TensorKVCache } from './cache.js';
import type { RopeTable } from './rope.js';

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** What is added to the scores of keys a query must not see (transformers adds finfo(float32).min). */
export const MASKED = -1e30;

/** From this many new tokens per row on, the host kernel runs scores, softmax and probs · V on the backend. */
const MATMUL_MIN_T = 8;

/**
 * A float32 tensor's values for reading on the host: on wasm a view of the backend's heap (no copy; valid until the
 * backend next allocates), elsewhere dataSync().
 */
export function hostData(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  if (tf.getBackend() === 'wasm' && typeof backend.typedArrayFromHeap === 'function')
    return backend.typedArrayFromHeap(t);
  return t.dataSync() as Float32Array;
}

/**
 * Attention of row b's T new queries over its `start + T` cache slots, per key/value head on the backend:
 * scores = Q_g K^T (an XNNPACK GEMM; K^T is copied out of the cache, the GEMM takes untransposed operands only),
 * plus the additive causal/padding mask, softmax (the backend's kernel), then probs V. `qg` holds the rotated and
 * scaled queries grouped by key/value head, `[kvHeads, group, T, d]` (query head kh·group + j); the scores never
 * leave the backend. Queries with no visible key (left padding) get zeros, like the per-token kernel. Writes `out`
 * rows b·T.. .
 */
function attendMatmul(
  qg: Float32Array,
  kBuf: Float32Array,
  vBuf: Float32Array,
  mask: Uint8Array,
  out: Float32Array,
  b: number,
  start: number,
  T: number,
  cap: number,
  shape: AttentionShape,
): void {
  const { heads: nH, kvHeads: nKV, headDim: hd } = shape;
  const group = nH / nKV;
  const L = start + T;
  const rows = group * T;
  // Additive mask [T, L]: key c is visible from query t when c <= start + t and c holds a token.
  const add = new Float32Array(T * L).fill(MASKED);
  let first = L; // the first slot holding a token
  for (let c = L - 1; c >= 0; c--) if (mask[c] !== 0) first = c;
  for (let t = 0; t < T; t++) {
    const o = t * L;
    for (let c = first; c <= start + t; c++) if (mask[c] !== 0) add[o + c] = 0;
  }
  const kt = new Float32Array(hd * L);
  const ctx = new Float32Array(nKV * rows * hd);
  tf.tidy(() => {
    const addT = tf.tensor3d(add, [1, T, L]);
    for (let kh = 0; kh < nKV; kh++) {
      const base = (b * nKV + kh) * cap * hd;
      for (let c = 0; c < L; c++) {
        const ko = base + c * hd;
        for (let d = 0; d < hd; d++) kt[d * L + c] = kBuf[ko + d];
      }
      const q2 = tf.tensor2d(qg.subarray(kh * rows * hd, (kh + 1) * rows * hd), [rows, hd]);
      const scores = tf.reshape(tf.matMul(q2, tf.tensor2d(kt, [hd, L])), [group, T, L]);
      const probs = tf.reshape(tf.softmax(tf.add(scores, addT)), [rows, L]);
      const v = tf.tensor2d(vBuf.subarray(base, base + L * hd), [L, hd]);
      ctx.set(hostData(tf.matMul(probs, v)), kh * rows * hd);
    }
  });
  for (let t = Math.max(0, first - start); t < T; t++) {
    const o = (b * T + t) * nH * hd;
    for (let h = 0; h < nH; h++) {
      const src = (h * T + t) * hd; // [kh, j, t] with h = kh·group + j
      out.set(ctx.subarray(src, src + hd), o + h * hd);
    }
  }
}

/** `out = x·cos + rotate_half(x)·sin` for one head (rotate_half([x1, x2]) = [-x2, x1]); cos/sin are half-rows. */
function rotate(
  x: Float32Array,
  xo: number,
  out: Float32Array,
  oo: number,
  cos: Float32Array,
  sin: Float32Array,
  half: number,
  scale: number,
): void {
  for (let i = 0; i < half; i++) {
    const a = x[xo + i];
    const b = x[xo + half + i];
    out[oo + i] = (a * cos[i] - b * sin[i]) * scale;
    out[oo + half + i] = (b * cos[i] + a * sin[i]) * scale;
  }
}

/**
 * Fused attention over host memory. `qkv` is `[batch·T, (heads + 2·kvHeads)·headDim]` (the fused q|k|v projection
 * output, row-major); the new keys/values go to cache slots `start..start+T-1` of `layer` (the cache's key mask
 * must already cover them); `positions[b·T + t]` are the rotary positions. Returns `[batch·T, heads·headDim]`.
 */
export function hostAttention(
  qkv: Float32Array,
  cache: HostKVCache,
  layer: number,
  start: number,
  T: number,
  positions: ArrayLike<number>,
  rope: RopeTable,
  shape: AttentionShape,
): Float32Array {
  const { heads: nH, kvHeads: nKV, headDim: hd } = shape;
  const B = cache.batch;
  const cap = cache.capacity;
  const half = hd >> 1;
  const stride = (nH + 2 * nKV) * hd;
  const outStride = nH * hd;
  const scale = 1 / Math.sqrt(hd);
  const kBuf = cache.k[layer];
  const vBuf = cache.v[layer];
  const out = new Float32Array(B * T * outStride);
  // q rotated and scaled by 1/sqrt(d): [B, T, heads, d] for the per-token kernel, [B, heads, T, d] (= per row,
  // [kvHeads, group, T, d]) for the matmul path.
  const grouped = T >= MATMUL_MIN_T;
  const q = new Float32Array(B * T * nH * hd);

  // Phase 1: RoPE on the new queries and keys; keys and values go into the cache slots in place. `qkv` may be a
  // view of the backend's memory, so it is read completely before anything below allocates on the backend.
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      const pos = positions[n];
      const cos = rope.cos(pos);
      const sin = rope.sin(pos);
      const src = n * stride;
      for (let h = 0; h < nH; h++) {
        const qo = grouped ? ((b * nH + h) * T + t) * hd : (n * nH + h) * hd;
        rotate(qkv, src + h * hd, q, qo, cos, sin, half, scale);
      }
      for (let kh = 0; kh < nKV; kh++) {
        const dst = ((b * nKV + kh) * cap + start + t) * hd;
        rotate(qkv, src + (nH + kh) * hd, kBuf, dst, cos, sin, half, 1);
        const vs = src + (nH + nKV + kh) * hd;
        vBuf.set(qkv.subarray(vs, vs + hd), dst);
      }
    }
  }

  // Phase 2: attention over the valid slots.
  if (grouped) {
    for (let b = 0; b < B; b++) {
      attendMatmul(
        q.subarray(b * T * nH * hd, (b + 1) * T * nH * hd),
        kBuf,
        vBuf,
        cache.keyMask[b],
        out,
        b,
        start,
        T,
        cap,
        shape,
      );
    }
    return out;
  }
  attendTokens(q, kBuf, vBuf, cache.keyMask, out, B, T, start, cap, shape);
  return out;
}

/**
 * The per-token kernel (few new tokens per row: decoding): for each new token, each key/value head and each pair
 * of its query heads, scores over the visible slots, softmax, probs · V, in float64. The two query heads of a
 * pair share every load of a key and value row. `q` is `[B, T, heads, d]`.
 */
function attendTokens(
  q: Float32Array,
  kBuf: Float32Array,
  vBuf: Float32Array,
  keyMask: Uint8Array[],
  out: Float32Array,
  B: number,
  T: number,
  start: number,
  cap: number,
  shape: AttentionShape,
): void {
  const { heads: nH, kvHeads: nKV, headDim: hd } = shape;
  const group = nH / nKV;
  const sa = new Float64Array(start + T);
  const sb = new Float64Array(start + T);
  const hd4 = hd - (hd % 4);
  const NEG = Number.NEGATIVE_INFINITY;
  for (let b = 0; b < B; b++) {
    const mask = keyMask[b];
    for (let t = 0; t < T; t++) {
      const last = start + t;
      const row = (b * T + t) * nH * hd;
      for (let kh = 0; kh < nKV; kh++) {
        const base = (b * nKV + kh) * cap * hd;
        for (let j = 0; j < group; j += 2) {
          // Query heads h and h + 1 (a lone last head of an odd group is computed twice, written once).
          const h = kh * group + j;
          const pair = j + 1 < group;
          const qa = row + h * hd;
          const qb = pair ? qa + hd : qa;
          let maxA = NEG;
          let maxB = NEG;
          for (let c = 0; c <= last; c++) {
            if (mask[c] === 0) {
              sa[c] = NEG;
              sb[c] = NEG;
              continue;
            }
            const ko = base + c * hd;
            let a0 = 0;
            let a1 = 0;
            let a2 = 0;
            let a3 = 0;
            let b0 = 0;
            let b1 = 0;
            let b2 = 0;
            let b3 = 0;
            let d = 0;
            for (; d < hd4; d += 4) {
              const k0 = kBuf[ko + d];
              const k1 = kBuf[ko + d + 1];
              const k2 = kBuf[ko + d + 2];
              const k3 = kBuf[ko + d + 3];
              a0 += q[qa + d] * k0;
              a1 += q[qa + d + 1] * k1;
              a2 += q[qa + d + 2] * k2;
              a3 += q[qa + d + 3] * k3;
              b0 += q[qb + d] * k0;
              b1 += q[qb + d + 1] * k1;
              b2 += q[qb + d + 2] * k2;
              b3 += q[qb + d + 3] * k3;
            }
            for (; d < hd; d++) {
              a0 += q[qa + d] * kBuf[ko + d];
              b0 += q[qb + d] * kBuf[ko + d];
            }
            const x = a0 + a1 + (a2 + a3);
            const y = b0 + b1 + (b2 + b3);
            sa[c] = x;
            sb[c] = y;
            if (x > maxA) maxA = x;
            if (y > maxB) maxB = y;
          }
          // No visible key (left padding before the row's first token): the output is never used; zeros.
          if (maxA === NEG) continue;
          let sumA = 0;
          let sumB = 0;
          for (let c = 0; c <= last; c++) {
            const pa = Math.exp(sa[c] - maxA); // exp(-inf) = 0 for masked slots
            const pb = Math.exp(sb[c] - maxB);
            sa[c] = pa;
            sb[c] = pb;
            sumA += pa;
            sumB += pb;
          }
          const invA = 1 / sumA;
          const invB = 1 / sumB;
          const oa = row + h * hd;
          const ob = oa + hd;
          // probs · V, four output dimensions of both heads per pass over the slots (accumulators in registers).
          let d = 0;
          for (; d < hd4; d += 4) {
            let a0 = 0;
            let a1 = 0;
            let a2 = 0;
            let a3 = 0;
            let b0 = 0;
            let b1 = 0;
            let b2 = 0;
            let b3 = 0;
            for (let c = 0, vo = base + d; c <= last; c++, vo += hd) {
              const pa = sa[c];
              const pb = sb[c];
              const v0 = vBuf[vo];
              const v1 = vBuf[vo + 1];
              const v2 = vBuf[vo + 2];
              const v3 = vBuf[vo + 3];
              a0 += pa * v0;
              a1 += pa * v1;
              a2 += pa * v2;
              a3 += pa * v3;
              b0 += pb * v0;
              b1 += pb * v1;
              b2 += pb * v2;
              b3 += pb * v3;
            }
            out[oa + d] = a0 * invA;
            out[oa + d + 1] = a1 * invA;
            out[oa + d + 2] = a2 * invA;
            out[oa + d + 3] = a3 * invA;
            if (pair) {
              out[ob + d] = b0 * invB;
              out[ob + d + 1] = b1 * invB;
              out[ob + d + 2] = b2 * invB;
              out[ob + d + 3] = b3 * invB;
            }
          }
          for (; d < hd; d++) {
            let a = 0;
            let bb = 0;
            for (let c = 0, vo = base + d; c <= last; c++, vo += hd) {
              a += sa[c] * vBuf[vo];
              bb += sb[c] * vBuf[vo];
            }
            out[oa + d] = a * invA;
            if (pair) out[ob + d] = bb * invB;
          }
        }
      }
    }
  }
}

/** `[-x2, x1]` along the last axis. */
function rotateHalf(x: tf.Tensor4D, half: number): tf.Tensor4D {
  const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
  return tf.concat([tf.neg(x2), x1], 3);
}

/**
 * Tensor-op attention. `qkv` is `[batch·T, (heads + 2·kvHeads)·headDim]`; `cos`/`sin` are `[batch, T, 1, headDim]`;
 * `mask` is the additive mask `[batch, 1, 1, T, length+T]` (0 or {@link MASKED}). Extends the cache's layer tensors
 * and returns `[batch·T, heads·headDim]`. Call inside tf.tidy.
 */
export function tensorAttention(
  qkv: tf.Tensor2D,
  cache: TensorKVCache,
  layer: number,
  batch: number,
  T: number,
  cos: tf.Tensor4D,
  sin: tf.Tensor4D,
  mask: tf.Tensor,
  shape: AttentionShape,
): tf.Tensor2D {
  const { heads: nH, kvHeads: nKV, headDim: hd } = shape;
  const group = nH / nKV;
  const x: tf.Tensor4D = tf.reshape(qkv, [batch, T, nH + 2 * nKV, hd]);
  const rope = (t: tf.Tensor4D): tf.Tensor4D => tf.add(tf.mul(t, cos), tf.mul(rotateHalf(t, hd >> 1), sin));
  const q = rope(tf.slice(x, [0, 0, 0, 0], [-1, -1, nH, -1]));
  const kNew = rope(tf.slice(x, [0, 0, nH, 0], [-1, -1, nKV, -1]));
  const vNew = tf.slice(x, [0, 0, nH + nKV, 0], [-1, -1, nKV, -1]);
  // [batch, heads, T, d]
  const qh = tf.transpose(q, [0, 2, 1, 3]);
  const kh: tf.Tensor4D = tf.transpose(kNew, [0, 2, 1, 3]);
  const vh: tf.Tensor4D = tf.transpose(vNew, [0, 2, 1, 3]);
  const prevK = cache.k[layer];
  const prevV = cache.v[layer];
  const k: tf.Tensor4D = prevK ? tf.concat([prevK, kh], 2) : kh;
  const v: tf.Tensor4D = prevV ? tf.concat([prevV, vh], 2) : vh;
  cache.set(layer, k, v);
  const L = k.shape[2] as number;
  // Query heads h = kv·group + j share key head kv: [batch, kvHeads, group·T, d].
  const qg = tf.reshape(qh, [batch, nKV, group * T, hd]);
  const scores = tf.mul(tf.matMul(qg, k, false, true), 1 / Math.sqrt(hd));
  const masked = tf.add(tf.reshape(scores, [batch, nKV, group, T, L]), mask);
  const probs = tf.reshape(tf.softmax(masked), [batch, nKV, group * T, L]);
  const ctx = tf.matMul(probs, v); // [batch, kvHeads, group·T, d] = [batch, heads, T, d]
  const merged = tf.transpose(tf.reshape(ctx, [batch, nH, T, hd]), [0, 2, 1, 3]);
  return tf.reshape(merged, [batch * T, nH * hd]);
}
