// 03 — Merge each LoRA adapter into its base model (@polyglot/lora-merge).
// W' = W + (alpha / r) · B·A for every targeted projection, streamed shard by shard, each weight kept in its dtype,
// verified bit for bit before the folder is renamed into place: the result is an ordinary Hugging Face model
// folder that vLLM, transformers and polyglot's engine load (the paper merged before serving with vLLM).
//
// Embedded defaults (every WORK/runs/<Model>/adapter from example 02 into the smoke base model):
//   node --import tsx examples/03-merge.ts
// Real scale (a 7B model takes minutes and a few hundred MiB of memory; then `vllm serve models/llama-2-7b-multi-2`):
//   node --import tsx examples/03-merge.ts --model models/Llama-2-7b-hf --adapter runs/Multi-2/adapter \
//     --out models/llama-2-7b-multi-2 [--dtype bfloat16]
//
// Flags: --model DIR (the base; default @polyglot/cli's smoke base model; --preset, --base-cache);
//   --adapter DIR (repeatable: adapters added together) --out DIR, or neither: every WORK/runs/<Model>/adapter →
//   WORK/models/<Model>; --dtype keep|float32|float16|bfloat16; --no-verify; --runs-dir DIR; --models-dir DIR;
//   --work DIR.
// Writes: WORK/models/<Model>/ (config.json, safetensors shards + index, tokenizer files).
import path from 'node:path';
import { mergeAdapter } from '@polyglot/lora-merge';
import {
  baseModel,
  ExampleError,
  flags,
  foldersWith,
  layout,
  MODEL_OPTIONS,
  main,
  show,
  workDir,
} from './lib/common.js';

const f = flags(import.meta.url, {
  ...MODEL_OPTIONS,
  adapter: { type: 'string', multiple: true },
  out: { type: 'string' },
  dtype: { type: 'string' },
  'no-verify': { type: 'boolean' },
  'runs-dir': { type: 'string' },
  'models-dir': { type: 'string' },
});

main(import.meta.url, async () => {
  const work = await workDir(f.work);
  const dirs = layout(work);
  const base = await baseModel({ model: f.model, preset: f.preset, baseCache: f['base-cache'] });
  const dtype = (f.dtype ?? 'keep') as 'keep' | 'float32' | 'float16' | 'bfloat16';
  if (!['keep', 'float32', 'float16', 'bfloat16'].includes(dtype)) {
    throw new ExampleError(`--dtype ${dtype}: expected keep, float32, float16 or bfloat16`);
  }

  const jobs: { adapters: string[]; out: string }[] = [];
  if (f.adapter || f.out) {
    if (!f.adapter || !f.out) throw new ExampleError('--adapter and --out go together');
    jobs.push({ adapters: f.adapter.map((a) => path.resolve(a)), out: path.resolve(f.out) });
  } else {
    const runsDir = path.resolve(f['runs-dir'] ?? dirs.runs);
    const modelsDir = path.resolve(f['models-dir'] ?? dirs.models);
    const names = foldersWith(runsDir, path.join('adapter', 'adapter_config.json'));
    if (names.length === 0) {
      throw new ExampleError(`no adapters in ${runsDir}/<Model>/adapter; run examples/02-train.ts first`);
    }
    for (const n of names)
      jobs.push({ adapters: [path.join(runsDir, n, 'adapter')], out: path.join(modelsDir, n) });
  }

  for (const job of jobs) {
    const r = await mergeAdapter({
      base,
      adapters: job.adapters,
      out: job.out,
      dtype,
      verify: !f['no-verify'],
      force: true,
    });
    const verified = r.verify
      ? `, verified (${r.verify.merged} merged tensors identical to a recomputation)`
      : '';
    console.log(
      `${job.adapters.map(show).join(' + ')} → ${show(job.out)}: ${r.tensorsMerged} tensors merged, ` +
        `${(r.bytesWritten / 2 ** 20).toFixed(1)} MiB written in ${r.seconds.toFixed(2)} s${verified}`,
    );
  }
});
