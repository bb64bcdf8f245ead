// Per-language counts and lengths (characters, words, optionally tokens) of a dataset.
import { DataError } from './errors.js';
import { parseGuanaco } from './guanaco.js';
import { langId } from './langs.js';
import { readPlacedRecords } from './records.js';

export interface LengthSummary {
  total: number;
  mean: number;
  median: number;
  min: number;
  max: number;
}

export interface LanguageStats {
  /** The language as shown (`de`), `untagged`, or `all`. */
  lang: string;
  records: number;
  chars: LengthSummary;
  /** Words (Unicode word segmentation, so Chinese and Japanese count too). */
  words: LengthSummary;
  /** Tokens, where a token counter was given. */
  tokens?: LengthSummary;
  /** Turns of Guanaco conversations, where the field holds them. */
  turns?: LengthSummary;
}

export interface DatasetStats {
  file: string;
  field: string;
  langField: string;
  records: number;
  /** Per language, most records first. */
  languages: LanguageStats[];
  all: LanguageStats;
}

export interface StatsOptions {
  /** The text field (default: the first of text, instruction, prompt, system found in the first record). */
  field?: string;
  /** The language field (default `lang`). */
  langField?: string;
  /** Counts the tokens of a text (e.g. a tokenizer's `encode(text).length`). */
  countTokens?: (text: string) => number;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/** Words in a text by Unicode word segmentation. */
export function countWords(text: string): number {
  let n = 0;
  for (const s of segmenter.segment(text)) if (s.isWordLike) n++;
  return n;
}

function summarize(values: number[]): LengthSummary {
  if (values.length === 0) return { total: 0, mean: 0, median: 0, min: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const total = sorted.reduce((a, b) => a + b, 0);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return {
    total,
    mean: Math.round((total / sorted.length) * 10) / 10,
    median,
    min: sorted[0]!,
    max: sorted.at(-1)!,
  };
}

interface Acc {
  chars: number[];
  words: number[];
  tokens: number[];
  turns: number[];
}

/** Counts and lengths per language of a JSON Lines file (or a `.json` array); errors name file:line. */
export async function datasetStats(file: string, options: StatsOptions = {}): Promise<DatasetStats> {
  const langField = options.langField ?? 'lang';
  const records = await readPlacedRecords(file);
  let field = options.field;
  if (!field) {
    const first = records[0]?.value ?? {};
    field = ['text', 'instruction', 'prompt', 'system'].find((k) => typeof first[k] === 'string');
    if (!field) {
      throw new DataError(
        'missing-field',
        `${file}: no text field to measure (looked for text, instruction, prompt, system; the first record has: ${Object.keys(first).join(', ') || 'nothing'}); choose one with --field`,
      );
    }
  }
  const groups = new Map<string, Acc>();
  const all: Acc = { chars: [], words: [], tokens: [], turns: [] };
  let sawConversation = false;
  for (const { value, where } of records) {
    const text = value[field];
    if (typeof text !== 'string') {
      throw new DataError(
        text === undefined ? 'missing-field' : 'bad-field',
        `${where}: ${text === undefined ? `no field "${field}"` : `field "${field}" is not a string`}`,
      );
    }
    const tag = value[langField];
    const lang = typeof tag === 'string' && tag.trim() !== '' ? langId(tag.trim()).code : 'untagged';
    let acc = groups.get(lang);
    if (!acc) {
      acc = { chars: [], words: [], tokens: [], turns: [] };
      groups.set(lang, acc);
    }
    const chars = [...text].length;
    const words = countWords(text);
    for (const a of [acc, all]) {
      a.chars.push(chars);
      a.words.push(words);
    }
    if (options.countTokens) {
      const t = options.countTokens(text);
      acc.tokens.push(t);
      all.tokens.push(t);
    }
    if (text.startsWith('### Human:')) {
      sawConversation = true;
      const turns = parseGuanaco(text, { source: where }).length;
      acc.turns.push(turns);
      all.turns.push(turns);
    }
  }
  const toStats = (lang: string, a: Acc): LanguageStats => {
    const s: LanguageStats = {
      lang,
      records: a.chars.length,
      chars: summarize(a.chars),
      words: summarize(a.words),
    };
    if (options.countTokens) s.tokens = summarize(a.tokens);
    if (sawConversation) s.turns = summarize(a.turns);
    return s;
  };
  const languages = [...groups.entries()]
    .map(([lang, a]) => toStats(lang, a))
    .sort((a, b) => b.records - a.records || (a.lang < b.lang ? -1 : 1));
  return { file, field, langField, records: records.length, languages, all: toStats('all', all) };
}
