// X-CSQA: the original X-CSR JSON Lines (`X-CSR_datasets/X-CSQA/{lang}/{dev,test}.jsonl`) and the paper's
// rendered prompt files (`xcsqa_dev_{prompt lang}_{data lang}.json`).
import { DataError } from './errors.js';
import { readJsonl } from './jsonl.js';
import { objectField, optionalString, readPlacedRecords, stringArrayField, stringField } from './records.js';

/** One multiple-choice question. */
export interface XcsqaItem {
  id: string;
  /** The record's language code as X-CSR writes it (`en`, `zh`, `jap`, …). */
  lang: string;
  question: string;
  /** Option texts, in label order. */
  options: string[];
  /** Option labels (`A`–`E`). */
  labels: string[];
  /** The answer's label; null in the test split (answers hidden). */
  answer: string | null;
}

/**
 * Reads an original X-CSQA JSON Lines file (`{id, lang, question: {stem, choices: [{label, text}]},
 * answerKey}`). Errors name file:line: missing fields, no choices, an answer key that is not a label.
 */
export async function readXcsqa(file: string): Promise<XcsqaItem[]> {
  const items: XcsqaItem[] = [];
  for await (const { value, line } of readJsonl(file)) {
    const where = `${file}:${line}`;
    const q = objectField(value, 'question', where);
    const choices = q.choices;
    if (!Array.isArray(choices) || choices.length === 0) {
      throw new DataError('bad-field', `${where}: question.choices must be a non-empty array`);
    }
    const labels: string[] = [];
    const options: string[] = [];
    choices.forEach((c, i) => {
      if (typeof c !== 'object' || c === null)
        throw new DataError('bad-field', `${where}: question.choices[${i}] is not an object`);
      labels.push(stringField(c as Record<string, unknown>, 'label', `${where} choice ${i}`));
      options.push(stringField(c as Record<string, unknown>, 'text', `${where} choice ${i}`));
    });
    const key = optionalString(value, 'answerKey', where);
    const answer = key === undefined || key === '' ? null : key;
    if (answer !== null && !labels.includes(answer)) {
      throw new DataError(
        'bad-field',
        `${where}: answerKey ${JSON.stringify(answer)} is not one of the labels ${labels.join(', ')}`,
      );
    }
    items.push({
      id: String(value.id ?? `${line}`),
      lang: optionalString(value, 'lang', where) ?? '',
      question: stringField(q, 'stem', `${where} question`),
      options,
      labels,
      answer,
    });
  }
  return items;
}

/** A record of the paper's X-CSQA prompt files. */
export interface PaperXcsqaItem {
  /** The rendered prompt, ending with the assistant turn's opening quote. */
  instruction: string;
  /** The answer's letter and option text (stored as `[letter, text]`). */
  answer: { letter: string; text: string };
  question: string;
  options: string[];
}

/**
 * Reads one of the paper's X-CSQA prompt files (JSON Lines of `{instruction, answer: [letter, text],
 * question, options}`). The answer letter must name an option whose text is the stored text.
 */
export async function readPaperXcsqa(file: string): Promise<PaperXcsqaItem[]> {
  return (await readPlacedRecords(file)).map(({ value, where }) => {
    const options = stringArrayField(value, 'options', where);
    const answer = stringArrayField(value, 'answer', where);
    if (answer.length !== 2) {
      throw new DataError(
        'bad-field',
        `${where}: answer must be [letter, text], got ${JSON.stringify(answer)}`,
      );
    }
    const [letter, text] = answer as [string, string];
    const index = letter.length === 1 ? letter.charCodeAt(0) - 65 : -1;
    if (index < 0 || index >= options.length) {
      throw new DataError(
        'bad-field',
        `${where}: answer letter ${JSON.stringify(letter)} does not name one of the ${options.length} options`,
      );
    }
    if (options[index] !== text) {
      throw new DataError(
        'bad-field',
        `${where}: answer ${letter} is ${JSON.stringify(text)} but option ${letter} is ${JSON.stringify(options[index])}`,
      );
    }
    return {
      instruction: stringField(value, 'instruction', where),
      answer: { letter, text },
      question: stringField(value, 'question', where),
      options,
    };
  });
}
