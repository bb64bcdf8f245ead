import { TasksError } from './errors.js';

/** The option a response chose. */
export interface Choice {
  /** 0-based index into the options. */
  index: number;
  /** `A`, `B`, … */
  letter: string;
  /** Whether the answer letter or the option's text was read. */
  via: 'letter' | 'option-text';
}

/** What a response may open with before its answer: whitespace, quotes, emphasis marks, opening brackets. */
const OPENING_RE = /^[\s"'`“”„‟«»‹›‘’‚‛「」『』＂＇*_([{]+/u;
/** Characters that continue a word in scripts written with spaces (so `Cat` is not the letter C). */
const WORD_CHAR_RE = /[\p{sc=Latin}\p{sc=Greek}\p{sc=Cyrillic}\p{N}]/u;

function optionAt(text: string, options: readonly string[]): number | null {
  const lower = text.toLowerCase();
  let best: number | null = null;
  options.forEach((option, i) => {
    const o = option.normalize('NFC').trim().toLowerCase();
    if (o === '' || !lower.startsWith(o) || WORD_CHAR_RE.test(lower.charAt(o.length))) return;
    if (best === null || o.length > options[best]!.trim().length) best = i;
  });
  return best;
}

/**
 * Reads the chosen option of a multiple-choice (X-CSQA) response. The paper's prompt ends with an opening
 * quote in the assistant turn, so the answer is expected at the very start. The rule:
 * 1. NFC-normalise; remove leading whitespace, quotes, `*`, `_` and opening brackets.
 * 2. An upper-case option letter (A–E for five options) that does not run on into a word (`C`, `C"`, `C)`,
 *    `C: hospital`, `C.`; not `Cat`) is the answer — unless it is followed by a space and then the text of a
 *    *different* option (`A hospital` reads as the article "A" plus option C's text). A lower-case letter
 *    counts only when a bracket, colon or full stop follows (`c)`).
 * 3. Otherwise, the option whose text the response starts with (case-insensitive, whole words; the longest
 *    such option) is the answer.
 * 4. Otherwise there is no answer: `null` (score it as wrong). A letter later in the response is never read.
 */
export function extractChoice(response: string, options: readonly string[]): Choice | null {
  if (!Array.isArray(options) || options.length === 0 || options.length > 26) {
    throw new TasksError('bad-options', `extractChoice needs 1 to 26 options, got ${options?.length}`);
  }
  const letterOf = (i: number) => String.fromCharCode(65 + i);
  const text = response.normalize('NFC').replace(OPENING_RE, '');
  const first = text.charAt(0);
  const next = text.charAt(1);
  const index = first.toUpperCase().charCodeAt(0) - 65;
  const isLetter =
    /^[A-Za-z]$/.test(first) &&
    index < options.length &&
    !WORD_CHAR_RE.test(next) &&
    (first === first.toUpperCase() || /^[)\]:.]$/.test(next));
  if (isLetter) {
    if (/^\s$/.test(next)) {
      const other = optionAt(text.slice(1).trimStart(), options);
      if (other !== null && other !== index)
        return { index: other, letter: letterOf(other), via: 'option-text' };
    }
    return { index, letter: letterOf(index), via: 'letter' };
  }
  const byText = optionAt(text, options);
  return byText === null ? null : { index: byText, letter: letterOf(byText), via: 'option-text' };
}
