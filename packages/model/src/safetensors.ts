/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header, then the tensors' bytes.
 *
 * The reader reads the header only and then each tensor with positioned reads (files may be far larger than
 * memory, and larger than 4 GiB). It validates the header as the Rust `safetensors` crate does. The writer
 * produces the bytes that Python's `safetensors.torch.save_file` writes.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import {
  arrayTypeFor,
  bytesOf,
  dtypeRank,
  dtypeSize,
  isFloatDtype,
  isSafetensorsDtype,
  type SafetensorsDtype,
  type TypedArray,
  toFloat32,
  typedArrayFor,
} from './dtype.js';
import { ModelFormatError } from './errors.js';
import { tempPathFor } from './fsutil.js';
import { compareCodePoints } from './pyjson.js';

/** Headers above this size are refused (the Rust crate's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** One read or write call moves at most this many bytes (fs calls take at most 2 GiB). */
const IO_CHUNK = 1 << 30;

export interface TensorSpec {
  dtype: SafetensorsDtype;
  shape: number[];
}

export interface SafetensorsTensorInfo extends TensorSpec {
  /** [begin, end) in bytes, relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface TensorData extends TensorSpec {
  /** F16/BF16 as Uint16Array bit patterns, I64 as BigInt64Array, and so on (see `arrayTypeFor`). */
  data: TypedArray;
}

export interface TensorToWrite extends TensorSpec {
  /** The dtype's typed array (see `arrayTypeFor`), or the little-endian bytes as a Uint8Array. */
  data: ArrayBufferView;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fail(code: string, message: string, cause?: unknown): never {
  throw new ModelFormatError(code, message, cause === undefined ? undefined : { cause });
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parse and validate a header (`dataSize`: the bytes after it in the file). */
function parseHeader(
  bytes: Uint8Array,
  dataSize: number,
  file: string,
): { metadata: Record<string, string> | null; tensors: Map<string, SafetensorsTensorInfo> } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    fail(
      'SAFETENSORS_BAD_HEADER',
      `${file}: the safetensors header is not valid JSON (${(e as Error).message})`,
      e,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail('SAFETENSORS_BAD_HEADER', `${file}: the safetensors header is not a JSON object`);
  }
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      const ok =
        typeof entry === 'object' &&
        entry !== null &&
        !Array.isArray(entry) &&
        Object.values(entry).every((v) => typeof v === 'string');
      if (!ok) fail('SAFETENSORS_BAD_HEADER', `${file}: __metadata__ must map strings to strings`);
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const where = `${file}: tensor "${name}"`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) {
      fail('SAFETENSORS_BAD_HEADER', `${where}: header entry is not an object`);
    }
    if (!isSafetensorsDtype(e.dtype)) {
      fail('SAFETENSORS_UNKNOWN_DTYPE', `${where} has unknown dtype ${JSON.stringify(e.dtype)}`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every(isIndex)) {
      fail('SAFETENSORS_BAD_HEADER', `${where}: shape must be a list of non-negative integers`);
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      fail('SAFETENSORS_BAD_HEADER', `${where}: data_offsets must be [begin, end] non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = numel(e.shape) * dtypeSize(e.dtype);
    if (end - begin !== expected) {
      fail(
        'SAFETENSORS_SIZE_MISMATCH',
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${e.dtype} ` +
          `[${e.shape.join(', ')}] needs ${expected}`,
      );
    }
    tensors.set(name, { dtype: e.dtype, shape: e.shape as number[], dataOffsets: [begin, end] });
  }
  // The tensors must tile the data section: contiguous, in offset order, no overlap, no gap.
  const sorted = [...tensors].sort(
    ([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let pos = 0;
  let prev = '';
  for (const [name, { dataOffsets }] of sorted) {
    const [begin, end] = dataOffsets;
    if (begin < pos) {
      fail(
        'SAFETENSORS_OFFSETS_OVERLAP',
        `${file}: tensor "${name}" (bytes ${begin}..${end}) overlaps tensor "${prev}" (ending at ${pos})`,
      );
    }
    if (begin > pos) {
      fail(
        'SAFETENSORS_OFFSETS_GAP',
        `${file}: gap of ${begin - pos} bytes in the data section before tensor "${name}" (bytes ${begin}..${end})`,
      );
    }
    if (end > dataSize) {
      fail(
        'SAFETENSORS_TRUNCATED',
        `${file}: tensor "${name}" ends at byte ${end} of the data section but the file holds only ${dataSize} ` +
          `data bytes (truncated file, or offsets out of the file)`,
      );
    }
    pos = end;
    prev = name;
  }
  if (pos !== dataSize) {
    fail(
      'SAFETENSORS_OFFSETS_GAP',
      `${file}: ${dataSize - pos} bytes after the last tensor are not covered by the header`,
    );
  }
  return { metadata, tensors: new Map(sorted) };
}

/** "no tensor NAME in WHERE", with a few of the available names (those sharing the name's ending first). */
export function unknownTensorError(name: string, names: string[], where: string): ModelFormatError {
  const tail = name.split('.').slice(-2).join('.');
  const similar = names.filter((n) => n.endsWith(tail));
  const shown = (similar.length > 0 ? similar : names).slice(0, 5).map((s) => `"${s}"`);
  return new ModelFormatError(
    'UNKNOWN_TENSOR',
    `no tensor "${name}" in ${where} (it has ${names.length} tensors${shown.length > 0 ? `, e.g. ${shown.join(', ')}` : ''})`,
  );
}

/** A safetensors file opened for reading: the header is parsed and validated, tensors are read on demand. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    /** `__metadata__`, or null when the file has none. */
    readonly metadata: Record<string, string> | null,
    private readonly tensors: Map<string, SafetensorsTensorInfo>,
    /** File offset of the data section (8 + header length). */
    readonly dataStart: number,
    readonly fileSize: number,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      fail(
        code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE',
        `cannot open ${path}: ${(e as Error).message}`,
        e,
      );
    }
    try {
      const fileSize = (await fh.stat()).size;
      if (fileSize < 8) {
        fail(
          'SAFETENSORS_TRUNCATED',
          `${path}: ${fileSize} bytes is too short for a safetensors file (truncated?)`,
        );
      }
      const prefix = await readFully(fh, 0, 8, path);
      const n = new DataView(prefix.buffer).getBigUint64(0, true);
      if (n > BigInt(MAX_HEADER_BYTES)) {
        fail(
          'SAFETENSORS_HEADER_TOO_LARGE',
          `${path}: header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`,
        );
      }
      const headerLength = Number(n);
      if (8 + headerLength > fileSize) {
        fail(
          'SAFETENSORS_TRUNCATED',
          `${path}: header length ${headerLength} is larger than the file (${fileSize} bytes; truncated?)`,
        );
      }
      const header = await readFully(fh, 8, headerLength, path);
      const { metadata, tensors } = parseHeader(header, fileSize - 8 - headerLength, path);
      return new SafetensorsFile(path, fh, metadata, tensors, 8 + headerLength, fileSize);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Tensor names in the order of their data in the file. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw unknownTensorError(name, this.names(), this.path);
    return info;
  }

  /** The tensor's bytes (little-endian, C order), in a fresh buffer. */
  async readRaw(name: string): Promise<Uint8Array> {
    const { dataOffsets } = this.info(name);
    return readFully(this.fh, this.dataStart + dataOffsets[0], dataOffsets[1] - dataOffsets[0], this.path);
  }

  /**
   * Part of a tensor's bytes into `target` (all of it): `target.byteLength` bytes from byte `offset` of the
   * tensor's data. For streaming a tensor larger than memory, or reading into a reused buffer.
   */
  async readRawInto(name: string, offset: number, target: Uint8Array): Promise<void> {
    const { dataOffsets } = this.info(name);
    const size = dataOffsets[1] - dataOffsets[0];
    if (!(Number.isSafeInteger(offset) && offset >= 0 && offset + target.byteLength <= size)) {
      throw new RangeError(
        `${this.path}: bytes [${offset}, ${offset + target.byteLength}) are outside tensor "${name}" (${size} bytes)`,
      );
    }
    await readFullyInto(this.fh, this.dataStart + dataOffsets[0] + offset, target, this.path);
  }

  /** A float tensor (F32, F16, BF16 or F64) as F32. */
  async readFloat32(name: string): Promise<Float32Array> {
    const { dtype } = this.info(name);
    if (!isFloatDtype(dtype)) {
      fail('SAFETENSORS_NOT_FLOAT', `${this.path}: tensor "${name}" is ${dtype}, not a float tensor`);
    }
    return toFloat32(dtype, await this.readRaw(name));
  }

  /** The tensor in its own dtype's typed array (F16/BF16 as Uint16Array bit patterns). */
  async read(name: string): Promise<TensorData> {
    const { dtype, shape } = this.info(name);
    return { dtype, shape: [...shape], data: typedArrayFor(dtype, await this.readRaw(name)) };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readFully(
  fh: FileHandle,
  position: number,
  length: number,
  file: string,
): Promise<Uint8Array> {
  // Every byte is overwritten below: skip zero-filling (a large share of the cost of big reads).
  const out = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
  await readFullyInto(fh, position, out, file);
  return out;
}

async function readFullyInto(fh: FileHandle, position: number, out: Uint8Array, file: string): Promise<void> {
  const length = out.byteLength;
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, Math.min(length - done, IO_CHUNK), position + done);
    if (bytesRead === 0) {
      fail(
        'SAFETENSORS_TRUNCATED',
        `${file}: unexpected end of file at byte ${position + done} (file changed?)`,
      );
    }
    done += bytesRead;
  }
}

interface Layout {
  header: Uint8Array;
  order: string[];
  offsets: Map<string, [number, number]>;
}

/** The layout `save_file` uses: by dtype (descending enum order), then name; compact header padded to 8 bytes. */
function layout(specs: Record<string, TensorSpec>, metadata: Record<string, string> | null): Layout {
  const order = Object.keys(specs).sort(
    (a, b) => dtypeRank(specs[b].dtype) - dtypeRank(specs[a].dtype) || compareCodePoints(a, b),
  );
  const offsets = new Map<string, [number, number]>();
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let pos = 0;
  for (const name of order) {
    const { dtype, shape } = specs[name];
    const end = pos + numel(shape) * dtypeSize(dtype);
    offsets.set(name, [pos, end]);
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${pos},${end}]}`,
    );
    pos = end;
  }
  const text = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(text.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + text.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  return { header, order, offsets };
}

function checkSpecs(
  specs: Record<string, TensorSpec>,
  metadata: Record<string, string> | null,
  file: string,
): void {
  for (const [name, spec] of Object.entries(specs)) {
    if (name === '' || name === '__metadata__')
      fail('SAFETENSORS_WRITE', `${file}: invalid tensor name "${name}"`);
    if (!isSafetensorsDtype(spec.dtype)) {
      fail(
        'SAFETENSORS_UNKNOWN_DTYPE',
        `${file}: tensor "${name}" has unknown dtype ${JSON.stringify(spec.dtype)}`,
      );
    }
    if (!Array.isArray(spec.shape) || !spec.shape.every(isIndex)) {
      fail('SAFETENSORS_WRITE', `${file}: tensor "${name}" shape must be non-negative integers`);
    }
  }
  if (metadata && !Object.values(metadata).every((v) => typeof v === 'string')) {
    fail('SAFETENSORS_WRITE', `${file}: metadata values must be strings`);
  }
}

/** The size in bytes of the safetensors file {@link SafetensorsWriter} writes for these tensors and metadata. */
export function safetensorsFileSize(
  specs: Record<string, TensorSpec>,
  metadata: Record<string, string> | null = null,
): number {
  const plan = layout(specs, metadata);
  let data = 0;
  for (const [begin, end] of plan.offsets.values()) data += end - begin;
  return plan.header.length + data;
}

/**
 * Writes a safetensors file whose tensors are known up front (names, dtypes, shapes) and whose data comes one
 * tensor at a time, in any order: to a temp file next to `path`, renamed over it by {@link finish}.
 */
export class SafetensorsWriter {
  private readonly pending: Set<string>;
  /** Bytes written so far of the tensors being written in parts ({@link writePart}). */
  private readonly partial = new Map<string, number>();

  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private fh: FileHandle | null,
    private readonly specs: Record<string, TensorSpec>,
    private readonly plan: Layout,
  ) {
    this.pending = new Set(plan.order.filter((n) => plan.offsets.get(n)![1] > plan.offsets.get(n)![0]));
  }

  static async create(
    path: string,
    specs: Record<string, TensorSpec>,
    metadata: Record<string, string> | null = null,
  ): Promise<SafetensorsWriter> {
    checkSpecs(specs, metadata, path);
    const plan = layout(specs, metadata);
    const tmp = tempPathFor(path);
    const fh = await fsp.open(tmp, 'w');
    const writer = new SafetensorsWriter(path, tmp, fh, specs, plan);
    try {
      await writeFully(fh, plan.header, 0);
    } catch (e) {
      await writer.abort();
      throw e;
    }
    return writer;
  }

  /** Tensor names in the order of their data in the file. */
  get order(): string[] {
    return [...this.plan.order];
  }

  /** Write one tensor's data (its dtype's typed array, or its bytes as a Uint8Array). */
  async write(name: string, data: ArrayBufferView): Promise<void> {
    const spec = this.specs[name];
    if (!spec || !this.plan.offsets.has(name))
      fail('SAFETENSORS_WRITE', `${this.path}: "${name}" is not in the plan`);
    if (!this.fh) fail('SAFETENSORS_WRITE', `${this.path}: writer is already finished or aborted`);
    if ((!this.pending.has(name) && numel(spec.shape) > 0) || this.partial.has(name)) {
      fail('SAFETENSORS_WRITE', `${this.path}: tensor "${name}" was already written`);
    }
    const Ctor = arrayTypeFor(spec.dtype);
    if (!(data instanceof Uint8Array) && !(data instanceof Ctor)) {
      fail(
        'SAFETENSORS_WRITE',
        `${this.path}: tensor "${name}" is ${spec.dtype}, which takes a ${Ctor.name} or raw bytes, ` +
          `not a ${data.constructor.name}`,
      );
    }
    const [begin, end] = this.plan.offsets.get(name)!;
    if (data.byteLength !== end - begin) {
      fail(
        'SAFETENSORS_SIZE_MISMATCH',
        `${this.path}: tensor "${name}" ${spec.dtype} [${spec.shape.join(', ')}] needs ${end - begin} bytes, ` +
          `got ${data.byteLength}`,
      );
    }
    await writeFully(this.fh, bytesOf(data), this.plan.header.length + begin);
    this.pending.delete(name);
  }

  /**
   * Write part of one tensor's bytes, starting at byte `offset` of its data: the parts of a tensor come in order
   * (each starts where the previous one ended) and the tensor counts as written once they cover it. The
   * bookkeeping happens when called, so parts may be issued before the previous ones' writes have finished.
   */
  async writePart(name: string, offset: number, data: ArrayBufferView): Promise<void> {
    if (!this.plan.offsets.has(name)) fail('SAFETENSORS_WRITE', `${this.path}: "${name}" is not in the plan`);
    if (!this.fh) fail('SAFETENSORS_WRITE', `${this.path}: writer is already finished or aborted`);
    const [begin, end] = this.plan.offsets.get(name)!;
    const done = this.partial.get(name) ?? 0;
    if (!this.pending.has(name)) {
      fail('SAFETENSORS_WRITE', `${this.path}: tensor "${name}" was already written`);
    }
    if (offset !== done || offset + data.byteLength > end - begin) {
      fail(
        'SAFETENSORS_WRITE',
        `${this.path}: part [${offset}, ${offset + data.byteLength}) of tensor "${name}" (${end - begin} bytes) ` +
          `does not continue the ${done} bytes written so far`,
      );
    }
    const now = done + data.byteLength;
    if (now === end - begin) {
      this.pending.delete(name);
      this.partial.delete(name);
    } else {
      this.partial.set(name, now);
    }
    await writeFully(this.fh, bytesOf(data), this.plan.header.length + begin + offset);
  }

  /** Check that every tensor was written, fsync and rename the temp file over the target. */
  async finish(): Promise<void> {
    if (!this.fh) fail('SAFETENSORS_WRITE', `${this.path}: writer is already finished or aborted`);
    if (this.pending.size > 0) {
      const missing = [...this.pending];
      await this.abort();
      fail(
        'SAFETENSORS_WRITE',
        `${this.path}: ${missing.length} tensors were never written (${missing.slice(0, 5).join(', ')})`,
      );
    }
    const fh = this.fh;
    this.fh = null;
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(this.tmp, this.path);
  }

  /** Drop the temp file; the target is left as it was. */
  async abort(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close().catch(() => {});
    await fsp.rm(this.tmp, { force: true });
  }
}

async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(
      bytes,
      done,
      Math.min(bytes.length - done, IO_CHUNK),
      position + done,
    );
    done += bytesWritten;
  }
}

/**
 * Write tensors to a safetensors file atomically, byte-identical to Python's
 * `safetensors.torch.save_file(tensors, path, metadata)` (metadata keys in the given order).
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> | null = null,
): Promise<void> {
  const specs: Record<string, TensorSpec> = {};
  for (const [name, t] of Object.entries(tensors)) specs[name] = { dtype: t.dtype, shape: t.shape };
  const writer = await SafetensorsWriter.create(path, specs, metadata);
  try {
    for (const name of writer.order) await writer.write(name, tensors[name].data);
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await writer.finish();
}
