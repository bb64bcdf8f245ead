import { readFileSync } from 'node:fs';
import path from 'node:path';
import { JudgeError } from './errors.js';
import { checkPairwiseRubric, HELPFULNESS_PAIRWISE, type PairwiseRubric } from './pairwise.js';
import { checkRubric, HELPFULNESS_RUBRIC, type Rubric, templatePlaceholders } from './rubric.js';

/** A rubric read from a file: one for single answers or one for comparisons. */
export type LoadedRubric = { kind: 'single'; rubric: Rubric } | { kind: 'pairwise'; rubric: PairwiseRubric };

/** The line that separates the system and the user template in a text rubric. */
export const USER_MARKER = '=== user ===';

function fail(file: string, message: string): never {
  throw new JudgeError('bad-rubric', `${file}: ${message}`);
}

/** `key: value` lines between `---` lines at the top of a text file. */
function frontMatter(file: string, text: string): { meta: Record<string, string>; body: string } {
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/.exec(text);
  if (!m) return { meta: {}, body: text };
  const meta: Record<string, string> = {};
  m[1]!.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trim().startsWith('#')) return;
    const kv = /^\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (!kv)
      fail(`${file}:${i + 2}`, `expected "key: value" in the front matter, got ${JSON.stringify(line)}`);
    meta[kv[1]!.toLowerCase()] = kv[2]!.replace(/^(["'])(.*)\1$/, '$2');
  });
  return { meta, body: text.slice(m[0].length) };
}

function intField(file: string, v: unknown, name: string): number {
  const n = typeof v === 'string' && /^[+-]?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    fail(file, `"${name}" must be an integer (the ${name === 'min' ? 'lowest' : 'highest'} score)`);
  }
  return n;
}

function fromFields(file: string, f: Record<string, unknown>, fallbackName: string): LoadedRubric {
  const kind = f.kind ?? 'single';
  if (kind !== 'single' && kind !== 'pairwise')
    fail(file, `"kind" must be "single" or "pairwise", got ${JSON.stringify(kind)}`);
  const name = f.name ?? fallbackName;
  if (typeof name !== 'string') fail(file, '"name" must be a string');
  for (const k of ['criteria', 'system', 'user'] as const) {
    if (f[k] !== undefined && typeof f[k] !== 'string') fail(file, `"${k}" must be a string`);
  }
  const criteria = (f.criteria as string | undefined) ?? '';
  const system = f.system as string | undefined;
  const user = f.user as string | undefined;
  try {
    if (kind === 'pairwise') {
      const rubric: PairwiseRubric = { name, criteria };
      if (system !== undefined) rubric.system = system;
      if (user !== undefined) rubric.user = user;
      checkPairwiseRubric(rubric);
      return { kind, rubric };
    }
    if (f.min === undefined || f.max === undefined)
      fail(file, 'a rubric needs "min" and "max" (its score range)');
    const rubric: Rubric = {
      name,
      min: intField(file, f.min, 'min'),
      max: intField(file, f.max, 'max'),
      criteria,
    };
    if (system !== undefined) rubric.system = system;
    if (user !== undefined) rubric.user = user;
    checkRubric(rubric);
    return { kind, rubric };
  } catch (e) {
    if (e instanceof JudgeError && !e.message.startsWith(file)) {
      throw new JudgeError(e.code, `${file}: ${e.message}`);
    }
    throw e;
  }
}

/**
 * Reads a rubric file, so that any prompt (the paper's own, for one) can drive the judge:
 * - JSON: `{"name", "min", "max", "criteria"}` (the built-in prompt around the criteria), optionally
 *   `"system"` / `"user"` templates that replace it, and `"kind": "pairwise"` for comparisons (no range; templates
 *   use `{{response_a}}` / `{{response_b}}`).
 * - Text or Markdown: optional front matter (`---` / `name: …` / `min: 1` / `max: 6` / `kind: …` / `---`), then
 *   either the criteria (no `{{…}}` placeholders in it) or a full prompt template: the system message, a line
 *   `=== user ===`, the user message (without that line, the whole text is the user message and no system
 *   message is sent).
 * Placeholders: `{{instruction}}`, `{{response}}` (pairwise: `{{response_a}}`, `{{response_b}}`), `{{criteria}}`,
 * `{{name}}`, `{{min}}`, `{{max}}`. Errors are `JudgeError` `bad-rubric` naming the file.
 */
export function loadRubric(file: string): LoadedRubric {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new JudgeError(
      'bad-rubric',
      `${file}: cannot read the rubric (${code === 'ENOENT' ? 'no such file' : (e as Error).message}); give a file or "helpfulness"`,
    );
  }
  const base = path.basename(file).replace(/\.[^.]+$/, '');
  if (/\.json$/i.test(file)) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      fail(file, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'expected a JSON object');
    return fromFields(file, raw as Record<string, unknown>, base);
  }
  const { meta, body } = frontMatter(file, text);
  const fields: Record<string, unknown> = { ...meta };
  const trimmed = body.trim();
  if (templatePlaceholders(trimmed).length === 0) {
    fields.criteria = trimmed;
  } else {
    const lines = body.split(/\r?\n/);
    const at = lines.findIndex((l) => l.trim() === USER_MARKER);
    if (at < 0) {
      fields.system = '';
      fields.user = trimmed;
    } else {
      fields.system = lines.slice(0, at).join('\n').trim();
      fields.user = lines
        .slice(at + 1)
        .join('\n')
        .trim();
    }
    fields.criteria = meta.criteria ?? '';
  }
  return fromFields(file, fields, base);
}

/** `helpfulness` (the built-in rubric) or a rubric file. */
export function resolveRubric(spec: string | undefined, kind: 'single' | 'pairwise'): LoadedRubric {
  if (spec === undefined || spec === 'helpfulness') {
    return kind === 'single' ? { kind, rubric: HELPFULNESS_RUBRIC } : { kind, rubric: HELPFULNESS_PAIRWISE };
  }
  const loaded = loadRubric(spec);
  if (loaded.kind !== kind) {
    throw new JudgeError(
      'bad-rubric',
      `${spec}: a ${loaded.kind} rubric, but this command needs a ${kind} one (set "kind" in the file)`,
    );
  }
  return loaded;
}
