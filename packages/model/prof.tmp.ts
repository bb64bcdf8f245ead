import * as tf from '@tensorflow/tfjs';
import { LlamaModel, llamaConfig, randomWeightSource } from './src/index.js';
const cfg = llamaConfig({ hiddenSize: 512, intermediateSize: 1408, numHiddenLayers: 8, numAttentionHeads: 8, numKeyValueHeads: 4, vocabSize: 32000 });
const m = await LlamaModel.load(randomWeightSource(cfg, { seed: 1 }), { backend: 'wasm', attention: (process.env.ATTN as any) ?? undefined });
const rnd = (n: number, s: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + s * 104729) % 31000));
const B = Number(process.env.B ?? 4), T = Number(process.env.T ?? 256);
const prompts = Array.from({ length: B }, (_, b) => rnd(T, b));
(await m.prefill(prompts.map(p => p.slice(0, 8)))).dispose();
let st: any;
const t0 = performance.now();
if (process.env.DEC) st = await m.prefill(prompts, { maxNewTokens: 64 });
const t1 = performance.now();
const info = await tf.profile(async () => { if (!process.env.DEC) st = await m.prefill(prompts, { maxNewTokens: 1 }); else { for (let i = 0; i < 16; i++) await st.decodeStep(prompts.map(() => 5)); } });
console.log('profiled wall', (performance.now() - t1).toFixed(0));
const total = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) { const e = by.get(k.name) ?? { ms: 0, n: 0 }; e.ms += k.kernelTimeMs as number; e.n++; by.set(k.name, e); }
let sum = 0;
for (const [k, v] of [...by].sort((a, b) => b[1].ms - a[1].ms)) { sum += v.ms; console.log(k.padEnd(16), v.ms.toFixed(1), v.n); }
console.log('kernels total', sum.toFixed(0), 'wall', total.toFixed(0));
