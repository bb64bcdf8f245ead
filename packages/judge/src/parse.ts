import { braceSpans } from './braces.js';
import { JudgeError } from './errors.js';

/** The inclusive integer range of valid scores. */
export interface ScoreRange {
  min: number;
  max: number;
}

/** How the score was found: a JSON reply, JSON in a Markdown code fence, JSON inside prose, or plain text. */
export type ParseVia = 'json' | 'fenced-json' | 'embedded-json' | 'text';

export type JudgeParse =
  | { ok: true; score: number; reasoning: string; via: ParseVia }
  | { ok: false; error: string };

/** Throws `JudgeError` `bad-range` unless min < max are integers. */
export function checkRange(range: ScoreRange, where: string): void {
  const { min, max } = range ?? ({} as ScoreRange);
  if (!Number.isInteger(min) || !Number.isInteger(max) || min >= max) {
    throw new JudgeError(
      'bad-range',
      `${where}: the score range must be integers with min < max, got ${shown(min)}..${shown(max)}`,
    );
  }
}

/** A value as a message shows it (objects without a usable toString included). */
function shown(v: unknown): string {
  if (typeof v !== 'object' || v === null) return String(v);
  try {
    return JSON.stringify(v) ?? typeof v;
  } catch {
    return typeof v;
  }
}

function fail(error: string): JudgeParse {
  return { ok: false, error };
}

/** Validates a score read as a string or number; `of` is the scale's maximum if the judge wrote one (`4/6`). */
function checkScore(raw: unknown, range: ScoreRange, of?: number): { score: number } | { error: string } {
  const text = typeof raw === 'string' ? raw.trim() : raw;
  const value =
    typeof text === 'number'
      ? text
      : typeof text === 'string' && /^[+-]?\d+(\.\d+)?$/.test(text)
        ? Number(text)
        : NaN;
  if (!Number.isFinite(value)) return { error: `score ${JSON.stringify(raw)} is not a number` };
  if (!Number.isInteger(value)) return { error: `score ${value} is not an integer` };
  if (of !== undefined && of !== range.max) {
    return { error: `score ${value}/${of} is on another scale than ${range.min}-${range.max}` };
  }
  if (value < range.min || value > range.max) {
    return { error: `score ${value} is outside the range ${range.min}-${range.max}` };
  }
  return { score: value };
}

function field(obj: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : obj[key];
}

function fromObject(obj: Record<string, unknown>, range: ScoreRange, via: ParseVia): JudgeParse {
  const raw = field(obj, 'score');
  if (raw === undefined) return fail(`${via}: no "score" field`);
  const checked = checkScore(raw, range);
  if ('error' in checked) return fail(`${via}: ${checked.error}`);
  const r = field(obj, 'reasoning');
  const reasoning = r === undefined ? '' : typeof r === 'string' ? r : JSON.stringify(r);
  return { ok: true, score: checked.score, reasoning, via };
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The first candidate that parses as a JSON object with a score field. */
function withScore(candidates: Iterable<string>): Record<string, unknown> | undefined {
  for (const c of candidates) {
    const obj = parseObject(c.trim());
    if (obj && field(obj, 'score') !== undefined) return obj;
  }
  return undefined;
}

// Each run of blanks can be taken by one part of a pattern only: `[ \t]*` next to another `[ \t]*` across an
// optional part backtracks polynomially on long runs of spaces (a reply of 800 spaces after "score" took 25 s).
// The blanks after the opening fence are taken atomically (`(?=(…))\1`): otherwise a fence followed by a long run
// of spaces and no closing fence is retried once per way of splitting the spaces with the content (quadratic).
const FENCE_RE = /```(?=([ \t]*))\1(?:(?:json|JSON|javascript|js)(?=([ \t]*))\2)?\r?\n?([\s\S]*?)```/g;
/** `Score: 5`, `**Rating:** 4/6`, `score is 5`, `Score = 5 out of 6` … */
const LABELLED_RE =
  /\b(?:score|rating)\b[ \t]*(?:(?:\*\*|__)[ \t]*)?(?:(?:[:=]|is|of)[ \t]*)?(?:(?:\*\*|__)[ \t]*)?\[?([+-]?\d+(?:\.\d+)?)\]?(?:[ \t]*(?:\/|out of)[ \t]*(\d+))?/gi;
/** `5/6` or `5 out of 6` anywhere, counted only when the denominator is the scale's maximum. */
const FRACTION_RE = /(?<!\d|\d\.)(\d+)[ \t]*(?:\/|out of)[ \t]*(\d+)(?!\d|\.\d)/gi;

function fromText(text: string, range: ScoreRange): JudgeParse {
  let found = [...text.matchAll(LABELLED_RE)].map((m) => ({
    raw: m[1]!,
    of: m[2] ? Number(m[2]) : undefined,
  }));
  if (found.length === 0) {
    found = [...text.matchAll(FRACTION_RE)]
      .filter((m) => Number(m[2]) === range.max)
      .map((m) => ({ raw: m[1]!, of: Number(m[2]) }));
  }
  if (found.length === 0 && /^[+-]?\d+(\.\d+)?$/.test(text)) found = [{ raw: text, of: undefined }];
  if (found.length === 0) return fail('no score found (not JSON, and no "Score: N" in the text)');
  const values = [...new Set(found.map((f) => Number(f.raw)))];
  if (values.length > 1) return fail(`text: ambiguous, found the scores ${values.join(', ')}`);
  const checked = checkScore(found[0]!.raw, range, found[0]!.of);
  if ('error' in checked) return fail(`text: ${checked.error}`);
  return { ok: true, score: checked.score, reasoning: text, via: 'text' };
}

/**
 * Reads a judge's answer. Tried in order: the whole reply as a JSON object (`{"reasoning": str, "score":
 * int}`, keys case-insensitive); a JSON object with a score in a Markdown code fence; one embedded in prose or
 * nested in the reply; text
 * (`Score: 5`, `Rating: 4/6`, `score is 5`, else a fraction `5/6` whose denominator is the maximum, else a bare
 * number). The score may be a number or a numeric string and must be an integer within `[min, max]`; a JSON
 * reply without a score, an out-of-range or non-integer score, a score on another scale (`8/10`) or
 * conflicting scores in text give `{ ok: false, error }` with the reason, so that the item can be recorded as
 * unparseable and skipped (as the paper does). Raises only on a bad range.
 */
export function parseJudgeResponse(text: string, range: ScoreRange): JudgeParse {
  checkRange(range, 'parseJudgeResponse');
  if (typeof text !== 'string') return fail(`expected text, got ${text === null ? 'null' : typeof text}`);
  const trimmed = text.trim();
  if (trimmed === '') return fail('empty response');
  const whole = parseObject(trimmed);
  if (whole && field(whole, 'score') !== undefined) return fromObject(whole, range, 'json');
  const fenced = withScore([...trimmed.matchAll(FENCE_RE)].map((m) => m[3]!));
  if (fenced) return fromObject(fenced, range, 'fenced-json');
  const embedded = withScore(braceSpans(trimmed));
  if (embedded) return fromObject(embedded, range, 'embedded-json');
  if (whole) return fail('json: no "score" field');
  return fromText(trimmed, range);
}
