import { LidError } from './errors.js';
import { LANGUAGE_TABLE } from './table.js';

/** The label conventions of the language-ID models we read. */
export type LabelScheme = 'lid176' | 'openlid' | 'glotlid';
export const LABEL_SCHEMES: readonly LabelScheme[] = ['lid176', 'openlid', 'glotlid'];

/** A table entry: one language variety, its codes and its labels in each LID model's convention. */
export interface LanguageSpec {
  /** ISO 639-3 code (for lid.176's `bh` and `nah`, the ISO 639-2/5 collective code). */
  iso3: string;
  /** ISO 15924 script code, e.g. `Latn`, `Cyrl`, `Hans`. */
  script: string;
  /** English name. */
  name: string;
  /** ISO 639-1 code, where the language has one. */
  iso1?: string;
  /** lid.176 code (the label without `__label__`), where lid.176 knows the language. */
  lid176?: string;
  /** OpenLID (lid201) label without `__label__`, e.g. `deu_Latn`. */
  openlid?: string;
  /** GlotLID label without `__label__`, e.g. `cmn_Hani`. */
  glotlid?: string;
  /** What {@link sameLanguage} compares; defaults to `iso3` (the Chinese varieties share `zho`). */
  group?: string;
  /** Further 2- or 3-letter codes that name this variety (e.g. macrolanguage codes: `nor` for Bokmål). */
  aliases?: readonly string[];
}

/** A resolved language: what {@link normalizeLang} returns. */
export interface Language {
  iso1?: string;
  iso3: string;
  script: string;
  /** `iso3_Script`, the variety's canonical id (also the OpenLID label where OpenLID has the variety). */
  key: string;
  /** The identity {@link sameLanguage} compares. */
  group: string;
  name: string;
}

interface Entry extends Language {
  spec: LanguageSpec;
}

const entries: Entry[] = [];
/** ISO 639-1/639-3 codes and aliases → entries carrying them, in table order (the first is the default). */
let byCode = new Map<string, Entry[]>();
/** lid.176 codes → entry (first wins). */
let byLid176 = new Map<string, Entry>();
/** `iso3_Script` keys and OpenLID/GlotLID labels → entry (keys first, then labels, first wins). */
let byLabel = new Map<string, Entry>();

const LABEL_RE = /^[a-z]{3}_[A-Z][a-z]{3}$/;

function validate(spec: LanguageSpec): void {
  const bad = (what: string) => {
    throw new LidError('bad-language-spec', `registerLanguage: ${what} (in ${JSON.stringify(spec)})`);
  };
  if (typeof spec !== 'object' || spec === null) bad('expected an object');
  if (!/^[a-z]{3}$/.test(spec.iso3 ?? '')) bad(`iso3 must be three lower-case letters, got ${spec.iso3}`);
  if (!/^[A-Z][a-z]{3}$/.test(spec.script ?? ''))
    bad(`script must be an ISO 15924 code like Latn, got ${spec.script}`);
  if (typeof spec.name !== 'string' || spec.name.trim() === '') bad('name must be a non-empty string');
  if (spec.iso1 !== undefined && !/^[a-z]{2}$/.test(spec.iso1)) bad(`iso1 must be two lower-case letters`);
  if (spec.lid176 !== undefined && !/^[a-z]{2,3}$/.test(spec.lid176)) bad(`lid176 must be a 2-3 letter code`);
  if (spec.group !== undefined && !/^[a-z]{3}$/.test(spec.group))
    bad(`group must be three lower-case letters`);
  for (const s of ['openlid', 'glotlid'] as const) {
    if (spec[s] !== undefined && !LABEL_RE.test(spec[s])) bad(`${s} must look like deu_Latn, got ${spec[s]}`);
  }
  for (const a of spec.aliases ?? []) if (!/^[a-z]{2,3}$/.test(a)) bad(`alias ${a} is not a 2-3 letter code`);
}

function toEntry(spec: LanguageSpec): Entry {
  const e: Entry = {
    iso3: spec.iso3,
    script: spec.script,
    key: `${spec.iso3}_${spec.script}`,
    group: spec.group ?? spec.iso3,
    name: spec.name,
    spec,
  };
  if (spec.iso1) e.iso1 = spec.iso1;
  return e;
}

function rebuildIndexes(): void {
  byCode = new Map();
  byLid176 = new Map();
  byLabel = new Map();
  const add = <V>(map: Map<string, V>, k: string, v: V) => {
    if (!map.has(k)) map.set(k, v);
  };
  for (const e of entries) {
    for (const code of new Set([e.iso1, e.iso3, ...(e.spec.aliases ?? [])])) {
      if (!code) continue;
      const list = byCode.get(code) ?? [];
      list.push(e);
      byCode.set(code, list);
    }
    if (e.spec.lid176) add(byLid176, e.spec.lid176, e);
    add(byLabel, e.key, e);
  }
  for (const e of entries) {
    if (e.spec.openlid) add(byLabel, e.spec.openlid, e);
    if (e.spec.glotlid) add(byLabel, e.spec.glotlid, e);
  }
}

function parseTable(text: string): LanguageSpec[] {
  const specs: LanguageSpec[] = [];
  for (const row of text.split('\n')) {
    if (row.trim() === '') continue;
    const [fields, name] = row.split('|');
    const [key, iso1, lid176, openlid, glotlid, group, aliases] = fields!.trim().split(/\s+/);
    const [iso3, script] = key!.split('_');
    const opt = (v: string | undefined) => (v === undefined || v === '-' ? undefined : v);
    const label = (v: string | undefined) => (v === '=' ? key : opt(v));
    const spec: LanguageSpec = { iso3: iso3!, script: script!, name: name!.trim() };
    const set = <K extends keyof LanguageSpec>(k: K, v: LanguageSpec[K] | undefined) => {
      if (v !== undefined) spec[k] = v;
    };
    set('iso1', opt(iso1));
    set('lid176', opt(lid176));
    set('openlid', label(openlid));
    set('glotlid', label(glotlid));
    set('group', opt(group));
    set('aliases', opt(aliases)?.split(','));
    specs.push(spec);
  }
  return specs;
}

function describe(e: Entry): Language {
  const { spec: _spec, ...lang } = e;
  return { ...lang };
}

/**
 * Adds a language variety to the table (or, with `replace`, replaces the entry with the same `iso3_Script`
 * key), so that its codes and labels resolve everywhere. Codes already taken by earlier entries keep their
 * meaning; the new entry is always reachable by its key and labels.
 */
export function registerLanguage(spec: LanguageSpec, options: { replace?: boolean } = {}): Language {
  validate(spec);
  const entry = toEntry({ ...spec, aliases: spec.aliases ? [...spec.aliases] : undefined });
  const at = entries.findIndex((e) => e.key === entry.key);
  if (at >= 0 && !options.replace) {
    throw new LidError(
      'duplicate-language',
      `registerLanguage: ${entry.key} is already in the language table (${entries[at]!.name}); pass { replace: true } to replace it`,
    );
  }
  if (at >= 0) entries[at] = entry;
  else entries.push(entry);
  rebuildIndexes();
  return describe(entry);
}

for (const spec of parseTable(LANGUAGE_TABLE)) {
  validate(spec);
  entries.push(toEntry(spec));
}
rebuildIndexes();

const CODE_RE = /^([a-z]{2,3})(?:[-_]([a-z]{4}))?(?:[-_](?:[a-z]{2}|\d{3}))?$/i;

function unknown(input: string, why: string): LidError {
  return new LidError(
    'unknown-language',
    `unknown language ${JSON.stringify(input)}: ${why}; known are ISO 639-1/639-3 codes, lid.176, OpenLID and GlotLID ` +
      `labels of ${entries.length} varieties (e.g. de, deu, deu_Latn, __label__de); add others with registerLanguage()`,
  );
}

function resolve(input: unknown): Entry {
  if (typeof input !== 'string') throw unknown(String(input), 'not a string');
  const raw = input.trim();
  const isLabel = raw.startsWith('__label__');
  const code = isLabel ? raw.slice('__label__'.length) : raw;
  const m = CODE_RE.exec(code);
  if (!m) throw unknown(input, 'not a language code or fastText label');
  const lang = m[1]!.toLowerCase();
  if (m[2]) {
    const script = m[2][0]!.toUpperCase() + m[2].slice(1).toLowerCase();
    const found = byLabel.get(`${lang}_${script}`) ?? byCode.get(lang)?.find((e) => e.script === script);
    if (!found) throw unknown(input, `no variety ${lang} in script ${script} in the table`);
    return found;
  }
  // A bare `__label__xx` is lid.176's convention (OpenLID and GlotLID labels carry a script); elsewhere ISO
  // 639 codes come first (so `als` is Tosk Albanian, while lid.176's `__label__als` is Alemannic).
  const found = isLabel
    ? (byLid176.get(lang) ?? byCode.get(lang)?.[0])
    : (byCode.get(lang)?.[0] ?? byLid176.get(lang));
  if (!found) throw unknown(input, 'not in the table');
  return found;
}

/**
 * Resolves any code or label: ISO 639-1 (`de`), ISO 639-3 (`deu`), `iso3_Script` / BCP-47-like forms
 * (`deu_Latn`, `zh-Hant`; a region subtag such as `-CH` is ignored), fastText labels of lid.176
 * (`__label__de`), OpenLID (`__label__deu_Latn`) and GlotLID (`__label__cmn_Hani`). Unknown codes raise a
 * `LidError` with code `unknown-language` — never a silent miss.
 */
export function normalizeLang(codeOrLabel: string): Language {
  return describe(resolve(codeOrLabel));
}

/**
 * True when both codes name the same language, across conventions: `de` / `deu_Latn` / `__label__de`;
 * `zh` / `zho_Hans` / `zho_Hant` / `cmn_Hani`; `no` / `nb` / `nob_Latn` (but not Nynorsk `nn`). Scripts of
 * one language count as the same language. Unknown codes raise.
 */
export function sameLanguage(a: string, b: string): boolean {
  return resolve(a).group === resolve(b).group;
}

/**
 * The fastText label (`__label__…`) of a language in a model's convention. Where the variety itself has no
 * label in that scheme, another variety of the same language that has one is used (same script first):
 * `toLabel('zho_Hant', 'lid176')` is `__label__zh`. Raises `no-label` where the scheme lacks the language.
 */
export function toLabel(code: string, scheme: LabelScheme): string {
  if (!LABEL_SCHEMES.includes(scheme)) {
    throw new LidError(
      'bad-scheme',
      `unknown label scheme ${JSON.stringify(scheme)}; use ${LABEL_SCHEMES.join(', ')}`,
    );
  }
  const e = resolve(code);
  const candidates = [e, ...entries.filter((o) => o.group === e.group && o.script === e.script)];
  candidates.push(...entries.filter((o) => o.group === e.group));
  const label = candidates.find((c) => c.spec[scheme])?.spec[scheme];
  if (!label) {
    throw new LidError(
      'no-label',
      `${e.name} (${e.key}) has no ${scheme} label in the table; register one with registerLanguage({ …, ${scheme}: '…' }, { replace: true })`,
    );
  }
  return `__label__${label}`;
}

/** Every variety in the table, in table order. */
export function listLanguages(): Language[] {
  return entries.map(describe);
}
