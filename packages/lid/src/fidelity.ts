// The paper's language-fidelity metric: does the model answer in the language of the prompt?
// lang_match: share of responses whose top-1 LID label is the language of the prompt's source text;
// tgt_lang: share whose label is the expected language. Reported per run file (a one-row `.eval` CSV) and as
// the mean over sampling seeds.
import path from 'node:path';
import { normalizeLang } from './codes.js';
import { LidError } from './errors.js';
import { readJsonlLines, writeFileAtomic } from './fsutil.js';
import { describeLabel, type LidModel } from './lid.js';

/**
 * The paper's cleaning of text before LID: newlines become spaces and the chat markers `### Human:` and
 * `### Assistant:` are removed (the paper removed `### Human:` and ` ### Assistant:`; removing the marker
 * without its space is the same for fastText, which splits on whitespace). Leading/trailing blanks are trimmed.
 */
export function cleanForLid(text: string): string {
  return text
    .replace(/\r\n|\n|\r/g, ' ')
    .replaceAll('### Human:', '')
    .replaceAll('### Assistant:', '')
    .trim();
}

/** One prompt (its source text) and the model's response. */
export interface FidelityRecord {
  source: string;
  response: string;
  /** Line in the run file, for per-record reports. */
  line?: number;
}

/**
 * What an empty response (nothing left after cleaning) counts as:
 * - `fail` (default): scored, as a response in no language — a miss for lang_match and tgt_lang;
 * - `skip`: left out of n (the shares are over non-empty responses);
 * - `predict`: LID runs on the empty text as the paper's code did (fastText then answers from the
 *   end-of-line token alone, usually English).
 * Empty responses are counted in `empty` under every policy.
 */
export type EmptyPolicy = 'fail' | 'skip' | 'predict';

export interface FidelityOptions {
  /**
   * Expected language of the responses, for tgt_lang (`de`, `deu_Latn`, `__label__de`, …). Unknown codes and
   * languages the model has no label for raise. Without it tgt_lang is null.
   */
  lang?: string | null;
  empty?: EmptyPolicy;
  /**
   * How lang_match compares the two labels: `language` (default) with the language table (`zho_Hans` and
   * `zho_Hant`, `arb_Arab` and `arz_Arab` are the same language), `label` for exact label equality.
   */
  match?: 'language' | 'label';
  /** Called for each scored record. */
  onRecord?: (r: FidelityRecordResult) => void;
}

export interface FidelityRecordResult {
  line?: number;
  sourceLabel: string | null;
  responseLabel: string | null;
  empty: boolean;
  langMatch: boolean;
  tgtLang: boolean | null;
}

export interface FidelityResult {
  /** The run file, where the records came from one. */
  file?: string;
  /** Responses scored (empty ones included unless skipped). */
  n: number;
  /** Share of responses in the language of their prompt (null when n is 0). */
  lang_match: number | null;
  /** Share of responses in the expected language (null without one, or when n is 0). */
  tgt_lang: number | null;
  /** Empty responses seen (after cleaning). */
  empty: number;
  /** The expected language (`deu_Latn`), or null. */
  lang: string | null;
  /** Top-1 labels of the responses, counted. */
  labels: Record<string, number>;
  /** Predicted labels the language table does not know (compared by their ISO 639-3 code alone). */
  unknownLabels: string[];
  /** The LID model. */
  model: string;
}

/** Language fidelity of prompt/response pairs with one LID model. */
export function scoreFidelity(
  records: Iterable<FidelityRecord>,
  model: LidModel,
  options: FidelityOptions = {},
): FidelityResult {
  const policy = options.empty ?? 'fail';
  if (!['fail', 'skip', 'predict'].includes(policy)) {
    throw new LidError('bad-option', `empty must be fail, skip or predict, got ${JSON.stringify(policy)}`);
  }
  const matchMode = options.match ?? 'language';
  if (matchMode !== 'language' && matchMode !== 'label') {
    throw new LidError('bad-option', `match must be language or label, got ${JSON.stringify(matchMode)}`);
  }
  let expectedGroup: string | null = null;
  let lang: string | null = null;
  if (options.lang !== undefined && options.lang !== null) {
    const l = normalizeLang(options.lang);
    model.labelsFor(options.lang); // raises where the model cannot recognise the language at all
    expectedGroup = l.group;
    lang = l.key;
  }
  let n = 0;
  let matched = 0;
  let inTarget = 0;
  let empty = 0;
  const labels: Record<string, number> = {};
  const unknown = new Set<string>();
  const group = (label: string) => {
    const info = describeLabel(label);
    if (!info.known) unknown.add(label);
    return info.group;
  };
  for (const rec of records) {
    const response = cleanForLid(rec.response);
    const isEmpty = response === '';
    if (isEmpty) {
      empty++;
      if (policy === 'skip') continue;
    }
    n++;
    const sourceLabel = model.top(cleanForLid(rec.source))?.label ?? null;
    let responseLabel: string | null = null;
    if (!isEmpty || policy === 'predict') {
      responseLabel = model.top(response)?.label ?? null;
      if (responseLabel) labels[responseLabel] = (labels[responseLabel] ?? 0) + 1;
    }
    let langMatch = false;
    let tgt: boolean | null = expectedGroup === null ? null : false;
    if (responseLabel) {
      if (sourceLabel) {
        langMatch =
          matchMode === 'label' ? sourceLabel === responseLabel : group(sourceLabel) === group(responseLabel);
      }
      if (expectedGroup !== null) tgt = group(responseLabel) === expectedGroup;
    }
    if (langMatch) matched++;
    if (tgt) inTarget++;
    options.onRecord?.({
      line: rec.line,
      sourceLabel,
      responseLabel,
      empty: isEmpty,
      langMatch,
      tgtLang: tgt,
    });
  }
  return {
    n,
    lang_match: n ? matched / n : null,
    tgt_lang: n && expectedGroup !== null ? inTarget / n : null,
    empty,
    lang,
    labels,
    unknownLabels: [...unknown].sort(),
    model: model.name,
  };
}

/**
 * The expected language from a run file's name as the paper names them (`{testset}-none-{prompt}-s0-…jsonl`
 * with a test set such as `alpaca_eval_instructions_de`): the code after the test set's last `_`, where the
 * language table knows it; null otherwise.
 */
export function inferLangFromFileName(file: string): string | null {
  const testset = path
    .basename(file)
    .split('-')[0]!
    .replace(/\.jsonl?$/, '');
  const m = /_([a-z]{2,3})$/i.exec(testset);
  if (!m) return null;
  try {
    return normalizeLang(m[1]!).key;
  } catch {
    return null;
  }
}

export interface FileFidelityOptions extends FidelityOptions {
  /** Field with the prompt's source text (default `source`). */
  sourceKey?: string;
  /** Field with the response (default `system`); null counts as an empty response. */
  responseKey?: string;
}

/**
 * Language fidelity of one run file (JSON Lines). Without `lang`, the expected language is inferred from the
 * file name ({@link inferLangFromFileName}); pass `lang: null` for none.
 */
export async function fidelityOfFile(
  file: string,
  model: LidModel,
  options: FileFidelityOptions = {},
): Promise<FidelityResult> {
  const sourceKey = options.sourceKey ?? 'source';
  const responseKey = options.responseKey ?? 'system';
  const records: FidelityRecord[] = [];
  for await (const rec of readJsonlLines(file)) {
    const get = (key: string, nullable: boolean): string => {
      const v = rec.value[key];
      if (typeof v === 'string') return v;
      if (v === null && nullable) return '';
      const keys = Object.keys(rec.value).slice(0, 12).join(', ');
      throw new LidError(
        v === undefined ? 'missing-field' : 'bad-field',
        v === undefined
          ? `${file}:${rec.line}: no field "${key}" (the record has: ${keys}); choose the fields with --source-key / --response-key`
          : `${file}:${rec.line}: field "${key}" is ${v === null ? 'null' : typeof v}, expected a string`,
      );
    };
    records.push({ source: get(sourceKey, false), response: get(responseKey, true), line: rec.line });
  }
  const lang = options.lang === undefined ? inferLangFromFileName(file) : options.lang;
  return { file, ...scoreFidelity(records, model, { ...options, lang }) };
}

export interface MeanStd {
  mean: number | null;
  /** Sample standard deviation (n − 1, as pandas); null for fewer than two values. */
  std: number | null;
}

export interface FidelitySummary {
  files: number;
  /** Responses scored, over all files. */
  n: number;
  empty: number;
  lang_match: MeanStd;
  tgt_lang: MeanStd;
}

function meanStd(values: (number | null)[]): MeanStd {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return { mean: null, std: null };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  if (v.length < 2) return { mean, std: null };
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1);
  return { mean, std: Math.sqrt(variance) };
}

/** Mean and standard deviation over run files (the paper reports the mean over 3 sampling seeds). */
export function summarizeFidelity(results: readonly FidelityResult[]): FidelitySummary {
  return {
    files: results.length,
    n: results.reduce((a, r) => a + r.n, 0),
    empty: results.reduce((a, r) => a + r.empty, 0),
    lang_match: meanStd(results.map((r) => r.lang_match)),
    tgt_lang: meanStd(results.map((r) => r.tgt_lang)),
  };
}

/**
 * Rounds to 3 decimals as Python's round() does (the exact binary value, ties to even) and writes the
 * result as Python's repr would (`1.0`, `0.938`); null/NaN give an empty field (pandas' NaN in CSV).
 */
export function formatPyFloat3(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '';
  let r: number;
  const t = x * 16; // exact: the only binary values exactly halfway between two 3-decimal numbers are odd/16
  if (Number.isInteger(t) && t % 2 !== 0) {
    const lo = Math.floor(x * 1000);
    r = (lo % 2 === 0 ? lo : lo + 1) / 1000;
  } else {
    r = Number(x.toFixed(3));
  }
  if (Object.is(r, -0)) r = 0;
  return Number.isInteger(r) ? r.toFixed(1) : String(r);
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const EVAL_HEADER = 'lang_match,tgt_lang,ppl,ppl_model,n,file';

export interface EvalExtras {
  /** The `file` column (default: the result's file). */
  file?: string;
  /** Perplexity, where computed; empty otherwise (this package does not compute it). */
  ppl?: number | null;
  /** The model perplexity was computed with; empty otherwise. */
  pplModel?: string | null;
}

/**
 * The paper's one-row `.eval` CSV: `lang_match,tgt_lang,ppl,ppl_model,n,file`, values rounded to 3 decimals;
 * fields not computed (tgt_lang without an expected language, ppl and ppl_model) are empty, as pandas writes NaN.
 */
export function formatEvalCsv(result: FidelityResult, extras: EvalExtras = {}): string {
  const row = [
    formatPyFloat3(result.lang_match),
    formatPyFloat3(result.tgt_lang),
    formatPyFloat3(extras.ppl),
    csvField(extras.pplModel ?? ''),
    String(result.n),
    csvField(extras.file ?? result.file ?? ''),
  ];
  return `${EVAL_HEADER}\n${row.join(',')}\n`;
}

/** Writes {@link formatEvalCsv} atomically. */
export async function writeEvalCsv(
  target: string,
  result: FidelityResult,
  extras: EvalExtras = {},
): Promise<void> {
  await writeFileAtomic(target, formatEvalCsv(result, extras));
}

/** The `.eval` path next to a run file: `run.jsonl` → `run.eval`. */
export function evalPathFor(file: string): string {
  return file.replace(/\.jsonl?$/i, '') + '.eval';
}
