import { braceSpans } from './braces.js';
import { JudgeError } from './errors.js';
import type { JudgeMessage } from './rubric.js';
import { renderTemplate, templatePlaceholders } from './rubric.js';

/** A rubric for comparing two responses to the same task. */
export interface PairwiseRubric {
  name: string;
  /** What makes one response better than the other, shown to the judge verbatim. */
  criteria: string;
  /**
   * The system message as a template (`{{name}}`, `{{criteria}}`, `{{instruction}}`, `{{response_a}}`,
   * `{{response_b}}`); `''` sends none. Default: built-in instructions around `criteria`.
   */
  system?: string;
  /** The user message as a template; default `[Task]…[Response A]…[Response B]…`. */
  user?: string;
}

/** The default pairwise rubric: which response is more helpful, in the terms of the helpfulness rubric. */
export const HELPFULNESS_PAIRWISE: PairwiseRubric = {
  name: 'helpfulness',
  criteria:
    'The more helpful response answers the task correctly and completely, is clear, detailed and insightful, and ' +
    'is well organised (with headings or lists where they help). A response that ignores or misreads the task, is ' +
    'wrong or incoherent, or refuses without good reason is not helpful.',
};

const PAIR_VARS = ['name', 'criteria', 'instruction', 'response_a', 'response_b'] as const;
const DEFAULT_PAIR_USER =
  '[Task]\n{{instruction}}\n\n[Response A]\n{{response_a}}\n\n[Response B]\n{{response_b}}';

/** Throws `JudgeError` `bad-rubric` unless the pairwise rubric is usable. */
export function checkPairwiseRubric(rubric: PairwiseRubric): void {
  if (typeof rubric?.name !== 'string' || rubric.name.trim() === '') {
    throw new JudgeError('bad-rubric', 'pairwise rubric: name must be a non-empty string');
  }
  const custom = typeof rubric.system === 'string';
  if (typeof rubric.criteria !== 'string' || (!custom && rubric.criteria.trim() === '')) {
    throw new JudgeError('bad-rubric', `pairwise rubric ${rubric.name}: criteria must be a non-empty string`);
  }
  const used = new Set<string>();
  for (const [which, t] of Object.entries({ system: rubric.system, user: rubric.user })) {
    if (t === undefined) continue;
    for (const p of templatePlaceholders(t)) {
      if (!(PAIR_VARS as readonly string[]).includes(p)) {
        throw new JudgeError(
          'bad-rubric',
          `pairwise rubric ${rubric.name}: the ${which} template uses {{${p}}}, which is unknown; use ${PAIR_VARS.map((v) => `{{${v}}}`).join(', ')}`,
        );
      }
      used.add(p);
    }
  }
  if (rubric.user !== undefined) {
    const missing = ['instruction', 'response_a', 'response_b'].filter((v) => !used.has(v));
    if (missing.length > 0) {
      throw new JudgeError(
        'bad-rubric',
        `pairwise rubric ${rubric.name}: the templates never show ${missing.map((m) => `{{${m}}}`).join(' and ')} to the judge`,
      );
    }
  }
}

/**
 * The messages that ask a judge which of two responses is better: `first` is shown as Response A, `second` as
 * Response B. The answer format is a JSON object `{"reasoning": str, "winner": "A" | "B" | "tie"}`.
 */
export function buildPairwiseMessages(
  instruction: string,
  first: string,
  second: string,
  rubric: PairwiseRubric = HELPFULNESS_PAIRWISE,
): JudgeMessage[] {
  checkPairwiseRubric(rubric);
  if (typeof instruction !== 'string' || instruction.trim() === '') {
    throw new JudgeError('bad-item', 'buildPairwiseMessages: the instruction must be a non-empty string');
  }
  if (typeof first !== 'string' || typeof second !== 'string') {
    throw new JudgeError('bad-item', 'buildPairwiseMessages: both responses must be strings');
  }
  const vars = {
    name: rubric.name,
    criteria: rubric.criteria,
    instruction,
    response_a: first,
    response_b: second,
  };
  const system =
    rubric.system === undefined
      ? [
          'You are an impartial judge of AI assistant responses. You will see a task given to an assistant and two ' +
            `responses, A and B. Decide which response is better in ${rubric.name}.`,
          '',
          rubric.criteria,
          '',
          'The task and the responses may be in any language. Do not let the order of the responses, their length or ' +
            'the names A and B influence you. Think about both responses first, then decide; answer "tie" only when ' +
            'neither is better.',
          'Reply with a JSON object and nothing else: {"reasoning": "<a few sentences>", "winner": "A" | "B" | "tie"}',
        ].join('\n')
      : renderTemplate(rubric.system, vars);
  const user = renderTemplate(rubric.user ?? DEFAULT_PAIR_USER, vars);
  if (system === '') return [{ role: 'user', content: user }];
  return [
    { role: 'system', content: system },
    { role: 'user', content: user },
  ];
}

/** Which position won: the response shown first (A), second (B), or neither. */
export type Verdict = 'A' | 'B' | 'tie';

export type PairwiseParse =
  | { ok: true; winner: Verdict; reasoning: string; via: 'json' | 'fenced-json' | 'embedded-json' | 'text' }
  | { ok: false; error: string };

function verdictOf(raw: unknown): Verdict | undefined {
  if (typeof raw !== 'string') return undefined;
  const v = raw
    .trim()
    .replace(/^\[\[|\]\]$/g, '')
    .replace(/^(?:response|assistant|answer)\s+/i, '')
    .trim()
    .toLowerCase();
  if (v === 'a') return 'A';
  if (v === 'b') return 'B';
  if (v === 'tie' || v === 'c' || v === 'draw' || v === 'equal' || v === 'neither' || v === 'both')
    return 'tie';
  return undefined;
}

function objectOf(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function winnerField(obj: Record<string, unknown>): unknown {
  const key = Object.keys(obj).find((k) =>
    ['winner', 'verdict', 'better', 'choice'].includes(k.toLowerCase()),
  );
  return key === undefined ? undefined : obj[key];
}

function reasoningField(obj: Record<string, unknown>): string {
  const key = Object.keys(obj).find((k) => k.toLowerCase() === 'reasoning');
  const r = key === undefined ? undefined : obj[key];
  return r === undefined ? '' : typeof r === 'string' ? r : JSON.stringify(r);
}

/**
 * Reads a pairwise verdict: a JSON object with `winner` (`"A"`, `"B"`, `"tie"`; also `"Response A"`, `"[[A]]"`),
 * whole, in a code fence or inside prose; else text: MT-Bench's `[[A]]` / `[[B]]` / `[[C]]` (tie), or
 * `Winner: A`. Anything else, or conflicting verdicts in text, is `{ ok: false, error }`.
 */
export function parsePairwiseResponse(text: string): PairwiseParse {
  if (typeof text !== 'string' || text.trim() === '') return { ok: false, error: 'empty response' };
  const t = text.trim();
  const candidates: { via: 'json' | 'fenced-json' | 'embedded-json'; text: string }[] = [
    { via: 'json', text: t },
  ];
  // (each run of blanks can be taken by one part of a pattern only: see parse.ts)
  for (const m of t.matchAll(/```(?=([ \t]*))\1(?:(?:json|JSON)(?=([ \t]*))\2)?\r?\n?([\s\S]*?)```/g)) {
    candidates.push({ via: 'fenced-json', text: m[3]!.trim() });
  }
  for (const m of t.matchAll(/\{[^{}]*\}/g)) candidates.push({ via: 'embedded-json', text: m[0] });
  // then objects whose strings hold braces (`{"reasoning": "uses {x}", "winner": "A"}`), outer ones first
  const spans = braceSpans(t);
  for (const c of withLater(candidates, spans)) {
    const obj = objectOf(c.text);
    if (!obj) continue;
    const raw = winnerField(obj);
    if (raw === undefined) continue;
    const winner = verdictOf(raw);
    if (!winner)
      return { ok: false, error: `${c.via}: winner ${JSON.stringify(raw)} is not "A", "B" or "tie"` };
    return { ok: true, winner, reasoning: reasoningField(obj), via: c.via };
  }
  const found = new Set<Verdict>();
  for (const m of t.matchAll(/\[\[\s*([ABC])\s*\]\]/g)) found.add(m[1] === 'C' ? 'tie' : (m[1] as Verdict));
  for (const m of t.matchAll(
    /\b(?:winner|verdict|better response)\b\s*(?:(?:is|:)\s*)?(?:\*+\s*)?(?:response\s+)?(A|B|tie)\b/gi,
  )) {
    found.add(verdictOf(m[1]!)!);
  }
  if (found.size === 1) return { ok: true, winner: [...found][0]!, reasoning: t, via: 'text' };
  if (found.size > 1)
    return { ok: false, error: `text: ambiguous, found the verdicts ${[...found].join(', ')}` };
  return { ok: false, error: 'no verdict found (not JSON with "winner", no [[A]]/[[B]] or "Winner: A")' };
}

/** The candidates, then (lazily: only when none of them had a verdict) the embedded spans. */
function* withLater(
  candidates: { via: 'json' | 'fenced-json' | 'embedded-json'; text: string }[],
  spans: Iterable<string>,
): Generator<{ via: 'json' | 'fenced-json' | 'embedded-json'; text: string }> {
  yield* candidates;
  for (const text of spans) yield { via: 'embedded-json', text };
}

/** The outcome for the two systems compared: `a`, `b`, or `tie`. */
export type Outcome = 'a' | 'b' | 'tie';

/**
 * Combines the verdicts of the two orders (A shown first, then B shown first) into one outcome: the verdicts
 * agree (after mapping positions back to systems) → that outcome; they disagree → `tie`, and the item counts
 * as inconsistent (a sign of position bias).
 */
export function combineVerdicts(
  abOrder: Verdict,
  baOrder: Verdict,
): { outcome: Outcome; consistent: boolean } {
  const first: Outcome = abOrder === 'A' ? 'a' : abOrder === 'B' ? 'b' : 'tie';
  const second: Outcome = baOrder === 'A' ? 'b' : baOrder === 'B' ? 'a' : 'tie';
  return first === second ? { outcome: first, consistent: true } : { outcome: 'tie', consistent: false };
}
