import { JudgeError } from './errors.js';
import { checkRange, type ScoreRange } from './parse.js';

/** A scoring rubric: the scale and what each score means. */
export interface Rubric extends ScoreRange {
  name: string;
  /** What each score means, shown to the judge verbatim (may be empty when `system` is given). */
  criteria: string;
  /**
   * The system message as a template (see {@link renderTemplate}: `{{name}}`, `{{min}}`, `{{max}}`,
   * `{{criteria}}`, `{{instruction}}`, `{{response}}`); `''` sends no system message. Default: the built-in
   * judge instructions around `criteria`.
   */
  system?: string;
  /** The user message as a template; default `[Task]\n{{instruction}}\n\n[Response]\n{{response}}`. */
  user?: string;
}

/**
 * The default rubric: helpfulness on six points, in the spirit of the paper's judge (1 = not helpful …
 * 6 = highly helpful: complete, detailed, insightful and well organised).
 */
export const HELPFULNESS_RUBRIC: Rubric = {
  name: 'helpfulness',
  min: 1,
  max: 6,
  criteria: [
    '1 - Not helpful: the response ignores or misreads the task, is wrong or incoherent, or refuses without good reason.',
    '2 - Slightly helpful: it touches on the task, but is mostly wrong, off-topic or too vague to use.',
    '3 - Somewhat helpful: it addresses part of the task, with clear mistakes, gaps or confusing passages.',
    '4 - Helpful: it answers the task correctly on the whole, but lacks detail or depth, or is loosely organised.',
    '5 - Very helpful: it is correct and complete, clearly explained, with at most minor flaws.',
    '6 - Highly helpful: it is complete, detailed and insightful, and well organised (with headings or lists where ' +
      'they help); it would be hard to improve.',
  ].join('\n'),
};

export interface JudgeMessage {
  role: 'system' | 'user';
  content: string;
}

const PLACEHOLDER_RE = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;

/** The placeholders a template uses, in order of first use. */
export function templatePlaceholders(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER_RE)].map((m) => m[1]!))];
}

/**
 * Fills `{{name}}` placeholders (spaces inside the braces allowed) with `vars`; the values are inserted as they
 * are (no further expansion). Throws `JudgeError` `bad-rubric` for a placeholder without a value.
 */
export function renderTemplate(template: string, vars: Record<string, string | number>): string {
  return template.replace(PLACEHOLDER_RE, (_, name: string) => {
    if (!Object.hasOwn(vars, name)) {
      throw new JudgeError(
        'bad-rubric',
        `template placeholder {{${name}}} is unknown; use ${Object.keys(vars)
          .map((k) => `{{${k}}}`)
          .join(', ')}`,
      );
    }
    return String(vars[name]);
  });
}

function checkTemplates(
  where: string,
  templates: { system?: string; user?: string },
  allowed: readonly string[],
  required: readonly string[],
): void {
  const used = new Set<string>();
  for (const [which, t] of Object.entries(templates)) {
    if (t === undefined) continue;
    if (typeof t !== 'string') throw new JudgeError('bad-rubric', `${where}: "${which}" must be a string`);
    for (const p of templatePlaceholders(t)) {
      if (!allowed.includes(p)) {
        throw new JudgeError(
          'bad-rubric',
          `${where}: the ${which} template uses {{${p}}}, which is unknown; use ${allowed.map((a) => `{{${a}}}`).join(', ')}`,
        );
      }
      used.add(p);
    }
  }
  if (templates.user !== undefined) {
    const missing = required.filter((r) => !used.has(r));
    if (missing.length > 0) {
      throw new JudgeError(
        'bad-rubric',
        `${where}: the templates never show ${missing.map((m) => `{{${m}}}`).join(' and ')} to the judge`,
      );
    }
  }
}

const SINGLE_VARS = ['name', 'min', 'max', 'criteria', 'instruction', 'response'] as const;

/** Throws `JudgeError` `bad-rubric` / `bad-range` unless the rubric is usable. */
export function checkRubric(rubric: Rubric): void {
  if (typeof rubric?.name !== 'string' || rubric.name.trim() === '') {
    throw new JudgeError('bad-rubric', 'rubric: name must be a non-empty string');
  }
  checkRange(rubric, `rubric ${rubric.name}`);
  const custom = typeof rubric.system === 'string';
  if (typeof rubric.criteria !== 'string' || (!custom && rubric.criteria.trim() === '')) {
    throw new JudgeError('bad-rubric', `rubric ${rubric.name}: criteria must be a non-empty string`);
  }
  checkTemplates(`rubric ${rubric.name}`, { system: rubric.system, user: rubric.user }, SINGLE_VARS, [
    'instruction',
    'response',
  ]);
}

/** The built-in system message around a rubric's criteria (single-answer grading). */
function defaultSystem(rubric: Rubric): string {
  return [
    'You are an impartial judge of AI assistant responses. You will see a task given to an assistant and the ' +
      `assistant's response. Rate the ${rubric.name} of the response on a scale from ${rubric.min} to ${rubric.max}:`,
    '',
    rubric.criteria,
    '',
    'The task and the response may be in any language. Judge the content, not the length: a long response is not ' +
      'better for being long. Think about the response first, then decide on the score.',
    `Reply with a JSON object and nothing else: {"reasoning": "<a few sentences>", "score": <an integer from ${rubric.min} to ${rubric.max}>}`,
  ].join('\n');
}

const DEFAULT_USER = '[Task]\n{{instruction}}\n\n[Response]\n{{response}}';

/**
 * The chat messages that ask a judge model to score one response: a system message with the rubric and the
 * required answer format (a JSON object `{"reasoning": str, "score": int}`, which `parseJudgeResponse` reads),
 * and a user message with the task and the response. Send them with temperature 0 (and JSON mode where the
 * endpoint has one). An empty response is allowed (it should score low); an empty instruction is not.
 */
export function buildJudgeMessages(
  instruction: string,
  response: string,
  rubric: Rubric = HELPFULNESS_RUBRIC,
): JudgeMessage[] {
  checkRubric(rubric);
  if (typeof instruction !== 'string' || instruction.trim() === '') {
    throw new JudgeError('bad-item', 'buildJudgeMessages: the instruction must be a non-empty string');
  }
  if (typeof response !== 'string') {
    throw new JudgeError(
      'bad-item',
      `buildJudgeMessages: the response must be a string, got ${typeof response}`,
    );
  }
  const vars = {
    name: rubric.name,
    min: rubric.min,
    max: rubric.max,
    criteria: rubric.criteria,
    instruction,
    response,
  };
  const system = rubric.system === undefined ? defaultSystem(rubric) : renderTemplate(rubric.system, vars);
  const user = renderTemplate(rubric.user ?? DEFAULT_USER, vars);
  if (system === '') return [{ role: 'user', content: user }];
  return [
    { role: 'system', content: system },
    { role: 'user', content: user },
  ];
}
