import * as tf from '@tensorflow/tfjs';
import { LlamaModel, llamaConfig, randomWeightSource } from './src/index.js';
const cfg = llamaConfig({ hiddenSize: 512, intermediateSize: 1408, numHiddenLayers: 8, numAttentionHeads: 8, numKeyValueHeads: 4, vocabSize: 32000 });
const t0 = performance.now();
const m = await LlamaModel.load(randomWeightSource(cfg, { seed: 1 }), { backend: 'wasm', attention: (process.env.ATTN as any) ?? undefined });
console.log('load ms', (performance.now() - t0).toFixed(0), m.attention);
const rnd = (n: number, s: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + s * 104729) % 31000));
const promptLen = Number(process.env.PROMPT ?? 32), newTok = Number(process.env.NEW ?? 64);
for (const B of [1, 8]) {
  const prompts = Array.from({ length: B }, (_, b) => rnd(promptLen, b));
  await m.greedy(prompts, 4); // warm
  const st = await m.prefill(prompts, { maxNewTokens: newTok });
  const t = performance.now();
  const tokens = prompts.map(() => 5);
  for (let i = 0; i < newTok; i++) await st.decodeStep(tokens);
  const dt = (performance.now() - t) / 1000;
  st.dispose();
  console.log(`decode b${B}: ${(newTok * B / dt).toFixed(1)} tok/s  (${(dt * 1000 / newTok).toFixed(1)} ms/step)`);
}
{
  const prompts = Array.from({ length: 4 }, (_, b) => rnd(256, b));
  (await m.prefill(prompts.map(p => p.slice(0, 32)))).dispose();
  const t = performance.now();
  const st = await m.prefill(prompts, { maxNewTokens: 1 });
  const dt = (performance.now() - t) / 1000;
  st.dispose();
  console.log(`prefill 4x256: ${(1024 / dt).toFixed(0)} tok/s (${(dt * 1000).toFixed(0)} ms)`);
}
console.log(tf.memory().numTensors);
