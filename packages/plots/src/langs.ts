// Language codes in result file names, and how figures label them.

/** ISO 639-1 code → [English name, autonym] for the languages of the paper's test sets and tuning data. */
export const LANGUAGES: Readonly<Record<string, readonly [string, string]>> = {
  ar: ['Arabic', 'العربية'],
  bg: ['Bulgarian', 'български'],
  ca: ['Catalan', 'català'],
  cs: ['Czech', 'čeština'],
  da: ['Danish', 'dansk'],
  de: ['German', 'Deutsch'],
  el: ['Greek', 'Ελληνικά'],
  en: ['English', 'English'],
  es: ['Spanish', 'español'],
  eu: ['Basque', 'euskara'],
  fa: ['Persian', 'فارسی'],
  fi: ['Finnish', 'suomi'],
  fr: ['French', 'français'],
  he: ['Hebrew', 'עברית'],
  hi: ['Hindi', 'हिन्दी'],
  hu: ['Hungarian', 'magyar'],
  id: ['Indonesian', 'Bahasa Indonesia'],
  is: ['Icelandic', 'íslenska'],
  it: ['Italian', 'italiano'],
  ja: ['Japanese', '日本語'],
  ko: ['Korean', '한국어'],
  nl: ['Dutch', 'Nederlands'],
  no: ['Norwegian', 'norsk'],
  nb: ['Norwegian Bokmål', 'norsk bokmål'],
  pl: ['Polish', 'polski'],
  pt: ['Portuguese', 'português'],
  ro: ['Romanian', 'română'],
  ru: ['Russian', 'русский'],
  sv: ['Swedish', 'svenska'],
  sw: ['Swahili', 'Kiswahili'],
  th: ['Thai', 'ไทย'],
  tr: ['Turkish', 'Türkçe'],
  uk: ['Ukrainian', 'українська'],
  ur: ['Urdu', 'اردو'],
  vi: ['Vietnamese', 'Tiếng Việt'],
  zh: ['Chinese', '中文'],
};

/** How figures label languages: the code (`de`, default, as the paper), English name or autonym (`Deutsch`). */
export type LangLabels = 'code' | 'name' | 'autonym';

/** The label of a language code; unknown codes are shown as they are. */
export function langLabel(code: string, labels: LangLabels = 'code'): string {
  if (labels === 'code') return code;
  const entry = LANGUAGES[code];
  if (!entry) return code;
  return labels === 'name' ? entry[0] : entry[1];
}

/** Every ISO 639-1 code (two letters). */
const ISO639_1 = new Set(
  (
    'aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee ' +
    'el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is ' +
    'it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms ' +
    'mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk ' +
    'sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi ' +
    'yo za zh zu'
  ).split(' '),
);

/**
 * Whether a name-part is a language code: an ISO 639-1 code (`de`), a few three-letter ones the paper's data
 * uses (`fil`, `yue`, `ast`, `ckb`), or a FLORES/OpenLID label such as `deu_Latn`. Not `mc` or `qa`.
 */
export function isLangCode(s: string): boolean {
  return ISO639_1.has(s) || /^[a-z]{3}_[A-Z][a-z]{3}$/.test(s) || /^(fil|yue|ast|ckb)$/.test(s);
}

/**
 * Order of languages in figures and tables: English first, then the order given, then alphabetical by code.
 */
export function sortLangs(langs: Iterable<string>, order?: readonly string[]): string[] {
  const set = [...new Set(langs)];
  const rank = (l: string) => {
    const i = order?.indexOf(l) ?? -1;
    if (i >= 0) return i - 1e6;
    return l === 'en' ? -1 : 0;
  };
  return set.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}
