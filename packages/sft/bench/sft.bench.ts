// One LoRA training step (r 8 on all 7 projections of every block, batch 4 × 256 tokens, loss on every token,
// clip 0.3, AdamW) of the "small" Llama (hidden 512, 8 layers, 8 heads / 4 KV heads, intermediate 1408, vocab 32000,
// seeded random weights) on the wasm backend (1 and 2 threads), side by side with PyTorch 1.13 on CPU (Debian
// python3-torch, OpenBLAS, 2 threads) on the same weights, adapter and tokens: seconds per step, tokens/s, the
// forward / backward / optimizer breakdown, peak RSS, and the losses and gradient norms of both (they must agree).
//
// Each side runs in its own process (its peak RSS is its own): this file with `--engine` for ours, bench/sft_torch.py
// for PyTorch, which first reproduces the tiny-llama fixture's SFT recipe (so that it is a correct trainer).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createLoraConfig,
  llamaConfig,
  randomWeightSource,
  type TensorToWrite,
  wasmThreadCount,
  writeAdapter,
  writeSafetensors,
} from '@polyglot/model';
import { type Figure, fmt, recordBench } from '../../../tools/bench.js';
import { repoRoot, sharedDir } from '../../../tools/shared.js';
import { collate, LoraTrainer } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PY = '/usr/bin/python3'; // Debian's python3 with python3-torch (not a pyenv python on PATH)
const TORCH_THREADS = 2;
const REPS = 5;
/** Steps during which other processes used more than this many cores are not timed; at most MAX_STEPS run. */
const BUSY_LIMIT = 0.25;
const MAX_STEPS = 16;
const BATCH = 4;
const LENGTH = 256;
const R = 8;
const SMALL = {
  hiddenSize: 512,
  intermediateSize: 1408,
  numHiddenLayers: 8,
  numAttentionHeads: 8,
  numKeyValueHeads: 4,
  vocabSize: 32000,
};
const PROJ = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

interface Work {
  input_ids: number[][];
  labels: number[][];
  lr: number;
  max_grad_norm: number;
  weight_decay: number;
}

interface StepTimes {
  /** Cores other processes kept busy during the step. */
  others: number;
  loss: number;
  grad_norm: number;
  forward_s: number;
  backward_s: number;
  optimizer_s: number;
  step_s: number;
}

interface SideResult {
  steps: StepTimes[];
  peak_rss_mib: number;
  cpu_s: number;
  threads?: number;
  torch?: string;
  reference?: { loss_max_abs_err: number; grad_norm_max_rel_err: number; step0_grad_max_rel_err: number };
  wall_s?: number;
  others_cores?: number;
}

/** Our side, in this (child) process. Prints one JSON line. */
async function engine(job: { model: string; adapter: string; work: string; threads: number }): Promise<void> {
  const work = JSON.parse(readFileSync(job.work, 'utf8')) as Work;
  const trainer = await LoraTrainer.create({
    model: job.model,
    backend: 'wasm',
    wasmThreads: job.threads,
    initAdapter: job.adapter,
    dropout: 0,
    optimizer: { lr: work.lr, weightDecay: work.weight_decay },
  });
  const batch = collate(
    work.input_ids.map((ids) => ({ ids, targets: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)) })),
    2,
  );
  // The first step is a warm-up; then steps until REPS of them ran while other processes left the machine quiet
  // (at most MAX_STEPS; then the quietest are kept).
  const steps: StepTimes[] = [];
  for (
    let rep = 0;
    rep < MAX_STEPS && steps.filter((s, i) => i > 0 && s.others <= BUSY_LIMIT).length < REPS;
    rep++
  ) {
    const before = { ...trainer.timings };
    const busy0 = machineBusySeconds();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await trainer.step([batch], work.lr, work.max_grad_norm);
    const step_s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const busy1 = machineBusySeconds();
    const t = trainer.timings;
    steps.push({
      loss: r.loss,
      grad_norm: r.gradNorm,
      forward_s: (t.forwardMs - before.forwardMs) / 1000,
      backward_s: (t.backwardMs - before.backwardMs) / 1000,
      optimizer_s: (t.optimizerMs - before.optimizerMs) / 1000,
      step_s,
      others:
        busy0 === null || busy1 === null
          ? 0
          : Math.max(0, (busy1 - busy0 - (cpu.user + cpu.system) / 1e6) / step_s),
    });
  }
  trainer.dispose();
  const cpu = process.cpuUsage();
  const result: SideResult = {
    steps,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    threads: wasmThreadCount() ?? 0,
  };
  console.log(JSON.stringify(result));
}

/** Busy CPU seconds of the whole machine so far (/proc/stat), or null where unavailable. */
function machineBusySeconds(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
  } catch {
    return null;
  }
}

/** Waits (at most maxSeconds) until other processes leave the machine idle; returns whether it got quiet. */
function waitForIdle(maxSeconds = 180): boolean {
  const t0 = performance.now();
  while (performance.now() - t0 < maxSeconds * 1000) {
    const a = machineBusySeconds();
    if (a === null) return true;
    const s0 = performance.now();
    spawnSync('sleep', ['2']);
    const busy = (machineBusySeconds()! - a) / ((performance.now() - s0) / 1000);
    if (busy < 0.15) return true;
  }
  return false;
}

function runSide(what: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): SideResult {
  if (!waitForIdle()) console.log(`  (the machine stayed busy; ${what} runs anyway)`);
  const busy0 = machineBusySeconds();
  const t0 = performance.now();
  const r = spawnSync(cmd, args, {
    cwd: path.dirname(here),
    env: env ?? process.env,
    encoding: 'utf8',
    timeout: 20 * 60_000,
    maxBuffer: 64 * 2 ** 20,
  });
  const wall = (performance.now() - t0) / 1000;
  const lines = (r.stdout ?? '').trim().split('\n');
  if (r.status !== 0 || r.error) {
    process.stderr.write((r.stderr ?? '').slice(-4000));
    throw new Error(
      `${what} failed (${r.error ? r.error.message : `exit ${r.status}`}): ${lines.slice(-3).join(' | ')}`,
    );
  }
  const result = JSON.parse(lines[lines.length - 1]!) as SideResult;
  result.wall_s = wall;
  const busy1 = machineBusySeconds();
  if (busy0 !== null && busy1 !== null)
    result.others_cores = Math.max(0, (busy1 - busy0 - result.cpu_s) / wall);
  console.log(
    `  ${what}: ${wall.toFixed(1)} s` +
      (result.others_cores !== undefined ? `, other processes ${result.others_cores.toFixed(2)} cores` : ''),
  );
  return result;
}

/** Deterministic token ids in [3, vocab). */
function tokenRows(rows: number, length: number, vocab: number, seed: number): number[][] {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (vocab - 3));
  };
  return Array.from({ length: rows }, () => Array.from({ length }, next));
}

/** "small" as a Hugging Face checkpoint (config.json + model.safetensors, F32) from the seeded weights. */
async function writeSmall(dir: string): Promise<void> {
  const cfg = llamaConfig(SMALL);
  const src = randomWeightSource(cfg, { seed: 1 });
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of src.tensorNames()) {
    tensors[name] = { dtype: 'F32', shape: src.tensorInfo(name).shape, data: await src.readFloat32(name) };
  }
  mkdirSync(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numHiddenLayers,
    num_attention_heads: cfg.numAttentionHeads,
    num_key_value_heads: cfg.numKeyValueHeads,
    head_dim: cfg.headDim,
    vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxPositionEmbeddings,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
  writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** An adapter (r 8, alpha 16, all projections) with seeded non-zero A and B, so that every gradient is non-zero. */
async function writeAdapterFor(dir: string): Promise<void> {
  const cfg = llamaConfig(SMALL);
  let s = 12345;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  const tensors: Record<string, TensorToWrite> = {};
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const dims: Record<string, [number, number]> = {
    q_proj: [cfg.hiddenSize, cfg.hiddenSize],
    k_proj: [kv, cfg.hiddenSize],
    v_proj: [kv, cfg.hiddenSize],
    o_proj: [cfg.hiddenSize, cfg.hiddenSize],
    gate_proj: [cfg.intermediateSize, cfg.hiddenSize],
    up_proj: [cfg.intermediateSize, cfg.hiddenSize],
    down_proj: [cfg.hiddenSize, cfg.intermediateSize],
  };
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    for (const p of PROJ) {
      const [out, inDim] = dims[p]!;
      const part = p === 'gate_proj' || p === 'up_proj' || p === 'down_proj' ? 'mlp' : 'self_attn';
      const base = `base_model.model.model.layers.${l}.${part}.${p}`;
      const a = Float32Array.from({ length: R * inDim }, () => rand() * (2 / Math.sqrt(inDim)));
      const b = Float32Array.from({ length: out * R }, () => rand() * 0.02);
      tensors[`${base}.lora_A.weight`] = { dtype: 'F32', shape: [R, inDim], data: a };
      tensors[`${base}.lora_B.weight`] = { dtype: 'F32', shape: [out, R], data: b };
    }
  }
  await writeAdapter(dir, {
    config: createLoraConfig({ r: R, loraAlpha: 16, targetModules: PROJ, loraDropout: 0 }),
    tensors,
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Medians over the REPS quietest timed steps (the first step is a warm-up). */
function summarise(r: SideResult) {
  const timed = r.steps
    .slice(1)
    .sort((a, b) => a.others - b.others)
    .slice(0, REPS);
  return {
    step: median(timed.map((s) => s.step_s)),
    forward: median(timed.map((s) => s.forward_s)),
    backward: median(timed.map((s) => s.backward_s)),
    optimizer: median(timed.map((s) => s.optimizer_s)),
    others: Math.max(...timed.map((s) => s.others)),
    discarded: r.steps.length - 1 - timed.length,
  };
}

async function main(): Promise<void> {
  const tmp = path.join(repoRoot, 'bench', 'tmp', 'sft');
  rmSync(tmp, { recursive: true, force: true });
  const smallDir = path.join(tmp, 'small');
  const adapterDir = path.join(tmp, 'adapter');
  await writeSmall(smallDir);
  await writeAdapterFor(adapterDir);
  const ids = tokenRows(BATCH, LENGTH, SMALL.vocabSize, 11);
  const work: Work = { input_ids: ids, labels: ids, lr: 1e-4, max_grad_norm: 0.3, weight_decay: 0.05 };
  const workFile = path.join(tmp, 'work.json');
  writeFileSync(workFile, JSON.stringify(work));
  const loadBefore = os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

  const ours = (threads: number) =>
    runSide(`ours (wasm, ${threads} thread${threads > 1 ? 's' : ''})`, process.execPath, [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--engine',
      JSON.stringify({ model: smallDir, adapter: adapterDir, work: workFile, threads }),
    ]);
  const o1 = ours(1);
  const o2 = ours(2);
  const torchEnv = { ...process.env };
  delete torchEnv.OPENBLAS_CORETYPE;
  delete torchEnv.OPENBLAS_L2_SIZE;
  const shared = sharedDir();
  const pyArgs = [
    path.join(here, 'sft_torch.py'),
    '--model',
    smallDir,
    '--adapter',
    adapterDir,
    '--work',
    workFile,
    '--threads',
    String(TORCH_THREADS),
    '--reps',
    String(REPS),
    '--max-steps',
    String(MAX_STEPS),
    '--busy-limit',
    String(BUSY_LIMIT),
  ];
  if (shared) pyArgs.push('--reference', path.join(shared, 'fixtures', 'tiny-llama'));
  const pt = runSide(`PyTorch (${TORCH_THREADS} threads)`, PY, pyArgs, torchEnv);
  // The same with this environment's OpenBLAS settings (it pins Haswell kernels), for context: slower.
  const envBlas = process.env.OPENBLAS_CORETYPE ? `OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE}` : '';
  const ptEnv = envBlas
    ? runSide(
        `PyTorch (${TORCH_THREADS} threads, ${envBlas})`,
        PY,
        pyArgs.filter((_, i) => !(pyArgs[i] === '--reference' || pyArgs[i - 1] === '--reference')),
      )
    : null;

  const tokens = BATCH * LENGTH;
  const p = summarise(pt);
  const sides = [o1, o2, pt, ...(ptEnv ? [ptEnv] : [])];
  // Multiply-adds × 2 of one step: forward (projections, attention, LM head) and backward (input gradients of the
  // frozen projections and the LM head, attention, and the LoRA factors' products).
  const c = SMALL;
  const kvDim = (c.hiddenSize / c.numAttentionHeads) * c.numKeyValueHeads;
  const linear = c.hiddenSize * (2 * c.hiddenSize + 2 * kvDim) + 3 * c.hiddenSize * c.intermediateSize;
  const lora =
    R *
    (7 * c.hiddenSize +
      2 * kvDim +
      c.hiddenSize +
      2 * c.intermediateSize +
      c.hiddenSize +
      c.intermediateSize);
  const attention = 2 * BATCH * c.numAttentionHeads * LENGTH * LENGTH * (c.hiddenSize / c.numAttentionHeads);
  const stepGflop =
    (2 * tokens * (c.numHiddenLayers * (2 * linear + 4 * lora) + 2 * c.hiddenSize * c.vocabSize) +
      2 * c.numHiddenLayers * 3 * attention) /
    1e9;
  const figures: Figure[] = [];
  for (const o of [o1, o2]) {
    const s = summarise(o);
    const t = `wasm, ${o.threads} thread${o.threads! > 1 ? 's' : ''}`;
    figures.push(
      {
        figure: `LoRA step, small, 4×256 (${t})`,
        value: s.step,
        unit: 's/step',
        comparison:
          `PyTorch ${pt.torch} OpenBLAS ${TORCH_THREADS} threads: ${fmt(p.step)} s/step → ours ${fmt(s.step / p.step)}× ` +
          `its time (target ≤ 2×)` +
          (ptEnv
            ? `; with ${envBlas}: ${fmt(summarise(ptEnv).step)} s/step → ${fmt(s.step / summarise(ptEnv).step)}×`
            : '') +
          `; vs the 1.85 s/step quoted in the issue: ${fmt(s.step / 1.85)}×`,
      },
      {
        figure: `tokens/s (${t})`,
        value: tokens / s.step,
        unit: 'tok/s',
        comparison: `PyTorch: ${fmt(tokens / p.step)} tok/s`,
      },
      {
        figure: `breakdown (${t})`,
        value: s.step,
        unit: 's',
        comparison:
          `forward ${fmt(s.forward)} s (incl. LM head + loss), backward ${fmt(s.backward)} s, optimizer ${fmt(s.optimizer)} s ` +
          `(clip + AdamW + upload); PyTorch: forward ${fmt(p.forward)} s, backward ${fmt(p.backward)} s, optimizer ${fmt(p.optimizer)} s`,
      },
    );
  }
  figures.push({
    figure: 'peak RSS (wasm, 1 thread)',
    value: o1.peak_rss_mib,
    unit: 'MiB',
    comparison: `PyTorch: ${fmt(pt.peak_rss_mib)} MiB; wasm 2 threads: ${fmt(o2.peak_rss_mib)} MiB`,
  });
  const maxDiff = (o: SideResult, key: 'loss' | 'grad_norm', rel: boolean) =>
    Math.max(
      ...o.steps.slice(0, Math.min(o.steps.length, pt.steps.length)).map((s, i) => {
        const d = Math.abs(s[key] - pt.steps[i]![key]);
        return rel ? d / Math.abs(pt.steps[i]![key]) : d;
      }),
    );
  const notes = [
    `Ours vs PyTorch over the steps both ran (same weights, adapter and tokens; lr 1e-4, clip 0.3, AdamW wd 0.05): ` +
      `losses max |diff| ${maxDiff(o1, 'loss', false).toExponential(1)} (1 thread), ${maxDiff(o2, 'loss', false).toExponential(1)} ` +
      `(2 threads); grad norms max rel diff ${maxDiff(o1, 'grad_norm', true).toExponential(1)}, ` +
      `${maxDiff(o2, 'grad_norm', true).toExponential(1)}; step-0 loss ${pt.steps[0]!.loss.toFixed(5)}.`,
    ...(pt.reference
      ? [
          `The PyTorch trainer reproduces the tiny-llama SFT recipe: losses within ${pt.reference.loss_max_abs_err.toExponential(1)}, ` +
            `grad norms ${pt.reference.grad_norm_max_rel_err.toExponential(1)} rel, step-0 gradients ` +
            `${pt.reference.step0_grad_max_rel_err.toExponential(1)} rel.`,
        ]
      : []),
    `Medians of the ${REPS} quietest of up to ${MAX_STEPS - 1} steps after a warm-up step (steps during which other ` +
      `processes kept more than ${BUSY_LIMIT} cores busy are run again), each side in its own process; steps discarded ` +
      `as busy: ${sides.map((r) => summarise(r).discarded).join(' / ')}; most other load among the kept steps: ` +
      `${sides.map((r) => summarise(r).others.toFixed(2)).join(' / ')} cores; over the whole processes: ` +
      `${sides.map((r) => (r.others_cores ?? 0).toFixed(2)).join(' / ')} cores (ours 1 thread / 2 threads / PyTorch` +
      `${ptEnv ? ` / PyTorch with ${envBlas}` : ''}).`,
    `Work per step ≈ ${fmt(stepGflop)} GFLOP (forward, and the input gradients of every frozen layer and of the LM ` +
      'head; LoRA and attention products included): ' +
      `${[o1, o2].map((o) => `ours ${fmt(stepGflop / summarise(o).step)} GFLOP/s (${o.threads} thread${o.threads! > 1 ? 's' : ''})`).join(', ')}, ` +
      `PyTorch ${fmt(stepGflop / p.step)} GFLOP/s: the step is bound by the GEMMs, XNNPACK's 128-bit wasm SIMD against ` +
      "OpenBLAS's native kernels.",
    `PyTorch: Debian python3-torch (${PY}) on libopenblas0-openmp, float32, torch.set_num_threads(${TORCH_THREADS}), ` +
      'a compact Llama with PEFT-style LoRA layers (bench/sft_torch.py), autograd, clip_grad_norm_, torch.optim.AdamW; ' +
      'OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.',
    'Ours: LoraTrainer.step (hand-written backward on TensorFlow.js wasm/XNNPACK; LoRA tensors, gradients and AdamW in ' +
      'host memory); wasm 2 threads = the threaded SIMD build (wasmThreads: 2).',
    `Load average (1/5/15 min) before: ${loadBefore}; after: ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}.`,
  ];
  recordBench({
    name: 'sft-lora-step',
    title: 'LoRA training step (wasm) vs PyTorch',
    package: '@polyglot/sft',
    figures,
    notes,
  });
  rmSync(tmp, { recursive: true, force: true });
}

if (process.argv[2] === '--engine') await engine(JSON.parse(process.argv[3]!));
else if (existsSync(PY)) await main();
else console.log(`skipped: ${PY} (Debian python3 with python3-torch) not found`);
