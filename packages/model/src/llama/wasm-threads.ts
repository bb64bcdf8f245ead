/**
 * The threaded SIMD build of `@tensorflow/tfjs-backend-wasm` in Node, with worker threads that never keep the
 * process alive.
 *
 * TensorFlow.js turns wasm threads off in Node (`WASM_HAS_MULTITHREAD_SUPPORT` is false there, tfjs issue #3830):
 * its loader hands Emscripten `blob:` URLs for the pthread worker script and the main script, which Node's
 * `worker_threads` cannot load; and Emscripten `ref()`s a worker while its pthread runs, and XNNPACK's pool threads
 * run forever (they wait for work), so a process that uses them never exits by itself. Here the Emscripten factory
 * of the threaded build (`wasm-out/tfjs-backend-wasm-threaded-simd.js`) is started directly:
 *
 * - the worker script (shipped as a string) is written once to a file in the temp folder (content-addressed,
 *   written to a temp name and renamed), the main script is the factory's own file;
 * - the thread count is passed through `setThreadsCount`; the backend caps it at `emscripten_num_logical_cores() / 2`
 *   (meant for hyper-threaded browsers), so that import is answered with twice the requested count;
 * - once XNNPACK's pool is up, every worker is `unref()`ed and its `ref()` made a no-op, so the pool threads are
 *   daemons: the event loop alone decides when the process ends, and Node terminates the workers at exit (no
 *   explicit shutdown needed, nothing to forget); of the 8 workers Emscripten creates, those the pool does not
 *   need are terminated before they load the module, to save their memory;
 * - the module's `HEAP*` views are re-created on access when the shared memory has grown, so a growth made on any
 *   thread is seen by the JavaScript side.
 *
 * Results are the same as the single-threaded build's: XNNPACK splits a GEMM by output tiles, each output element is
 * computed by one thread in the same order.
 */

import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { KernelBackend } from '@tensorflow/tfjs';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

/** The most threads the backend's pool accepts (tfjs-backend-wasm preloads and caps at 8). */
export const MAX_WASM_THREADS = 8;

interface NodeWorkerLike {
  ref(): void;
  unref(): void;
  terminate(): unknown;
}

interface ThreadedModule {
  PThread: {
    runningWorkers: NodeWorkerLike[];
    unusedWorkers: NodeWorkerLike[];
    allocateUnusedWorker(): void;
  };
  wasmMemory: { readonly buffer: ArrayBufferLike };
  cwrap(name: string, ret: string | null, args: string[]): (...a: unknown[]) => unknown;
  tfjs?: Record<string, unknown>;
  [heap: string]: unknown;
}

type Factory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

/** The part of the WebAssembly global used here (this package compiles without the DOM typings). */
interface WasmGlobal {
  instantiate(bytes: Uint8Array, imports: unknown): Promise<{ instance: unknown; module: unknown }>;
}
const WA = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;

const HEAPS: [string, new (b: ArrayBufferLike) => ArrayBufferView][] = [
  ['HEAP8', Int8Array],
  ['HEAPU8', Uint8Array],
  ['HEAP16', Int16Array],
  ['HEAPU16', Uint16Array],
  ['HEAP32', Int32Array],
  ['HEAPU32', Uint32Array],
  ['HEAPF32', Float32Array],
  ['HEAPF64', Float64Array],
];

/** A worker that never holds the process open. */
function daemonize(w: NodeWorkerLike): void {
  w.unref();
  w.ref = () => {};
}

/** Writes the pthread worker script to the temp folder once (by content hash) and returns its path. */
function workerScript(contents: string): string {
  const hash = createHash('sha256').update(contents).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `polyglot-tfjs-wasm-pthread-${hash}.cjs`);
  try {
    if (readFileSync(file, 'utf8') === contents) return file;
  } catch {
    // absent or unreadable: (re)write it
  }
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
  return file;
}

/**
 * A factory for the TensorFlow.js backend over the threaded SIMD wasm module with `threads` XNNPACK threads (the
 * calling thread included), to be registered as `wasm`. The files are located, read and written here, so that a
 * problem with them throws now, with its own message (TF.js only logs what a backend factory throws).
 */
export function threadedWasmFactory(threads: number, wasmDir: string): () => Promise<KernelBackend> {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const factoryJs = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const factory = require(factoryJs) as Factory;
  const { wasmWorkerContents } = require(
    path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js'),
  ) as { wasmWorkerContents: string };
  // The script holds "\n" escapes inside string literals that the template literal turned into newlines (TF.js
  // escapes them the same way before making its Blob).
  const worker = workerScript(wasmWorkerContents.replace(/\n/g, '\\n'));
  const wasmFile = path.join(wasmDir, 'tfjs-backend-wasm-threaded-simd.wasm');
  const bytes = readFileSync(wasmFile);
  return () => start(threads, factory, factoryJs, worker, wasmFile, bytes);
}

async function start(
  threads: number,
  factory: Factory,
  factoryJs: string,
  worker: string,
  wasmFile: string,
  bytes: Uint8Array,
): Promise<KernelBackend> {
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  // Emscripten uses this object as the module: its PThread pool exists before the wasm is instantiated.
  const config: Record<string, unknown> & { PThread?: ThreadedModule['PThread'] } = {};
  const mod = await Promise.race([
    factory(
      Object.assign(config, {
        mainScriptUrlOrBlob: factoryJs,
        locateFile: (p: string, prefix: string) =>
          p.endsWith('.worker.js') ? worker : p.endsWith('.wasm') ? wasmFile : prefix + p,
        instantiateWasm: (
          info: { env: Record<string, unknown> },
          receive: (instance: unknown, module: unknown) => void,
        ) => {
          // The backend sizes its pool as min(requested, logical cores / 2).
          info.env.emscripten_num_logical_cores = () => 2 * threads;
          // Emscripten made 8 workers; only threads - 1 are needed: the others go before they load the module.
          const pool = config.PThread;
          if (pool) for (const w of pool.unusedWorkers.splice(threads - 1)) void w.terminate();
          WA.instantiate(bytes, info).then(
            (r) => receive(r.instance, r.module),
            (e) => fail(e),
          );
          return {};
        },
        onAbort: (what: unknown) => fail(new Error(`wasm module aborted: ${String(what)}`)),
      }),
    ),
    failed,
  ]);

  const mem = mod.wasmMemory;
  for (const [name, View] of HEAPS) {
    let view = mod[name] as ArrayBufferView;
    Object.defineProperty(mod, name, {
      configurable: true,
      enumerable: true,
      get() {
        if (view.buffer !== mem.buffer) view = new View(mem.buffer);
        return view;
      },
      set(v: ArrayBufferView) {
        view = v;
      },
    });
  }
  mod.tfjs = {
    init: mod.cwrap('init', null, []),
    initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
    registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: mod.cwrap('dispose_data', null, ['number']),
    dispose: mod.cwrap('dispose', null, []),
  };

  const pt = mod.PThread;
  // Workers made later (should anything start another pthread) are daemons from the start.
  const allocate = pt.allocateUnusedWorker.bind(pt);
  pt.allocateUnusedWorker = () => {
    allocate();
    daemonize(pt.unusedWorkers[pt.unusedWorkers.length - 1]);
  };
  for (const w of [...pt.unusedWorkers, ...pt.runningWorkers]) daemonize(w);

  setThreadsCount(threads);
  // Creates XNNPACK's pool: threads - 1 pthreads on preloaded workers.
  const backend = new BackendWasm(mod as unknown as ConstructorParameters<typeof BackendWasm>[0]);
  for (const w of pt.runningWorkers) daemonize(w);
  for (const w of pt.unusedWorkers.splice(0)) void w.terminate();
  return backend as unknown as KernelBackend;
}
