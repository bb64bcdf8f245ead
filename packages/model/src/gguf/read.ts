/** Reads the header of a GGUF file: metadata key/values and tensor infos (not the tensor data). */
import { promises as fsp } from 'node:fs';
import { ModelFormatError } from '../errors.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType } from './format.js';

export type GgufMetadataValue =
  | string
  | number
  | bigint
  | boolean
  | GgufMetadataValue[]
  | Float32Array
  | Int32Array;

export interface GgufTensorInfo {
  name: string;
  /** Outermost dimension first (numpy order; the file stores the reverse). */
  shape: number[];
  /** ggml type id (0 F32, 1 F16, 8 Q8_0, …). */
  type: number;
  /** Absolute offset of the data in the file. */
  offset: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorInfo[];
  /** Where the tensor data starts. */
  dataOffset: number;
}

class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  pos = 0;
  constructor(
    private readonly fh: fsp.FileHandle,
    private readonly file: string,
  ) {}

  private async need(n: number): Promise<void> {
    if (this.pos + n <= this.start + this.buf.length) return;
    const size = Math.max(n, 4 << 20);
    const b = Buffer.alloc(size);
    const { bytesRead } = await this.fh.read(b, 0, size, this.pos);
    if (bytesRead < n)
      throw new ModelFormatError('GGUF_TRUNCATED', `${this.file}: the GGUF header ends early`);
    this.buf = b.subarray(0, bytesRead);
    this.start = this.pos;
  }

  async bytes(n: number): Promise<Buffer> {
    await this.need(n);
    const off = this.pos - this.start;
    this.pos += n;
    return this.buf.subarray(off, off + n);
  }

  async u32(): Promise<number> {
    return (await this.bytes(4)).readUInt32LE(0);
  }

  async u64(): Promise<number> {
    const v = (await this.bytes(8)).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ModelFormatError('GGUF_INVALID', `${this.file}: a size is too large`);
    return Number(v);
  }

  async string(): Promise<string> {
    const n = await this.u64();
    return (await this.bytes(n)).toString('utf8');
  }

  async value(type: number): Promise<GgufMetadataValue> {
    switch (type) {
      case GgufValueType.UINT8:
        return (await this.bytes(1)).readUInt8(0);
      case GgufValueType.INT8:
        return (await this.bytes(1)).readInt8(0);
      case GgufValueType.UINT16:
        return (await this.bytes(2)).readUInt16LE(0);
      case GgufValueType.INT16:
        return (await this.bytes(2)).readInt16LE(0);
      case GgufValueType.UINT32:
        return this.u32();
      case GgufValueType.INT32:
        return (await this.bytes(4)).readInt32LE(0);
      case GgufValueType.FLOAT32:
        return (await this.bytes(4)).readFloatLE(0);
      case GgufValueType.BOOL:
        return (await this.bytes(1)).readUInt8(0) !== 0;
      case GgufValueType.STRING:
        return this.string();
      case GgufValueType.UINT64:
        return (await this.bytes(8)).readBigUInt64LE(0);
      case GgufValueType.INT64:
        return (await this.bytes(8)).readBigInt64LE(0);
      case GgufValueType.FLOAT64:
        return (await this.bytes(8)).readDoubleLE(0);
      case GgufValueType.ARRAY: {
        const itemType = await this.u32();
        const n = await this.u64();
        if (itemType === GgufValueType.FLOAT32) {
          return new Float32Array(Uint8Array.from(await this.bytes(n * 4)).buffer);
        }
        if (itemType === GgufValueType.INT32) {
          return new Int32Array(Uint8Array.from(await this.bytes(n * 4)).buffer);
        }
        const out: GgufMetadataValue[] = [];
        for (let i = 0; i < n; i++) out.push(await this.value(itemType));
        return out;
      }
      default:
        throw new ModelFormatError('GGUF_INVALID', `${this.file}: unknown GGUF value type ${type}`);
    }
  }
}

/** Reads a GGUF file's header (version 2 or 3). */
export async function readGgufHeader(file: string): Promise<GgufHeader> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    throw new ModelFormatError('GGUF_MISSING', `${file}: cannot open: ${(e as Error).message}`, { cause: e });
  }
  try {
    const r = new Reader(fh, file);
    if ((await r.u32()) !== GGUF_MAGIC) {
      throw new ModelFormatError('GGUF_INVALID', `${file}: not a GGUF file (no "GGUF" magic)`);
    }
    const version = await r.u32();
    if (version < 2)
      throw new ModelFormatError('GGUF_INVALID', `${file}: GGUF version ${version} is not supported`);
    const nTensors = await r.u64();
    const nKv = await r.u64();
    const metadata = new Map<string, GgufMetadataValue>();
    for (let i = 0; i < nKv; i++) {
      const key = await r.string();
      metadata.set(key, await r.value(await r.u32()));
    }
    const infos: GgufTensorInfo[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = await r.string();
      const nDims = await r.u32();
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(await r.u64());
      const type = await r.u32();
      const offset = await r.u64();
      infos.push({ name, shape: dims.reverse(), type, offset });
    }
    const alignment = Number(metadata.get('general.alignment') ?? GGUF_DEFAULT_ALIGNMENT);
    const dataOffset = Math.ceil(r.pos / alignment) * alignment;
    for (const t of infos) t.offset += dataOffset;
    return { version, metadata, tensors: infos, dataOffset };
  } finally {
    await fh.close();
  }
}
