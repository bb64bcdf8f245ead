import { TasksError } from './errors.js';
import { answerTokens, normalizeAnswer } from './normalize.js';

/** Quotation marks removed from a response before scoring (ASCII, typographic, guillemets, CJK corner brackets). */
const QUOTES_RE = /["'`“”„‟«»‹›‘’‚‛「」『』＂＇]/g;

/**
 * Phrases a model may open its answer with instead of answering at once (the prompt already ends in such a
 * phrase and an opening quote), for the languages of XQuAD and the paper. Matched case-insensitively at the
 * start of the response, after quotes are removed; the longest match is removed.
 */
export const XQUAD_LEAD_INS: readonly string[] = [
  'based on the passage, the answer to the question is',
  'based on the passage, the answer is',
  'according to the passage, the answer is',
  'the answer to the question is',
  'the answer is',
  'answer:',
  'basierend auf dem text ist die antwort',
  'die antwort auf die frage lautet',
  'die antwort auf die frage ist',
  'die antwort lautet',
  'die antwort ist',
  'antwort:',
  'según el pasaje, la respuesta es',
  'la respuesta a la pregunta es',
  'la respuesta es',
  'respuesta:',
  "d'après le passage, la réponse est",
  'la réponse à la question est',
  'la réponse est',
  'réponse :',
  'réponse:',
  'ответ на вопрос:',
  'правильный ответ:',
  'ответ:',
  'η απάντηση είναι',
  'απάντηση:',
  'الإجابة هي',
  'الجواب هو',
  'الإجابة:',
  'उत्तर:',
  'คำตอบคือ',
  'คำตอบ:',
  'cevap:',
  'yanıt:',
  'câu trả lời là',
  'trả lời:',
  'răspunsul este',
  'răspuns:',
  '答案是',
  '答案：',
  '答案:',
  '回答：',
  '答：',
];

/** Whitespace and separators left in front of the answer once a lead-in or echo is gone. */
const LEADING_JUNK_RE = /^[\s:：,，.。?？؟!！\-–—*>]+/;
const TRAILING_QUESTION_RE = /[\s?？؟\u037e]+$/;

export interface XquadCleanOptions {
  /** The question; a response that starts by repeating it has the repetition removed. */
  question?: string;
  /** Lead-in phrases to remove (default {@link XQUAD_LEAD_INS}). */
  leadIns?: readonly string[];
}

function stripQuotes(text: string): string {
  return text.normalize('NFC').replace(QUOTES_RE, '');
}

/** Case folding for prefix comparison (final sigma folded too, so that per-character folding agrees). */
function fold(text: string): string {
  return text.toLowerCase().replace(/ς/g, 'σ');
}

/** `text` without a prefix equal to `folded` under {@link fold}, or null when it does not start with it. */
function withoutPrefix(text: string, folded: string): string | null {
  let acc = '';
  let end = 0;
  for (const ch of text) {
    if (acc.length >= folded.length) break;
    acc += fold(ch);
    end += ch.length;
  }
  return acc === folded ? text.slice(end) : null;
}

/** Phrases folded for comparison, empty ones dropped. */
function foldPrefixes(phrases: readonly string[]): string[] {
  return phrases.map((p) => fold(stripQuotes(p))).filter((p) => p !== '');
}

const DEFAULT_PREFIXES = foldPrefixes(XQUAD_LEAD_INS);

/**
 * Cleans a generated XQuAD answer the way the containment score reads it:
 * 1. NFC-normalise and remove every quotation mark;
 * 2. repeatedly, until nothing changes: trim leading whitespace and separators (`: , . ? ! - – — * >`), remove the
 *    longest lead-in phrase the response starts with (case-insensitive), remove a leading repetition of the
 *    question (case-insensitive, its final `?` optional);
 * 3. trim.
 */
export function cleanXquadResponse(response: string, options: XquadCleanOptions = {}): string {
  const prefixes = options.leadIns ? foldPrefixes(options.leadIns) : DEFAULT_PREFIXES;
  const question = options.question
    ? foldPrefixes([
        stripQuotes(options.question).replace(LEADING_JUNK_RE, '').replace(TRAILING_QUESTION_RE, ''),
      ])
    : [];
  const ordered = [...question, ...prefixes].sort((a, b) => b.length - a.length);
  let text = stripQuotes(response);
  for (;;) {
    const before = text;
    text = text.replace(LEADING_JUNK_RE, '');
    const folded = fold(text);
    for (const p of ordered) {
      const rest = folded.startsWith(p) ? withoutPrefix(text, p) : null;
      if (rest !== null) {
        text = rest;
        break;
      }
    }
    if (text === before) return text.trim();
  }
}

export interface XquadContainmentOptions extends XquadCleanOptions {
  /** Language of the answer, for normalisation (default `en`). */
  lang?: string;
  /**
   * How many characters (code points) of the cleaned response are searched (default 50, as the paper; an
   * answer longer than this can never match — 76 of the 1,190 English XQuAD answers are). `Infinity` searches
   * the whole response.
   */
  window?: number;
  /**
   * `tokens` (default): the normalised answer must occur as whole tokens (so `4` does not match `40`);
   * `substring`: plain substring of the normalised strings.
   */
  match?: 'tokens' | 'substring';
}

function containsRun(haystack: readonly string[], needle: readonly string[]): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * The paper's XQuAD score for one response: 1 when a reference answer, normalised (`normalizeAnswer`),
 * occurs in the normalised first `window` (50) characters of the cleaned response (`cleanXquadResponse`),
 * else 0. A reference that normalises to nothing never matches.
 */
export function xquadContainment(
  response: string,
  references: string | readonly string[],
  options: XquadContainmentOptions = {},
): number {
  const { lang = 'en', window = 50, match = 'tokens' } = options;
  if (!(window > 0) || (!Number.isInteger(window) && window !== Number.POSITIVE_INFINITY)) {
    throw new TasksError(
      'bad-option',
      `xquadContainment: window must be a positive integer or Infinity, got ${window}`,
    );
  }
  if (match !== 'tokens' && match !== 'substring') {
    throw new TasksError(
      'bad-option',
      `xquadContainment: match must be 'tokens' or 'substring', got ${match}`,
    );
  }
  const refs = typeof references === 'string' ? [references] : references;
  if (refs.length === 0)
    throw new TasksError('no-references', 'xquadContainment needs at least one reference answer');
  const head = Array.from(cleanXquadResponse(response, options)).slice(0, window).join('');
  if (match === 'substring') {
    const hay = normalizeAnswer(head, lang);
    return refs.some((r) => {
      const needle = normalizeAnswer(r, lang);
      return needle !== '' && hay.includes(needle);
    })
      ? 1
      : 0;
  }
  const hay = answerTokens(head, lang);
  return refs.some((r) => {
    const needle = answerTokens(r, lang);
    return needle.length > 0 && containsRun(hay, needle);
  })
    ? 1
    : 0;
}

/** Leading whitespace and quotation marks before an answer. */
const LEADING_QUOTES_RE = /^[\s"'`“”„‟«»‹›‘’‚‛「」『』＂＇]+/u;
/** Where a quoted answer ends: a closing quotation mark or a line break. */
const ANSWER_END_RE = /["`“”„‟«»‹›「」『』＂\n]/u;

/**
 * The answer span of a generated XQuAD response, for SQuAD exact match and F1: the prompt opens a quotation, so
 * the answer is the text up to the closing quote — leading whitespace and quotes removed, the text cut at the
 * first quotation mark (`"`, `“ ”`, `„`, `« »`, `「 」`, …; not the apostrophe-like `'` `’`) or line break, then
 * cleaned as {@link cleanXquadResponse} cleans (lead-in phrases, an echo of the question).
 */
export function xquadAnswerSpan(response: string, options: XquadCleanOptions = {}): string {
  const text = response.normalize('NFC').replace(LEADING_QUOTES_RE, '');
  const end = text.search(ANSWER_END_RE);
  return cleanXquadResponse(end >= 0 ? text.slice(0, end) : text, options);
}
