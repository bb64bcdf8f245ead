// 02 — LoRA instruction tuning on the mixes (@polyglot/sft).
// One PEFT LoRA adapter per mix, trained on every token of the Guanaco text (the paper's loss), examples sorted by
// length; the adapter, its arguments and train-log.jsonl land in WORK/runs/<Model>/adapter/, where the report
// (example 09) finds the loss curves. Also records the models' languages in WORK/runs/run.json.
//
// Embedded defaults (the smoke base model, Mono and Multi-2 from example 01, a few steps of a small adapter):
//   node --import tsx examples/02-train.ts
// Real scale (Llama-2 7B in Hugging Face format; the paper's settings: r 64, alpha 16, dropout 0.05 on all seven
// projections, AdamW lr 1e-5, cosine with 3% warm-up, weight decay 0.05, clip 0.3, 10 epochs of batch 4 × 4,
// max length 1,024 — these are @polyglot/sft's defaults, used with --paper):
//   node --import tsx examples/02-train.ts --model models/Llama-2-7b-hf --mixes mono,multi-2,multi-3,multi-4,multi-5,multi-6 \
//     --paper --backend tensorflow
//   (or export the same run to TRL + PEFT for GPUs: polyglot sft export --to trl …)
//
// Flags: --model DIR (default: @polyglot/cli's smoke base model; --preset smoke|tiny, --base-cache DIR);
//   --mixes mono,multi-2 (from --mixes-dir, default WORK/mixes) | --data FILE.jsonl --name NAME;
//   --paper (the paper's hyper-parameters) or --steps 6 --batch-size 4 --grad-accum 1 --max-length 256
//   --lr 1e-3 --lora-r 8 --lora-alpha 16 --epochs N; --seed 42; --resume (continue a killed run);
//   --backend wasm|auto|tensorflow|webgpu|cpu; --runs-dir DIR (default WORK/runs); --work DIR.
// Writes: WORK/runs/<Model>/adapter/{adapter_config.json, adapter_model.safetensors, training_args.json,
//   train-log.jsonl, train_summary.json, checkpoints/}; WORK/runs/run.json.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { type SftArgs, train } from '@polyglot/sft';
import {
  backendOf,
  baseModel,
  ExampleError,
  flags,
  layout,
  list,
  MODEL_OPTIONS,
  main,
  modelNameOfMix,
  num,
  readJson,
  show,
  workDir,
  writeJson,
} from './lib/common.js';

const f = flags(import.meta.url, {
  ...MODEL_OPTIONS,
  mixes: { type: 'string' },
  'mixes-dir': { type: 'string' },
  data: { type: 'string' },
  name: { type: 'string' },
  paper: { type: 'boolean' },
  steps: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  'max-length': { type: 'string' },
  lr: { type: 'string' },
  'lora-r': { type: 'string' },
  'lora-alpha': { type: 'string' },
  seed: { type: 'string' },
  resume: { type: 'boolean' },
  'runs-dir': { type: 'string' },
});

interface RunJson {
  title?: string;
  base_model?: string;
  models?: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

main(import.meta.url, async () => {
  const work = await workDir(f.work);
  const dirs = layout(work);
  const runsDir = path.resolve(f['runs-dir'] ?? dirs.runs);
  const model = await baseModel({ model: f.model, preset: f.preset, baseCache: f['base-cache'] });

  // What to train: the mixes of example 01, or one file.
  const jobs: { name: string; data: string; languages: string[] | null }[] = [];
  if (f.data) {
    if (!f.name) throw new ExampleError('--data needs --name (the model name, e.g. Multi-2)');
    jobs.push({ name: f.name, data: path.resolve(f.data), languages: null });
  } else {
    const mixesDir = path.resolve(f['mixes-dir'] ?? dirs.mixes);
    for (const mix of list(f.mixes, ['mono', 'multi-2'])) {
      const data = path.join(mixesDir, `${mix}.jsonl`);
      if (!existsSync(data)) {
        throw new ExampleError(
          `${data}: no such mix; run examples/01-build-mixes.ts first (or give --mixes-dir)`,
        );
      }
      const manifest = await readJson<{ counts?: Record<string, number> }>(
        path.join(mixesDir, `${mix}.manifest.json`),
        {},
      );
      jobs.push({
        name: modelNameOfMix(mix),
        data,
        languages: manifest.counts ? Object.keys(manifest.counts) : null,
      });
    }
  }

  // Tiny settings for the embedded defaults; --paper keeps @polyglot/sft's defaults, which are the paper's.
  const settings: Partial<SftArgs> = f.paper
    ? {}
    : {
        loraR: num(f['lora-r'], 'lora-r', 8),
        loraAlpha: num(f['lora-alpha'], 'lora-alpha', 16),
        lr: num(f.lr, 'lr', 1e-3),
        warmupRatio: 0,
        maxSteps: num(f.steps, 'steps', 6),
        batchSize: num(f['batch-size'], 'batch-size', 4),
        gradAccum: num(f['grad-accum'], 'grad-accum', 1),
        maxLength: num(f['max-length'], 'max-length', 256),
        saveSteps: 0,
      };
  if (f.paper) {
    for (const k of [
      'steps',
      'batch-size',
      'grad-accum',
      'max-length',
      'lr',
      'lora-r',
      'lora-alpha',
    ] as const) {
      if (f[k] !== undefined)
        throw new ExampleError(`--paper sets the paper's hyper-parameters; drop --${k}`);
    }
  }
  if (f.epochs !== undefined) settings.epochs = num(f.epochs, 'epochs', 1);
  settings.seed = num(f.seed, 'seed', 42);
  settings.backend = backendOf(f.backend);

  const runJsonPath = path.join(runsDir, 'run.json');
  const runJson = await readJson<RunJson>(runJsonPath, {});
  runJson.title ??= 'polyglot examples: how much multilinguality?';
  runJson.base_model = model;
  runJson.models ??= {};
  for (const job of jobs) {
    const out = path.join(runsDir, job.name, 'adapter');
    console.log(`training ${job.name} on ${show(job.data)} …`);
    const s = await train(
      { model, data: job.data, out, ...settings },
      f.resume ? { resume: true } : { force: true },
    );
    console.log(
      `  ${s.steps} updates on ${s.examples} examples (${s.truncated} truncated), ` +
        `${s.trainableParameters.toLocaleString('en-US')} LoRA parameters, loss ${fmt(s.firstLoss)} → ${fmt(s.lastLoss)}, ` +
        `${s.tokensPerSec.toFixed(0)} tokens/s on ${s.backend} → ${show(out)}`,
    );
    runJson.models[job.name] = {
      ...(runJson.models[job.name] ?? {}),
      ...(job.languages ? { languages: job.languages } : {}),
      adapter: out,
      data: job.data,
    };
  }
  await writeJson(runJsonPath, runJson);
  console.log(`models and their languages: ${show(runJsonPath)}`);
});

function fmt(x: number | null): string {
  return x === null ? '–' : x.toFixed(3);
}
