/**
 * The LoRA merge kernel: `W += scale · B·A` in float32, as PEFT's `merge` does, shared by the runtime (merged
 * adapters in `LlamaModel.load`) and `@polyglot/lora-merge` (streaming merge of checkpoints).
 *
 * Two implementations give bit-identical results: a WebAssembly SIMD kernel (src/lora-kernel.wat, f32x4, blocked
 * for the caches, ~25–30 GFLOP/s on one x86-64 core) and a plain JS reference (~1 GFLOP/s) used where
 * WebAssembly SIMD is unavailable and as the test oracle. Both compute every element as
 *
 *   acc = +0; for k = 0 … r-1: acc = f32(acc + f32(B[o,k] · A[k,i]));   W[o,i] = f32(W[o,i] + f32(acc · f32(scale)))
 *
 * i.e. the product of B·A accumulated in float32 in order of k (no fused multiply-add), scaled in float32 and added
 * — the operations of PEFT's `W + (B @ A) * scaling`, up to the summation order torch's matmul picks.
 */
import { Worker } from 'node:worker_threads';
import { PolyglotError } from './errors.js';
import { LORA_KERNEL_WASM_BASE64 } from './lora-kernel-wasm.js';

/** Which implementation ran: the WebAssembly SIMD kernel or the JS reference. */
export type LoraKernel = 'wasm' | 'js';

export interface MergeLoraOptions {
  /**
   * The base weight is stored transposed, [in, out] (GPT-2's Conv1D; PEFT's `fan_in_fan_out`): the delta is
   * added transposed. lora_A stays [r, in] and lora_B [out, r] either way, as PEFT stores them.
   */
  fanInFanOut?: boolean;
  /** The module's name, for error messages (e.g. `model.layers.0.self_attn.q_proj`). */
  name?: string;
  /**
   * `w` holds only rows [start, end) of the stored weight (rows of `wShape`: output features, or input
   * features with `fanInFanOut`), for merging a large tensor a slice at a time. Default: all rows.
   */
  rows?: readonly [number, number];
  /** `auto` (default): the WebAssembly kernel where it can run, else the JS reference; same bits either way. */
  kernel?: 'auto' | LoraKernel;
  /**
   * Threads for the WebAssembly kernel (default 1): this one plus `threads - 1` worker threads, each merging
   * other rows (same bits). The workers start on first use and do not keep the process alive.
   */
  threads?: number;
}

function shapeError(what: string, message: string): PolyglotError {
  return new PolyglotError('LORA_SHAPE_MISMATCH', `${what}: ${message}`);
}

/**
 * Merge a LoRA adapter into its base weight in place: W += scale · (B·A), in float32 (see the module comment for
 * the exact arithmetic). `wShape` is W's shape as stored: [out, in], or [in, out] with `fanInFanOut`. A is lora_A
 * [r, in], B is lora_B [out, r]; the rank r follows from A's length. Shapes that do not fit raise a
 * `PolyglotError` with code `LORA_SHAPE_MISMATCH` naming the module and the tensor.
 */
export function mergeLoraInto(
  w: Float32Array,
  wShape: readonly [number, number] | readonly number[],
  a: Float32Array,
  b: Float32Array,
  scale: number,
  options: MergeLoraOptions = {},
): void {
  const { fanInFanOut = false } = options;
  const where = options.name ? `LoRA merge of ${options.name}` : 'LoRA merge';
  const [rows, cols] = wShape;
  if (
    !(wShape.length === 2 && Number.isSafeInteger(rows) && Number.isSafeInteger(cols) && rows > 0 && cols > 0)
  ) {
    throw shapeError(where, `base weight shape must be two positive integers, got [${wShape.join(', ')}]`);
  }
  const [out, inF] = fanInFanOut ? [cols, rows] : [rows, cols];
  const layout = fanInFanOut ? '[in, out] (fan_in_fan_out)' : '[out, in]';
  const [start, end] = options.rows ?? [0, rows];
  if (
    !(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start < end && end <= rows)
  ) {
    throw shapeError(
      where,
      `rows [${start}, ${end}) are not a non-empty range of the ${rows} rows of the weight`,
    );
  }
  if (w.length !== (end - start) * cols) {
    throw shapeError(
      where,
      options.rows
        ? `base weight rows [${start}, ${end}) of [${rows}, ${cols}] need ${(end - start) * cols} elements, got ${w.length}`
        : `base weight has ${w.length} elements, but its shape [${rows}, ${cols}] needs ${rows * cols}`,
    );
  }
  const r = a.length / inF;
  if (!Number.isInteger(r) || r < 1) {
    throw shapeError(
      where,
      `lora_A has ${a.length} elements, not a multiple of in_features = ${inF} (base weight ${layout} [${rows}, ${cols}]); ` +
        'is the adapter for another model, or does fan_in_fan_out need to be set?',
    );
  }
  if (b.length !== out * r) {
    throw shapeError(
      where,
      `lora_B has ${b.length} elements, expected out_features × r = ${out} × ${r} = ${out * r} (lora_A is [${r}, ${inF}])`,
    );
  }
  if (!Number.isFinite(scale)) {
    throw new PolyglotError('LORA_BAD_CONFIG', `${where}: scale must be finite, got ${scale}`);
  }
  const s32 = Math.fround(scale); // torch multiplies a float32 tensor by a Python float in float32
  const threads = options.threads ?? 1;
  if (!(Number.isSafeInteger(threads) && threads >= 1)) {
    throw new PolyglotError(
      'LORA_BAD_CONFIG',
      `${where}: threads must be a positive integer, got ${threads}`,
    );
  }
  const op: KernelOp = { w, M: end - start, N: cols, R: r, start, inF, a, b, fanInFanOut, s32, threads };
  const choice = options.kernel ?? 'auto';
  const kernel = choice === 'auto' ? loraKernel() : choice;
  if (kernel === 'wasm') {
    const k = wasmKernel();
    if (!k) {
      throw new PolyglotError(
        'LORA_KERNEL_UNAVAILABLE',
        `${where}: the WebAssembly SIMD kernel cannot run in this JavaScript engine; use kernel "js" or "auto"`,
      );
    }
    if (mergeWasm(k, op)) return;
  }
  mergeJs(op);
}

/** The kernel `mergeLoraInto` uses by default here: `wasm` where WebAssembly SIMD runs, else `js`. */
export function loraKernel(): LoraKernel {
  return wasmKernel() ? 'wasm' : 'js';
}

/**
 * One merge: W[m, n] += s · Σ_k P[m, k] · Q[k, n] for the M rows `start …` of the weight, where P = B and Q = A,
 * or with fan_in_fan_out P = Aᵀ and Q = Bᵀ.
 */
interface KernelOp {
  w: Float32Array;
  M: number;
  N: number;
  R: number;
  start: number;
  inF: number;
  a: Float32Array;
  b: Float32Array;
  fanInFanOut: boolean;
  s32: number;
  threads: number;
}

/** P[m, k] for row m of the op (relative to `start`). */
function pAt(op: KernelOp, m: number, k: number): number {
  return op.fanInFanOut ? op.a[k * op.inF + op.start + m] : op.b[(op.start + m) * op.R + k];
}

/** Q as an [R, N] row-major matrix: A itself, or Bᵀ. */
function qMatrix(op: KernelOp): Float32Array {
  if (!op.fanInFanOut) return op.a;
  const { b, R, N } = op;
  const q = new Float32Array(R * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < R; k++) q[k * N + n] = b[n * R + k];
  return q;
}

/** The JS reference: row by row, rows of Q accumulated into a float32 row (stores to a Float32Array round). */
function mergeJs(op: KernelOp): void {
  const { w, M, N, R, s32 } = op;
  const q = qMatrix(op);
  const acc = new Float32Array(N);
  for (let m = 0; m < M; m++) {
    acc.fill(0);
    for (let k = 0; k < R; k++) {
      const p = pAt(op, m, k);
      const row = k * N;
      // p·q is exact in float64 (24 + 24 bits) and rounded once by fround; the float64 sum of two float32 values
      // rounded to float32 by the store equals the float32 sum (double rounding is harmless for 53 ≥ 2·24 + 2).
      for (let n = 0; n < N; n++) acc[n] += Math.fround(p * q[row + n]);
    }
    const off = m * N;
    for (let n = 0; n < N; n++) w[off + n] += Math.fround(acc[n] * s32);
  }
}

/** The part of the WebAssembly JS API used here (the TS libs of this project do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (desc: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}

type MergeFn = (
  w: number,
  ldw: number,
  p: number,
  q: number,
  ldq: number,
  M: number,
  N: number,
  R: number,
  s: number,
) => void;

interface WasmKernel {
  module: object;
  memory: WasmMemory;
  merge: MergeFn;
  /** Worker threads running the kernel on the same memory, started on demand. */
  workers: KernelWorker[];
}

let wasmInstance: WasmKernel | null | undefined;

/** The instantiated kernel (compiled on first use), or null where WebAssembly SIMD (or shared memory) does not run. */
function wasmKernel(): WasmKernel | null {
  if (wasmInstance === undefined) {
    try {
      const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
      const module = new api.Module(Buffer.from(LORA_KERNEL_WASM_BASE64, 'base64'));
      const memory = new api.Memory({ initial: 1, maximum: 65536, shared: true });
      const { merge } = new api.Instance(module, { env: { memory } }).exports as { merge: MergeFn };
      wasmInstance = { module, memory, merge, workers: [] };
    } catch {
      wasmInstance = null;
    }
  }
  return wasmInstance;
}

/**
 * A worker thread with its own instance of the kernel on the shared memory. Jobs go through a small shared
 * control block: [state, w, ldw, p, q, ldq, M, N, R, NB, s]; state 0 idle, 1 job posted, 2 quit, 3 failed.
 */
interface KernelWorker {
  control: Int32Array;
  scale: Float32Array;
}

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control } = workerData;
const c = new Int32Array(control);
const f = new Float32Array(control);
try {
  const { merge } = new WebAssembly.Instance(module, { env: { memory } }).exports;
  for (;;) {
    Atomics.wait(c, 0, 0);
    const state = Atomics.load(c, 0);
    if (state === 2) break;
    if (state !== 1) continue;
    const w = c[1], ldw = c[2], p = c[3], q = c[4], ldq = c[5], M = c[6], N = c[7], R = c[8], NB = c[9], s = f[10];
    for (let n0 = 0; n0 < N; n0 += NB) merge(w + n0 * 4, ldw, p, q + n0 * 4, ldq, M, Math.min(NB, N - n0), R, s);
    Atomics.store(c, 0, 0);
    Atomics.notify(c, 0);
  }
} catch (e) {
  Atomics.store(c, 0, 3);
  Atomics.notify(c, 0);
}
`;

/** At least `n` kernel workers (fewer where worker threads cannot start). */
function kernelWorkers(k: WasmKernel, n: number): KernelWorker[] {
  while (k.workers.length < n) {
    try {
      const control = new SharedArrayBuffer(11 * 4);
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: k.module, memory: k.memory, control },
      });
      worker.unref(); // idle workers never keep the process alive
      worker.on('error', () => {});
      k.workers.push({ control: new Int32Array(control), scale: new Float32Array(control) });
    } catch {
      break;
    }
  }
  return k.workers.slice(0, n);
}

function dropWorker(k: WasmKernel, wk: KernelWorker): void {
  k.workers = k.workers.filter((x) => x !== wk);
}

/** Bytes of Q per column block the kernel sweeps all rows past (kept in L2). */
const Q_BLOCK_BYTES = 128 * 1024;
/** Bytes of W copied into the kernel's memory at a time. */
const W_BLOCK_BYTES = 2 * 1024 * 1024;
const WASM_PAGE = 65536;

/**
 * The WebAssembly path: Q once into the kernel's memory (columns padded to 8 with zeros), then W in blocks of
 * rows (padded to 4): pack their rows of P, copy the rows in, run the kernel over column blocks (the rows split
 * between the threads), copy them back. Returns false (nothing changed) if the memory cannot grow to what the
 * shapes need.
 */
function mergeWasm(k: WasmKernel, op: KernelOp): boolean {
  const { w, M, N, R, s32 } = op;
  const Np = Math.ceil(N / 8) * 8;
  const NB = Math.min(Np, Math.max(8, Math.floor(Q_BLOCK_BYTES / 4 / R / 8) * 8));
  const MB = Math.min(Math.ceil(M / 4) * 4, Math.max(4, Math.floor(W_BLOCK_BYTES / 4 / Np / 4) * 4));
  // Memory layout in floats: Q [R, Np] | P packed [MB/4][R][4] | W [MB, Np]
  const qOff = 0;
  const pOff = R * Np;
  const wOff = pOff + MB * R;
  const need = (wOff + MB * Np) * 4;
  if (need > k.memory.buffer.byteLength) {
    try {
      k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / WASM_PAGE));
    } catch {
      return false; // beyond the 4 GiB of a 32-bit memory, or out of memory: the JS kernel does it
    }
  }
  const workers = op.threads > 1 ? kernelWorkers(k, Math.min(op.threads, MB / 4) - 1) : [];
  const mem = new Float32Array(k.memory.buffer);
  if (op.fanInFanOut) {
    const { b } = op;
    for (let kk = 0; kk < R; kk++) {
      const row = qOff + kk * Np;
      for (let n = 0; n < N; n++) mem[row + n] = b[n * R + kk];
      mem.fill(0, row + N, row + Np);
    }
  } else if (N === Np) {
    mem.set(op.a, qOff);
  } else {
    for (let kk = 0; kk < R; kk++) {
      mem.set(op.a.subarray(kk * N, kk * N + N), qOff + kk * Np);
      mem.fill(0, qOff + kk * Np + N, qOff + (kk + 1) * Np);
    }
  }
  const run = (rowOff: number, rows: number) => {
    for (let n0 = 0; n0 < Np; n0 += NB) {
      k.merge(
        (wOff + rowOff * Np + n0) * 4,
        Np,
        (pOff + rowOff * R) * 4,
        (qOff + n0) * 4,
        Np,
        rows,
        Math.min(NB, Np - n0),
        R,
        s32,
      );
    }
  };
  for (let m0 = 0; m0 < M; m0 += MB) {
    const mb = Math.min(MB, M - m0);
    const mbPad = Math.ceil(mb / 4) * 4;
    for (let g = 0; g < mbPad / 4; g++) {
      for (let kk = 0; kk < R; kk++) {
        const at = pOff + (g * R + kk) * 4;
        for (let j = 0; j < 4; j++) {
          const m = 4 * g + j;
          mem[at + j] = m < mb ? pAt(op, m0 + m, kk) : 0;
        }
      }
    }
    if (N === Np) {
      mem.set(w.subarray(m0 * N, (m0 + mb) * N), wOff);
    } else {
      for (let m = 0; m < mb; m++) mem.set(w.subarray((m0 + m) * N, (m0 + m + 1) * N), wOff + m * Np);
    }
    mem.fill(0, wOff + mb * Np, wOff + mbPad * Np);
    // Rows in groups of 4, split between this thread (the first share) and the workers.
    const groups = mbPad / 4;
    const parts = Math.min(groups, workers.length + 1);
    const per = Math.ceil(groups / parts) * 4;
    const posted: KernelWorker[] = [];
    for (let t = 1; t < parts; t++) {
      const rowOff = t * per;
      const rows = Math.min(per, mbPad - rowOff);
      if (rows <= 0) break;
      const wk = workers[t - 1];
      wk.control.set(
        [(wOff + rowOff * Np) * 4, Np, (pOff + rowOff * R) * 4, qOff * 4, Np, rows, Np, R, NB],
        1,
      );
      wk.scale[10] = s32;
      if (Atomics.compareExchange(wk.control, 0, 0, 1) === 0) {
        Atomics.notify(wk.control, 0);
        posted.push(wk);
      } else {
        dropWorker(k, wk); // it failed to start: its rows are done here
        run(rowOff, rows);
      }
    }
    run(0, Math.min(per, mbPad));
    let failed = false;
    for (const wk of posted) {
      while (Atomics.load(wk.control, 0) === 1) Atomics.wait(wk.control, 0, 1);
      if (Atomics.load(wk.control, 0) === 3) {
        dropWorker(k, wk);
        failed = true;
      }
    }
    if (failed) throw new PolyglotError('LORA_KERNEL_FAILED', `LoRA merge: a kernel worker thread failed`);
    if (N === Np) {
      w.set(mem.subarray(wOff, wOff + mb * N), m0 * N);
    } else {
      for (let m = 0; m < mb; m++) w.set(mem.subarray(wOff + m * Np, wOff + m * Np + N), (m0 + m) * N);
    }
  }
  return true;
}
