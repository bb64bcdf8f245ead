import { promises as fsp } from 'node:fs';
import { InferError } from './errors.js';

type Json = Record<string, unknown>;

/** Records of a `.json` file holding an array of objects, or of a JSON Lines file (pandas' `lines=True` .json). */
export async function readRecords(file: string): Promise<Json[]> {
  let text: string;
  try {
    text = (await fsp.readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InferError(
      'RUN_INPUT',
      `${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e },
    );
  }
  const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (text.trimStart().startsWith('[')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new InferError('RUN_INPUT', `${file}: invalid JSON array (${(e as Error).message})`);
    }
    if (!Array.isArray(value) || !value.every(isObject)) {
      throw new InferError('RUN_INPUT', `${file}: expected an array of objects`);
    }
    return value;
  }
  const out: Json[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new InferError('RUN_INPUT', `${file}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    if (!isObject(value)) throw new InferError('RUN_INPUT', `${file}:${i + 1}: expected a JSON object`);
    out.push(value);
  });
  return out;
}

/**
 * The complete records of an append log, cutting off a partial last line (what a process killed in the middle of
 * an append leaves) from the file itself. A bad line that is not the last is an error naming `file:line`.
 */
export async function readLogRepairing(file: string): Promise<{ records: Json[]; droppedTail: boolean }> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], droppedTail: false };
    throw e;
  }
  const records: Json[] = [];
  let start = 0;
  let line = 0;
  let valid = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    line++;
    if (nl < 0) break; // an unterminated last line: cut off below
    const text = buf.subarray(start, nl).toString('utf8');
    if (text.trim() !== '') {
      try {
        records.push(JSON.parse(text) as Json);
      } catch (e) {
        if (nl + 1 < buf.length) {
          throw new InferError(
            'RUN_OUTPUT_CORRUPT',
            `${file}:${line}: invalid JSON in the middle of the run file (${(e as Error).message}); fix or remove it`,
          );
        }
        break; // a garbled last line
      }
    }
    start = nl + 1;
    valid = start;
  }
  const droppedTail = valid < buf.length;
  if (droppedTail) await fsp.truncate(file, valid);
  return { records, droppedTail };
}

/** Appends JSON lines to a file and fsyncs it (one writer per file). */
export async function appendLines(file: string, rows: readonly Json[]): Promise<void> {
  if (rows.length === 0) return;
  const fh = await fsp.open(file, 'a');
  try {
    await fh.write(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await fh.sync();
  } finally {
    await fh.close();
  }
}
