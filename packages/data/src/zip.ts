// A small zip reader for dataset archives (XNLI, X-CSR): stored and deflated entries, CRC-checked, written
// atomically, never outside the destination folder. ZIP64 and encrypted archives are refused.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { DataError } from './errors.js';

export interface ZipEntry {
  /** Path inside the archive (`/`-separated; folders end with `/`). */
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the local header. */
  offset: number;
}

function bad(file: string, why: string): DataError {
  return new DataError(
    'bad-zip',
    `${file}: not a readable zip archive: ${why} — download it again (--force)`,
  );
}

/** The entries of a zip archive held in memory. */
export function listZip(buf: Buffer, file = 'archive'): ZipEntry[] {
  const min = Math.max(0, buf.length - 65_557);
  let eocd = -1;
  for (let i = buf.length - 22; i >= min; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad(file, 'no end-of-central-directory record');
  const count = buf.readUInt16LE(eocd + 10);
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) {
    throw new DataError(
      'unsupported-zip',
      `${file}: ZIP64 archives are not supported; extract it with unzip`,
    );
  }
  if (cdOffset + cdSize > buf.length) throw bad(file, 'the central directory lies past the end (truncated?)');
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50)
      throw bad(file, `central directory entry ${i} is damaged`);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const name = buf.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
    if (flags & 0x1) throw new DataError('unsupported-zip', `${file}: ${name} is encrypted`);
    entries.push({
      name,
      method,
      crc32: buf.readUInt32LE(p + 16),
      compressedSize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      offset: buf.readUInt32LE(p + 42),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The uncompressed bytes of one entry, CRC-checked. */
export function readZipEntry(buf: Buffer, entry: ZipEntry, file = 'archive'): Buffer {
  const p = entry.offset;
  if (p + 30 > buf.length || buf.readUInt32LE(p) !== 0x04034b50)
    throw bad(file, `the local header of ${entry.name} is damaged`);
  const start = p + 30 + buf.readUInt16LE(p + 26) + buf.readUInt16LE(p + 28);
  const raw = buf.subarray(start, start + entry.compressedSize);
  if (raw.length !== entry.compressedSize) throw bad(file, `${entry.name} is truncated`);
  let data: Buffer;
  if (entry.method === 0) data = Buffer.from(raw);
  else if (entry.method === 8) {
    try {
      data = inflateRawSync(raw);
    } catch (e) {
      throw bad(file, `${entry.name} does not inflate (${(e as Error).message})`);
    }
  } else {
    throw new DataError(
      'unsupported-zip',
      `${file}: ${entry.name} uses compression method ${entry.method} (only stored and deflate are supported)`,
    );
  }
  if (data.length !== entry.size || crc32(data) >>> 0 !== entry.crc32 >>> 0) {
    throw bad(file, `${entry.name} fails its CRC/size check`);
  }
  return data;
}

/** A safe relative path for an entry name, or null for entries to skip (folders, macOS metadata). */
function safeRelative(name: string, file: string): string | null {
  if (name.endsWith('/') || name.startsWith('__MACOSX/') || /(^|\/)\.DS_Store$/.test(name)) return null;
  const norm = path.posix.normalize(name.replace(/\\/g, '/'));
  if (norm.startsWith('/') || norm === '..' || norm.startsWith('../') || /^[a-zA-Z]:/.test(norm)) {
    throw new DataError(
      'unsafe-zip',
      `${file}: entry ${JSON.stringify(name)} would be written outside the destination folder`,
    );
  }
  return norm;
}

/**
 * Extracts a zip file into `destDir` (each file written to a temp name and renamed: never half-written).
 * Returns the relative paths written. `filter` chooses entries by their path in the archive.
 */
export async function extractZip(
  zipFile: string,
  destDir: string,
  options: { filter?: (name: string) => boolean } = {},
): Promise<string[]> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(zipFile);
  } catch (e) {
    throw new DataError('cannot-read', `${zipFile}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const written: string[] = [];
  for (const entry of listZip(buf, zipFile)) {
    const rel = safeRelative(entry.name, zipFile);
    if (rel === null || (options.filter && !options.filter(rel))) continue;
    const data = readZipEntry(buf, entry, zipFile);
    const target = path.join(destDir, ...rel.split('/'));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = path.join(
      path.dirname(target),
      `.${path.basename(target)}.${randomBytes(4).toString('hex')}.tmp`,
    );
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, target);
    written.push(rel);
  }
  return written;
}
