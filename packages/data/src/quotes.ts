// The translated AlpacaEval prompts of the paper are wrapped in double quotes (the translation step quoted
// them and the original code, by a bug, left the quotes in the prompt). Both variants are available: keep
// them to reproduce the paper, strip them for clean prompts.

/** Opening → closing quotation marks that may wrap a whole prompt. */
const PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['"', '"'],
  ['“', '”'],
  ['„', '“'],
  ['„', '”'],
  ['”', '”'],
  ['«', '»'],
  ['»', '«'],
  ['「', '」'],
  ['『', '』'],
  ['＂', '＂'],
];

/** How prompts wrapped in quotes are treated: `keep` (as the paper did) or `strip`. */
export type QuoteMode = 'keep' | 'strip';

/**
 * Removes one pair of quotation marks that wraps the whole text (after trimming surrounding whitespace),
 * e.g. `"Hvað er þetta?"\n` → `Hvað er þetta?`. Text that is not wrapped is returned unchanged (untrimmed).
 * Caveat: a prompt that merely starts and ends with two separately quoted phrases (`"a" or "b"`) also loses
 * its outer marks.
 */
export function stripSurroundingQuotes(text: string): string {
  const t = text.trim();
  for (const [open, close] of PAIRS) {
    if (t.length >= open.length + close.length + 1 && t.startsWith(open) && t.endsWith(close)) {
      return t.slice(open.length, t.length - close.length).trim();
    }
  }
  return text;
}

/** True when {@link stripSurroundingQuotes} would change the text. */
export function hasSurroundingQuotes(text: string): boolean {
  return stripSurroundingQuotes(text) !== text;
}

/** Applies a {@link QuoteMode}. */
export function applyQuoteMode(text: string, mode: QuoteMode): string {
  return mode === 'strip' ? stripSurroundingQuotes(text) : text;
}
