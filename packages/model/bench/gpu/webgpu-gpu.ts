// The GPU side of the WebGPU bench (issue #14): run on a GPU host by scripts/gpu/run.sh (bundled into one ESM file by
// scripts/gpu/pack.sh, since that host has no Node toolchain), rehearsed here on cpu / lavapipe.
//
//   node webgpu-gpu.mjs adapter                         prints the WebGPU adapter (exit 3 when none)
//   node webgpu-gpu.mjs parity FIXTURES OUT.json        cpu vs webgpu vs the reference on tiny-llama
//   node webgpu-gpu.mjs perf CONFIG OUT.json [BACKEND]  prefill / decode / LoRA step on random weights
//
// CONFIG: small | 1b | 7b | tiny (rehearsal). Every phase writes its JSON (temp file + rename) as soon as it has a
// figure, so a phase cut off by the host's time box still leaves what it measured.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expectedLlamaTensors } from '../../src/checkpoint.js';
import {
  type BackendName,
  initBackend,
  type LlamaConfig,
  LlamaLoraTrainer,
  LlamaModel,
  type LoraFactors,
  llamaConfig,
  loadAdapterTensors,
  readAdapter,
  SafetensorsFile,
  type WeightSource,
  webgpuAdapterInfo,
} from '../../src/index.js';

export const CONFIGS: Record<string, Parameters<typeof llamaConfig>[0]> = {
  tiny: {
    hiddenSize: 64,
    intermediateSize: 176,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    vocabSize: 32000,
  },
  small: {
    hiddenSize: 512,
    intermediateSize: 1408,
    numHiddenLayers: 8,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    vocabSize: 32000,
  },
  // TinyLlama-1.1B's shape (GPU.md's "hidden 2048, 16 layers, GQA 32/8" row has 16 layers: ~1.1B with vocab 32000).
  '1b': {
    hiddenSize: 2048,
    intermediateSize: 5632,
    numHiddenLayers: 16,
    numAttentionHeads: 32,
    numKeyValueHeads: 8,
    vocabSize: 32000,
  },
  '7b': {
    hiddenSize: 4096,
    intermediateSize: 11008,
    numHiddenLayers: 32,
    numAttentionHeads: 32,
    numKeyValueHeads: 32,
    vocabSize: 32000,
  },
};

export const SHAPES = {
  prefill: { batch: 4, length: 256 },
  decodePrompt: 32,
  newTokens: 64,
  sft: { batch: 4, length: 256, r: 8, alpha: 16 },
};

function writeJson(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Random weights fast enough for a 7B shape: views into one seeded N(0, 0.02²) pool, norms 1. */
function poolWeightSource(config: LlamaConfig, poolSize = 1 << 24): WeightSource {
  const pool = new Float32Array(poolSize);
  let a = 12345;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < poolSize; i += 2) {
    const r = 0.02 * Math.sqrt(-2 * Math.log(1 - rand()));
    const th = 2 * Math.PI * rand();
    pool[i] = r * Math.cos(th);
    pool[i + 1] = r * Math.sin(th);
  }
  const shapes = expectedLlamaTensors(config);
  return {
    config,
    dir: 'random weights (pool)',
    tensorNames: () => [...shapes.keys()],
    tensorInfo: (name) => ({ shape: shapes.get(name)! }),
    readFloat32: async (name) => {
      const n = shapes.get(name)!.reduce((x, y) => x * y, 1);
      const out = new Float32Array(n);
      if (name.endsWith('norm.weight')) return out.fill(1);
      let h = 0;
      for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1) >>> 0;
      let off = 0;
      let src = h % poolSize;
      while (off < n) {
        const len = Math.min(n - off, poolSize - src);
        out.set(pool.subarray(src, src + len), off);
        off += len;
        src = 0;
      }
      return out;
    },
  };
}

function randomIds(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (vocab - 3));
  });
}

async function median(fn: () => Promise<unknown>, reps: number): Promise<{ s: number; all: number[] }> {
  await fn();
  const all: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    all.push((performance.now() - t0) / 1000);
  }
  const sorted = [...all].sort((x, y) => x - y);
  return { s: sorted[Math.floor(sorted.length / 2)]!, all };
}

function loraTargets(config: LlamaConfig, r: number, alpha: number) {
  const out: { module: string; r: number; scale: number }[] = [];
  for (let l = 0; l < config.numHiddenLayers; l++) {
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      out.push({ module: `model.layers.${l}.self_attn.${p}`, r, scale: alpha / r });
    for (const p of ['gate_proj', 'up_proj', 'down_proj'])
      out.push({ module: `model.layers.${l}.mlp.${p}`, r, scale: alpha / r });
  }
  return out;
}

/** torch.optim.AdamW (decoupled decay) on host float32 factors; returns the pre-clip gradient norm. */
class AdamW {
  private m: Float32Array[][];
  private v: Float32Array[][];
  private t = 0;
  constructor(
    params: LoraFactors[],
    private readonly lr = 1e-3,
    private readonly wd = 0.05,
  ) {
    this.m = params.map((p) => [new Float32Array(p.a.length), new Float32Array(p.b.length)]);
    this.v = params.map((p) => [new Float32Array(p.a.length), new Float32Array(p.b.length)]);
  }
  step(params: LoraFactors[], grads: LoraFactors[], maxNorm: number): number {
    this.t++;
    let sq = 0;
    for (const g of grads) {
      for (const x of g.a) sq += x * x;
      for (const x of g.b) sq += x * x;
    }
    const norm = Math.sqrt(sq);
    const clip = Math.min(1, maxNorm / (norm + 1e-6));
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    params.forEach((p, i) => {
      [p.a, p.b].forEach((w, k) => {
        const g = k === 0 ? grads[i].a : grads[i].b;
        const m = this.m[i][k];
        const v = this.v[i][k];
        for (let j = 0; j < w.length; j++) {
          const gj = g[j] * clip;
          m[j] = b1 * m[j] + (1 - b1) * gj;
          v[j] = b2 * v[j] + (1 - b2) * gj * gj;
          w[j] = w[j] * (1 - this.lr * this.wd) - (this.lr * (m[j] / c1)) / (Math.sqrt(v[j] / c2) + eps);
        }
      });
    });
    return norm;
  }
}

async function adapterPhase(): Promise<void> {
  const info = await webgpuAdapterInfo().catch((e: Error) => {
    console.log(`webgpu: ${e.message}`);
    return null;
  });
  console.log(JSON.stringify({ adapter: info }));
  if (!info) process.exit(3);
}

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
  greedy_new_ids: number[];
}

/** cpu and webgpu on the tiny-llama fixture: log-probs, greedy ids, SFT losses / step-0 gradients / 3 steps. */
/**
 * `backends` = "cpu,webgpu" runs both here; "webgpu" reads the cpu side from FIXTURES/cpu-parity.json, written by
 * an earlier `parity FIXTURES OUT cpu` (the cpu backend is deterministic JavaScript: the same figures on any
 * machine, so the GPU host's time goes to the GPU side).
 */
async function parityPhase(fixtures: string, outFile: string, backends = 'cpu,webgpu'): Promise<void> {
  const ref = JSON.parse(readFileSync(path.join(fixtures, 'reference.json'), 'utf8')) as {
    base: RefEntry[];
    adapter: RefEntry[];
  };
  const sftRef = JSON.parse(readFileSync(path.join(fixtures, 'sft-reference.json'), 'utf8')) as {
    input_ids: number[][];
    labels: number[][];
    loss_before_each_step: number[];
    loss_after_all_steps: number;
  };
  const out: Record<string, unknown> = { adapter: await webgpuAdapterInfo() };
  const per: Record<
    string,
    {
      logprobs: number[][];
      greedy: number[][];
      adapterLogprobs: number[][];
      losses: number[];
      grads: Float32Array[];
      time_s: number;
    }
  > = {};
  const cpuFile = path.join(fixtures, 'cpu-parity.json');
  if (!backends.includes('cpu')) {
    const saved = JSON.parse(readFileSync(cpuFile, 'utf8'));
    saved.grads = (saved.grads as number[][]).map((g) => Float32Array.from(g));
    per.cpu = saved;
  }
  for (const backend of backends.split(',') as BackendName[]) {
    const t0 = performance.now();
    await initBackend(backend);
    const model = await LlamaModel.load(path.join(fixtures, 'base'), {
      backend,
      adapters: { a: path.join(fixtures, 'adapter') },
      activeAdapter: null,
    });
    const logprobs = (await model.scoreBatch(ref.base.map((e) => e.input_ids))).map((s) => s.tokenLogprobs);
    const greedy: number[][] = [];
    for (const e of ref.base) greedy.push((await model.greedy([e.input_ids], e.greedy_new_ids.length))[0]);
    model.setActiveAdapter('a');
    const adapterLogprobs = (await model.scoreBatch(ref.adapter.map((e) => e.input_ids))).map(
      (s) => s.tokenLogprobs,
    );
    for (const e of ref.adapter) greedy.push((await model.greedy([e.input_ids], e.greedy_new_ids.length))[0]);
    model.dispose();

    const init = await readAdapter(path.join(fixtures, 'sft-init-adapter'));
    const tensors = await loadAdapterTensors(init);
    const scale = init.config.loraAlpha / init.config.r;
    const modules = [...tensors.keys()]
      .filter((k) => k.endsWith('.lora_A.weight'))
      .map((k) => k.replace(/^base_model\.model\./, '').replace(/\.lora_A\.weight$/, ''));
    const trainer = await LlamaLoraTrainer.load(path.join(fixtures, 'base'), {
      backend,
      targets: modules.map((module) => ({ module, r: init.config.r, scale })),
    });
    const params: LoraFactors[] = trainer.targets.map((t) => ({
      a: Float32Array.from(tensors.get(`base_model.model.${t.module}.lora_A.weight`)!),
      b: Float32Array.from(tensors.get(`base_model.model.${t.module}.lora_B.weight`)!),
    }));
    const B = sftRef.input_ids.length;
    const T = sftRef.input_ids[0].length;
    const batch = {
      batch: B,
      length: T,
      inputIds: sftRef.input_ids.flat(),
      labels: sftRef.labels.flat(),
      segments: sftRef.input_ids.flatMap((row, b) =>
        row.map((_, t) => (sftRef.labels[b][t] === -100 ? 0 : 1)),
      ),
    };
    const opt = new AdamW(params);
    const losses: number[] = [];
    let grads0: Float32Array[] = [];
    for (let s = 0; s < 3; s++) {
      trainer.setLora(params);
      const grads = params.map((p) => ({ a: new Float32Array(p.a.length), b: new Float32Array(p.b.length) }));
      const tokens = (await trainer.lossAndGrads(batch)).tokens;
      const r = await trainer.lossAndGrads(batch, { grads, gradScale: 1 / tokens });
      losses.push(r.lossSum / r.tokens);
      if (s === 0) grads0 = grads.flatMap((g) => [g.a, g.b]);
      opt.step(params, grads, 0.3);
    }
    trainer.setLora(params);
    const after = await trainer.lossAndGrads(batch);
    losses.push(after.lossSum / after.tokens);
    trainer.dispose();
    per[backend] = {
      logprobs,
      greedy,
      adapterLogprobs,
      losses,
      grads: grads0,
      time_s: (performance.now() - t0) / 1000,
    };
  }
  const maxAbs = (a: number[][], b: number[][]) =>
    Math.max(...a.map((r, i) => Math.max(...r.map((v, j) => Math.abs(v - b[i][j])))));
  if (backends === 'cpu') {
    writeJson(cpuFile, { ...per.cpu, grads: per.cpu.grads.map((x) => Array.from(x)) });
    console.log(`cpu side written to ${cpuFile}`);
    return;
  }
  const c = per.cpu;
  const g = per.webgpu;
  let gradRel = 0;
  const file = await SafetensorsFile.open(path.join(fixtures, 'sft-step0-grads.safetensors'));
  await file.close();
  c.grads.forEach((cg, i) => {
    let num = 0;
    let den = 0;
    for (let j = 0; j < cg.length; j++) {
      num = Math.max(num, Math.abs(cg[j] - g.grads[i][j]));
      den = Math.max(den, Math.abs(cg[j]));
    }
    gradRel = Math.max(gradRel, den ? num / den : num);
  });
  const refLosses = [...sftRef.loss_before_each_step, sftRef.loss_after_all_steps];
  out.parity = {
    logprob_max_abs_webgpu_vs_cpu: Math.max(
      maxAbs(g.logprobs, c.logprobs),
      maxAbs(g.adapterLogprobs, c.adapterLogprobs),
    ),
    logprob_max_abs_webgpu_vs_reference: Math.max(
      maxAbs(
        g.logprobs,
        ref.base.map((e) => e.token_logprobs),
      ),
      maxAbs(
        g.adapterLogprobs,
        ref.adapter.map((e) => e.token_logprobs),
      ),
    ),
    greedy_equal_webgpu_cpu: JSON.stringify(g.greedy) === JSON.stringify(c.greedy),
    greedy_equal_webgpu_reference:
      JSON.stringify(g.greedy) === JSON.stringify([...ref.base, ...ref.adapter].map((e) => e.greedy_new_ids)),
    sft_loss_max_abs_webgpu_vs_cpu: Math.max(...g.losses.map((l, i) => Math.abs(l - c.losses[i]))),
    sft_loss_max_abs_webgpu_vs_reference: Math.max(...g.losses.map((l, i) => Math.abs(l - refLosses[i]))),
    sft_step0_grad_max_rel_webgpu_vs_cpu: gradRel,
    losses: { webgpu: g.losses, cpu: c.losses, reference: refLosses },
    time_s: { cpu: c.time_s, webgpu: g.time_s },
  };
  writeJson(outFile, out);
  console.log(JSON.stringify(out.parity));
}

async function perfPhase(
  name: string,
  outFile: string,
  backend: BackendName,
  budgetS: number,
  reps: number,
  variant = 'all',
): Promise<void> {
  // variant 'fused': prefill + decode; 'sft': the LoRA step only; 'all': both (one process); 'plain': the op-by-op
  // path (no fused WGSL kernels), prefill and decode b1 only, for the A/B figure.
  const plain = variant === 'plain';
  const t00 = performance.now();
  const left = () => budgetS - (performance.now() - t00) / 1000;
  const config = llamaConfig({ ...CONFIGS[name], maxPositionEmbeddings: 4096 });
  const V = config.vocabSize;
  const out: Record<string, unknown> = { engine: 'polyglot', backend, variant, config: name, shapes: SHAPES };
  const save = () => writeJson(outFile, out);
  await initBackend(backend);
  let t0 = performance.now();
  const src = poolWeightSource(config);
  if (variant !== 'sft') {
    const model = await LlamaModel.load(src, { backend, fusedKernels: !plain });
    out.fused_kernels = model.fusedKernels;
    // First use uploads the weights; one tiny forward makes that part of the load.
    await model.forward([[1, 2, 3]], undefined, { positions: 'last' });
    out.load_s = (performance.now() - t0) / 1000;
    out.params = [...expectedLlamaTensors(config).values()].reduce(
      (s, sh) => s + sh.reduce((x, y) => x * y, 1),
      0,
    );
    save();
    console.log(`[${name}] loaded in ${(out.load_s as number).toFixed(1)} s; ${left().toFixed(0)} s left`);

    const { batch: PB, length: PT } = SHAPES.prefill;
    const prefillIds = Array.from({ length: PB }, (_, b) => randomIds(PT, V, 100 + b));
    const pre = await median(() => model.forward(prefillIds, undefined, { positions: 'last' }), reps);
    out.prefill = { s: pre.s, all: pre.all, tok_s: (PB * PT) / pre.s };
    save();
    console.log(`[${name}] prefill ${PB}x${PT}: ${((PB * PT) / pre.s).toFixed(0)} tok/s`);

    const N = SHAPES.newTokens;
    const decode: Record<string, unknown> = {};
    out.decode = decode;
    for (const B of plain ? [1] : [1, 8]) {
      if (left() < 20) break;
      const prompts = Array.from({ length: B }, (_, b) => randomIds(SHAPES.decodePrompt, V, 200 + b));
      const pf = await median(
        async () => (await model.prefill(prompts, { maxNewTokens: N })).dispose(),
        reps,
      );
      let ids: number[][] = [];
      const cpu0 = process.cpuUsage();
      const total = await median(async () => {
        ids = await model.greedy(prompts, N);
      }, reps);
      const cpu = process.cpuUsage(cpu0);
      const decodeS = Math.max(1e-9, total.s - pf.s);
      const entry: Record<string, unknown> = {
        prefill_s: pf.s,
        total_s: total.s,
        decode_s: decodeS,
        tok_s: (B * (N - 1)) / decodeS,
        ms_per_step: (decodeS / (N - 1)) * 1000,
        ids_head: ids.map((r) => r.slice(0, 8)),
        // Process CPU seconds per wall second over the timed greedy runs (≈1: the host side is the bottleneck).
        cpu_per_wall: (cpu.user + cpu.system) / 1e6 / (total.all.reduce((x, y) => x + y, 0) + total.s),
      };
      if (B === 1 && left() > 60 && name !== '7b') {
        // The per-step path (what the local engine's sampler uses): logits read back every step.
        const stepped = await median(async () => {
          const st = await model.prefill(prompts, { maxNewTokens: N });
          try {
            for (let s = 1; s < N; s++) {
              let best = 0;
              for (let i = 1; i < V; i++) if (st.logits[i] > st.logits[best]) best = i;
              await st.decodeStep([best]);
            }
          } finally {
            st.dispose();
          }
        }, reps);
        const ds = Math.max(1e-9, stepped.s - pf.s);
        entry.per_step_readback = {
          total_s: stepped.s,
          tok_s: (N - 1) / ds,
          ms_per_step: (ds / (N - 1)) * 1000,
        };
      }
      decode[`b${B}`] = entry;
      save();
      console.log(
        `[${name}] decode b${B}: ${(entry.tok_s as number).toFixed(1)} tok/s (${(entry.ms_per_step as number).toFixed(2)} ms/step)`,
      );
    }
    model.dispose();
  }

  if (left() > 30 && (variant === 'sft' || variant === 'all')) {
    t0 = performance.now();
    const { batch: SB, length: ST, r, alpha } = SHAPES.sft;
    const trainer = await LlamaLoraTrainer.load(src, { backend, targets: loraTargets(config, r, alpha) });
    // PEFT init: A ~ small random, B = 0 would make dA zero; use small non-zero B like the fixture.
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return (seed / 4294967296 - 0.5) * 0.02;
    };
    const params: LoraFactors[] = trainer.targets.map((t) => ({
      a: Float32Array.from({ length: t.r * t.inDim }, rnd),
      b: Float32Array.from({ length: t.outDim * t.r }, rnd),
    }));
    const opt = new AdamW(params);
    const ids = randomIds(SB * ST, V, 300);
    const batch = { batch: SB, length: ST, inputIds: ids, labels: ids };
    const timings = { forwardMs: 0, backwardMs: 0 };
    const losses: number[] = [];
    let hostMs = 0;
    const step = async () => {
      trainer.setLora(params);
      const grads = params.map((p) => ({ a: new Float32Array(p.a.length), b: new Float32Array(p.b.length) }));
      const res = await trainer.lossAndGrads(batch, { grads, gradScale: 1 / (SB * (ST - 1)), timings });
      const th = performance.now();
      opt.step(params, grads, 1.0);
      hostMs += performance.now() - th;
      losses.push(res.lossSum / res.tokens);
    };
    await step();
    out.sft_load_s = (performance.now() - t0) / 1000;
    timings.forwardMs = 0;
    timings.backwardMs = 0;
    hostMs = 0;
    const all: number[] = [];
    for (let i = 0; i < reps && left() > 10; i++) {
      const ts = performance.now();
      await step();
      all.push((performance.now() - ts) / 1000);
    }
    const sorted = [...all].sort((x, y) => x - y);
    out.sft_step = {
      s: sorted[Math.floor(sorted.length / 2)],
      all,
      forward_ms: timings.forwardMs / all.length,
      backward_ms: timings.backwardMs / all.length,
      host_adamw_ms: hostMs / all.length,
      losses,
    };
    trainer.dispose();
    save();
    console.log(`[${name}] LoRA step ${SB}x${ST}: ${(out.sft_step as { s: number }).s.toFixed(3)} s`);
  }
  out.memory = tf.memory();
  out.wall_s = (performance.now() - t00) / 1000;
  save();
}

const [phase, a1, a2, a3, a4, a5, a6] = process.argv.slice(2);
if (phase === 'adapter') await adapterPhase();
else if (phase === 'parity') await parityPhase(a1, a2, a3);
else if (phase === 'perf')
  await perfPhase(a1, a2, (a3 ?? 'webgpu') as BackendName, Number(a4 ?? 240), Number(a5 ?? 3), a6);
else {
  console.error(
    'usage: webgpu-gpu adapter | parity FIXTURES OUT.json | perf CONFIG OUT.json [BACKEND] [BUDGET_S] [REPS] [fused|plain]',
  );
  process.exit(2);
}
process.exit(0);
