// SQuAD v1.1 JSON (XQuAD is in this format: `data[].paragraphs[].{context, qas[].{id, question,
// answers[].{text, answer_start}}}`) and the paper's rendered XQuAD prompt files.
import { readFile } from 'node:fs/promises';
import { DataError } from './errors.js';
import { jsonErrorPlace } from './jsonpos.js';
import { readPlacedRecords, stringField } from './records.js';

export interface SquadAnswer {
  text: string;
  /** Offset of the answer in the context, in Unicode code points (as Python counts characters). */
  answer_start: number;
}

/** One question with its passage. */
export interface SquadItem {
  id: string;
  title: string;
  context: string;
  question: string;
  answers: SquadAnswer[];
}

export interface ReadSquadOptions {
  /** Check that every answer is found at its `answer_start` in the context (default true). */
  checkSpans?: boolean;
}

function at(file: string, path: string): string {
  return `${file} (${path})`;
}

function codePointSlice(text: string, start: number, length: number): string {
  // fast path: no surrogate pairs, so code units are code points
  if (!/[\uD800-\uDFFF]/.test(text)) return text.slice(start, start + length);
  return Array.from(text)
    .slice(start, start + length)
    .join('');
}

function arrayAt(v: unknown, file: string, path: string): unknown[] {
  if (!Array.isArray(v)) throw new DataError('bad-squad', `${at(file, path)}: expected an array`);
  return v;
}

function objectAt(v: unknown, file: string, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new DataError('bad-squad', `${at(file, path)}: expected an object`);
  return v as Record<string, unknown>;
}

/**
 * Reads a SQuAD v1.1 JSON file (XQuAD, SQuAD dev) into one item per question. Errors are `DataError`s naming
 * the file and the JSON path (`data[3].paragraphs[0].qas[2].answers[0]`) or, for broken JSON, file:line:column;
 * with `checkSpans` (default) an answer not found at its `answer_start` is `bad-answer-span`.
 */
export async function readSquad(file: string, options: ReadSquadOptions = {}): Promise<SquadItem[]> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(
      'cannot-read',
      `${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e },
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DataError('bad-json', `${jsonErrorPlace(file, text)}: invalid JSON (${(e as Error).message})`);
  }
  const root = objectAt(doc, file, 'top level');
  const items: SquadItem[] = [];
  const checkSpans = options.checkSpans ?? true;
  arrayAt(root.data, file, 'data').forEach((a, ai) => {
    const article = objectAt(a, file, `data[${ai}]`);
    const title = typeof article.title === 'string' ? article.title : '';
    arrayAt(article.paragraphs, file, `data[${ai}].paragraphs`).forEach((p, pi) => {
      const pPath = `data[${ai}].paragraphs[${pi}]`;
      const para = objectAt(p, file, pPath);
      const context = stringField(para, 'context', at(file, pPath));
      arrayAt(para.qas, file, `${pPath}.qas`).forEach((q, qi) => {
        const qPath = `${pPath}.qas[${qi}]`;
        const qa = objectAt(q, file, qPath);
        const answers = arrayAt(qa.answers, file, `${qPath}.answers`).map((an, ni) => {
          const aPath = `${qPath}.answers[${ni}]`;
          const ans = objectAt(an, file, aPath);
          const answerText = stringField(ans, 'text', at(file, aPath));
          const start = ans.answer_start;
          if (typeof start !== 'number' || !Number.isInteger(start) || start < 0) {
            throw new DataError(
              'bad-squad',
              `${at(file, aPath)}: answer_start must be a non-negative integer`,
            );
          }
          if (checkSpans && codePointSlice(context, start, [...answerText].length) !== answerText) {
            throw new DataError(
              'bad-answer-span',
              `${at(file, aPath)}: answer ${JSON.stringify(answerText)} is not at answer_start ${start} of the context (found ${JSON.stringify(codePointSlice(context, start, [...answerText].length))}); read with checkSpans: false to accept it`,
            );
          }
          return { text: answerText, answer_start: start };
        });
        const id = qa.id;
        if (typeof id !== 'string' && typeof id !== 'number') {
          throw new DataError('bad-squad', `${at(file, qPath)}: no id`);
        }
        items.push({
          id: String(id),
          title,
          context,
          question: stringField(qa, 'question', at(file, qPath)),
          answers,
        });
      });
    });
  });
  return items;
}

/** XQuAD files are SQuAD v1.1 JSON: {@link readSquad}. */
export const readXquad = readSquad;

/** A record of the paper's XQuAD prompt files (`xquad_dev_{prompt lang}_{passage lang}.json`). */
export interface PaperXquadItem {
  /** The rendered prompt, ending with the assistant turn's lead-in and opening quote. */
  instruction: string;
  /** The reference answer. */
  answer: string;
}

/** Reads one of the paper's XQuAD prompt files (JSON Lines of `{instruction, answer}`). */
export async function readPaperXquad(file: string): Promise<PaperXquadItem[]> {
  return (await readPlacedRecords(file)).map(({ value, where }) => ({
    instruction: stringField(value, 'instruction', where),
    answer: stringField(value, 'answer', where),
  }));
}
