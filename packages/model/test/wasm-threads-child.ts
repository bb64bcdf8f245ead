// Child process of wasm-threads.test.ts: loads the tiny-llama fixture on the threaded wasm backend, checks it
// against reference.json, prints one JSON line and then simply returns: the process must exit by itself.
import { readFileSync } from 'node:fs';
import { activeBackend, LlamaModel, wasmThreadCount } from '../src/index.js';

const [dir, refFile, threads] = process.argv.slice(2) as [string, string, string];
const ref = JSON.parse(readFileSync(refFile, 'utf8')) as {
  base: { input_ids: number[]; token_logprobs: number[]; greedy_new_ids: number[] }[];
  base_batched_greedy_left_padded: number[][];
};
const model = await LlamaModel.load(dir, { backend: 'wasm', wasmThreads: Number(threads) });
let worst = 0;
const greedy: number[][] = [];
for (const e of ref.base) {
  const s = await model.scoreTokens(e.input_ids);
  s.tokenLogprobs.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - e.token_logprobs[i]));
  });
  greedy.push((await model.greedy([e.input_ids], e.greedy_new_ids.length))[0]);
}
const batched = await model.greedy(
  ref.base.map((e) => e.input_ids),
  8,
  { padId: 2 },
);
console.log(
  JSON.stringify({
    backend: activeBackend(),
    threads: wasmThreadCount(),
    worst,
    greedyExact: JSON.stringify(greedy) === JSON.stringify(ref.base.map((e) => e.greedy_new_ids)),
    batchedExact: JSON.stringify(batched) === JSON.stringify(ref.base_batched_greedy_left_padded),
  }),
);
model.dispose();
