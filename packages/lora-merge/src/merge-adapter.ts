/**
 * `mergeAdapter`: merge PEFT LoRA adapters into a Hugging Face checkpoint directory, shard by shard, never holding
 * the model (or one of its shards, or tensors) in memory; the replacement of the paper's `merge_peft_adapter.py`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  dtypeSize,
  isFloatDtype,
  type LoraKernel,
  loraKernel,
  type SafetensorsDtype,
  SafetensorsFile,
  SafetensorsWriter,
  safetensorsFileSize,
  type TensorSpec,
} from '@polyglot/model';
import { type AdapterSpec, type MergeAdapterInput, openAdapterForMerge } from './adapters.js';
import { type BaseModel, CONFIG_FILE, INDEX_FILE, openBase } from './base.js';
import { LoraMergeError } from './errors.js';
import {
  checkOutputHeader,
  compareSink,
  type StreamOptions,
  streamTensors,
  type TensorPlan,
} from './stream.js';

/** `keep` leaves every tensor in its dtype; the others convert every float tensor. */
export type OutputDtype = 'keep' | 'float32' | 'float16' | 'bfloat16';
export const OUTPUT_DTYPES: readonly OutputDtype[] = ['keep', 'float32', 'float16', 'bfloat16'];

const DTYPE_CODES: Record<Exclude<OutputDtype, 'keep'>, SafetensorsDtype> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
};
const TORCH_NAMES: Partial<Record<SafetensorsDtype, string>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
};

export interface MergeAdapterOptions {
  /** The base model directory (config.json + model.safetensors or sharded safetensors with an index). */
  base: string;
  /** PEFT LoRA adapter directories, or `{ dir, weight }` (weight default 1), merged in this order. */
  adapters: readonly (string | AdapterSpec)[];
  /** The merged model directory: must not exist, unless `force`. */
  out: string;
  /** Default `keep`. */
  dtype?: OutputDtype;
  /** Re-read the output and check every tensor against a fresh recomputation before publishing it. */
  verify?: boolean;
  /** Check everything and report what would be written; write nothing. */
  dryRun?: boolean;
  /** Replace an existing `out` directory. */
  force?: boolean;
  /** Called after each shard is written (and after each is verified). */
  onProgress?: (event: ShardProgress) => void;
  /** Default `auto`: the WebAssembly SIMD kernel where it runs (bit-identical to `js`). */
  kernel?: 'auto' | LoraKernel;
  /** Bytes per streamed chunk (default 16 MiB): memory use is a few chunks. */
  chunkBytes?: number;
  /** Threads for the merge kernel (default: the available cores, at most 8; same bits for any number). */
  threads?: number;
}

export interface ShardProgress {
  phase: 'merge' | 'verify';
  shard: string;
  /** 1-based. */
  index: number;
  shards: number;
  tensors: number;
  merged: number;
  /** Bytes of the shard file. */
  bytes: number;
  /** Since the merge started. */
  seconds: number;
}

export interface MergeContribution {
  adapter: string;
  module: string;
  r: number;
  alpha: number;
  /** The module's LoRA scale: alpha / r, or alpha / sqrt(r) with use_rslora. */
  scale: number;
  /** The adapter's weight. */
  weight: number;
  /** weight × scale: what B·A is multiplied by. */
  effectiveScale: number;
}

export interface MergedTensor {
  name: string;
  shard: string;
  dtype: string;
  shape: number[];
  contributions: MergeContribution[];
}

export interface MergeReport {
  base: string;
  out: string;
  dryRun: boolean;
  /** The dtype written to config.json (`torch_dtype` / `dtype`), or null when the model has no float weights. */
  dtype: string | null;
  kernel: LoraKernel;
  /** Threads that ran the merge kernel. */
  threads: number;
  adapters: {
    dir: string;
    weight: number;
    r: number;
    loraAlpha: number;
    useRslora: boolean;
    fanInFanOut: boolean;
    modules: number;
  }[];
  /** Tensors changed by at least one adapter. */
  tensorsMerged: number;
  /** Tensors written byte for byte as the base has them. */
  tensorsCopied: number;
  /** Untouched tensors written in another dtype (`dtype` other than keep). */
  tensorsConverted: number;
  merged: MergedTensor[];
  /** Names of the tensors copied or converted. */
  unchanged: string[];
  shards: { file: string; tensors: number; merged: number; bytes: number }[];
  /** The other files written: config.json, the index, generation_config.json, tokenizer files, … */
  files: string[];
  /** Bytes of every file written (or that would be, with dryRun). */
  bytesWritten: number;
  seconds: number;
  verify: VerifyReport | null;
}

export interface VerifyReport {
  tensors: number;
  merged: number;
  /** Merged tensors bit-identical to the recomputation, untouched ones to the base (or its conversion). */
  identical: number;
  seconds: number;
}

/** Weight files of other formats, never copied into the merged directory. */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|onnx|pkl|npz)$/i;
/** Files that would make the merged directory look like an adapter. */
const ADAPTER_FILE = /^adapter_(config\.json|model\.)/;

const isInside = (child: string, parent: string) => {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/** Set the dtype key(s) of config.json in its text (other bytes unchanged), adding torch_dtype if it has neither. */
export function setConfigDtype(text: string, dtype: string): string {
  const json = JSON.parse(text) as Record<string, unknown>;
  const keys = ['torch_dtype', 'dtype'].filter((k) => k in json);
  let edited = text;
  for (const key of keys) {
    edited = edited.replace(new RegExp(`("${key}"\\s*:\\s*)("(?:[^"\\\\]|\\\\.)*"|null)`), `$1"${dtype}"`);
  }
  if (keys.length === 0) {
    const m = /^\{(\s*)"/.exec(edited);
    edited = m ? `{${m[1]}"torch_dtype": "${dtype}",${edited.slice(1)}` : `{"torch_dtype": "${dtype}"}`;
  }
  // Whatever the text looked like, the result must parse to the config with the new dtype; else rewrite it.
  const want: Record<string, unknown> = { ...json };
  for (const k of keys.length > 0 ? keys : ['torch_dtype']) want[k] = dtype;
  const canonical = (o: Record<string, unknown>) =>
    JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
  try {
    if (canonical(JSON.parse(edited)) === canonical(want)) return edited;
  } catch {}
  return `${JSON.stringify(want, null, 2)}\n`;
}

function describeAdapter(a: MergeAdapterInput) {
  const c = a.adapter.config;
  return {
    dir: a.dir,
    weight: a.weight,
    r: c.r,
    loraAlpha: c.loraAlpha,
    useRslora: c.useRslora,
    fanInFanOut: c.fanInFanOut,
    modules: a.adapter.modules.length,
  };
}

/** Build the plan of every tensor, checking each adapter module against the base. */
function planTensors(
  base: BaseModel,
  adapters: MergeAdapterInput[],
  dtype: OutputDtype,
): Map<string, TensorPlan> {
  const plans = new Map<string, TensorPlan>();
  for (const { file, st } of base.shards) {
    for (const name of st.names()) {
      const { dtype: inDtype, shape } = st.info(name);
      const outDtype = dtype === 'keep' || !isFloatDtype(inDtype) ? inDtype : DTYPE_CODES[dtype];
      plans.set(name, { name, shard: file, inDtype, outDtype, shape: [...shape], contributions: [] });
    }
  }
  for (const a of adapters) {
    const fifo = a.adapter.config.fanInFanOut;
    for (const m of a.adapter.modules) {
      const t = plans.get(m.baseWeight);
      if (!t) {
        const tail = m.module.split('.').slice(-1)[0];
        const similar = [...plans.keys()].filter((n) => n.includes(`.${tail}.`)).slice(0, 3);
        throw new LoraMergeError(
          'ADAPTER_TARGET_MISSING',
          `adapter ${a.dir}: module ${m.module} targets tensor "${m.baseWeight}", which base model ${base.dir} ` +
            `does not have${similar.length ? ` (it has e.g. ${similar.map((s) => `"${s}"`).join(', ')})` : ''}: ` +
            'the adapter was trained for a different model',
        );
      }
      if (!isFloatDtype(t.inDtype)) {
        throw new LoraMergeError(
          'BASE_QUANTIZED',
          `base model ${base.dir}: "${t.name}" (target of ${m.module} in adapter ${a.dir}) is ${t.inDtype}, not a ` +
            'float tensor: the base looks quantized; merge into the unquantized base model',
        );
      }
      const [r, inF] = m.aShape;
      const out = m.bShape[0];
      const expected = fifo ? [inF, out] : [out, inF];
      if (t.shape.length !== 2 || t.shape[0] !== expected[0] || t.shape[1] !== expected[1]) {
        throw new LoraMergeError(
          'ADAPTER_SHAPE_MISMATCH',
          `adapter ${a.dir}: module ${m.module}: lora_A [${m.aShape.join(', ')}] and lora_B [${m.bShape.join(', ')}] ` +
            `need base weight "${t.name}" ${fifo ? '[in, out] (fan_in_fan_out)' : '[out, in]'} = [${expected.join(', ')}], ` +
            `but base model ${base.dir} has [${t.shape.join(', ')}]: the adapter (r ${r}) was trained for a different model`,
        );
      }
      t.contributions.push({ adapter: a, module: m, effectiveScale: a.weight * m.scale, fanInFanOut: fifo });
    }
  }
  return plans;
}

/** The dtype name for config.json: that of most of the float bytes written. */
function configDtype(plans: Iterable<TensorPlan>): string | null {
  const bytes = new Map<string, number>();
  for (const t of plans) {
    const name = TORCH_NAMES[t.outDtype];
    if (!name) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    bytes.set(name, (bytes.get(name) ?? 0) + n);
  }
  let best: string | null = null;
  for (const [name, n] of bytes) if (best === null || n > bytes.get(best)!) best = name;
  return best;
}

async function writeFileSynced(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // not every file system syncs directories
  } finally {
    await fh.close();
  }
}

/** What a merge and a verification both need: the inputs opened and checked, and the plan of every output file. */
interface Prepared {
  base: BaseModel;
  adapters: MergeAdapterInput[];
  plans: Map<string, TensorPlan>;
  all: TensorPlan[];
  shards: { file: string; st: SafetensorsFile; specs: Record<string, TensorSpec>; bytes: number }[];
  newDtype: string | null;
  totalSize: number;
  configText: string;
  indexText: string | null;
  otherFiles: { name: string; size: number }[];
  kernel: LoraKernel;
  stream: StreamOptions;
}

type CommonOptions = Pick<
  MergeAdapterOptions,
  'base' | 'adapters' | 'dtype' | 'kernel' | 'chunkBytes' | 'threads'
>;

function checkOptions(options: CommonOptions): void {
  const dtype = options.dtype ?? 'keep';
  if (!OUTPUT_DTYPES.includes(dtype)) {
    throw new LoraMergeError(
      'MERGE_BAD_OPTION',
      `dtype must be one of ${OUTPUT_DTYPES.join(', ')}, got ${JSON.stringify(dtype)}`,
    );
  }
  if (options.adapters.length === 0) {
    throw new LoraMergeError('MERGE_BAD_OPTION', 'no adapter given: pass at least one adapter directory');
  }
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(Number.isSafeInteger(chunkBytes) && chunkBytes >= 64)) {
    throw new LoraMergeError('MERGE_BAD_OPTION', `chunkBytes must be an integer ≥ 64, got ${chunkBytes}`);
  }
  const { threads } = options;
  if (threads !== undefined && !(Number.isSafeInteger(threads) && threads >= 1)) {
    throw new LoraMergeError('MERGE_BAD_OPTION', `threads must be a positive integer, got ${threads}`);
  }
}

const DEFAULT_CHUNK_BYTES = 16 * 2 ** 20;

/** Open and check the base and the adapters, and plan every output file; the caller closes what it returns. */
async function prepare(options: CommonOptions): Promise<Prepared> {
  checkOptions(options);
  const dtype = options.dtype ?? 'keep';
  const kernelChoice = options.kernel ?? 'auto';
  const base = await openBase(options.base);
  const adapters: MergeAdapterInput[] = [];
  try {
    for (const a of options.adapters)
      adapters.push(await openAdapterForMerge(typeof a === 'string' ? { dir: a } : a));
    const plans = planTensors(base, adapters, dtype);
    const all = [...plans.values()];
    const newDtype = configDtype(all);
    // Output shards: the base's file names, tensors, layout and metadata.
    const shards = base.shards.map(({ file, st }) => {
      const specs: Record<string, TensorSpec> = {};
      for (const name of st.names()) {
        const t = plans.get(name)!;
        specs[name] = { dtype: t.outDtype, shape: t.shape };
      }
      return { file, st, specs, bytes: safetensorsFileSize(specs, st.metadata) };
    });
    const totalSize = all.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.outDtype), 0);
    return {
      base,
      adapters,
      plans,
      all,
      shards,
      newDtype,
      totalSize,
      configText: newDtype ? setConfigDtype(base.configText, newDtype) : base.configText,
      indexText:
        base.indexText === null
          ? null
          : base.indexText.replace(/("total_size"\s*:\s*)\d+(\.0)?/, (_, k: string) => `${k}${totalSize}`),
      otherFiles: await filesToCopy(base),
      kernel: kernelChoice === 'auto' ? loraKernel() : kernelChoice,
      stream: {
        chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
        kernel: kernelChoice,
        threads: options.threads ?? Math.min(os.availableParallelism(), 8),
      },
    };
  } catch (e) {
    await Promise.all(adapters.map((a) => a.file.close()));
    await base.close();
    throw e;
  }
}

async function release(p: Prepared): Promise<void> {
  await Promise.all(p.adapters.map((a) => a.file.close()));
  await p.base.close();
}

/**
 * Merge `adapters` into `base`, writing `out`: W' = W + Σᵢ weightᵢ · scaleᵢ · Bᵢ·Aᵢ for every targeted weight
 * (each adapter's delta computed in float32 and added in turn, in the order given: the sum of the individual
 * weighted deltas, as PEFT's `add_weighted_adapter(…, combination_type="cat")` then a merge — not "linear", which
 * combines the factors), written back in the base tensor's dtype (or `dtype`); every other tensor copied byte for
 * byte. Returns what was done (or, with `dryRun`, what would be).
 */
export async function mergeAdapter(options: MergeAdapterOptions): Promise<MergeReport> {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  checkOptions(options);
  const outDir = path.resolve(options.out);
  const inputs: [string, string][] = [
    ['base model', path.resolve(options.base)],
    ...options.adapters.map((a): [string, string] => [
      'adapter',
      path.resolve(typeof a === 'string' ? a : a.dir),
    ]),
  ];
  for (const [what, dir] of inputs) {
    if (isInside(dir, outDir)) {
      throw new LoraMergeError(
        'OUT_IS_INPUT',
        `output directory ${options.out} is or contains the ${what} ${dir}: choose another --out`,
      );
    }
  }
  const outExists = existsSync(outDir);
  if (outExists && !options.force) {
    throw new LoraMergeError(
      'OUT_EXISTS',
      `output directory ${options.out} already exists: choose another --out, or pass --force to replace it`,
    );
  }

  const p = await prepare(options);
  try {
    const { plans, all, shards } = p;
    const merged: MergedTensor[] = all
      .filter((t) => t.contributions.length > 0)
      .map((t) => ({
        name: t.name,
        shard: t.shard,
        dtype: t.outDtype,
        shape: t.shape,
        contributions: t.contributions.map((c) => ({
          adapter: c.adapter.dir,
          module: c.module.module,
          r: c.module.r,
          alpha: c.module.alpha,
          scale: c.module.scale,
          weight: c.adapter.weight,
          effectiveScale: c.effectiveScale,
        })),
      }));
    const unchanged = all.filter((t) => t.contributions.length === 0);
    const report: MergeReport = {
      base: options.base,
      out: options.out,
      dryRun: Boolean(options.dryRun),
      dtype: p.newDtype,
      kernel: p.kernel,
      threads: p.kernel === 'wasm' ? p.stream.threads : 1,
      adapters: p.adapters.map(describeAdapter),
      tensorsMerged: merged.length,
      tensorsCopied: unchanged.filter((t) => t.inDtype === t.outDtype).length,
      tensorsConverted: unchanged.filter((t) => t.inDtype !== t.outDtype).length,
      merged,
      unchanged: unchanged.map((t) => t.name),
      shards: shards.map((s) => ({
        file: s.file,
        tensors: Object.keys(s.specs).length,
        merged: Object.keys(s.specs).filter((n) => plans.get(n)!.contributions.length > 0).length,
        bytes: s.bytes,
      })),
      files: [CONFIG_FILE, ...(p.indexText !== null ? [INDEX_FILE] : []), ...p.otherFiles.map((f) => f.name)],
      bytesWritten:
        shards.reduce((s, x) => s + x.bytes, 0) +
        Buffer.byteLength(p.configText) +
        (p.indexText !== null ? Buffer.byteLength(p.indexText) : 0) +
        p.otherFiles.reduce((s, f) => s + f.size, 0),
      seconds: 0,
      verify: null,
    };
    if (options.dryRun) {
      report.seconds = seconds();
      return report;
    }

    // Everything goes to a temp directory next to `out`, renamed into place at the end.
    const parent = path.dirname(outDir);
    await fsp.mkdir(parent, { recursive: true });
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmpDir = path.join(parent, `.${path.basename(outDir)}.merge-${tag}.tmp`);
    await fsp.mkdir(tmpDir);
    const finishing: Promise<void>[] = [];
    try {
      for (const [i, s] of shards.entries()) {
        const writer = await SafetensorsWriter.create(path.join(tmpDir, s.file), s.specs, s.st.metadata);
        try {
          const order = writer.order.map((n) => plans.get(n)!);
          await streamTensors(s.st, order, p.stream, (t, offset, bytes) =>
            writer.writePart(t.name, offset, bytes),
          );
        } catch (e) {
          await writer.abort();
          throw e;
        }
        // fsync + rename of this shard overlap the merge of the next one
        const done = writer.finish();
        done.catch(() => {});
        finishing.push(done);
        options.onProgress?.({ phase: 'merge', ...shardEvent(report, i), seconds: seconds() });
      }
      await Promise.all(finishing);
      await writeFileSynced(path.join(tmpDir, CONFIG_FILE), p.configText);
      if (p.indexText !== null) await writeFileSynced(path.join(tmpDir, INDEX_FILE), p.indexText);
      for (const f of p.otherFiles) {
        await writeFileSynced(path.join(tmpDir, f.name), await fsp.readFile(path.join(p.base.dir, f.name)));
      }
      if (options.verify) {
        report.verify = await verifyDir(p, tmpDir, options.out, (i) =>
          options.onProgress?.({ phase: 'verify', ...shardEvent(report, i), seconds: seconds() }),
        );
      }
      await fsyncDir(tmpDir);
      if (outExists) {
        // --force: the old directory is moved aside, the new one renamed in, then the old one removed.
        const old = path.join(parent, `.${path.basename(outDir)}.old-${tag}`);
        await fsp.rename(outDir, old);
        try {
          await fsp.rename(tmpDir, outDir);
        } catch (e) {
          await fsp.rename(old, outDir).catch(() => {});
          throw e;
        }
        await fsp.rm(old, { recursive: true, force: true });
      } else {
        await fsp.rename(tmpDir, outDir);
      }
      await fsyncDir(parent);
    } catch (e) {
      await Promise.allSettled(finishing);
      await fsp.rm(tmpDir, { recursive: true, force: true });
      throw e;
    }
    report.seconds = seconds();
    return report;
  } finally {
    await release(p);
  }
}

function shardEvent(report: MergeReport, i: number) {
  const s = report.shards[i];
  return {
    shard: s.file,
    index: i + 1,
    shards: report.shards.length,
    tensors: s.tensors,
    merged: s.merged,
    bytes: s.bytes,
  };
}

export interface VerifyMergeOptions extends CommonOptions {
  /** The merged model directory to check. */
  out: string;
  onProgress?: (event: ShardProgress) => void;
}

/**
 * Check a merged model directory against its inputs: every merged tensor bit for bit against a fresh
 * recomputation, every other tensor byte for byte against the base (or its dtype conversion), the shard headers,
 * the index and config.json's dtype. Throws a `VERIFY_FAILED` error listing the differences.
 */
export async function verifyMerge(options: VerifyMergeOptions): Promise<VerifyReport> {
  const t0 = performance.now();
  const p = await prepare(options);
  try {
    return await verifyDir(p, path.resolve(options.out), options.out, (i) => {
      const s = p.shards[i];
      options.onProgress?.({
        phase: 'verify',
        shard: s.file,
        index: i + 1,
        shards: p.shards.length,
        tensors: Object.keys(s.specs).length,
        merged: Object.keys(s.specs).filter((n) => p.plans.get(n)!.contributions.length > 0).length,
        bytes: s.bytes,
        seconds: (performance.now() - t0) / 1000,
      });
    });
  } finally {
    await release(p);
  }
}

async function verifyDir(
  p: Prepared,
  dir: string,
  shown: string,
  onShard: (i: number) => void,
): Promise<VerifyReport> {
  const t0 = performance.now();
  const problems: string[] = [];
  const readJsonIn = async (name: string): Promise<Record<string, unknown> | null> => {
    try {
      return JSON.parse(await fsp.readFile(path.join(dir, name), 'utf8'));
    } catch (e) {
      problems.push(`${name}: ${(e as Error).message}`);
      return null;
    }
  };
  const config = await readJsonIn(CONFIG_FILE);
  if (config && p.newDtype) {
    for (const key of ['torch_dtype', 'dtype'].filter((k) => k in config)) {
      if (config[key] !== p.newDtype)
        problems.push(`config.json: ${key} is ${JSON.stringify(config[key])}, expected "${p.newDtype}"`);
    }
  }
  if (p.indexText !== null) {
    const index = await readJsonIn(INDEX_FILE);
    const want = JSON.parse(p.base.indexText!) as { weight_map: Record<string, string> };
    if (index && JSON.stringify(index.weight_map) !== JSON.stringify(want.weight_map)) {
      problems.push(`${INDEX_FILE}: weight_map differs from the base's`);
    }
  }
  for (const [i, s] of p.shards.entries()) {
    let outFile: SafetensorsFile;
    try {
      outFile = await SafetensorsFile.open(path.join(dir, s.file));
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    try {
      checkOutputHeader(
        outFile,
        Object.keys(s.specs).map((n) => p.plans.get(n)!),
      );
      if (JSON.stringify(outFile.metadata) !== JSON.stringify(s.st.metadata)) {
        problems.push(
          `${s.file}: metadata ${JSON.stringify(outFile.metadata)} differs from the base's ${JSON.stringify(s.st.metadata)}`,
        );
      }
      const order = outFile.names().map((n) => p.plans.get(n)!);
      await streamTensors(s.st, order, p.stream, compareSink(outFile, problems));
    } catch (e) {
      problems.push((e as Error).message);
    } finally {
      await outFile.close();
    }
    onShard(i);
  }
  if (problems.length > 0) {
    throw new LoraMergeError(
      'VERIFY_FAILED',
      `verification of the merged model ${shown} failed (${problems.length} problem(s)): ${problems.slice(0, 3).join('; ')}` +
        `${problems.length > 3 ? '; …' : ''}`,
    );
  }
  const merged = p.all.filter((t) => t.contributions.length > 0).length;
  return { tensors: p.all.length, merged, identical: p.all.length, seconds: (performance.now() - t0) / 1000 };
}

/** The base directory's other files (generation_config.json, tokenizer files, …), not weights or adapters. */
async function filesToCopy(base: BaseModel): Promise<{ name: string; size: number }[]> {
  const skip = new Set([CONFIG_FILE, INDEX_FILE, ...base.shards.map((s) => s.file)]);
  const out: { name: string; size: number }[] = [];
  for (const entry of await fsp.readdir(base.dir, { withFileTypes: true })) {
    const name = entry.name;
    if (skip.has(name) || name.startsWith('.') || WEIGHT_FILE.test(name) || ADAPTER_FILE.test(name)) continue;
    const stat = await fsp.stat(path.join(base.dir, name)).catch(() => null);
    if (stat?.isFile()) out.push({ name, size: stat.size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
