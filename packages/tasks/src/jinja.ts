/**
 * Jinja for task definitions (`doc_to_text`, `doc_to_target`, `doc_to_choice`, prompt templates), rendered the
 * way lm-evaluation-harness renders them: strict (reading a variable the document does not have is an error),
 * the source's trailing newline kept, and values that templates print as lists (`{{ [a, b] }}`) read back as
 * Python literals.
 */
import * as jinja from '@huggingface/jinja';
import { TasksError } from './errors.js';

/*
 * The parts of @huggingface/jinja used here. Its bundled .d.ts files import each other without file extensions,
 * which NodeNext resolution cannot follow, so TypeScript would see `any`; these declarations restore the types.
 */
interface JinjaToken {
  type: string;
  value: string;
}
interface Program {
  type: 'Program';
}
interface JinjaEnvironment {
  variables: Map<string, unknown>;
  set(name: string, value: unknown): unknown;
}
const { Environment, Interpreter, parse, tokenize } = jinja as unknown as {
  Environment: new (parent?: JinjaEnvironment) => JinjaEnvironment;
  Interpreter: new (env: JinjaEnvironment) => { run(program: Program): { value: unknown } };
  tokenize(source: string, options?: { trim_blocks?: boolean; lstrip_blocks?: boolean }): JinjaToken[];
  parse(tokens: JinjaToken[]): Program;
};

const GLOBALS = { true: true, false: false, none: null, True: true, False: false, None: null };

/** Root scope that records names looked up and not found (undefined variables: StrictUndefined). */
class RecordingMap<K, V> extends Map<K, V> {
  readonly missing = new Set<K>();
  override has(key: K): boolean {
    const found = super.has(key);
    if (!found) this.missing.add(key);
    return found;
  }
}

const cache = new Map<string, Program>();

function compile(source: string, where: string): Program {
  let program = cache.get(source);
  if (!program) {
    try {
      program = parse(tokenize(source));
    } catch (e) {
      throw new TasksError('template-syntax', `${where}: Jinja syntax error: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (cache.size > 256) cache.clear();
    cache.set(source, program);
  }
  return program;
}

/** Whether a string holds Jinja markup (`{{`, `{%` or `{#`). */
export function isJinja(text: string): boolean {
  return /\{\{|\{%|\{#/.test(text);
}

/**
 * Renders Jinja `source` with `vars` (a document's fields). Reading a variable that is not there raises
 * `template-undefined` naming it and `where` (a task and field, e.g. `xnli_de: doc_to_text`). A trailing newline
 * of the source is kept (lm-evaluation-harness renders with `keep_trailing_newline=True`).
 */
export function renderJinja(source: string, vars: Record<string, unknown>, where = '<template>'): string {
  const program = compile(source, where);
  const globals = new Environment();
  for (const [k, v] of Object.entries(GLOBALS)) globals.set(k, v);
  const recorder = new RecordingMap(globals.variables);
  globals.variables = recorder;
  const env = new Environment(globals);
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) env.set(k, v);
  let out: string;
  try {
    out = String(new Interpreter(env).run(program).value);
  } catch (e) {
    throw new TasksError('template-render', `${where}: cannot render: ${(e as Error).message}`, { cause: e });
  }
  if (recorder.missing.size > 0) {
    const names = [...recorder.missing].map((n) => `"${n}"`).join(', ');
    const fields = Object.keys(vars).slice(0, 20).join(', ') || 'none';
    throw new TasksError(
      'template-undefined',
      `${where}: undefined variable ${names}; the document has the fields ${fields}`,
    );
  }
  // @huggingface/jinja drops one trailing newline of the source, as jinja2 does by default.
  if (source.endsWith('\n')) out += '\n';
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Python literals (what `ast.literal_eval` reads): lm-evaluation-harness reads a rendered doc_to_choice such as
// "['a', 'b']" with it. Jinja here prints lists as JSON ("["a", "b"]"), which is also a Python literal.

/** Lists, tuples and dicts nested deeper than this are refused (`bad-literal`). */
const MAX_LITERAL_DEPTH = 1000;

/**
 * Parses a Python literal: strings ('…', "…", with backslash escapes), numbers, True/False/None, lists, tuples
 * and dicts. Raises `bad-literal` naming `where`.
 */
export function parsePythonLiteral(text: string, where = '<literal>'): unknown {
  let i = 0;
  const fail = (why: string): never => {
    throw new TasksError(
      'bad-literal',
      `${where}: cannot read ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)} as a Python literal: ${why} at character ${i}`,
    );
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  // nesting depth: literals come from rendered templates (the data), so recursion is bounded
  let depth = 0;
  const nested = <T>(parse: () => T): T => {
    if (++depth > MAX_LITERAL_DEPTH) fail(`nested deeper than ${MAX_LITERAL_DEPTH} levels`);
    const v = parse();
    depth--;
    return v;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === undefined) return fail('unexpected end');
    if (c === '[' || c === '(') return nested(() => seq(c === '[' ? ']' : ')'));
    if (c === '{') return nested(dict);
    if (c === '"' || c === "'") return str();
    const m = /^(?:True|False|None|true|false|null)\b/.exec(text.slice(i));
    if (m) {
      i += m[0].length;
      return m[0] === 'True' || m[0] === 'true' ? true : m[0] === 'False' || m[0] === 'false' ? false : null;
    }
    const num = /^[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)/.exec(text.slice(i));
    if (num) {
      i += num[0].length;
      return Number(num[0].replace(/_/g, ''));
    }
    return fail(`unexpected ${JSON.stringify(c)}`);
  };
  const seq = (close: string): unknown[] => {
    i++;
    const out: unknown[] = [];
    for (;;) {
      ws();
      if (text[i] === close) {
        i++;
        return out;
      }
      out.push(value());
      ws();
      if (text[i] === ',') i++;
      else if (text[i] !== close) fail(`expected "," or "${close}"`);
    }
  };
  const dict = (): Record<string, unknown> => {
    i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      const key = value();
      ws();
      if (text[i] !== ':') fail('expected ":"');
      i++;
      // defineProperty, not assignment: a key "__proto__" is a key, not the object's prototype
      Object.defineProperty(out, String(key), {
        value: value(),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      ws();
      if (text[i] === ',') i++;
      else if (text[i] !== '}') fail('expected "," or "}"');
    }
  };
  const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f', v: '\v' };
  const str = (): string => {
    const quote = text[i++]!;
    let out = '';
    while (i < text.length && text[i] !== quote) {
      const ch = text[i++]!;
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const e = text[i++];
      if (e === undefined) break;
      if (e === 'u' || e === 'x') {
        const len = e === 'u' ? 4 : 2;
        const hex = text.slice(i, i + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail('bad escape');
        out += String.fromCharCode(Number.parseInt(hex, 16));
        i += len;
      } else out += ESCAPES[e] ?? e;
    }
    if (text[i] !== quote) fail('unterminated string');
    i++;
    return out;
  };
  const result = value();
  ws();
  if (i < text.length) fail('text after the literal');
  return result;
}
