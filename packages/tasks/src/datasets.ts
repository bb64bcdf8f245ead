/**
 * The built-in tasks' data: where the files are looked for (the `polyglot data get` cache by default) and their
 * reading into task documents, through the readers of `@polyglot/data` (XQuAD/SQuAD, X-CSQA, XNLI, AlpacaEval).
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  cacheRoot,
  readAlpacaEval,
  readJsonOrJsonl,
  readPaperXcsqa,
  readSquad as readSquadFile,
  readXcsqa as readXcsqaFile,
  readXnli as readXnliFile,
} from '@polyglot/data';
import { TasksError } from './errors.js';
import type { Doc } from './task.js';

/** Where `polyglot data get NAME` puts a dataset: `$POLYGLOT_CACHE/datasets` (default `~/.cache/polyglot/datasets`). */
export function defaultDataDir(): string {
  return path.join(cacheRoot(), 'datasets');
}

/**
 * The first of `names` (relative to `dir`) that exists; else `data-missing` listing what was looked for and
 * `help` (where to get the data).
 */
export function findDataFile(dir: string, names: readonly string[], what: string, help: string): string {
  for (const n of names) {
    const f = path.join(dir, n);
    if (existsSync(f)) return f;
  }
  throw new TasksError(
    'data-missing',
    `${what}: no data file in ${dir} (looked for ${names.join(', ')}). ${help}`,
  );
}

/** An XQuAD / SQuAD v1.1 question: its passage, question and reference answers. */
export interface SquadDoc extends Doc {
  id: string;
  context: string;
  question: string;
  answers: string[];
}

/** Questions of a SQuAD v1.1 JSON file (as XQuAD ships them), in file order. */
export async function readSquad(file: string): Promise<SquadDoc[]> {
  const items = await readSquadFile(file, { checkSpans: false });
  return items.map((q) => ({
    id: q.id,
    context: q.context,
    question: q.question,
    answers: q.answers.map((a) => a.text),
  }));
}

/** An X-CSQA question with its five options and the answer letter (null where the file hides it: the test split). */
export interface XcsqaDoc extends Doc {
  id: string;
  question: string;
  options: string[];
  answer: string | null;
}

async function firstRecord(file: string): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new TasksError('cannot-read', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const line = text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .find((l) => l.trim() !== '');
  if (!line) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * X-CSQA items: the X-CSR release's JSON Lines (`{id, question: {stem, choices: [{label, text}]}, answerKey}`) or
 * the paper's prompt files (`{instruction, answer: [letter, text], question, options}`).
 */
export async function readXcsqa(file: string): Promise<XcsqaDoc[]> {
  const first = await firstRecord(file);
  if (first && typeof first.question === 'string') {
    return (await readPaperXcsqa(file)).map((q, i) => ({
      id: String(i),
      question: q.question,
      options: q.options,
      answer: q.answer.letter,
    }));
  }
  return (await readXcsqaFile(file)).map((q) => {
    // Options in label order A, B, …; the answer as the letter of its position.
    const order = q.labels.map((l, i) => ({ l, i })).sort((a, b) => a.l.localeCompare(b.l));
    const options = order.map(({ i }) => q.options[i]!);
    const pos = q.answer === null ? -1 : order.findIndex(({ l }) => l === q.answer);
    return {
      id: q.id,
      question: q.question,
      options,
      answer: pos < 0 ? null : String.fromCharCode(65 + pos),
    };
  });
}

/** An XNLI pair; `label` 0 entailment, 1 neutral, 2 contradiction (Hugging Face's `xnli` order). */
export interface XnliDoc extends Doc {
  id: string;
  premise: string;
  hypothesis: string;
  label: number;
}

/**
 * XNLI pairs of one language: the XNLI-1.0 TSV/JSON Lines (every language in one file, filtered to `lang`) or a
 * Hugging Face export of one language (`{premise, hypothesis, label}` JSON Lines).
 */
export async function readXnli(file: string, lang: string): Promise<XnliDoc[]> {
  const items = await readXnliFile(file);
  return items
    .filter((x) => x.language === lang || x.language === '')
    .map((x, i) => ({
      id: x.pairId ?? String(i),
      premise: x.premise,
      hypothesis: x.hypothesis,
      label: x.labelIndex,
    }));
}

/** A chat instruction (`{instruction}` records, as the paper's translated AlpacaEval files). */
export interface InstructionDoc extends Doc {
  id: string;
  instruction: string;
}

/**
 * AlpacaEval instructions (JSON array or JSON Lines of `{instruction}`); `stripQuotes` removes the quotes that wrap
 * the paper's translations (kept by default, as the paper's prompts had them).
 */
export async function readInstructions(file: string, stripQuotes = false): Promise<InstructionDoc[]> {
  const items = await readAlpacaEval(file, { quotes: stripQuotes ? 'strip' : 'keep' });
  return items.map((x) => ({ id: String(x.index), instruction: x.instruction }));
}

/** Records of a JSON or JSON Lines file (for data the readers above do not cover). */
export { readJsonOrJsonl };
