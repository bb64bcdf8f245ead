import { normalizeLang } from '@polyglot/lid';

/**
 * Articles removed per language (keyed by the language group of `@polyglot/lid`), after the official MLQA
 * evaluation script: English a/an/the (as SQuAD v1.1), Spanish, German and Vietnamese word lists, and the
 * Arabic definite article ال, which is stripped as a word prefix. Other languages (Chinese, Hindi, …) have
 * no list, as in MLQA.
 */
export const ARTICLES: Readonly<Record<string, readonly string[]>> = {
  eng: ['a', 'an', 'the'],
  spa: ['el', 'la', 'los', 'las', 'un', 'una', 'unos', 'unas'],
  deu: ['der', 'die', 'das', 'den', 'dem', 'des', 'ein', 'eine', 'einer', 'eines', 'einem', 'einen'],
  vie: ['của', 'là', 'cái', 'chiếc', 'những'],
};
const ARABIC_ARTICLE = 'ال';

/** Unicode punctuation (`\p{P}`) plus every ASCII punctuation character (as Python's `string.punctuation`). */
const PUNCT_RE = /[\p{P}!-/:-@[-`{-~]/gu;
/** Scripts written without spaces between words: each character (with its combining marks) is one token. */
const CHAR_TOKEN_RE =
  /([\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}\p{sc=Thai}\p{sc=Lao}\p{sc=Khmer}\p{sc=Myanmar}]\p{M}*)/u;

function articlesFor(lang: string): { words: ReadonlySet<string>; arabic: boolean } {
  const group = normalizeLang(lang).group;
  return { words: new Set(ARTICLES[group] ?? []), arabic: group === 'ara' };
}

/**
 * The tokens SQuAD-style metrics compare: the text NFC-normalised and lower-cased; punctuation removed
 * (Unicode `\p{P}` and ASCII punctuation, as MLQA); split at whitespace; every character of a script written
 * without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) made a token of its own, whatever the
 * language (MLQA does this for Chinese only); then the language's articles dropped (see {@link ARTICLES}).
 * `lang` is any code `@polyglot/lid` knows (`de`, `deu_Latn`, …); unknown codes raise.
 */
export function answerTokens(text: string, lang = 'en'): string[] {
  const { words, arabic } = articlesFor(lang);
  const tokens: string[] = [];
  const cleaned = text.normalize('NFC').toLowerCase().replace(PUNCT_RE, '');
  for (const word of cleaned.split(/\s+/)) {
    for (let piece of word.split(CHAR_TOKEN_RE)) {
      if (arabic && piece.startsWith(ARABIC_ARTICLE)) piece = piece.slice(ARABIC_ARTICLE.length);
      if (piece !== '' && !words.has(piece)) tokens.push(piece);
    }
  }
  return tokens;
}

/** The normalised answer string: {@link answerTokens} joined by single spaces (SQuAD's `normalize_answer`). */
export function normalizeAnswer(text: string, lang = 'en'): string {
  return answerTokens(text, lang).join(' ');
}
