// The language-mix builder: the paper's recipe (Mono, Multi-k, leave-one-out, all) and general strategies
// (per-language quotas, proportional, temperature sampling, uniform), seeded and reproducible, refusing
// clearly when a quota cannot be met.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { sha256File, writeFileAtomic } from '@polyglot/lid';
import { DataError } from './errors.js';
import { type JsonObject, readJsonl, writeJsonlAtomic } from './jsonl.js';
import { langId } from './langs.js';
import { readPlacedRecords } from './records.js';
import { checkSeed, Rng } from './rng.js';

/** The paper's order of added languages: Multi-k adds the first k−1 of these to English. */
export const PAPER_LANGUAGE_ORDER: readonly string[] = ['es', 'ru', 'de', 'zh', 'fr'];
/** The paper's mix size (conversations). */
export const PAPER_TOTAL = 3200;
/** The paper's count of each added language. */
export const PAPER_PER_LANGUAGE = 200;

/** How many records of which languages a mix takes. */
export type MixStrategy =
  | {
      kind: 'paper';
      /**
       * `mono` (English only), `multi-K` (English plus the first K−1 languages of `order`; `multi-1` is
       * mono), `loo-XX` (English plus every language of `order` but XX), or `all` (every input record, the
       * paper's Multi-Guanaco, whatever its tag or confidence).
       */
      mix: string;
      /** Size of the mix (default 3,200). English fills what the other languages leave. */
      total?: number;
      /** Records of each added language (default 200). */
      perLanguage?: number;
      /** Order in which languages are added (default es, ru, de, zh, fr). */
      order?: readonly string[];
      /** The base language (default en). */
      english?: string;
    }
  | {
      kind: 'quota';
      /** Exact count per language. */
      quotas: Readonly<Record<string, number>>;
      /** A language that fills up to `total` (it must not have a quota). */
      fill?: string;
      /** With `fill`: the mix size; without: must equal the sum of the quotas where given. */
      total?: number;
    }
  | { kind: 'proportional'; total: number; languages?: readonly string[] }
  | {
      kind: 'temperature';
      total: number;
      /** Weights are (n_l / N)^alpha: 1 is proportional, 0 uniform, in between up-weights small languages. */
      alpha: number;
      languages?: readonly string[];
    }
  | { kind: 'uniform'; total: number; languages?: readonly string[] };

export interface MixOptions {
  /** Seed of every random choice (a non-negative integer). */
  seed: number;
  /** Field with the language tag (default `lang`). */
  langField?: string;
  /** Field with the tag's confidence (default `lang_prob`). */
  probField?: string;
  /**
   * Leave out records whose confidence is below this (the paper: 0.8). Records without a confidence field
   * (languages declared rather than identified) are kept.
   */
  minConfidence?: number;
  /** Allow a language to give more records than it has (each record then repeats); default false. */
  replacement?: boolean;
  /** Order of the output: `shuffled` (default, seeded), `input` (file order) or `language` (grouped). */
  order?: 'shuffled' | 'input' | 'language';
  /** A name for the mix in messages and the manifest (default: derived from the strategy). */
  name?: string;
}

/** One language of a plan. */
export interface PlannedLanguage {
  /** The language as shown (`en`, `zh`). */
  lang: string;
  count: number;
  available: number;
}

/** What a mix took and from what. */
export interface MixResult {
  name: string;
  strategy: MixStrategy;
  seed: number;
  records: JsonObject[];
  /** Index of each output record in the input. */
  indices: number[];
  plan: PlannedLanguage[];
  /** Records taken per language. */
  counts: Record<string, number>;
  /** Usable records per language in the input (after the confidence filter). */
  available: Record<string, number>;
  excluded: {
    /** Records without a language tag. */
    untagged: number;
    /** Records left out by `minConfidence`, per language. */
    belowConfidence: Record<string, number>;
  };
  options: {
    langField: string;
    probField: string;
    minConfidence: number | null;
    replacement: boolean;
    order: string;
  };
}

interface Pool {
  key: string;
  code: string;
  indices: number[];
}

function badRecipe(message: string): DataError {
  return new DataError('bad-recipe', message);
}

function checkCount(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw badRecipe(`${what} must be a non-negative integer, got ${n}`);
  }
  return n;
}

/** A readable default name for a strategy (`multi-3`, `quota`, `temperature-0.3`, …). */
export function mixName(strategy: MixStrategy): string {
  switch (strategy.kind) {
    case 'paper':
      return strategy.mix;
    case 'temperature':
      return `temperature-${strategy.alpha}`;
    default:
      return strategy.kind;
  }
}

/** The names of the paper's mixes for an order of k languages: mono, multi-2 … multi-(k+1). */
export function paperMixNames(order: readonly string[] = PAPER_LANGUAGE_ORDER): string[] {
  return ['mono', ...order.map((_, i) => `multi-${i + 2}`)];
}

/** Largest-remainder rounding of `total` over weights (ties: the earlier entry). */
function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) return weights.map(() => 0);
  const exact = weights.map((w) => (total * w) / sum);
  const counts = exact.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, i) => ({ i, frac: x - Math.floor(x) }))
    .sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    counts[i]!++;
    left--;
  }
  return counts;
}

/**
 * The count per language a strategy asks for, given what is available (`lang` → usable records). Pure: no
 * records are drawn. Raises `bad-recipe` for an impossible recipe (e.g. quotas above the total); shortfalls
 * against what is available are checked by {@link buildMix}.
 */
export function planMix(available: ReadonlyMap<string, number>, strategy: MixStrategy): PlannedLanguage[] {
  const have = (code: string) => available.get(langId(code).code) ?? 0;
  const entry = (code: string, count: number): PlannedLanguage => ({
    lang: langId(code).code,
    count,
    available: have(code),
  });
  const pickLanguages = (langs: readonly string[] | undefined): string[] => {
    if (langs?.length) return dedupe(langs.map((l) => langId(l).code));
    return [...available.entries()]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([code]) => code);
  };

  switch (strategy.kind) {
    case 'paper': {
      const total = checkCount(strategy.total ?? PAPER_TOTAL, 'total');
      const per = checkCount(strategy.perLanguage ?? PAPER_PER_LANGUAGE, 'per-language count');
      const order = dedupe((strategy.order ?? PAPER_LANGUAGE_ORDER).map((l) => langId(l).code));
      const english = langId(strategy.english ?? 'en').code;
      if (order.includes(english)) {
        throw badRecipe(
          `the language order (${order.join(', ')}) must not include the base language ${english}`,
        );
      }
      const mix = strategy.mix.trim().toLowerCase();
      let added: string[];
      if (mix === 'mono') added = [];
      else if (/^multi-\d+$/.test(mix)) {
        const k = Number(mix.slice(6));
        if (k < 1 || k > order.length + 1) {
          throw badRecipe(
            `${mix}: k must be between 1 and ${order.length + 1} for the order ${order.join(', ')}`,
          );
        }
        added = order.slice(0, k - 1);
      } else if (/^loo-.+$/.test(mix)) {
        const out = langId(mix.slice(4)).code;
        if (!order.includes(out)) {
          throw badRecipe(
            `${mix}: ${out} is not in the language order (${order.join(', ')}), nothing to leave out`,
          );
        }
        added = order.filter((l) => l !== out);
      } else if (mix === 'all' || mix === 'guanaco') {
        return [...available.entries()].map(([lang, n]) => ({ lang, count: n, available: n }));
      } else {
        throw badRecipe(
          `unknown paper mix ${JSON.stringify(strategy.mix)}: use mono, multi-K (K = 1…${order.length + 1}), loo-LANG (LANG in ${order.join(', ')}) or all`,
        );
      }
      const base = total - per * added.length;
      if (base < 0) {
        throw badRecipe(
          `${mix}: ${added.length} languages × ${per} = ${per * added.length} records exceed the total ${total}`,
        );
      }
      return [entry(english, base), ...added.map((l) => entry(l, per))];
    }
    case 'quota': {
      const quotas = Object.entries(strategy.quotas ?? {});
      if (quotas.length === 0 && !strategy.fill) throw badRecipe('quota: give at least one language quota');
      const plan = quotas.map(([l, n]) => entry(l, checkCount(n, `quota of ${l}`)));
      const codes = plan.map((p) => p.lang);
      if (new Set(codes).size !== codes.length)
        throw badRecipe(`quota: a language is given twice (${codes.join(', ')})`);
      const sum = plan.reduce((a, p) => a + p.count, 0);
      if (strategy.fill) {
        const fill = langId(strategy.fill).code;
        if (codes.includes(fill))
          throw badRecipe(`quota: the fill language ${fill} must not also have a quota`);
        if (strategy.total === undefined) throw badRecipe('quota: a fill language needs a total');
        const total = checkCount(strategy.total, 'total');
        if (sum > total) throw badRecipe(`quota: the quotas add up to ${sum}, more than the total ${total}`);
        return [entry(fill, total - sum), ...plan];
      }
      if (strategy.total !== undefined && checkCount(strategy.total, 'total') !== sum) {
        throw badRecipe(
          `quota: the quotas add up to ${sum}, not the total ${strategy.total} (give a fill language)`,
        );
      }
      return plan;
    }
    case 'proportional':
    case 'uniform':
    case 'temperature': {
      const total = checkCount(strategy.total, 'total');
      const langs = pickLanguages(strategy.languages);
      if (langs.length === 0)
        throw badRecipe(`${strategy.kind}: no languages to mix (the input has no tagged records)`);
      let weights: number[];
      if (strategy.kind === 'uniform') weights = langs.map(() => 1);
      else if (strategy.kind === 'proportional') weights = langs.map((l) => have(l));
      else {
        const alpha = strategy.alpha;
        if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < 0) {
          throw badRecipe(
            `temperature: alpha must be a number ≥ 0 (1 = proportional, 0 = uniform), got ${alpha}`,
          );
        }
        const n = langs.reduce((a, l) => a + have(l), 0);
        weights = langs.map((l) => (have(l) > 0 ? (have(l) / n) ** alpha : 0));
      }
      if (weights.every((w) => w === 0)) {
        throw badRecipe(
          `${strategy.kind}: none of the languages ${langs.join(', ')} has records in the input`,
        );
      }
      const counts = apportion(total, weights);
      return langs.map((l, i) => entry(l, counts[i]!));
    }
    default:
      throw badRecipe(`unknown strategy ${JSON.stringify((strategy as { kind: unknown }).kind)}`);
  }
}

function dedupe<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/**
 * Builds a mix from records: groups them by language (`langField`, compared through the language table, so
 * `de` and `deu_Latn` are one language), leaves out unconfident ones, plans the counts ({@link planMix}),
 * checks that every quota can be met (`quota-unmet` lists every shortfall), and draws each language's
 * records with its own seeded stream — so a language's picks do not depend on the other languages, and a
 * smaller count takes a prefix of a larger one (the paper's mixes nest: Multi-3's English ⊂ Multi-2's).
 */
export function buildMix(
  records: readonly JsonObject[],
  strategy: MixStrategy,
  options: MixOptions,
): MixResult {
  const seed = checkSeed(options.seed);
  const langField = options.langField ?? 'lang';
  const probField = options.probField ?? 'lang_prob';
  const minConfidence = options.minConfidence ?? null;
  if (minConfidence !== null && (!(minConfidence >= 0) || minConfidence > 1)) {
    throw badRecipe(`the minimum confidence must be in [0, 1], got ${minConfidence}`);
  }
  const replacement = options.replacement ?? false;
  const order = options.order ?? 'shuffled';
  const name = options.name ?? mixName(strategy);

  const pools = new Map<string, Pool>();
  const below: Record<string, number> = {};
  let untagged = 0;
  const allIndices: number[] = [];
  records.forEach((rec, i) => {
    allIndices.push(i);
    const tag = rec[langField];
    if (typeof tag !== 'string' || tag.trim() === '') {
      untagged++;
      return;
    }
    const id = langId(tag.trim());
    const prob = rec[probField];
    if (minConfidence !== null && typeof prob === 'number' && prob < minConfidence) {
      below[id.code] = (below[id.code] ?? 0) + 1;
      return;
    }
    let pool = pools.get(id.code);
    if (!pool) {
      pool = { key: id.key, code: id.code, indices: [] };
      pools.set(id.code, pool);
    }
    pool.indices.push(i);
  });
  const available = new Map([...pools.values()].map((p) => [p.code, p.indices.length]));
  const isAll = strategy.kind === 'paper' && /^(all|guanaco)$/i.test(strategy.mix.trim());
  const plan = planMix(available, strategy);

  if (!isAll) {
    const short = plan.filter((p) => p.count > p.available && (!replacement || p.available === 0));
    if (short.length) {
      const lines = short.map((p) => {
        const extra = below[p.lang]
          ? ` (${below[p.lang]} more are below the confidence ${minConfidence})`
          : '';
        return `${p.lang}: needs ${p.count}, the input has ${p.available}${extra}`;
      });
      throw new DataError(
        'quota-unmet',
        `mix ${name}: cannot meet the quota — ${lines.join('; ')}. Lower the counts (--total, --per-lang, --quota), add data${
          replacement ? '' : ', or allow repeats (--replacement)'
        }`,
      );
    }
  }

  let picked: number[];
  if (isAll) {
    picked = allIndices; // the paper's Multi-Guanaco: the whole set, whatever the tags say
  } else {
    picked = [];
    for (const p of plan) {
      if (p.count === 0) continue;
      const pool = pools.get(p.lang)!;
      const perm = new Rng(seed, `lang:${pool.key}`).shuffle([...pool.indices]);
      for (let j = 0; j < p.count; j++) picked.push(perm[j % perm.length]!);
    }
  }
  if (order === 'shuffled') new Rng(seed, 'order').shuffle(picked);
  else if (order === 'input') picked.sort((a, b) => a - b);

  const counts: Record<string, number> = {};
  for (const i of picked) {
    const tag = records[i]![langField];
    const code = typeof tag === 'string' && tag.trim() !== '' ? langId(tag.trim()).code : 'untagged';
    counts[code] = (counts[code] ?? 0) + 1;
  }
  return {
    name,
    strategy,
    seed,
    records: picked.map((i) => records[i]!),
    indices: picked,
    plan,
    counts: sortedRecord(counts),
    available: sortedRecord(Object.fromEntries(available)),
    excluded: { untagged, belowConfidence: sortedRecord(below) },
    options: { langField, probField, minConfidence, replacement, order },
  };
}

function sortedRecord(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

/** An input file of a mix and its hash. */
export interface MixSource {
  path: string;
  sha256: string;
  records: number;
}

/** The records of the input files, in order, with their hashes (JSON Lines, or `.json` arrays). */
export async function readMixSources(
  inputs: readonly string[],
): Promise<{ records: JsonObject[]; sources: MixSource[] }> {
  if (inputs.length === 0) throw badRecipe('give at least one input file');
  const records: JsonObject[] = [];
  const sources: MixSource[] = [];
  for (const file of inputs) {
    const before = records.length;
    if (/\.jsonl$/i.test(file)) for await (const { value } of readJsonl(file)) records.push(value);
    else for (const { value } of await readPlacedRecords(file)) records.push(value);
    sources.push({ path: file, sha256: (await sha256File(file)).sha256, records: records.length - before });
  }
  return { records, sources };
}

/** The manifest written next to a mix. */
export interface MixManifest {
  format: 'polyglot-mix/1';
  name: string;
  strategy: MixStrategy;
  seed: number;
  total: number;
  counts: Record<string, number>;
  plan: PlannedLanguage[];
  available: Record<string, number>;
  excluded: MixResult['excluded'];
  options: MixResult['options'];
  sources: MixSource[];
  output: { path: string; sha256: string; records: number };
}

/** Where {@link writeMix} puts the manifest of `out`: `x.jsonl` → `x.manifest.json`. */
export function manifestPathFor(out: string): string {
  return path.join(path.dirname(out), `${path.basename(out).replace(/\.jsonl?$/i, '')}.manifest.json`);
}

/**
 * Writes a mix as JSON Lines (atomically) and its manifest (`x.manifest.json`: strategy, seed, per-language
 * counts, what was left out, the sources' and the output's sha256). Nothing in it depends on the clock, so
 * the same inputs and seed give byte-identical files.
 */
export async function writeMix(
  out: string,
  result: MixResult,
  sources: readonly MixSource[] = [],
): Promise<{ path: string; manifest: string; manifestData: MixManifest }> {
  await fsp.mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const n = await writeJsonlAtomic(out, result.records);
  const manifestData: MixManifest = {
    format: 'polyglot-mix/1',
    name: result.name,
    strategy: result.strategy,
    seed: result.seed,
    total: n,
    counts: result.counts,
    plan: result.plan,
    available: result.available,
    excluded: result.excluded,
    options: result.options,
    sources: [...sources],
    output: { path: path.basename(out), sha256: (await sha256File(out)).sha256, records: n },
  };
  const manifest = manifestPathFor(out);
  await writeFileAtomic(manifest, `${JSON.stringify(manifestData, null, 2)}\n`);
  return { path: out, manifest, manifestData };
}
