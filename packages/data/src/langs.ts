// Language identity for mixes and statistics: `de`, `deu_Latn`, `__label__de` are one language (through the
// language table of @polyglot/lid), shown by its ISO 639-1 code where it has one.
import { normalizeLang } from '@polyglot/lid';

/** How records of one language are grouped (`key`) and shown (`code`). */
export interface LangId {
  /** What comparisons use: the table's group (`zho` for zho_Hans and zho_Hant), or the raw tag. */
  key: string;
  /** Shown in counts and manifests: ISO 639-1 where there is one (`zh`), else ISO 639-3, else the raw tag. */
  code: string;
  /** False when the language table does not know the tag (it is then used as it is). */
  known: boolean;
}

const cache = new Map<string, LangId>();

/** The language of a tag or code (`de`, `deu_Latn`, `__label__de`, `zho_Hant`, …); lenient for unknown tags. */
export function langId(tag: string): LangId {
  let id = cache.get(tag);
  if (!id) {
    try {
      const l = normalizeLang(tag);
      id = { key: l.group, code: groupCode(l.group) ?? l.iso1 ?? l.iso3, known: true };
    } catch {
      const raw = tag.replace(/^__label__/, '');
      id = { key: raw, code: raw, known: false };
    }
    cache.set(tag, id);
  }
  return id;
}

function groupCode(group: string): string | undefined {
  try {
    return normalizeLang(group).iso1;
  } catch {
    return undefined;
  }
}
