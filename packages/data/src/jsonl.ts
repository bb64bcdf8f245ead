import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from './errors.js';
import { jsonErrorPlace } from './jsonpos.js';
import { dropCr, splitLines } from './lines.js';

/** A JSON object, as every record of the files we read and write is. */
export type JsonObject = Record<string, unknown>;

/** One record of a JSON Lines file and the (1-based) line it was on. */
export interface JsonlRow<T = JsonObject> {
  value: T;
  line: number;
}

/** An unterminated, unparseable last line: what a crash in the middle of an append leaves. */
export interface TruncatedTail {
  path: string;
  line: number;
  text: string;
}

export interface ReadJsonlOptions {
  /**
   * Skip an unparseable last line that has no terminating newline (a write cut short by a crash) instead of
   * raising; it is reported through `onTruncatedTail`. A bad line anywhere else always raises.
   */
  allowTruncatedTail?: boolean;
  onTruncatedTail?: (tail: TruncatedTail) => void;
}

const SNIPPET = 80;

function snippet(text: string): string {
  return JSON.stringify(text.length > SNIPPET ? `${text.slice(0, SNIPPET)}…` : text);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readError(file: string, e: unknown): DataError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String((e as Error).message);
  return new DataError('cannot-read', `${file}: cannot read: ${why}`, { cause: e });
}

/** Parses one line; undefined for a blank line. */
function parseLine(text: string, file: string, line: number): JsonObject | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DataError(
      'bad-json',
      `${file}:${line}: invalid JSON (${(e as Error).message}): ${snippet(text)}`,
    );
  }
  if (!isObject(value)) {
    throw new DataError(
      'not-an-object',
      `${file}:${line}: expected a JSON object, got ${kindOf(value)}: ${snippet(text)}`,
    );
  }
  return value;
}

/**
 * Streams the records of a JSON Lines file (one JSON object per line; `\r\n` endings, a leading BOM and blank
 * lines are accepted). Errors are `DataError`s naming `file:line`: `bad-json` (not JSON), `not-an-object`
 * (a JSON value that is not an object), `cannot-read`.
 */
export async function* readJsonl<T = JsonObject>(
  file: string,
  options: ReadJsonlOptions = {},
): AsyncGenerator<JsonlRow<T>> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 });
  let line = 0;
  let tail: string | null = null;
  try {
    for await (const { text, terminated } of splitLines(stream as AsyncIterable<string>, {
      stripBom: true,
    })) {
      if (!terminated) {
        tail = text;
        break;
      }
      line++;
      const value = parseLine(dropCr(text), file, line);
      if (value) yield { value: value as T, line };
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw readError(file, e);
  } finally {
    stream.destroy();
  }
  if (tail === null || tail.trim() === '') return;
  const buffer = tail;
  line++;
  let value: JsonObject | undefined;
  try {
    value = parseLine(buffer, file, line);
  } catch (e) {
    if (!(e instanceof DataError) || e.code !== 'bad-json') throw e;
    if (!options.allowTruncatedTail) {
      throw new DataError(
        'bad-json',
        `${e.message} — the last line has no newline; if the file is an append log cut short by a crash, ` +
          'read it with { allowTruncatedTail: true }',
      );
    }
    options.onTruncatedTail?.({ path: file, line, text: buffer });
    return;
  }
  if (value) yield { value: value as T, line };
}

/** All records of a JSON Lines file (see {@link readJsonl}). */
export async function readJsonlAll<T = JsonObject>(
  file: string,
  options: ReadJsonlOptions = {},
): Promise<T[]> {
  const rows: T[] = [];
  for await (const { value } of readJsonl<T>(file, options)) rows.push(value);
  return rows;
}

async function firstNonBlankChar(file: string): Promise<string | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw readError(file, e);
  }
  try {
    const buf = Buffer.alloc(4096);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return undefined;
      const m = /[^\s\uFEFF]/.exec(buf.subarray(0, bytesRead).toString('utf8'));
      if (m) return m[0];
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** 1-based line and column of a character offset. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/**
 * The records of a `.json` file holding an array of objects, or of a JSON Lines file — whichever the file is
 * (pandas `to_json(orient='records', lines=True)` writes the latter, as the paper's `*.json` files are).
 */
export async function readJsonOrJsonl<T = JsonObject>(file: string): Promise<T[]> {
  if ((await firstNonBlankChar(file)) !== '[') return readJsonlAll<T>(file);
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? `${file}:${lineCol(text, Number(pos[1]))}` : jsonErrorPlace(file, text);
    throw new DataError('bad-json', `${where}: invalid JSON array (${msg})`);
  }
  if (!Array.isArray(value)) {
    throw new DataError('bad-json', `${file}: invalid JSON: text after the top-level array`);
  }
  value.forEach((v, i) => {
    if (!isObject(v))
      throw new DataError('not-an-object', `${file}: array element ${i} is ${kindOf(v)}, not an object`);
  });
  return value as T[];
}

function serialise(row: unknown, index: number, file: string): string {
  if (!isObject(row)) {
    throw new DataError(
      'not-an-object',
      `${file}: row ${index} is ${kindOf(row)}; JSON Lines rows must be objects`,
    );
  }
  try {
    return JSON.stringify(row);
  } catch (e) {
    throw new DataError(
      'unserialisable',
      `${file}: row ${index} cannot be written as JSON: ${(e as Error).message}`,
    );
  }
}

async function openForWriting(at: string, flags: string, file: string): Promise<FileHandle> {
  try {
    return await open(at, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'its folder does not exist' : String((e as Error).message);
    throw new DataError('cannot-write', `${file}: cannot write: ${why}`, { cause: e });
  }
}

function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
}

/**
 * Writes rows as JSON Lines atomically: to a temp file in the same folder, fsync'd, then renamed over `file`,
 * so that readers see the old file or the complete new one, never half of it. Returns the number of rows.
 */
export async function writeJsonlAtomic(
  file: string,
  rows: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<number> {
  const tmp = tempPathFor(file);
  const fh = await openForWriting(tmp, 'wx', file);
  let n = 0;
  try {
    let buf = '';
    for await (const row of rows) {
      buf += `${serialise(row, n++, file)}\n`;
      if (buf.length >= 1 << 20) {
        await fh.write(buf);
        buf = '';
      }
    }
    await fh.write(buf);
    await fh.sync();
    await fh.close();
    await rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  return n;
}

export interface AppendResult {
  appended: number;
  /** The partial last line a crash left, which was cut off before appending. */
  droppedTail?: TruncatedTail;
}

/** Offset just after the last `\n` before `end` (0 if there is none). */
async function lastLineStart(fh: FileHandle, end: number): Promise<number> {
  const buf = Buffer.alloc(1 << 16);
  let pos = end;
  while (pos > 0) {
    const from = Math.max(0, pos - buf.length);
    const { bytesRead } = await fh.read(buf, 0, pos - from, from);
    const i = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (i >= 0) return from + i + 1;
    pos = from;
  }
  return 0;
}

/**
 * Appends rows to a JSON Lines file (created if missing) and fsyncs it: the log of a resumable job. All rows
 * are serialised before anything is written. If the file ends in a partial line — a crash during an earlier
 * append — that line is cut off first and reported as `droppedTail` (a complete last line that merely lacks
 * its newline is kept). One writer per file.
 */
export async function appendJsonl(
  file: string,
  rows: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<AppendResult> {
  const lines: string[] = [];
  for await (const row of rows) lines.push(serialise(row, lines.length, file));
  const fh = await openForWriting(file, 'a+', file);
  const result: AppendResult = { appended: lines.length };
  try {
    const { size } = await fh.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        const start = await lastLineStart(fh, size);
        const tail = Buffer.alloc(size - start);
        await fh.read(tail, 0, tail.length, start);
        const text = tail.toString('utf8');
        let complete = true;
        try {
          JSON.parse(text);
        } catch {
          complete = false;
        }
        if (complete) {
          prefix = '\n';
        } else {
          const head = Buffer.alloc(start);
          await fh.read(head, 0, start, 0);
          let line = 1;
          for (const byte of head) if (byte === 0x0a) line++;
          await fh.truncate(start);
          result.droppedTail = { path: file, line, text };
        }
      }
    }
    if (lines.length > 0 || prefix) await fh.write(prefix + lines.map((l) => `${l}\n`).join(''));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return result;
}
