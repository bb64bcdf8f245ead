/**
 * Causal grouped-query attention with rotary embeddings, two implementations with one meaning:
 *
 * - {@link hostAttention}: a fused kernel over host memory for the in-process backends (wasm, cpu). It applies
 *   RoPE to the new queries and keys, writes the new keys/values into the preallocated {@link HostKVCache} slots and
 *   attends over the valid slots only (no masked work, no intermediate tensors).
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

/** From this many new tokens per row on, the host kernel runs its score and value products as matmuls. */
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

/** out = a[m, k] @ b[k, n] on the backend (XNNPACK's GEMM on wasm). */
function matmulInto(
  out: Float32Array,
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  n: number,
): void {
  tf.tidy(() => {
    const r = tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n]));
    out.set(hostData(r));
  });
}

/**
 * Attention of row b's T new queries (already rotated and scaled in `q`, [T, heads, d]) over its `start + T`
 * cache slots, per key/value head as two GEMMs: scores = Q_g K^T, then probs V; the causal/padding softmax runs
 * on the host between them. Writes `out` rows b·T.. .
 */
function attendMatmul(
  q: Float32Array,
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
  const qg = new Float32Array(rows * hd);
  const kt = new Float32Array(hd * L);
  const scores = new Float32Array(rows * L);
  const ctx = new Float32Array(rows * hd);
  for (let kh = 0; kh < nKV; kh++) {
    // Q_g: rows (j, t) for query heads kh·group + j.
    for (let j = 0; j < group; j++) {
      const h = kh * group + j;
      for (let t = 0; t < T; t++)
        qg.set(q.subarray((t * nH + h) * hd, (t * nH + h + 1) * hd), (j * T + t) * hd);
    }
    const base = (b * nKV + kh) * cap * hd;
    for (let c = 0; c < L; c++) {
      const ko = base + c * hd;
      for (let d = 0; d < hd; d++) kt[d * L + c] = kBuf[ko + d];
    }
    matmulInto(scores, qg, rows, hd, kt, L);
    for (let r = 0; r < rows; r++) {
      const last = start + (r % T);
      const so = r * L;
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c <= last; c++) if (mask[c] !== 0 && scores[so + c] > max) max = scores[so + c];
      if (max === Number.NEGATIVE_INFINITY) {
        scores.fill(0, so, so + L); // no visible key (left padding): output unused, zeros
        continue;
      }
      let sum = 0;
      for (let c = 0; c <= last; c++) {
        const e = mask[c] !== 0 ? Math.exp(scores[so + c] - max) : 0;
        scores[so + c] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let c = 0; c <= last; c++) scores[so + c] *= inv;
      scores.fill(0, so + last + 1, so + L);
    }
    matmulInto(ctx, scores, rows, L, vBuf.subarray(base, base + L * hd), hd);
    for (let j = 0; j < group; j++) {
      const h = kh * group + j;
      for (let t = 0; t < T; t++) {
        out.set(ctx.subarray((j * T + t) * hd, (j * T + t + 1) * hd), (b * T + t) * nH * hd + h * hd);
      }
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
  const group = nH / nKV;
  const stride = (nH + 2 * nKV) * hd;
  const outStride = nH * hd;
  const scale = 1 / Math.sqrt(hd);
  const kBuf = cache.k[layer];
  const vBuf = cache.v[layer];
  const out = new Float32Array(B * T * outStride);
  // q: [B, T, heads, d], rotated and scaled by 1/sqrt(d).
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
      for (let h = 0; h < nH; h++) rotate(qkv, src + h * hd, q, (n * nH + h) * hd, cos, sin, half, scale);
      for (let kh = 0; kh < nKV; kh++) {
        const dst = ((b * nKV + kh) * cap + start + t) * hd;
        rotate(qkv, src + (nH + kh) * hd, kBuf, dst, cos, sin, half, 1);
        const vs = src + (nH + nKV + kh) * hd;
        vBuf.set(qkv.subarray(vs, vs + hd), dst);
      }
    }
  }

  // Phase 2: attention over the valid slots.
  if (T >= MATMUL_MIN_T) {
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
  const scores = new Float64Array(start + T);
  const hd4 = hd - (hd % 4);
  for (let b = 0; b < B; b++) {
    const mask = cache.keyMask[b];
    for (let t = 0; t < T; t++) {
      const last = start + t;
      const o0 = (b * T + t) * outStride;
      for (let h = 0; h < nH; h++) {
        const base = (b * nKV + Math.floor(h / group)) * cap * hd;
        const qo = ((b * T + t) * nH + h) * hd;
        let max = Number.NEGATIVE_INFINITY;
        for (let c = 0; c <= last; c++) {
          if (mask[c] === 0) {
            scores[c] = Number.NEGATIVE_INFINITY;
            continue;
          }
          const ko = base + c * hd;
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          let d = 0;
          for (; d < hd4; d += 4) {
            s0 += q[qo + d] * kBuf[ko + d];
            s1 += q[qo + d + 1] * kBuf[ko + d + 1];
            s2 += q[qo + d + 2] * kBuf[ko + d + 2];
            s3 += q[qo + d + 3] * kBuf[ko + d + 3];
          }
          for (; d < hd; d++) s0 += q[qo + d] * kBuf[ko + d];
          const s = s0 + s1 + (s2 + s3);
          scores[c] = s;
          if (s > max) max = s;
        }
        const oo = o0 + h * hd;
        // A query with no visible key (left padding before the first token): its output is never used; zeros.
        if (max === Number.NEGATIVE_INFINITY) continue;
        let sum = 0;
        for (let c = 0; c <= last; c++) {
          const p = Math.exp(scores[c] - max); // exp(-inf) = 0 for masked slots
          scores[c] = p;
          sum += p;
        }
        const inv = 1 / sum;
        // probs · V, four output dimensions per pass over the slots (accumulators stay in registers).
        let d = 0;
        for (; d < hd4; d += 4) {
          let a0 = 0;
          let a1 = 0;
          let a2 = 0;
          let a3 = 0;
          for (let c = 0, vo = base + d; c <= last; c++, vo += hd) {
            const p = scores[c];
            a0 += p * vBuf[vo];
            a1 += p * vBuf[vo + 1];
            a2 += p * vBuf[vo + 2];
            a3 += p * vBuf[vo + 3];
          }
          out[oo + d] = a0 * inv;
          out[oo + d + 1] = a1 * inv;
          out[oo + d + 2] = a2 * inv;
          out[oo + d + 3] = a3 * inv;
        }
        for (; d < hd; d++) {
          let a = 0;
          for (let c = 0, vo = base + d; c <= last; c++, vo += hd) a += scores[c] * vBuf[vo];
          out[oo + d] = a * inv;
        }
      }
    }
  }
  return out;
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
