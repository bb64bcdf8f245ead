// Sequential little-endian reading of fastText model files, from a file (read in chunks, never whole into an
// intermediate buffer) or from bytes in memory. Every read is bounds-checked: a truncated file is a LidError
// naming the file, the offset and what was being read.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LidError } from '../errors.js';

/** Where model bytes come from: a file read with positioned reads, or bytes in memory. */
export interface ByteSource {
  /** Shown in errors: the file path, or `<bytes>`. */
  readonly name: string;
  readonly size: number;
  /** Copies up to `target.length` bytes from `position`; returns how many were copied (0 at the end). */
  read(target: Uint8Array, position: number): number;
  close(): void;
}

export function bytesSource(bytes: Uint8Array, name = '<bytes>'): ByteSource {
  return {
    name,
    size: bytes.length,
    read(target, position) {
      const n = Math.max(0, Math.min(target.length, bytes.length - position));
      target.set(bytes.subarray(position, position + n));
      return n;
    },
    close() {},
  };
}

export function fileSource(file: string): ByteSource {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LidError(
      code === 'ENOENT' ? 'model-not-found' : 'cannot-read-model',
      code === 'ENOENT'
        ? `${file}: no such model file; pass a fastText .bin/.ftz path, or lid176 / openlid / glotlid (run \`polyglot lid download openlid\` first)`
        : `${file}: cannot open the model file: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const stat = fstatSync(fd);
  if (stat.isDirectory()) {
    closeSync(fd);
    throw new LidError('cannot-read-model', `${file}: is a directory, not a fastText model file`);
  }
  return {
    name: file,
    size: stat.size,
    read(target, position) {
      let done = 0;
      while (done < target.length) {
        // one read call moves at most 2 GiB
        const len = Math.min(target.length - done, 1 << 30);
        const n = readSync(fd, target, done, len, position + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    },
    close() {
      closeSync(fd);
    },
  };
}

const CHUNK = 1 << 20;

/** A buffered sequential reader over a ByteSource. */
export class BinaryReader {
  private buf = new Uint8Array(CHUNK);
  private view = new DataView(this.buf.buffer);
  /** Absolute offset of buf[0]. */
  private bufStart = 0;
  /** Valid bytes in buf. */
  private bufLen = 0;
  /** Index into buf of the next byte. */
  private at = 0;

  constructor(readonly source: ByteSource) {}

  /** Absolute offset of the next byte. */
  get offset(): number {
    return this.bufStart + this.at;
  }

  get remaining(): number {
    return this.source.size - this.offset;
  }

  truncated(what: string, need: number): LidError {
    return new LidError(
      'truncated-model',
      `${this.source.name}: truncated fastText model: needed ${need} byte(s) for ${what} at offset ${this.offset}, ` +
        `but the file has ${this.source.size} bytes; the file is incomplete (an interrupted download or copy?) — fetch it again`,
    );
  }

  corrupt(what: string): LidError {
    return new LidError(
      'corrupt-model',
      `${this.source.name}: corrupt fastText model: ${what} (near offset ${this.offset}); the file is damaged or not a fastText model`,
    );
  }

  /** Makes at least n bytes available at `at`. */
  private fill(n: number, what: string): void {
    if (this.bufLen - this.at >= n) return;
    const keep = this.bufLen - this.at;
    if (n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(n, this.buf.length * 2));
      bigger.set(this.buf.subarray(this.at, this.bufLen));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    } else {
      this.buf.copyWithin(0, this.at, this.bufLen);
    }
    this.bufStart += this.at;
    this.at = 0;
    const got = this.source.read(this.buf.subarray(keep), this.bufStart + keep);
    this.bufLen = keep + got;
    if (this.bufLen < n) throw this.truncated(what, n);
  }

  u8(what: string): number {
    this.fill(1, what);
    return this.buf[this.at++]!;
  }

  bool(what: string): boolean {
    const v = this.u8(what);
    if (v > 1) throw this.corrupt(`${what} should be a bool (0 or 1), got ${v}`);
    return v === 1;
  }

  i32(what: string): number {
    this.fill(4, what);
    const v = this.view.getInt32(this.at, true);
    this.at += 4;
    return v;
  }

  /** An int64 that must fit a JS number exactly. */
  i64(what: string): number {
    this.fill(8, what);
    const v = this.view.getBigInt64(this.at, true);
    this.at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw this.corrupt(`${what} is out of range (${v})`);
    }
    return Number(v);
  }

  f64(what: string): number {
    this.fill(8, what);
    const v = this.view.getFloat64(this.at, true);
    this.at += 8;
    return v;
  }

  /** Bytes up to a NUL terminator (not included), handed to `sink` in one or more pieces. */
  cstring(what: string, sink: (bytes: Uint8Array) => void): void {
    for (;;) {
      if (this.at >= this.bufLen) this.fill(1, what);
      const end = this.buf.indexOf(0, this.at);
      if (end >= 0 && end < this.bufLen) {
        sink(this.buf.subarray(this.at, end));
        this.at = end + 1;
        return;
      }
      sink(this.buf.subarray(this.at, this.bufLen));
      this.at = this.bufLen;
    }
  }

  /** Fills `target` with the next target.length bytes: buffered bytes first, then straight from the source. */
  readInto(target: Uint8Array, what: string): void {
    const fromBuf = Math.min(target.length, this.bufLen - this.at);
    target.set(this.buf.subarray(this.at, this.at + fromBuf));
    this.at += fromBuf;
    if (fromBuf === target.length) return;
    const rest = target.length - fromBuf;
    const pos = this.offset;
    const got = this.source.read(target.subarray(fromBuf), pos);
    // the buffer is exhausted: restart it at the position after the copied bytes
    this.bufStart = pos + got;
    this.bufLen = 0;
    this.at = 0;
    if (got < rest) {
      throw new LidError(
        'truncated-model',
        `${this.source.name}: truncated fastText model: ${what} needs ${target.length} bytes from offset ${pos - fromBuf}, ` +
          `but the file has ${this.source.size} bytes; the file is incomplete (an interrupted download or copy?) — fetch it again`,
      );
    }
  }
}
