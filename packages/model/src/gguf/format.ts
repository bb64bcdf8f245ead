/**
 * The GGUF container (version 3), as llama.cpp's ggml writes and reads it: a header of typed metadata key/values,
 * a table of tensor infos (name, dimensions innermost first, ggml type, offset into the data), then the tensor
 * data, each tensor starting at a multiple of `general.alignment` (32). Little-endian throughout.
 */
import { promises as fsp } from 'node:fs';
import { ModelFormatError } from '../errors.js';
import { tempPathFor } from '../fsutil.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** The ggml tensor types this writer produces. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
}

/** `general.file_type` (llama.cpp's llama_ftype) of the whole file. */
export enum GgufFileType {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q8_0 = 7,
}

/** Elements per block and bytes per block of each ggml type. */
export const GGML_BLOCK: Record<GgmlType, { elements: number; bytes: number }> = {
  [GgmlType.F32]: { elements: 1, bytes: 4 },
  [GgmlType.F16]: { elements: 1, bytes: 2 },
  [GgmlType.Q8_0]: { elements: 32, bytes: 34 },
};

/** Bytes a tensor of `count` elements takes in a ggml type. */
export function ggmlNbytes(type: GgmlType, count: number): number {
  const b = GGML_BLOCK[type];
  if (count % b.elements !== 0) {
    throw new ModelFormatError(
      'GGUF_BLOCK_SIZE',
      `${GgmlType[type]} stores blocks of ${b.elements} elements; ${count} is not a multiple`,
    );
  }
  return (count / b.elements) * b.bytes;
}

export type GgufScalar =
  | { type: GgufValueType.STRING; value: string }
  | { type: GgufValueType.BOOL; value: boolean }
  | {
      type: Exclude<GgufValueType, GgufValueType.STRING | GgufValueType.BOOL | GgufValueType.ARRAY>;
      value: number;
    };

export type GgufValue =
  | GgufScalar
  | { type: GgufValueType.ARRAY; itemType: GgufValueType.STRING; value: readonly string[] }
  | {
      type: GgufValueType.ARRAY;
      itemType: Exclude<GgufValueType, GgufValueType.STRING | GgufValueType.ARRAY | GgufValueType.BOOL>;
      value: ArrayLike<number>;
    }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType.BOOL; value: readonly boolean[] };

/** Shorthands for metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  strings: (value: readonly string[]): GgufValue => ({
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.STRING,
    value,
  }),
  f32s: (value: ArrayLike<number>): GgufValue => ({
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.FLOAT32,
    value,
  }),
  i32s: (value: ArrayLike<number>): GgufValue => ({
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.INT32,
    value,
  }),
};

const NUMERIC_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** A growable little-endian byte buffer. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }

  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }

  numeric(type: GgufValueType, v: number | boolean, key: string): void {
    const size = NUMERIC_SIZE[type];
    if (size === undefined)
      throw new ModelFormatError('GGUF_VALUE', `${key}: not a numeric GGUF type (${type})`);
    this.reserve(size);
    const d = this.view;
    const at = this.length;
    const n = Number(v);
    switch (type) {
      case GgufValueType.UINT8:
      case GgufValueType.BOOL:
        d.setUint8(at, n);
        break;
      case GgufValueType.INT8:
        d.setInt8(at, n);
        break;
      case GgufValueType.UINT16:
        d.setUint16(at, n, true);
        break;
      case GgufValueType.INT16:
        d.setInt16(at, n, true);
        break;
      case GgufValueType.UINT32:
        d.setUint32(at, n, true);
        break;
      case GgufValueType.INT32:
        d.setInt32(at, n, true);
        break;
      case GgufValueType.FLOAT32:
        d.setFloat32(at, n, true);
        break;
      case GgufValueType.UINT64:
        d.setBigUint64(at, BigInt(n), true);
        break;
      case GgufValueType.INT64:
        d.setBigInt64(at, BigInt(n), true);
        break;
      case GgufValueType.FLOAT64:
        d.setFloat64(at, n, true);
        break;
    }
    this.length += size;
  }

  value(key: string, v: GgufValue): void {
    this.u32(v.type);
    if (v.type === GgufValueType.STRING) this.string(v.value);
    else if (v.type === GgufValueType.ARRAY) {
      this.u32(v.itemType);
      this.u64(v.value.length);
      if (v.itemType === GgufValueType.STRING) for (const s of v.value as readonly string[]) this.string(s);
      else {
        const items = v.value as ArrayLike<number | boolean>;
        for (let i = 0; i < items.length; i++) this.numeric(v.itemType, items[i], key);
      }
    } else this.numeric(v.type, v.value, key);
  }

  pad(alignment: number): void {
    const rem = this.length % alignment;
    if (rem !== 0) this.bytes(new Uint8Array(alignment - rem));
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** One tensor of a GGUF file: its shape as PyTorch/numpy writes it (outermost first), its type, and its data. */
export interface GgufTensorSpec {
  name: string;
  /** Outermost dimension first (numpy order); GGUF stores the reverse (ggml's ne[0] is the innermost). */
  shape: readonly number[];
  type: GgmlType;
  /** Produces the tensor's bytes (exactly ggmlNbytes(type, numel)) when the writer reaches it. */
  data: () => Promise<Uint8Array>;
}

export interface GgufWriteOptions {
  alignment?: number;
  /** Called after each tensor is written. */
  onTensor?: (index: number, total: number, name: string) => void;
}

/**
 * Writes a GGUF file: metadata in insertion order, then the tensors in the given order. The tensors are produced one
 * at a time (the whole model is never in memory) into a temp file next to `file`, renamed over it when complete.
 */
export async function writeGguf(
  file: string,
  metadata: ReadonlyMap<string, GgufValue> | Record<string, GgufValue>,
  tensors: readonly GgufTensorSpec[],
  opts: GgufWriteOptions = {},
): Promise<{ bytes: number }> {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const kv = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !kv.some(([k]) => k === 'general.alignment')) {
    kv.push(['general.alignment', gguf.u32(alignment)]);
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name))
      throw new ModelFormatError('GGUF_DUPLICATE_TENSOR', `tensor ${t.name} is given twice`);
    seen.add(t.name);
  }
  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.u64(tensors.length);
  head.u64(kv.length);
  for (const [key, value] of kv) {
    head.string(key);
    head.value(key, value);
  }
  const sizes = tensors.map((t) =>
    ggmlNbytes(
      t.type,
      t.shape.reduce((a, b) => a * b, 1),
    ),
  );
  let offset = 0;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    head.string(t.name);
    head.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) head.u64(t.shape[d]);
    head.u32(t.type);
    head.u64(offset);
    offset += sizes[i];
    offset += (alignment - (offset % alignment)) % alignment;
  }
  head.pad(alignment);

  const tmp = tempPathFor(file);
  const fh = await fsp.open(tmp, 'w');
  let written = 0;
  try {
    await writeAll(fh, head.result());
    written += head.length;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = await t.data();
      if (data.byteLength !== sizes[i]) {
        throw new ModelFormatError(
          'GGUF_TENSOR_SIZE',
          `tensor ${t.name}: ${data.byteLength} bytes produced, ${sizes[i]} expected for ${GgmlType[t.type]} [${t.shape.join(', ')}]`,
        );
      }
      await writeAll(fh, data);
      written += data.byteLength;
      const pad = (alignment - (written % alignment)) % alignment;
      if (pad > 0 && i < tensors.length - 1) {
        await writeAll(fh, new Uint8Array(pad));
        written += pad;
      }
      opts.onTensor?.(i + 1, tensors.length, t.name);
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fsp.rename(tmp, file);
  return { bytes: written };
}

async function writeAll(fh: fsp.FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}
