import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { LlamaModel } from './src/index.js';
const F = '/work/shared/fixtures/tiny-llama';
const ref = JSON.parse(readFileSync(`${F}/reference.json`, 'utf8'));
const m = await LlamaModel.load(`${F}/base`, { backend: 'cpu' });
const P = ref.base.map((e: any) => e.input_ids);
for (let i = 0; i < 2; i++) { const t = performance.now(); await m.scoreBatch(P); console.log('score', (performance.now() - t).toFixed(0)); }
const a = tf.randomNormal([144, 64]), b = tf.randomNormal([64, 32000]);
let t = performance.now(); tf.matMul(a, b).dataSync(); console.log('mm', (performance.now() - t).toFixed(0));
t = performance.now(); tf.matMul(a, tf.randomNormal([32000, 64]), false, true).dataSync(); console.log('mm tB', (performance.now() - t).toFixed(0));
