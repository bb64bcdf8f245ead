/**
 * lm-evaluation-harness's response filters: a named pipeline of steps turns a document's responses (one per
 * repeat) into the value that is scored. Supported steps: `regex`, `take_first`, `remove_whitespace`, `lowercase`,
 * `uppercase`, `strip`, `majority_vote`.
 */
import { TasksError } from './errors.js';

export interface FilterStep {
  function: string;
  [arg: string]: unknown;
}

export interface FilterPipeline {
  name: string;
  filter: FilterStep[];
}

/** The pipeline lm-evaluation-harness uses where a task has none: take the first response. */
export const NO_FILTER: FilterPipeline = { name: 'none', filter: [{ function: 'take_first' }] };

export const FILTER_FUNCTIONS = [
  'regex',
  'take_first',
  'remove_whitespace',
  'lowercase',
  'uppercase',
  'strip',
  'majority_vote',
] as const;

/** Checks a pipeline (from YAML): names known steps, compiles regexes. Raises `bad-filter` naming `where`. */
export function checkFilterPipeline(p: unknown, where: string): FilterPipeline {
  const bad = (why: string): never => {
    throw new TasksError('bad-filter', `${where}: ${why}`);
  };
  if (typeof p !== 'object' || p === null)
    return bad('a filter_list entry must be a mapping with name and filter');
  const { name, filter } = p as { name?: unknown; filter?: unknown };
  if (typeof name !== 'string' || name === '') bad('a filter pipeline needs a name');
  if (!Array.isArray(filter) || filter.length === 0) bad(`filter pipeline "${name}" needs a list of steps`);
  for (const step of filter as unknown[]) {
    const fn = (step as { function?: unknown })?.function;
    if (typeof fn !== 'string' || !(FILTER_FUNCTIONS as readonly string[]).includes(fn)) {
      bad(
        `filter pipeline "${name}": unknown function ${JSON.stringify(fn)}; supported: ${FILTER_FUNCTIONS.join(', ')}`,
      );
    }
    if (fn === 'regex') {
      const pattern = (step as { regex_pattern?: unknown }).regex_pattern;
      if (pattern !== undefined && typeof pattern !== 'string')
        bad(`filter "${name}": regex_pattern must be a string`);
      try {
        pythonRegex(typeof pattern === 'string' ? pattern : DEFAULT_REGEX);
      } catch (e) {
        bad(`filter "${name}": bad regex_pattern: ${(e as Error).message}`);
      }
    }
  }
  return { name: name as string, filter: filter as FilterStep[] };
}

/** lm-evaluation-harness's RegexFilter default (GSM8K's answer line). */
const DEFAULT_REGEX = '#### (\\-?[0-9\\.\\,]+)';

/** A Python `re` pattern as a JavaScript RegExp (Unicode; Python's inline `(?i)` flag at the start honoured). */
function pythonRegex(pattern: string, flags = 'gu'): RegExp {
  let f = flags;
  let p = pattern;
  const inline = /^\(\?([aiLmsux]+)\)/.exec(p);
  if (inline) {
    p = p.slice(inline[0].length);
    for (const c of inline[1]!) if ('ims'.includes(c) && !f.includes(c)) f += c;
  }
  // Python's named groups (?P<name>…) and backreferences (?P=name).
  p = p.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    return new RegExp(p, f);
  } catch {
    // Patterns with escapes that are fine in Python but invalid under the `u` flag (e.g. `\-`).
    return new RegExp(p, f.replace('u', ''));
  }
}

/** Python's `re.findall`: whole matches without groups, the group with one, tuples of groups with several. */
function findall(re: RegExp, text: string): (string | string[])[] {
  const out: (string | string[])[] = [];
  for (const m of text.matchAll(re)) {
    if (m.length === 1) out.push(m[0]);
    else if (m.length === 2) out.push(m[1] ?? '');
    else out.push(m.slice(1).map((g) => g ?? ''));
  }
  return out;
}

function regexStep(step: FilterStep, resp: unknown): unknown {
  if (typeof resp !== 'string') return resp;
  const pattern = typeof step.regex_pattern === 'string' ? step.regex_pattern : DEFAULT_REGEX;
  const groupSelect = typeof step.group_select === 'number' ? step.group_select : 0;
  const fallback = typeof step.fallback === 'string' ? step.fallback : '[invalid]';
  const matches = findall(pythonRegex(pattern), resp);
  if (matches.length === 0) return fallback;
  const at = groupSelect < 0 ? matches.length + groupSelect : groupSelect;
  let m = matches[at];
  if (m === undefined) return fallback;
  if (Array.isArray(m)) {
    const nonEmpty = m.filter((g) => g !== '');
    m = nonEmpty.length > 0 ? nonEmpty[0]! : fallback;
  }
  return (m as string).trim();
}

/**
 * Runs a pipeline over one document's responses (one per repeat; the runner has one) and returns the filtered
 * value: after `take_first` a single value, else the list.
 */
export function applyFilterPipeline(pipeline: FilterPipeline, responses: readonly unknown[]): unknown {
  let values: unknown[] = [...responses];
  let single = false;
  for (const step of pipeline.filter) {
    switch (step.function) {
      case 'take_first':
        values = values.slice(0, 1);
        single = true;
        break;
      case 'regex':
        values = values.map((v) => regexStep(step, v));
        break;
      case 'remove_whitespace':
        values = values.map((v) => (typeof v === 'string' ? v.replace(/^\s+/, '') : v));
        break;
      case 'strip':
        values = values.map((v) => (typeof v === 'string' ? v.trim() : v));
        break;
      case 'lowercase':
        values = values.map((v) => (typeof v === 'string' ? v.toLowerCase() : v));
        break;
      case 'uppercase':
        values = values.map((v) => (typeof v === 'string' ? v.toUpperCase() : v));
        break;
      case 'majority_vote': {
        const counts = new Map<string, { v: unknown; n: number }>();
        for (const v of values) {
          const k = JSON.stringify(v);
          const c = counts.get(k);
          if (c) c.n++;
          else counts.set(k, { v, n: 1 });
        }
        let best: { v: unknown; n: number } | null = null;
        for (const c of counts.values()) if (!best || c.n > best.n) best = c;
        values = best ? [best.v] : [];
        break;
      }
      default:
        throw new TasksError('bad-filter', `filter "${pipeline.name}": unknown function ${step.function}`);
    }
  }
  return single ? values[0] : values;
}
