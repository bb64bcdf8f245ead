import { hostAttention, HostKVCache, RopeTable } from './src/index.js';
const B = 4, T = 256, nH = 8, nKV = 4, hd = 64;
const cache = new HostKVCache(1, B, nKV, hd, T + 8);
cache.appendMask(Array.from({ length: B }, () => new Array(T).fill(1)), T);
const qkv = new Float32Array(B * T * (nH + 2 * nKV) * hd).map(() => Math.random() - 0.5);
const pos = new Int32Array(B * T).map((_, i) => i % T);
const rope = new RopeTable({ dim: hd, theta: 10000, scaling: null });
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  hostAttention(qkv, cache, 0, 0, T, pos, rope, { heads: nH, kvHeads: nKV, headDim: hd });
  const ms = performance.now() - t0;
  console.log('prefill attn', ms.toFixed(1), 'ms', (B * nH * T * (T + 1) / 2 * hd * 2 * 2 / ms / 1e6).toFixed(2), 'GFLOP/s');
}
