// Merge throughput at model scale: generated F32 Llama-shaped checkpoints (hidden 2048, intermediate 5632, GQA
// 32/4 heads, vocab 32000 — TinyLlama's shapes — with 10 and 18 layers: 2.3 and 3.8 GB in shards of ≤ 1 GB) and a
// rank-64 adapter on all 7 projections. Figures: GB/s written by mergeAdapter (in a child process, for its own
// peak RSS), against a plain sequential write + fsync of the same bytes measured in the same run, and against a
// NumPy merge of the same files (bench/numpy_merge.py, Debian's python3-numpy on OpenBLAS).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { SafetensorsWriter, type TensorSpec, writeSafetensors } from '@polyglot/model';
import { fmt, recordBench } from '../../../tools/bench.js';
import { repoRoot } from '../../../tools/shared.js';
import { mergeLoraInto } from '../src/index.js';

const root = path.join(repoRoot, 'bench', 'tmp', 'lora-merge');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
const GB = 1e9;
const MiB = 2 ** 20;
const H = 2048;
const FF = 5632;
const HEADS = 32;
const KV = 4;
const HEAD_DIM = H / HEADS;
const VOCAB = 32000;
const RANK = 64;
const MAX_SHARD = 1e9;
const CHUNK = 16 * MiB;

/** A pool of random values (~N(0, 0.02)) that every generated tensor takes its data from. */
const pool = new Float32Array(32 * MiB);
{
  let s = 12345;
  for (let i = 0; i < pool.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32;
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    pool[i] = (u + s / 2 ** 32 - 1) * 0.035;
  }
}
let poolPos = 0;
function poolSlice(n: number): Float32Array {
  if (poolPos + n > pool.length) poolPos = (poolPos * 7919) % Math.max(1, pool.length - n);
  const out = pool.subarray(poolPos, poolPos + n);
  poolPos += n;
  return out;
}

function llamaTensors(layers: number): [string, number[]][] {
  const t: [string, number[]][] = [['model.embed_tokens.weight', [VOCAB, H]]];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    t.push([`${p}.input_layernorm.weight`, [H]]);
    t.push([`${p}.self_attn.q_proj.weight`, [H, H]]);
    t.push([`${p}.self_attn.k_proj.weight`, [KV * HEAD_DIM, H]]);
    t.push([`${p}.self_attn.v_proj.weight`, [KV * HEAD_DIM, H]]);
    t.push([`${p}.self_attn.o_proj.weight`, [H, H]]);
    t.push([`${p}.post_attention_layernorm.weight`, [H]]);
    t.push([`${p}.mlp.gate_proj.weight`, [FF, H]]);
    t.push([`${p}.mlp.up_proj.weight`, [FF, H]]);
    t.push([`${p}.mlp.down_proj.weight`, [H, FF]]);
  }
  t.push(['model.norm.weight', [H]]);
  t.push(['lm_head.weight', [VOCAB, H]]);
  return t;
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** A sharded F32 checkpoint (as transformers shards: in module order, a new shard when the next tensor would pass 1 GB). */
async function generateModel(dir: string, layers: number) {
  mkdirSync(dir, { recursive: true });
  const shards: Record<string, TensorSpec>[] = [{}];
  let size = 0;
  for (const [name, shape] of llamaTensors(layers)) {
    const bytes = numel(shape) * 4;
    if (size + bytes > MAX_SHARD && size > 0) {
      shards.push({});
      size = 0;
    }
    shards[shards.length - 1][name] = { dtype: 'F32', shape };
    size += bytes;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  const fileSizes: number[] = [];
  for (const [i, specs] of shards.entries()) {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const w = await SafetensorsWriter.create(path.join(dir, file), specs, { format: 'pt' });
    for (const name of w.order) {
      const n = numel(specs[name].shape);
      for (let off = 0; off < n; off += CHUNK / 4) {
        await w.writePart(name, off * 4, poolSlice(Math.min(CHUNK / 4, n - off)));
      }
      weightMap[name] = file;
      total += n * 4;
    }
    await w.finish();
    const fh = await open(path.join(dir, file), 'r');
    fileSizes.push((await fh.stat()).size);
    await fh.close();
  }
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    `${JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2)}\n`,
  );
  writeFileSync(
    path.join(dir, 'config.json'),
    `${JSON.stringify(
      {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        hidden_size: H,
        intermediate_size: FF,
        num_hidden_layers: layers,
        num_attention_heads: HEADS,
        num_key_value_heads: KV,
        vocab_size: VOCAB,
        rms_norm_eps: 1e-5,
        torch_dtype: 'float32',
      },
      null,
      2,
    )}\n`,
  );
  return { fileSizes, total: fileSizes.reduce((a, b) => a + b, 0), largest: Math.max(...fileSizes) };
}

/** A PEFT LoRA adapter, rank 64 on q, k, v, o, gate, up, down of every layer (A and B non-zero). */
async function generateAdapter(dir: string, layers: number) {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  let params = 0;
  for (const [name, shape] of llamaTensors(layers)) {
    if (!/_proj\.weight$/.test(name)) continue;
    const m = name.replace(/\.weight$/, '');
    const [out, inF] = shape;
    tensors[`base_model.model.${m}.lora_A.weight`] = {
      dtype: 'F32',
      shape: [RANK, inF],
      data: poolSlice(RANK * inF),
    };
    tensors[`base_model.model.${m}.lora_B.weight`] = {
      dtype: 'F32',
      shape: [out, RANK],
      data: poolSlice(out * RANK),
    };
    params += 2 * out * inF;
  }
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: RANK,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      bias: 'none',
    }),
  );
  return { flops: params * RANK }; // 2·r FLOPs per merged weight element
}

/** Sequential write + fsync of files of these sizes (what the merge writes), from one reused 16 MiB buffer. */
async function sequentialWrite(dir: string, sizes: number[]): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const buf = new Uint8Array(CHUNK);
  buf.set(new Uint8Array(pool.buffer, 0, CHUNK));
  const t0 = performance.now();
  for (const [i, size] of sizes.entries()) {
    const file = path.join(dir, `file-${i}`);
    const fh = await open(`${file}.tmp`, 'w');
    for (let pos = 0; pos < size; pos += CHUNK) await fh.write(buf, 0, Math.min(CHUNK, size - pos), pos);
    await fh.sync();
    await fh.close();
    await rename(`${file}.tmp`, file);
  }
  const secs = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return secs;
}

interface ChildResult {
  threads: number;
  seconds: number;
  bytes: number;
  kernel: string;
  merged: number;
  verifySeconds: number | null;
  peakRssMiB: number;
}

function ours(base: string, adapter: string, out: string, verify = false): ChildResult {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'merge-child.ts'),
      base,
      adapter,
      out,
      verify ? 'verify' : '',
    ],
    { encoding: 'utf8', cwd: path.dirname(import.meta.dirname) },
  );
  if (r.status !== 0) throw new Error(`merge child failed: ${r.stderr}`);
  rmSync(out, { recursive: true, force: true });
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function numpy(
  base: string,
  adapter: string,
  out: string,
): { seconds: number; bytes: number; peak_rss_mib: number } {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(
    '/usr/bin/python3',
    [path.join(import.meta.dirname, 'numpy_merge.py'), base, adapter, out],
    {
      encoding: 'utf8',
      env,
    },
  );
  if (r.status !== 0) throw new Error(`numpy merge failed: ${r.stderr}`);
  rmSync(out, { recursive: true, force: true });
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Let the previous run's writes and deletions settle before the next measurement. */
async function settle() {
  spawnSync('sync');
  await new Promise((r) => setTimeout(r, 1500));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (x: number) => `${Math.round(100 * x)}%`;
const ROUNDS = 5;
const figures: Parameters<typeof recordBench>[0]['figures'] = [];
const notes: string[] = [];
// The kernel alone, on one gate_proj-sized weight (in memory), before any disk work (listed last).
let kernelFigure: (typeof figures)[number];
{
  const w = poolSlice(FF * H).slice();
  const a = poolSlice(RANK * H).slice();
  const b = poolSlice(FF * RANK).slice();
  const time = (kernel: 'wasm' | 'js', threads: number, reps: number) => {
    mergeLoraInto(w, [FF, H], a, b, 0.25, { kernel, threads });
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      mergeLoraInto(w, [FF, H], a, b, 0.25, { kernel, threads });
      times.push((performance.now() - t0) / 1000);
    }
    return median(times);
  };
  const flop = 2 * FF * H * RANK;
  const one = time('wasm', 1, 9);
  const two = time('wasm', 2, 9);
  const js = time('js', 1, 1);
  kernelFigure = {
    figure: `merge kernel, [${FF}, ${H}] r ${RANK}, WebAssembly SIMD, 1 thread`,
    value: flop / one / 1e9,
    unit: 'GFLOP/s',
    comparison: `2 threads: ${fmt(flop / two / 1e9)} GFLOP/s; JS reference (same bits): ${fmt(flop / js / 1e9)} GFLOP/s`,
  };
}
for (const layers of [10, 18]) {
  const base = path.join(root, `base-${layers}`);
  const adapter = path.join(root, `adapter-${layers}`);
  const model = await generateModel(base, layers);
  const { flops } = await generateAdapter(adapter, layers);
  const seq: number[] = [];
  const ourRuns: ChildResult[] = [];
  const np: { seconds: number; bytes: number; peak_rss_mib: number }[] = [];
  // Rounds in rotating order, each run after the previous one's output is deleted and synced: the disk of a
  // virtual machine has bursts and stalls, so the figures are medians and the ratios are taken within a round.
  for (let round = 0; round < ROUNDS; round++) {
    const runs = {
      seq: async () =>
        seq.push(model.total / (await sequentialWrite(path.join(root, 'seq'), model.fileSizes)) / GB),
      ours: async () => ourRuns.push(ours(base, adapter, path.join(root, 'out'))),
      numpy: async () => np.push(numpy(base, adapter, path.join(root, 'out-numpy'))),
    };
    const order = (['seq', 'ours', 'numpy'] as const).map((_, i, a) => a[(i + round) % a.length]);
    for (const name of order) {
      await settle();
      await runs[name]();
    }
  }
  const ourGBs = ourRuns.map((r) => r.bytes / r.seconds / GB);
  const npGBs = np.map((r) => r.bytes / r.seconds / GB);
  const label = `${fmt(model.total / GB)} GB, ${model.fileSizes.length} shards, ${layers} layers`;
  const vsSeq = ourGBs.map((x, i) => x / seq[i]);
  const vsNumpy = ourGBs.map((x, i) => x / npGBs[i]);
  console.log(
    `${label}: ours ${ourGBs.map(fmt).join(' ')} GB/s; sequential write ${seq.map(fmt).join(' ')}; numpy ${npGBs.map(fmt).join(' ')}`,
  );
  figures.push({
    figure: `mergeAdapter, F32 ${label}, r 64 × 7 projections (median of ${ROUNDS})`,
    value: median(ourGBs),
    unit: 'GB/s written',
    comparison:
      `sequential write + fsync of the same bytes: ${fmt(median(seq))} GB/s; ours / sequential within each round: ` +
      `${vsSeq.map(pct).join(', ')} (median ${pct(median(vsSeq))}); NumPy 1.24 + OpenBLAS (2 threads): ` +
      `${fmt(median(npGBs))} GB/s (ours ${fmt(median(vsNumpy))}× within rounds); ${fmt(flops / 1e9)} GFLOP, ` +
      `${ourRuns[0].kernel} kernel × ${ourRuns[0].threads} threads`,
  });
  figures.push({
    figure: `peak RSS, ${label}`,
    value: Math.max(...ourRuns.map((r) => r.peakRssMiB)),
    unit: 'MiB',
    comparison:
      `target ≤ largest shard + 256 MiB = ${fmt(model.largest / MiB + 256)} MiB; ` +
      `NumPy merge: ${fmt(Math.max(...np.map((r) => r.peak_rss_mib)))} MiB`,
  });
  rmSync(base, { recursive: true, force: true });
  rmSync(adapter, { recursive: true, force: true });
}

figures.push(kernelFigure);
notes.push(
  'Base shards are read from a warm page cache (just generated); every write includes fsync. Reads and writes ' +
    'run on the libuv thread pool, overlapping the kernel (this thread plus a worker per further core).',
  'The NumPy merge memory-maps the shards and computes W + (B @ A)·s per tensor with OpenBLAS sgemm, then write + fsync.',
  'The disk of this virtual machine alternates bursts and stalls (the same sequential write measures 0.3–2 GB/s), ' +
    'hence 5 rounds in rotating order and ratios taken within a round.',
  'About 190 MiB of the peak RSS is the process before the merge starts (Node and importing @polyglot/model, which ' +
    "loads TensorFlow.js); the merge adds its 4 chunk slots of 16 MiB, the kernel memory and one tensor's factors.",
);
recordBench({
  name: 'lora-merge',
  title: 'LoRA merge (streaming, WebAssembly SIMD kernel)',
  package: '@polyglot/lora-merge',
  figures,
  notes,
});
rmSync(root, { recursive: true, force: true });
