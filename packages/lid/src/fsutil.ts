// Atomic writes and the JSON Lines reading lid needs (lid cannot depend on @polyglot/data, which depends on it).
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { LidError } from './errors.js';

/** A temp path next to `target` (same directory, so that rename is atomic). */
export function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
}

/** Writes a file atomically: a temp file in the same directory, fsync, rename over the target. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fsp.rename(tmp, target);
}

export type JsonRecord = Record<string, unknown>;

/** One JSON Lines record and its 1-based line number. */
export interface JsonlLine {
  value: JsonRecord;
  line: number;
}

function snippet(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/**
 * The records of a JSON Lines file, streamed (blank lines, `\r\n` and a BOM accepted). Errors name `file:line`:
 * `bad-jsonl` for a line that is not a JSON object, `cannot-read` for a missing or unreadable file.
 */
export async function* readJsonlLines(file: string): AsyncGenerator<JsonlLine> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 });
  let buffer = '';
  let line = 0;
  const parse = (raw: string): JsonlLine | null => {
    line++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return null;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new LidError(
        'bad-jsonl',
        `${file}:${line}: invalid JSON (${(e as Error).message}): ${snippet(text)}`,
      );
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new LidError(
        'bad-jsonl',
        `${file}:${line}: expected a JSON object per line, got ${snippet(text)}`,
      );
    }
    return { value: value as JsonRecord, line };
  };
  // A line that spans chunks is kept as pieces and joined once at its end: appending every chunk to one string
  // and searching it again copied and scanned a long line once per chunk (quadratic).
  let pending: string[] = [];
  let first = true;
  try {
    for await (const raw of stream as AsyncIterable<string>) {
      const chunk = first ? raw.replace(/^\uFEFF/, '') : raw;
      first = false;
      let start = 0;
      let nl = chunk.indexOf('\n');
      while (nl >= 0) {
        let text = chunk.slice(start, nl);
        if (pending.length > 0) {
          pending.push(text);
          text = pending.join('');
          pending = [];
        }
        const rec = parse(text);
        if (rec) yield rec;
        start = nl + 1;
        nl = chunk.indexOf('\n', start);
      }
      if (start < chunk.length) pending.push(chunk.slice(start));
    }
    buffer = pending.join('');
  } catch (e) {
    if (e instanceof LidError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new LidError(
      'cannot-read',
      `${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`,
      { cause: e },
    );
  } finally {
    stream.destroy();
  }
  if (buffer !== '') {
    const rec = parse(buffer);
    if (rec) yield rec;
  }
}
