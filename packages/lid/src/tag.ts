// The paper's assign_langs: add the top-1 LID label of some text fields to every record of a JSON Lines file.
import { createWriteStream, promises as fsp } from 'node:fs';
import { LidError } from './errors.js';
import { cleanForLid } from './fidelity.js';
import { readJsonlLines, tempPathFor } from './fsutil.js';
import type { LidModel } from './lid.js';

export interface TagOptions {
  /** Fields to tag; each gets `<key>_lang` (the label without `__label__`, e.g. `deu_Latn` or `de`). */
  keys: readonly string[];
  /** Also add `<key>_lang_prob`, the label's probability. */
  prob?: boolean;
}

/**
 * Tags the records of `file` and hands each tagged record (one JSON line, without newline) to `write`. Text is
 * cleaned as for fidelity ({@link cleanForLid}); a null field gets a null tag; a missing field is an error
 * naming file:line.
 */
export async function tagRecords(
  file: string,
  model: LidModel,
  options: TagOptions,
  write: (line: string) => void | Promise<void>,
): Promise<{ records: number }> {
  if (options.keys.length === 0) throw new LidError('bad-option', 'tag: give at least one key to tag');
  let records = 0;
  for await (const rec of readJsonlLines(file)) {
    const out = { ...rec.value };
    for (const key of options.keys) {
      const v = rec.value[key];
      if (v === undefined) {
        const keys = Object.keys(rec.value).slice(0, 12).join(', ');
        throw new LidError(
          'missing-field',
          `${file}:${rec.line}: no field "${key}" (the record has: ${keys})`,
        );
      }
      if (v !== null && typeof v !== 'string') {
        throw new LidError(
          'bad-field',
          `${file}:${rec.line}: field "${key}" is ${typeof v}, expected a string`,
        );
      }
      const top = v === null ? null : model.top(cleanForLid(v));
      out[`${key}_lang`] = top ? top.label.replace(/^__label__/, '') : null;
      if (options.prob) out[`${key}_lang_prob`] = top ? top.prob : null;
    }
    await write(JSON.stringify(out));
    records++;
  }
  return { records };
}

/** {@link tagRecords} into `output`, written atomically (temp file, fsync, rename). */
export async function tagFile(
  input: string,
  output: string,
  model: LidModel,
  options: TagOptions,
): Promise<{ records: number }> {
  const tmp = tempPathFor(output);
  const stream = createWriteStream(tmp);
  try {
    const result = await tagRecords(input, model, options, async (line) => {
      if (!stream.write(`${line}\n`)) await new Promise<void>((r) => stream.once('drain', () => r()));
    });
    await new Promise<void>((resolve, reject) =>
      stream.end((e?: Error | null) => (e ? reject(e) : resolve())),
    );
    const fh = await fsp.open(tmp, 'r+');
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, output);
    return result;
  } catch (e) {
    stream.destroy();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
