import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { JudgeError } from './errors.js';

export type JsonRecord = Record<string, unknown>;

/** A record of a JSON Lines file and its 1-based line number. */
export interface Line {
  value: JsonRecord;
  line: number;
}

function snippet(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

function parseRecord(text: string, where: string): JsonRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new JudgeError('bad-json', `${where}: invalid JSON (${(e as Error).message}): ${snippet(text)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new JudgeError('bad-json', `${where}: expected a JSON object: ${snippet(text)}`);
  }
  return v as JsonRecord;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new JudgeError(
      'cannot-read',
      `${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`,
    );
  }
}

/** The records of a JSON Lines file (blank lines skipped; errors name file:line). */
export function readJsonl(file: string): Line[] {
  const out: Line[] = [];
  readText(file)
    .split('\n')
    .forEach((raw, i) => {
      const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (text.trim() !== '') out.push({ value: parseRecord(text, `${file}:${i + 1}`), line: i + 1 });
    });
  return out;
}

/**
 * Reads an output file that a killed process may have left with an unfinished last line: that line (no newline
 * at its end) is cut off the file so that appending can go on, and reported through `onTruncated`. A bad line
 * anywhere else raises. A missing file reads as empty.
 */
export function readResumable(file: string, onTruncated?: (line: number, text: string) => void): Line[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new JudgeError('cannot-read', `${file}: cannot read: ${(e as Error).message}`);
  }
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) {
    const tail = text.slice(end);
    onTruncated?.(text.slice(0, end).split('\n').length, tail);
    truncateSync(file, Buffer.byteLength(text.slice(0, end)));
    text = text.slice(0, end);
  }
  const out: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() !== '') out.push({ value: parseRecord(raw, `${file}:${i + 1}`), line: i + 1 });
  });
  return out;
}

/** Writes text to a temp file in the same folder, fsyncs and renames it over `file`. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new JudgeError('cannot-write', `${file}: cannot write: ${(e as Error).message}`);
  }
}

/** Appends whole lines to a file, each in one write (a kill leaves at most one unfinished last line). */
export class LineAppender {
  private fd: number;

  constructor(readonly file: string) {
    try {
      this.fd = openSync(file, 'a');
    } catch (e) {
      throw new JudgeError('cannot-write', `${file}: cannot open for appending: ${(e as Error).message}`);
    }
  }

  append(record: JsonRecord): void {
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
