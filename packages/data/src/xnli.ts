// XNLI: the original `XNLI-1.0/xnli.{dev,test}.tsv` (a header row; columns include language, gold_label,
// sentence1, sentence2, pairID, genre) and `.jsonl` (the same keys), and the Hugging Face layout
// (`premise`, `hypothesis`, `label` 0/1/2).
import { DataError } from './errors.js';
import { readJsonl } from './jsonl.js';
import { readLines } from './records.js';

export const XNLI_LABELS = ['entailment', 'neutral', 'contradiction'] as const;
export type XnliLabel = (typeof XNLI_LABELS)[number];

export interface XnliItem {
  language: string;
  premise: string;
  hypothesis: string;
  label: XnliLabel;
  /** Index of the label in {@link XNLI_LABELS} (the Hugging Face encoding). */
  labelIndex: number;
  pairId?: string;
  genre?: string;
}

export interface ReadXnliOptions {
  /** Keep only these languages (XNLI codes: ar, bg, de, el, en, es, fr, hi, ru, sw, th, tr, ur, vi, zh). */
  languages?: readonly string[];
}

function toLabel(v: unknown, where: string): XnliLabel {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 3) return XNLI_LABELS[v]!;
  if (typeof v === 'string' && (XNLI_LABELS as readonly string[]).includes(v)) return v as XnliLabel;
  throw new DataError(
    'bad-field',
    `${where}: label ${JSON.stringify(v)} is not one of ${XNLI_LABELS.join(', ')} (or 0, 1, 2)`,
  );
}

function textOf(rec: Record<string, unknown>, keys: readonly string[], where: string): string {
  for (const k of keys) if (typeof rec[k] === 'string') return rec[k] as string;
  throw new DataError(
    'missing-field',
    `${where}: no ${keys.map((k) => `"${k}"`).join(' or ')} field (the record has: ${Object.keys(rec).slice(0, 12).join(', ')})`,
  );
}

function fromRecord(rec: Record<string, unknown>, where: string, fallbackLang: string): XnliItem {
  const labelValue = rec.gold_label ?? rec.label;
  const label = toLabel(labelValue, where);
  const item: XnliItem = {
    language: typeof rec.language === 'string' ? rec.language : fallbackLang,
    premise: textOf(rec, ['sentence1', 'premise'], where),
    hypothesis: textOf(rec, ['sentence2', 'hypothesis'], where),
    label,
    labelIndex: XNLI_LABELS.indexOf(label),
  };
  const pair = rec.pairID ?? rec.pair_id ?? rec.id;
  if (typeof pair === 'string' || typeof pair === 'number') item.pairId = String(pair);
  if (typeof rec.genre === 'string') item.genre = rec.genre;
  return item;
}

/**
 * Reads XNLI from a `.tsv` (with its header row) or a JSON Lines file. Errors name file:line: a row with the
 * wrong number of columns, a missing column, an unknown label.
 */
export async function readXnli(file: string, options: ReadXnliOptions = {}): Promise<XnliItem[]> {
  const keep = options.languages ? new Set(options.languages) : null;
  const items: XnliItem[] = [];
  const push = (item: XnliItem) => {
    if (!keep || keep.has(item.language)) items.push(item);
  };
  if (/\.tsv$/i.test(file)) {
    let header: string[] | null = null;
    for await (const { text, line } of readLines(file)) {
      if (text.trim() === '') continue;
      const cells = text.split('\t');
      if (!header) {
        header = cells;
        for (const need of ['gold_label', 'sentence1', 'sentence2']) {
          if (!header.includes(need)) {
            throw new DataError(
              'bad-tsv',
              `${file}:${line}: the header has no "${need}" column (it has: ${header.slice(0, 12).join(', ')}); is this an XNLI .tsv file?`,
            );
          }
        }
        continue;
      }
      if (cells.length !== header.length) {
        throw new DataError(
          'bad-tsv',
          `${file}:${line}: ${cells.length} tab-separated columns, the header has ${header.length}`,
        );
      }
      const rec: Record<string, unknown> = {};
      header.forEach((h, i) => {
        rec[h] = cells[i];
      });
      push(fromRecord(rec, `${file}:${line}`, ''));
    }
    if (!header) throw new DataError('bad-tsv', `${file}: empty file (expected a header row)`);
    return items;
  }
  for await (const { value, line } of readJsonl(file)) push(fromRecord(value, `${file}:${line}`, ''));
  return items;
}
