// What result file names and model folder names say: test set, language, seed and sampling settings of a run
// file; the languages of a tuning mix.
import path from 'node:path';
import { isLangCode } from './langs.js';

/** The parts of a run file name as the paper writes them (all optional but the test set). */
export interface RunFileName {
  /** `alpaca_eval_instructions_de` */
  testset: string;
  /** The language code at the end of the test set (`de`), or null. */
  lang: string | null;
  /** The prompt template name (`guanaco_prompt`), or null. */
  prompt: string | null;
  seed: number | null;
  topK: number | null;
  topP: number | null;
  temperature: number | null;
  batch: number | null;
  /**
   * For judge outputs (`…-l300-ds42-as42-source-system.jsonl`): items (null for `lall`), data and API seeds
   * (null for `asnone`), judged fields.
   */
  judge: { limit: number | null; dataSeed: number; apiSeed: number | null; fields: string | null } | null;
}

const num = (s: string | undefined) => (s === undefined ? null : Number(s));

/** The language code at the end of a test set name (`…_de`, `…_deu_Latn`), or null. */
export function langOfTestset(testset: string): string | null {
  const parts = testset.split('_');
  if (parts.length >= 3) {
    const flores = `${parts.at(-2)}_${parts.at(-1)}`;
    if (/^[a-z]{3}_[A-Z][a-z]{3}$/.test(flores)) return flores;
  }
  if (parts.length >= 2 && isLangCode(parts.at(-1)!)) return parts.at(-1)!;
  return null;
}

/**
 * Parses `{testset}-none-{prompt}-s{seed}-k{top_k}-p{top_p}-t{temperature}-b{batch}` (with any of `.jsonl`,
 * `.json`, `.eval` after it), and the judge suffix `-l{limit}-ds{seed}-as{seed}[-{fields}]`. Parts that are not
 * there are null.
 */
export function parseRunFileName(file: string): RunFileName {
  let base = path.basename(file);
  for (;;) {
    const stripped = base.replace(/\.(jsonl|json|eval|csv)$/i, '');
    if (stripped === base) break;
    base = stripped;
  }
  let judge: RunFileName['judge'] = null;
  const j = /-l(\d+|all)-ds(\d+)-as(\d+|none)(?:-(.+))?$/.exec(base);
  if (j) {
    judge = {
      limit: j[1] === 'all' ? null : Number(j[1]),
      dataSeed: Number(j[2]),
      apiSeed: j[3] === 'none' ? null : Number(j[3]),
      fields: j[4] ?? null,
    };
    base = base.slice(0, j.index);
  }
  const [testset = base, ...rest] = base.split('-');
  const out: RunFileName = {
    testset,
    lang: langOfTestset(testset),
    prompt: null,
    seed: null,
    topK: null,
    topP: null,
    temperature: null,
    batch: null,
    judge,
  };
  const fields: [RegExp, 'seed' | 'topK' | 'topP' | 'temperature' | 'batch'][] = [
    [/^s(\d+)$/, 'seed'],
    [/^k(-?\d+)$/, 'topK'],
    [/^p(\d*\.?\d+)$/, 'topP'],
    [/^t(\d*\.?\d+)$/, 'temperature'],
    [/^b(\d+)$/, 'batch'],
  ];
  for (const part of rest) {
    const hit = fields.find(([re]) => re.test(part));
    if (hit) out[hit[1]] = num(hit[0].exec(part)![1]);
    else if (part !== 'none' && out.prompt === null) out.prompt = part;
  }
  return out;
}

/**
 * The number of languages in a tuning mix, from its name: `Mono…` 1, `Multi-k` / `multi_k` / `Multik` k, `base`
 * (no tuning) 0; null for other names (`Multi-Guanaco`, custom mixes): give those `n_languages` in `run.json`.
 */
export function languagesInMix(name: string): number | null {
  if (/^(base|untuned|no[-_ ]?tuning)$/i.test(name)) return 0;
  if (/(^|[^a-z])mono(lingual)?([^a-z]|$)/i.test(name)) return 1;
  const m = /(^|[^a-z])multi(lingual)?[-_ ]?(\d+)([^\d]|$)/i.exec(name);
  if (m) return Number(m[3]);
  return null;
}
