/**
 * The streaming core: every tensor of a shard goes through fixed-size chunks (bytes for copies, elements for dtype
 * conversions, rows for merges) read → transformed → written, with four buffer slots so that the read of the
 * next chunk and the writes of the previous ones (on libuv's thread pool) overlap the merge of the current one
 * (on this thread and the kernel's workers). Memory is a few chunks plus the LoRA factors of one tensor, whatever the size of the model,
 * its shards or its tensors.
 */
import {
  dtypeSize,
  f16ToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  type LoraKernel,
  type LoraModule,
  mergeLoraInto,
  type SafetensorsDtype,
  type SafetensorsFile,
} from '@polyglot/model';
import type { MergeAdapterInput } from './adapters.js';
import { LoraMergeError } from './errors.js';

/** One adapter's update of one base weight. */
export interface Contribution {
  adapter: MergeAdapterInput;
  module: LoraModule;
  /** The adapter's weight × the module's LoRA scale. */
  effectiveScale: number;
  fanInFanOut: boolean;
}

/** What happens to one tensor of the base. */
export interface TensorPlan {
  name: string;
  shard: string;
  inDtype: SafetensorsDtype;
  outDtype: SafetensorsDtype;
  shape: number[];
  /** Empty for a tensor that is copied (or only converted). */
  contributions: Contribution[];
}

type Float = 'F16' | 'BF16' | 'F32' | 'F64';

interface Job {
  t: TensorPlan;
  kind: 'copy' | 'convert' | 'merge';
  /** copy: bytes; convert: elements; merge: rows. */
  start: number;
  end: number;
  first: boolean;
  last: boolean;
}

/** Reusable buffers of one pipeline slot (grown on demand, never shrunk). */
export class Slot {
  raw: Uint8Array = new Uint8Array(0);
  work: Float32Array = new Float32Array(0);
  enc: Uint8Array = new Uint8Array(0);
  check: Uint8Array = new Uint8Array(0);
  /** The bytes the transform produced, for the sink. */
  out: Uint8Array = new Uint8Array(0);

  rawBytes(n: number): Uint8Array {
    if (this.raw.length < n) this.raw = new Uint8Array(n);
    return this.raw.subarray(0, n);
  }
  workValues(n: number): Float32Array {
    if (this.work.length < n) this.work = new Float32Array(n);
    return this.work.subarray(0, n);
  }
  encBytes(n: number): Uint8Array {
    if (this.enc.length < n) this.enc = new Uint8Array(n);
    return this.enc.subarray(0, n);
  }
  checkBytes(n: number): Uint8Array {
    if (this.check.length < n) this.check = new Uint8Array(n);
    return this.check.subarray(0, n);
  }
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

let f16Table: Float32Array | null = null;

/** Little-endian `dtype` bytes (n values) to float32, into `out`. */
function decode(dtype: Float, bytes: Uint8Array, out: Float32Array): void {
  const n = out.length;
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
      return;
    case 'BF16': {
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      const dst = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
      return;
    }
    case 'F16': {
      f16Table ??= f16ToF32(Uint16Array.from({ length: 65536 }, (_, i) => i));
      const table = f16Table;
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      return;
    }
    case 'F64': {
      const src = new Float64Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = src[i];
      return;
    }
  }
}

/** float32 values to little-endian `dtype` bytes (round to nearest even, as torch), into `out`. */
function encode(dtype: Float, values: Float32Array, out: Uint8Array): void {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  switch (dtype) {
    case 'F32':
      out.set(bytesOf(values));
      return;
    case 'BF16': {
      const dst = new Uint16Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = f32BitsToBf16Bits(bits[i]);
      return;
    }
    case 'F16': {
      const dst = new Uint16Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = f32BitsToF16Bits(bits[i]);
      return;
    }
    case 'F64': {
      const dst = new Float64Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = values[i];
      return;
    }
  }
}

export interface StreamOptions {
  chunkBytes: number;
  kernel: 'auto' | LoraKernel;
  threads: number;
}

/** Split a tensor into chunk jobs. */
function jobsFor(t: TensorPlan, chunkBytes: number): Job[] {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel === 0) return [];
  const jobs: Job[] = [];
  const push = (kind: Job['kind'], total: number, step: number) => {
    for (let s = 0; s < total; s += step) {
      jobs.push({
        t,
        kind,
        start: s,
        end: Math.min(total, s + step),
        first: s === 0,
        last: s + step >= total,
      });
    }
  };
  if (t.contributions.length > 0) {
    const [rows, cols] = t.shape;
    push('merge', rows, Math.max(1, Math.floor(chunkBytes / (cols * 4))));
  } else if (t.inDtype === t.outDtype) {
    const bytes = numel * dtypeSize(t.inDtype);
    push('copy', bytes, Math.max(1, Math.floor(chunkBytes / 64)) * 64);
  } else {
    push('convert', numel, Math.max(1, Math.floor(chunkBytes / 4)));
  }
  return jobs;
}

type Factors = { a: Float32Array; b: Float32Array }[];

/** Chunks in flight: one being read, one being merged, the others being written. */
const SLOTS = 4;

/**
 * Run the tensors of one shard (in the given order) through read → transform → sink. `sink` gets each chunk's
 * output bytes and their byte offset in the output tensor (write them, or compare them).
 */
export async function streamTensors(
  file: SafetensorsFile,
  tensors: TensorPlan[],
  options: StreamOptions,
  sink: (t: TensorPlan, offset: number, bytes: Uint8Array, slot: Slot) => Promise<void>,
): Promise<void> {
  const jobs = tensors.flatMap((t) => jobsFor(t, options.chunkBytes));
  const factors = new Map<string, Promise<Factors>>();

  const read = async (job: Job, slot: Slot): Promise<void> => {
    const { t } = job;
    if (job.kind === 'merge' && job.first) {
      const p = Promise.all(
        t.contributions.map(async (c) => ({
          a: await c.adapter.file.readFloat32(c.module.aKey),
          b: await c.adapter.file.readFloat32(c.module.bKey),
        })),
      );
      p.catch(() => {});
      factors.set(t.name, p);
    }
    const inSize = dtypeSize(t.inDtype);
    if (job.kind === 'copy') {
      await file.readRawInto(t.name, job.start, slot.rawBytes(job.end - job.start));
    } else if (job.kind === 'merge' && t.inDtype === 'F32') {
      const cols = t.shape[1];
      const work = slot.workValues((job.end - job.start) * cols);
      await file.readRawInto(t.name, job.start * cols * 4, bytesOf(work));
    } else {
      const per = job.kind === 'merge' ? t.shape[1] : 1;
      const n = (job.end - job.start) * per;
      await file.readRawInto(t.name, job.start * per * inSize, slot.rawBytes(n * inSize));
    }
    if (job.kind === 'merge') await factors.get(t.name);
  };

  const transform = async (job: Job, slot: Slot): Promise<number> => {
    const { t } = job;
    if (job.kind === 'copy') {
      slot.out = slot.raw.subarray(0, job.end - job.start);
      return job.start;
    }
    const per = job.kind === 'merge' ? t.shape[1] : 1;
    const n = (job.end - job.start) * per;
    const outSize = dtypeSize(t.outDtype);
    let values: Float32Array;
    if (job.kind === 'merge' && t.inDtype === 'F32') {
      values = slot.work.subarray(0, n);
    } else if (t.inDtype === 'F32') {
      values = new Float32Array(slot.raw.buffer, 0, n); // converting F32: a view of the bytes read
    } else {
      values = slot.workValues(n);
      decode(t.inDtype as Float, slot.raw.subarray(0, n * dtypeSize(t.inDtype)), values);
    }
    if (job.kind === 'merge') {
      const fs = await factors.get(t.name)!; // resolved: read() awaited it
      t.contributions.forEach((c, i) => {
        mergeLoraInto(values, t.shape, fs[i].a, fs[i].b, c.effectiveScale, {
          fanInFanOut: c.fanInFanOut,
          name: c.module.module,
          rows: [job.start, job.end],
          kernel: options.kernel,
          threads: options.threads,
        });
      });
      if (job.last) factors.delete(t.name);
    }
    if (t.outDtype === 'F32') {
      slot.out = bytesOf(values);
    } else {
      slot.out = slot.encBytes(n * outSize);
      encode(t.outDtype as Float, values, slot.out);
    }
    return job.start * per * outSize;
  };

  const slots = Array.from({ length: SLOTS }, () => new Slot());
  const sinks: (Promise<void> | null)[] = slots.map(() => null);
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    inFlight.add(p);
    p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  };
  try {
    let nextRead = jobs.length > 0 ? track(read(jobs[0], slots[0])) : null;
    for (let i = 0; i < jobs.length; i++) {
      const slot = slots[i % SLOTS];
      await nextRead;
      if (i + 1 < jobs.length) {
        const next = (i + 1) % SLOTS;
        if (sinks[next]) await sinks[next]; // the job that used that slot last must have been written
        sinks[next] = null;
        nextRead = track(read(jobs[i + 1], slots[next]));
      }
      const offset = await transform(jobs[i], slot);
      sinks[i % SLOTS] = track(sink(jobs[i].t, offset, slot.out, slot));
    }
    for (const s of sinks) if (s) await s;
  } catch (e) {
    await Promise.allSettled([...inFlight]);
    throw e;
  }
}

/** A sink that compares each chunk with the same bytes of the output file (for --verify). */
export function compareSink(
  out: SafetensorsFile,
  mismatches: string[],
): (t: TensorPlan, offset: number, bytes: Uint8Array, slot: Slot) => Promise<void> {
  // The slot's buffers stay untouched until its sink has finished (the pipeline waits for it before reusing it).
  return async (t, offset, expected, slot) => {
    const actual = slot.checkBytes(expected.length);
    await out.readRawInto(t.name, offset, actual);
    if (!Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected)) {
      let i = 0;
      while (actual[i] === expected[i]) i++;
      const elem = Math.floor((offset + i) / dtypeSize(t.outDtype));
      const what = t.contributions.length > 0 ? 'merged, recomputed' : 'copied from the base';
      mismatches.push(`"${t.name}" element ${elem} differs from the ${what} value`);
    }
  };
}

export function checkOutputHeader(out: SafetensorsFile, tensors: TensorPlan[]): void {
  const names = new Set(out.names());
  for (const t of tensors) {
    if (!names.has(t.name)) {
      throw new LoraMergeError('VERIFY_FAILED', `${out.path}: tensor "${t.name}" is missing`);
    }
    const info = out.info(t.name);
    if (info.dtype !== t.outDtype || info.shape.join(',') !== t.shape.join(',')) {
      throw new LoraMergeError(
        'VERIFY_FAILED',
        `${out.path}: tensor "${t.name}" is ${info.dtype} [${info.shape.join(', ')}], expected ${t.outDtype} [${t.shape.join(', ')}]`,
      );
    }
    names.delete(t.name);
  }
  if (names.size > 0) {
    throw new LoraMergeError(
      'VERIFY_FAILED',
      `${out.path}: unexpected tensors ${[...names].slice(0, 5).join(', ')}`,
    );
  }
}
