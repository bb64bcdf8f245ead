// File-format throughput: reading tensors through SafetensorsFile vs plain sequential reads of the same file,
// writing through SafetensorsWriter vs plain sequential writes, and dtype conversion speed.
// Sizes: 8 tensors of 64 MiB (512 MiB F32). Page cache is warm for reads (no root-free way to drop it).
import { mkdirSync, rmSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { fmt, peakRssMiB, recordBench, timeIt } from '../../../tools/bench.js';
import { repoRoot } from '../../../tools/shared.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, SafetensorsFile, writeSafetensors } from '../src/index.js';

const dir = path.join(repoRoot, 'bench', 'tmp', 'formats');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const N = 8;
const numel = 16 * 2 ** 20; // 64 MiB of F32 per tensor
const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
for (let t = 0; t < N; t++) {
  const data = new Float32Array(numel);
  for (let i = 0; i < numel; i++) data[i] = Math.sin(i * 0.001 + t);
  tensors[`model.layers.${t}.mlp.weight`] = { dtype: 'F32', shape: [4096, 4096], data };
}
const bytes = N * numel * 4;
const GB = 1e9;
const file = path.join(dir, 'model.safetensors');

const writeSecs = await timeIt(() => writeSafetensors(file, tensors), 2);
const rawFile = path.join(dir, 'raw.bin');
const rawWriteSecs = await timeIt(async () => {
  // the same pattern as the writer: a new file, fsync, rename over the previous one
  const fh = await open(`${rawFile}.tmp`, 'w');
  let pos = 0;
  for (const t of Object.values(tensors)) {
    const b = new Uint8Array(t.data.buffer);
    await fh.write(b, 0, b.length, pos);
    pos += b.length;
  }
  await fh.sync();
  await fh.close();
  await rename(`${rawFile}.tmp`, rawFile);
}, 2);

const readSecs = await timeIt(async () => {
  const f = await SafetensorsFile.open(file);
  for (const name of f.names()) await f.readFloat32(name);
  await f.close();
});
// Reading into freshly allocated buffers (what any reader that returns tensors must do: the page faults of new
// memory cost more than the copy from the page cache) and into one reused buffer (the copy alone).
const rawRead = (fresh: boolean) => async () => {
  const fh = await open(rawFile, 'r');
  const chunk = 64 * 2 ** 20;
  let buf = new Uint8Array(chunk);
  for (let pos = 0; pos < bytes; pos += chunk) {
    if (fresh) buf = new Uint8Array(Buffer.allocUnsafeSlow(chunk).buffer);
    await fh.read(buf, 0, chunk, pos);
  }
  await fh.close();
};
const rawReadSecs = await timeIt(rawRead(true));
const reuseReadSecs = await timeIt(rawRead(false));

const sample = tensors['model.layers.0.mlp.weight']!.data;
const toBf16 = await timeIt(() => f32ToBf16(sample), 3);
const bf = f32ToBf16(sample);
const fromBf16 = await timeIt(() => bf16ToF32(bf), 3);
const toF16 = await timeIt(() => f32ToF16(sample), 3);
const h = f32ToF16(sample);
const fromF16 = await timeIt(() => f16ToF32(h), 3);
const m = numel / 1e6;

recordBench({
  name: 'model-formats',
  title: 'safetensors I/O and dtype conversion',
  package: '@polyglot/model',
  figures: [
    {
      figure: 'SafetensorsFile.readFloat32, 8 × 64 MiB F32',
      value: bytes / readSecs / GB,
      unit: 'GB/s',
      comparison: `plain fs reads into new buffers: ${fmt(bytes / rawReadSecs / GB)} GB/s (${fmt(rawReadSecs / readSecs)}×); into one reused buffer: ${fmt(bytes / reuseReadSecs / GB)} GB/s`,
    },
    {
      figure: 'writeSafetensors (temp + fsync + rename), 512 MiB',
      value: bytes / writeSecs / GB,
      unit: 'GB/s',
      comparison: `plain sequential write to a new file + fsync + rename: ${fmt(bytes / rawWriteSecs / GB)} GB/s (${fmt(rawWriteSecs / writeSecs)}×)`,
    },
    { figure: 'F32 → BF16 (round to nearest even)', value: m / toBf16, unit: 'M values/s' },
    { figure: 'BF16 → F32', value: m / fromBf16, unit: 'M values/s' },
    { figure: 'F32 → F16 (round to nearest even)', value: m / toF16, unit: 'M values/s' },
    { figure: 'F16 → F32', value: m / fromF16, unit: 'M values/s' },
    {
      figure: 'peak RSS',
      value: peakRssMiB(),
      unit: 'MiB',
      comparison: 'holds the 512 MiB of source tensors',
    },
  ],
  notes: ['Reads are from a warm page cache; writes include fsync.'],
});
rmSync(dir, { recursive: true, force: true });
