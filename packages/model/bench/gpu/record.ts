// Turns the GPU host's raw results (bench/gpu/h100/run*/, written there by scripts/gpu/run.sh) into
// bench/results/model-webgpu.json for BENCHMARKS.md: parity figures, and ours vs PyTorch on the same card with ratios.
// Usage: node --import tsx bench/gpu/record.ts   (then `node scripts/bench.mjs --table` at the root)
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const read = (run: string, f: string): any =>
  JSON.parse(readFileSync(path.join(here, 'h100', run, f), 'utf8'));
const fmt = (v: number) =>
  v >= 1000 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v.toFixed(3);

const parity = read('run2', 'parity.json');
const adapter = read('run2', 'adapter.json').adapter;
const ours = read('run2', 'webgpu-1b.json');
const oursSft = read('run2', 'webgpu-1b-sft.json');
const plain = read('run2', 'webgpu-1b-plain.json');
const torch = read('run2', 'torch-1b.json');
const ours7 = read('run3', 'webgpu-7b.json');
const torch7 = read('run3', 'torch-7b.json');
const ours7plain = read('run1', 'webgpu-7b.json');
const torch7run1 = read('run1', 'torch-7b.json');
const overhead = read('run2', 'dawn-overhead.json');

const p = parity.parity;
const rate = (ourR: number, theirR: number, unit: string) =>
  `PyTorch ${torch.torch} fp32 (TF32 off): ${fmt(theirR)} ${unit}; PyTorch ${(theirR / ourR).toFixed(2)}× faster`;
const figures = [
  {
    figure: 'parity: token log-probs, webgpu vs cpu (max |diff|)',
    value: p.logprob_max_abs_webgpu_vs_cpu * 1e6,
    unit: '1e-6 nats',
    comparison: `target 1e-3; vs the reference fixture ${p.logprob_max_abs_webgpu_vs_reference.toExponential(1)}`,
  },
  {
    figure: 'parity: greedy ids equal to cpu and reference',
    value: p.greedy_equal_webgpu_cpu && p.greedy_equal_webgpu_reference ? 1 : 0,
    unit: 'bool',
    comparison: '10 prompts × 12 tokens (base and adapter)',
  },
  {
    figure: 'parity: SFT losses, webgpu vs cpu (max |diff|)',
    value: p.sft_loss_max_abs_webgpu_vs_cpu * 1e6,
    unit: '1e-6 nats',
    comparison: `target 1e-3; 3 AdamW steps; vs reference ${p.sft_loss_max_abs_webgpu_vs_reference.toExponential(1)}; step-0 grads max rel ${p.sft_step0_grad_max_rel_webgpu_vs_cpu.toExponential(1)}`,
  },
  {
    figure: '~1B (0.85B): prefill 4×256',
    value: ours.prefill.tok_s,
    unit: 'tok/s',
    comparison: `${rate(ours.prefill.tok_s, torch.prefill.tok_s, 'tok/s')}; op-by-op kernels, same call: ${fmt(plain.prefill.tok_s)} tok/s`,
  },
  {
    figure: '~1B (0.85B): greedy decode batch 1',
    value: ours.decode.b1.tok_s,
    unit: 'new tok/s',
    comparison: `${rate(ours.decode.b1.tok_s, torch.decode.b1.tok_s, 'tok/s')} (target ≤ 3×: met)`,
  },
  {
    figure: '~1B (0.85B): greedy decode batch 8',
    value: ours.decode.b8.tok_s,
    unit: 'new tok/s',
    comparison: `${rate(ours.decode.b8.tok_s, torch.decode.b8.tok_s, 'tok/s')} (target ≤ 3×: met)`,
  },
  {
    figure: '~1B (0.85B): decode b1, op-by-op kernels (before)',
    value: plain.decode.b1.tok_s,
    unit: 'new tok/s',
    comparison: `same call; the fused kernels are ${(ours.decode.b1.tok_s / plain.decode.b1.tok_s).toFixed(2)}× faster`,
  },
  {
    figure: '~1B (0.85B): LoRA SFT step 4×256 (r 8, 7 projections)',
    value: oursSft.sft_step.s,
    unit: 's',
    comparison: `PyTorch: ${torch.sft_step.s.toFixed(3)} s; ours takes ${(oursSft.sft_step.s / torch.sft_step.s).toFixed(1)}× its time (target ≤ 3×: missed); ours: forward ${Math.round(oursSft.sft_step.forward_ms)} ms, backward ${Math.round(oursSft.sft_step.backward_ms)} ms, host AdamW ${Math.round(oursSft.sft_step.host_adamw_ms)} ms`,
  },
  {
    figure: '7B shape: greedy decode batch 1',
    value: ours7.decode.b1.tok_s,
    unit: 'new tok/s',
    comparison: `${rate(ours7.decode.b1.tok_s, torch7.decode.b1.tok_s, 'tok/s')} (target ≤ 3×: met); op-by-op kernels (run 1): ${ours7plain.decode.b1.tok_s.toFixed(2)} tok/s`,
  },
  {
    figure: '7B shape: greedy decode batch 8',
    value: ours7.decode.b8.tok_s,
    unit: 'new tok/s',
    comparison: `${rate(ours7.decode.b8.tok_s, torch7.decode.b8.tok_s, 'tok/s')} (target ≤ 3×: met)`,
  },
  {
    figure: '7B shape: prefill 4×256 (op-by-op attention, run 1)',
    value: ours7plain.prefill.tok_s,
    unit: 'tok/s',
    comparison: `PyTorch (run 1): ${fmt(torch7run1.prefill.tok_s)} tok/s, ${(torch7run1.prefill.tok_s / ours7plain.prefill.tok_s).toFixed(2)}× faster; with the fused attention kernel (run 3): ${fmt(ours7.prefill.tok_s)} tok/s, so prefills of more than 16 tokens per row now take the op-by-op attention`,
  },
  {
    figure: '7B shape: LoRA SFT step 4×256',
    value: torch7.sft_step.s,
    unit: 's (PyTorch only)',
    comparison:
      'ours not measured: loading the 7B weights twice (78–96 s each) did not fit the 15-minute device session',
  },
  {
    figure: 'host cost of one tfjs-style kernel launch through Dawn',
    value: overhead.tfjs_like_kernel_us,
    unit: 'µs',
    comparison: `createBindGroup ${overhead.createBindGroup_us} µs, writeBuffer ${overhead.writeBuffer_us} µs`,
  },
];
const result = {
  name: 'model-webgpu',
  title: 'Llama runtime on WebGPU (H100, Dawn/Vulkan) vs PyTorch on the same card',
  package: '@polyglot/model',
  date: new Date().toISOString(),
  machine: {
    cpu: `${adapter.device} (${adapter.description}) via Dawn/Vulkan; host CPU`,
    cores: 16,
    memoryGiB: 128,
    os: 'Linux (GPU host)',
    node: 'v20.20.2',
  },
  figures,
  notes: [
    'Run with scripts/gpu/pack.sh + scripts/gpu/run.sh (one call on the GPU host; raw JSON in packages/model/bench/gpu/h100/). ~1B = hidden 2048, 16 layers, 32/8 heads, intermediate 5632, vocab 32000 (0.85B parameters: the row of GPU.md, the TinyLlama shape with 16 of its 22 layers); 7B = Llama-2-7B shape; random weights; float32 throughout.',
    'PyTorch side: bench/gpu/torch_gpu.py, plain-torch Llama with sdpa attention, greedy loop with argmax on the device (no per-token sync), LoRA r 8 on all 7 projections with torch.optim.AdamW; torch.backends.cuda.matmul.allow_tf32 = False. Each ratio compares figures of one call on one card (~1B: run 2; 7B: run 3; run 1 = the op-by-op baseline before the fused kernels, on another H100 machine).',
    `Decode is host-bound: each TensorFlow.js kernel costs ~${overhead.tfjs_like_kernel_us} µs of host time in Dawn; the fused WGSL kernels (RMSNorm, rotary split, attention, SwiGLU) cut a layer from ~49 kernels to 16 and the greedy loop keeps token ids on the GPU (one read-back per generate call).`,
    "The LoRA step and prefill are bound by TensorFlow.js's fp32 matmul kernel (~10–13 TFLOP/s on the H100 against cuBLAS's ~50): the 3× target for the SFT step is missed (~10×); host AdamW (the bench's own, as @polyglot/sft's optimizer runs on the host too) is a fifth of it; a faster WGSL GEMM is the next step.",
  ],
};
const file = path.join(root, 'bench', 'results', 'model-webgpu.json');
writeFileSync(`${file}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
renameSync(`${file}.tmp`, file);
for (const f of figures)
  console.log(`${f.figure.padEnd(56)} ${fmt(f.value).padStart(10)} ${f.unit}   ${f.comparison}`);
