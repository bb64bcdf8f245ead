// Run files: what generation writes, one JSON line per prompt `{prompt, system, finish_reason, source, secs
// [, reference]}`, named `{testset}-{context}-{prompt}-s{seed}-k{top_k}-p{top_p}-t{temperature}-b{batch}.jsonl`
// as the paper names them (`context` is `none` there; names without it are read too).
import path from 'node:path';
import { DataError } from './errors.js';
import { readJsonl, writeJsonlAtomic } from './jsonl.js';
import { optionalNumber, optionalString, stringField } from './records.js';

export interface RunRecord {
  /** The prompt as given to the model. */
  prompt: string;
  /** The model's response (null where none was produced). */
  system: string | null;
  finish_reason?: string;
  /** The prompt's source text (the instruction before templating). */
  source?: string;
  secs?: number;
  reference?: unknown;
  [key: string]: unknown;
}

/** Reads a run file; errors name file:line (a record without `prompt`, a `system` that is not text). */
export async function readRunFile(file: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for await (const { value, line } of readJsonl(file)) {
    const where = `${file}:${line}`;
    stringField(value, 'prompt', where);
    const system = value.system;
    if (system !== null && typeof system !== 'string') {
      throw new DataError(
        'bad-field',
        `${where}: field "system" (the response) must be a string or null, got ${system === undefined ? 'nothing' : typeof system}`,
      );
    }
    optionalString(value, 'finish_reason', where);
    optionalString(value, 'source', where);
    optionalNumber(value, 'secs', where);
    out.push(value as RunRecord);
  }
  return out;
}

/** Writes a run file atomically. */
export function writeRunFile(file: string, records: Iterable<RunRecord> | AsyncIterable<RunRecord>) {
  return writeJsonlAtomic(file, records);
}

/** The parts of a run file's name. */
export interface RunFileName {
  /** Test set, e.g. `alpaca_eval_instructions_de`. */
  testset: string;
  /** `none` in the paper's names; null where the name has no such part. */
  context: string | null;
  /** Prompt template name, e.g. `guanaco_prompt`. */
  prompt: string;
  seed: number;
  topK: number;
  topP: number;
  temperature: number;
  batch: number;
  /** Whatever follows (`l300-ds42-as42-source-system` for judge outputs), or null. */
  suffix: string | null;
  /** The extension: `jsonl`, `json` (generation arguments) or `eval`. */
  ext: string;
}

const NAME_RE =
  /^(?<testset>[^-]+)-(?:(?<context>[^-]+)-)?(?<prompt>[^-]+)-s(?<seed>\d+)-k(?<k>-?\d+)-p(?<p>\d+(?:\.\d+)?)-t(?<t>\d+(?:\.\d+)?)-b(?<b>\d+)(?:-(?<suffix>[^/]+?))?\.(?<ext>jsonl|json|eval|csv)$/;

/** Parses a run file name (a path is fine); null where it is not one. */
export function parseRunFileName(file: string): RunFileName | null {
  const m = NAME_RE.exec(path.basename(file));
  if (!m?.groups) return null;
  const g = m.groups;
  return {
    testset: g.testset!,
    context: g.context ?? null,
    prompt: g.prompt!,
    seed: Number(g.seed),
    topK: Number(g.k),
    topP: Number(g.p),
    temperature: Number(g.t),
    batch: Number(g.b),
    suffix: g.suffix ?? null,
    ext: g.ext!,
  };
}

/** The paper's file name for a run (`context` defaults to `none`, `ext` to `jsonl`). */
export function formatRunFileName(
  parts: Omit<RunFileName, 'context' | 'suffix' | 'ext'> & {
    context?: string | null;
    suffix?: string | null;
    ext?: string;
  },
): string {
  for (const key of ['testset', 'prompt'] as const) {
    if (!parts[key] || parts[key].includes('-') || parts[key].includes('/')) {
      throw new DataError(
        'bad-run-name',
        `run file name: ${key} ${JSON.stringify(parts[key])} must be non-empty, without "-" or "/"`,
      );
    }
  }
  const context = parts.context === undefined ? 'none' : parts.context;
  const head = [parts.testset, ...(context === null ? [] : [context]), parts.prompt].join('-');
  const tail = `s${parts.seed}-k${parts.topK}-p${parts.topP}-t${parts.temperature}-b${parts.batch}`;
  return `${head}-${tail}${parts.suffix ? `-${parts.suffix}` : ''}.${parts.ext ?? 'jsonl'}`;
}
