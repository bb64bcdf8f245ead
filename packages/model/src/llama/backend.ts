/**
 * TensorFlow.js backend selection for the Llama runtime (DESIGN.md, "Tensor backends"). One model code path runs on
 * every backend; the backend is chosen at run time:
 *
 * - `tensorflow`: `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`, when the user installed one (optional,
 *   loaded with a dynamic import).
 * - `webgpu`: `@tensorflow/tfjs-backend-webgpu` on Dawn (the `webgpu` npm package), both installed by the user; any
 *   adapter, software ones (Mesa's lavapipe) included. If the application already installed `navigator.gpu` and
 *   imported the backend package (a bundle), those are used. See the README's "Running on a GPU server".
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` with SIMD, single-threaded by default (the CPU default); with
 *   `wasmThreads` > 1 (or `POLYGLOT_WASM_THREADS`), its threaded SIMD build with that many XNNPACK threads
 *   (./wasm-threads.ts: worker threads that never keep the process alive).
 * - `cpu`: pure JavaScript; slow, the test oracle.
 * - `auto`: tensorflow if installed, else a hardware WebGPU adapter, else wasm.
 *
 * TensorFlow.js silently falls back to another backend when the requested one fails to initialise; here every
 * request is checked and a failure is a {@link BackendError}, never a quiet fallback.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { PolyglotError } from '../errors.js';
import { MAX_WASM_THREADS, threadedWasmFactory } from './wasm-threads.js';

export type BackendName = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/** A backend that was asked for could not be started (package missing, no GPU adapter, init failure). */
export class BackendError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'BackendError';
  }
}

export interface BackendOptions {
  /**
   * `wasm` only: XNNPACK threads (the calling thread included). 1 = the single-threaded SIMD build; 2..8 = the
   * threaded SIMD build. Default: the `POLYGLOT_WASM_THREADS` environment variable, else 1. Fixed once the wasm
   * backend has started (asking for another count then is a `BACKEND_THREADS_FIXED` error).
   */
  wasmThreads?: number;
}

let wasmPathsSet = false;
/** Thread count of the started wasm backend (null: not started). */
let wasmThreadsStarted: number | null = null;
/** The wasm backend factory that @tensorflow/tfjs-backend-wasm registered (its single-threaded loader in Node). */
let packageWasmFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | null = null;
let webgpuGlobalsInstalled = false;

/** Directory (ending in '/') that holds the wasm backend's .wasm binaries, resolved from the installed package. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const file = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm');
  return path.dirname(file) + path.sep;
}

async function useBackend(name: string): Promise<void> {
  let ok = false;
  let cause: unknown;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (e) {
    cause = e;
  }
  if (!ok || tf.getBackend() !== name) {
    const why =
      cause instanceof Error ? `: ${cause.message}` : cause !== undefined ? `: ${String(cause)}` : '';
    throw new BackendError(
      'BACKEND_INIT_FAILED',
      `the TensorFlow.js backend '${name}' failed to initialise${why} (active backend: ${tf.getBackend() ?? 'none'})`,
      { cause },
    );
  }
}

function checkThreads(n: number, where: string): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    throw new BackendError(
      'BACKEND_BAD_OPTION',
      `${where} must be an integer from 1 to ${MAX_WASM_THREADS}, got ${JSON.stringify(n)}`,
    );
  }
  return n;
}

/** The wasm thread count asked for: the option, else POLYGLOT_WASM_THREADS, else null (no preference). */
function requestedWasmThreads(opts: BackendOptions): number | null {
  if (opts.wasmThreads !== undefined) return checkThreads(opts.wasmThreads, 'wasmThreads');
  const env = process.env.POLYGLOT_WASM_THREADS;
  if (env === undefined || env.trim() === '') return null;
  return checkThreads(Number(env), 'POLYGLOT_WASM_THREADS');
}

/** The thread count of the running wasm backend, or null when it has not started. */
export function wasmThreadCount(): number | null {
  return wasmThreadsStarted;
}

async function initWasm(opts: BackendOptions): Promise<void> {
  const asked = requestedWasmThreads(opts);
  if (tf.engine().registry.wasm != null) {
    // Started already (by an earlier call, or by TF.js's own loader: single-threaded in Node).
    const running = wasmThreadsStarted ?? 1;
    if (opts.wasmThreads !== undefined && asked !== running) {
      throw new BackendError(
        'BACKEND_THREADS_FIXED',
        `the wasm backend already runs with ${running} thread(s); the thread count is fixed when it starts: ` +
          'pass wasmThreads (or set POLYGLOT_WASM_THREADS) in the first initBackend/LlamaModel.load call',
      );
    }
    wasmThreadsStarted = running;
    if (tf.getBackend() !== 'wasm') await useBackend('wasm');
    return;
  }
  const threads = asked ?? 1;
  let wasmDir: string;
  try {
    wasmDir = wasmBinaryDir();
  } catch (e) {
    throw new BackendError(
      'BACKEND_INIT_FAILED',
      `cannot locate the .wasm files of @tensorflow/tfjs-backend-wasm: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (!wasmPathsSet) {
    // TF.js's own loader cannot start the threaded build in Node; threads go through wasm-threads.ts instead.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(wasmDir);
    wasmPathsSet = true;
  }
  // The factory registered for 'wasm' (not started yet): the package's, or the threaded one.
  packageWasmFactory ??= tf.findBackendFactory('wasm');
  if (packageWasmFactory == null) {
    throw new BackendError('BACKEND_INIT_FAILED', '@tensorflow/tfjs-backend-wasm registered no wasm backend');
  }
  let factory = packageWasmFactory;
  let failure: unknown;
  if (threads > 1) {
    let threaded: () => Promise<tf.KernelBackend>;
    try {
      threaded = threadedWasmFactory(threads, wasmDir);
    } catch (e) {
      throw new BackendError(
        'BACKEND_INIT_FAILED',
        `cannot prepare the threaded wasm backend (${threads} threads): ${(e as Error).message}`,
        { cause: e },
      );
    }
    factory = () =>
      threaded().catch((e: unknown) => {
        failure = e;
        throw e;
      });
  }
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory, 2);
  try {
    await useBackend('wasm');
  } catch (e) {
    if (failure === undefined) throw e;
    throw new BackendError(
      'BACKEND_INIT_FAILED',
      `the threaded wasm backend (${threads} threads) failed to start: ${(failure as Error)?.message ?? String(failure)}`,
      { cause: failure },
    );
  }
  wasmThreadsStarted = threads;
}

async function dynamicImport(specifier: string): Promise<unknown> {
  // A variable specifier keeps TypeScript and bundlers from resolving optional packages at build time.
  return import(specifier);
}

function isModuleNotFound(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

async function initTensorflow(): Promise<void> {
  if (tf.getBackend() === 'tensorflow') return;
  const tried: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await dynamicImport(pkg);
    } catch (e) {
      if (isModuleNotFound(e)) {
        tried.push(pkg);
        continue;
      }
      throw new BackendError(
        'BACKEND_INIT_FAILED',
        `${pkg} is installed but failed to load: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    if (tf.findBackendFactory('tensorflow') == null) {
      throw new BackendError(
        'BACKEND_VERSION_MISMATCH',
        `${pkg} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs (${tf.version_core}); ` +
          `install ${pkg}@${tf.version_core} so that both share one tfjs-core`,
      );
    }
    await useBackend('tensorflow');
    return;
  }
  throw new BackendError(
    'BACKEND_UNAVAILABLE',
    `backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (not installed; tried ${tried.join(', ')}); ` +
      `install one at version ${tf.version_core}, or use --backend wasm`,
  );
}

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}

/** Installs Dawn's WebGPU globals (navigator.gpu) from the `webgpu` package; returns the first adapter or null. */
async function webgpuAdapter(): Promise<GpuAdapterLike | null> {
  const g = globalThis as unknown as {
    navigator?: { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } };
  };
  if (!g.navigator?.gpu) {
    let dawn: { create: (opts: string[]) => unknown; globals: Record<string, unknown> };
    try {
      dawn = (await dynamicImport('webgpu')) as typeof dawn;
    } catch (e) {
      throw new BackendError(
        'BACKEND_UNAVAILABLE',
        isModuleNotFound(e)
          ? `backend 'webgpu' needs the 'webgpu' npm package (Dawn for Node) and @tensorflow/tfjs-backend-webgpu@${tf.version_core}; ` +
              `install both (see GPU.md for the Vulkan libraries a headless host needs), or use --backend wasm`
          : `the 'webgpu' package failed to load: ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (!webgpuGlobalsInstalled) {
      Object.assign(globalThis, dawn.globals);
      const gpu = dawn.create([]);
      if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
      else
        Object.defineProperty(globalThis, 'navigator', {
          value: { gpu },
          configurable: true,
          writable: true,
        });
      webgpuGlobalsInstalled = true;
    }
  }
  return (await g.navigator!.gpu!.requestAdapter()) ?? null;
}

/** What Dawn reports about the WebGPU adapter that the `webgpu` backend would use. */
export interface WebgpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software rasteriser (lavapipe/llvmpipe, SwiftShader): `webgpu` accepts it, `auto` does not. */
  software: boolean;
  /** Largest storage-buffer binding in bytes: the limit on one tensor (weights above it cannot be bound). */
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/**
 * The WebGPU adapter Dawn offers this process, or null when none (no Vulkan loader/driver reachable) — what to check
 * on a GPU server before `--backend webgpu`. Throws {@link BackendError} `BACKEND_UNAVAILABLE` when the `webgpu`
 * package is not installed. Starts no backend.
 */
export async function webgpuAdapterInfo(): Promise<WebgpuAdapterInfo | null> {
  const a = (await webgpuAdapter()) as
    | (GpuAdapterLike & { limits?: { maxStorageBufferBindingSize?: number; maxBufferSize?: number } })
    | null;
  if (!a) return null;
  return {
    vendor: a.info?.vendor ?? '',
    architecture: a.info?.architecture ?? '',
    device: a.info?.device ?? '',
    description: a.info?.description ?? '',
    software: !isHardwareAdapter(a),
    maxStorageBufferBindingSize: Number(a.limits?.maxStorageBufferBindingSize ?? 0),
    maxBufferSize: Number(a.limits?.maxBufferSize ?? 0),
  };
}

/**
 * The largest storage-buffer binding of the active webgpu backend's device in bytes (one tensor must fit in it),
 * or null when the active backend is not webgpu.
 */
export function webgpuBindingLimit(): number | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const device = (
    tf.backend() as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number } } }
  ).device;
  const limit = Number(device?.limits?.maxStorageBufferBindingSize ?? 0);
  return limit > 0 ? limit : null;
}

/**
 * Throws BACKEND_TENSOR_TOO_LARGE when a float32 tensor of `bytes` cannot be bound on the active webgpu device (a
 * binding over the limit is a validation error that Dawn only logs: the kernel would not run and results would be
 * silently wrong).
 */
export function checkWebgpuBinding(bytes: number, what: string): void {
  const limit = webgpuBindingLimit();
  if (limit !== null && bytes > limit) {
    throw new BackendError(
      'BACKEND_TENSOR_TOO_LARGE',
      `backend 'webgpu': ${what} takes ${bytes.toLocaleString('en-US')} bytes, more than this adapter's ` +
        `maxStorageBufferBindingSize (${limit.toLocaleString('en-US')} bytes); use a GPU adapter with a larger ` +
        `limit (NVIDIA: 2 GiB) or another backend`,
    );
  }
}

/** Software rasterisers (lavapipe/llvmpipe, SwiftShader) count as adapters for `webgpu`, not for `auto`. */
function isHardwareAdapter(a: GpuAdapterLike): boolean {
  if (a.isFallbackAdapter) return false;
  // Dawn's GPUAdapterInfo exposes its fields as prototype getters (Object.values would see none).
  const i = a.info ?? {};
  const text = [i.vendor, i.architecture, i.device, i.description].join(' ').toLowerCase();
  return !/llvmpipe|lavapipe|swiftshader|software/.test(text);
}

async function importWebgpuBackend(): Promise<void> {
  try {
    await dynamicImport('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new BackendError(
      'BACKEND_UNAVAILABLE',
      isModuleNotFound(e)
        ? `backend 'webgpu' needs @tensorflow/tfjs-backend-webgpu@${tf.version_core} (not installed)`
        : `@tensorflow/tfjs-backend-webgpu failed to load: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

async function initWebgpu(requireHardware: boolean): Promise<void> {
  if (tf.getBackend() === 'webgpu') return;
  const adapter = await webgpuAdapter();
  if (!adapter) {
    throw new BackendError(
      'BACKEND_NO_ADAPTER',
      `backend 'webgpu': navigator.gpu.requestAdapter() returned null (no Vulkan driver/loader reachable by Dawn; ` +
        `see GPU.md: libvulkan1, the GL dispatch libraries and VK_DRIVER_FILES)`,
    );
  }
  if (requireHardware && !isHardwareAdapter(adapter)) {
    throw new BackendError('BACKEND_NO_ADAPTER', `backend 'webgpu': only a software adapter is available`);
  }
  // Already registered when the application (or a bundle) imported @tensorflow/tfjs-backend-webgpu itself after
  // installing navigator.gpu; the package registers its backend only when navigator.gpu exists at import time.
  if (tf.findBackendFactory('webgpu') == null) await importWebgpuBackend();
  if (tf.findBackendFactory('webgpu') == null) {
    throw new BackendError(
      'BACKEND_VERSION_MISMATCH',
      `@tensorflow/tfjs-backend-webgpu registered no 'webgpu' backend with this @tensorflow/tfjs (${tf.version_core}); ` +
        `install @tensorflow/tfjs-backend-webgpu@${tf.version_core}`,
    );
  }
  await useBackend('webgpu');
}

/**
 * Whether this host has a GPU device node that Dawn could drive (Linux: /dev/nvidia*, /dev/kfd, /dev/dri/renderD*;
 * other systems: assumed). `auto` asks Dawn for an adapter only then: on a CPU-only host Dawn would only find a
 * software adapter, which `auto` refuses anyway, after printing its own warnings on stderr.
 * `POLYGLOT_AUTO_WEBGPU=1` makes `auto` ask Dawn regardless.
 */
function hostMayHaveGpu(): boolean {
  if (process.platform !== 'linux' || process.env.POLYGLOT_AUTO_WEBGPU === '1') return true;
  try {
    if (readdirSync('/dev').some((n) => /^nvidia\d+$/.test(n) || n === 'kfd')) return true;
  } catch {
    // no /dev: fall through
  }
  try {
    return readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

/**
 * Starts the named backend and makes it TensorFlow.js's active backend; returns the active backend's name
 * (`auto` resolves to `tensorflow`, `webgpu` or `wasm`). Throws {@link BackendError} when the backend cannot run.
 */
export async function initBackend(name: BackendName = 'auto', opts: BackendOptions = {}): Promise<string> {
  switch (name) {
    case 'cpu': {
      if (tf.getBackend() !== 'cpu') await useBackend('cpu');
      // The cpu backend's first write prints advice to install tfjs-node; backend choice is ours to report.
      const cpu = tf.backend() as unknown as { firstUse?: boolean };
      if (cpu.firstUse) cpu.firstUse = false;
      break;
    }
    case 'wasm':
      await initWasm(opts);
      break;
    case 'tensorflow':
      await initTensorflow();
      break;
    case 'webgpu':
      await initWebgpu(false);
      break;
    case 'auto': {
      const current = tf.getBackend();
      if (current === 'tensorflow' || current === 'webgpu' || current === 'wasm') break;
      try {
        await initTensorflow();
        break;
      } catch (e) {
        if (!(e instanceof BackendError) || e.code !== 'BACKEND_UNAVAILABLE') throw e;
      }
      if (hostMayHaveGpu()) {
        try {
          await initWebgpu(true);
          break;
        } catch (e) {
          if (
            !(e instanceof BackendError) ||
            (e.code !== 'BACKEND_UNAVAILABLE' && e.code !== 'BACKEND_NO_ADAPTER')
          )
            throw e;
        }
      }
      await initWasm(opts);
      break;
    }
    default:
      throw new BackendError(
        'BACKEND_UNKNOWN',
        `unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.join(', ')}`,
      );
  }
  return tf.getBackend();
}

/**
 * Makes an already initialised backend the active one, synchronously (TensorFlow.js switches between initialised
 * backends without awaiting), so that the tensor work that follows in the same tick runs on it.
 */
export function switchBackendSync(name: string): void {
  if (tf.getBackend() === name) return;
  if (tf.engine().registry[name] == null) {
    throw new BackendError(
      'BACKEND_NOT_INITIALISED',
      `backend '${name}' is not initialised; call initBackend first`,
    );
  }
  void tf.setBackend(name);
  if (tf.getBackend() !== name)
    throw new BackendError('BACKEND_INIT_FAILED', `cannot switch to backend '${name}'`);
}

/** The name of TensorFlow.js's active backend (what every result file records). */
export function activeBackend(): string {
  return tf.getBackend();
}
