// Reading records whichever way a file holds them (JSON Lines, or a JSON array), each with the place it came
// from for error messages, and checked access to their fields.
import { createReadStream } from 'node:fs';
import { DataError } from './errors.js';
import { type JsonObject, readJsonl, readJsonOrJsonl } from './jsonl.js';
import { dropCr, splitLines } from './lines.js';

/** A record and where it is: `file:line` for JSON Lines, `file [element i]` for a JSON array. */
export interface PlacedRecord<T = JsonObject> {
  value: T;
  where: string;
  /** 1-based line (JSON Lines only). */
  line?: number;
}

/**
 * The records of a `.json` array or a JSON Lines file (either extension: the paper's `*.json` files are JSON
 * Lines), each with its place. Errors are those of {@link readJsonl} / {@link readJsonOrJsonl}.
 */
export async function readPlacedRecords<T = JsonObject>(file: string): Promise<PlacedRecord<T>[]> {
  const out: PlacedRecord<T>[] = [];
  if (await startsWithBracket(file)) {
    (await readJsonOrJsonl<T>(file)).forEach((value, i) => {
      out.push({ value, where: `${file} [element ${i}]` });
    });
    return out;
  }
  for await (const { value, line } of readJsonl<T>(file)) out.push({ value, where: `${file}:${line}`, line });
  return out;
}

async function startsWithBracket(file: string): Promise<boolean> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 4096 });
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      const m = /[^\s\uFEFF]/.exec(chunk);
      if (m) return m[0] === '[';
    }
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new DataError('cannot-read', `${file}: cannot read: ${why}`, { cause: e });
  } finally {
    stream.destroy();
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function fieldList(rec: object): string {
  const keys = Object.keys(rec);
  return keys.length ? keys.slice(0, 12).join(', ') + (keys.length > 12 ? ', …' : '') : 'none';
}

/** `rec[key]` as a string; `DataError` `missing-field` / `bad-field` naming the place otherwise. */
export function stringField(rec: Record<string, unknown>, key: string, where: string): string {
  const v = rec[key];
  if (typeof v === 'string') return v;
  if (v === undefined) {
    throw new DataError('missing-field', `${where}: no field "${key}" (the record has: ${fieldList(rec)})`);
  }
  throw new DataError('bad-field', `${where}: field "${key}" is ${describe(v)}, expected a string`);
}

/** `rec[key]` as a string, or undefined where absent or null. */
export function optionalString(rec: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = rec[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string')
    throw new DataError('bad-field', `${where}: field "${key}" is ${describe(v)}, expected a string`);
  return v;
}

/** `rec[key]` as an array of strings. */
export function stringArrayField(rec: Record<string, unknown>, key: string, where: string): string[] {
  const v = rec[key];
  if (v === undefined) {
    throw new DataError('missing-field', `${where}: no field "${key}" (the record has: ${fieldList(rec)})`);
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new DataError('bad-field', `${where}: field "${key}" must be an array of strings`);
  }
  return v as string[];
}

/** `rec[key]` as an object. */
export function objectField(
  rec: Record<string, unknown>,
  key: string,
  where: string,
): Record<string, unknown> {
  const v = rec[key];
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  if (v === undefined) {
    throw new DataError('missing-field', `${where}: no field "${key}" (the record has: ${fieldList(rec)})`);
  }
  throw new DataError('bad-field', `${where}: field "${key}" is ${describe(v)}, expected an object`);
}

/** `rec[key]` as a finite number, or undefined where absent or null. */
export function optionalNumber(rec: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = rec[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new DataError('bad-field', `${where}: field "${key}" is ${describe(v)}, expected a number`);
  return v;
}

/**
 * The lines of a text file, streamed, with 1-based numbers (`\r\n` accepted, a BOM dropped). The last line is
 * yielded even without a newline; an empty file yields nothing.
 */
export async function* readLines(file: string): AsyncGenerator<{ text: string; line: number }> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 });
  let line = 0;
  try {
    for await (const { text } of splitLines(stream as AsyncIterable<string>, { stripBom: true })) {
      line++;
      yield { text: dropCr(text), line };
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new DataError('cannot-read', `${file}: cannot read: ${why}`, { cause: e });
  } finally {
    stream.destroy();
  }
}
