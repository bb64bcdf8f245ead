/**
 * Prompt templates, rendered with `@huggingface/jinja`:
 * - chat templates over `messages`, with the semantics of transformers' `apply_chat_template` (trim_blocks and
 *   lstrip_blocks on, `raise_exception`, `strftime_now`; an undefined variable prints as '');
 * - plain text templates such as the paper's `### Human: {{ instruction }}### Assistant:`, rendered as
 *   `jinja2.Template(text).render(...)` would (no block trimming) but strict: reading a variable that was not
 *   given is an error naming the template and the variable.
 * Both drop a single trailing newline of the source, as Jinja does by default.
 */
import { promises as fsp } from 'node:fs';
import * as jinja from '@huggingface/jinja';
import { PolyglotError } from './errors.js';

/*
 * The parts of @huggingface/jinja used here. Its bundled .d.ts files import each other without file extensions,
 * which NodeNext resolution cannot follow, so TypeScript would see `any`; these declarations restore the types.
 */
interface JinjaToken {
  type: string;
  value: string;
}
/** A parsed template (opaque here). */
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

/** A template that cannot be parsed or rendered, raised from inside (`raise_exception`), or not found. */
export class TemplateError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'TemplateError';
  }
}

/** One turn of a conversation (extra fields, e.g. `tool_calls`, are passed to the template as they are). */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** A named template: `chat` ones render `messages`, `text` ones render variables such as `instruction`. */
export interface PromptTemplate {
  name: string;
  kind: 'chat' | 'text';
  source: string;
}

/** Template variables of a chat template; keys other than these are passed to the template as they are. */
export interface ChatTemplateContext {
  messages: ChatMessage[];
  /** End with the opening of an assistant turn (`add_generation_prompt`); default false. */
  addGenerationPrompt?: boolean;
  /** `bos_token` / `eos_token`; templates print an absent one as ''. */
  bosToken?: string;
  eosToken?: string;
  [variable: string]: unknown;
}

const DEFAULT_ALPACA_PREAMBLE =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

/**
 * Built-in chat templates. Special tokens are printed on their own (`{{ eos_token }}`), so that without a
 * tokenizer (no `bos_token`/`eos_token` given) they render as ''.
 * - `guanaco`: the paper's prompt (`data/prompts/guanaco_prompt.txt`): a user turn followed by the generation
 *   prompt gives exactly `### Human: X### Assistant:` (no space before the second `###`). An assistant turn
 *   that is not the last is followed by one space, as in the Guanaco training text.
 * - `alpaca`: Stanford Alpaca's `prompt_no_input` (`…\n\n### Instruction:\n{instruction}\n\n### Response:`);
 *   the answer follows `### Response:` directly, then EOS, as Alpaca trains. A system message replaces the
 *   preamble.
 * - `chatml`: `<|im_start|>{role}\n{content}<|im_end|>\n`, generation prompt `<|im_start|>assistant\n`.
 * - `llama-2-chat`: Meta's format: `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s>`,
 *   one `<s>[INST] … [/INST]` per user turn, contents stripped; roles must alternate.
 * - `zephyr`: `<|system|>\n…</s>\n<|user|>\n…</s>\n<|assistant|>\n`.
 */
export const BUILTIN_TEMPLATES = {
  guanaco:
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '### Human: ' + message['content'] }}" +
    "{% elif message['role'] == 'assistant' %}{{ '### Assistant: ' + message['content'] }}" +
    "{% if not loop.last %}{{ ' ' }}{% endif %}" +
    "{% else %}{{ raise_exception('the guanaco template has user and assistant turns only, not ' + message['role']) }}" +
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:' }}{% endif %}",
  alpaca:
    "{% if messages and messages[0]['role'] == 'system' %}{% set preamble = messages[0]['content'] %}" +
    '{% set loop_messages = messages[1:] %}' +
    `{% else %}{% set preamble = '${DEFAULT_ALPACA_PREAMBLE}' %}{% set loop_messages = messages %}{% endif %}` +
    "{{ preamble + '\\n\\n' }}{% for message in loop_messages %}" +
    "{% if message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}" +
    "{% elif message['role'] == 'assistant' %}{{ '### Response:' + message['content'] }}{{ eos_token }}" +
    "{% if not loop.last %}{{ '\\n\\n' }}{% endif %}" +
    "{% else %}{{ raise_exception('the alpaca template has one system turn first, then user and assistant turns, not ' + message['role']) }}" +
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:' }}{% endif %}",
  chatml:
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  'llama-2-chat':
    "{% if messages and messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}" +
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}" +
    '{% set system_message = none %}{% endif %}{% for message in loop_messages %}' +
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    '{% if loop.index0 == 0 and system_message is not none %}' +
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
    "{% else %}{% set content = message['content'] %}{% endif %}" +
    "{% if message['role'] == 'user' %}{{ bos_token }}{{ '[INST] ' + content.strip() + ' [/INST]' }}" +
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' }}{{ eos_token }}" +
    "{% else %}{{ raise_exception('the llama-2-chat template has a system turn first, then user and assistant turns, not ' + message['role']) }}" +
    '{% endif %}{% endfor %}',
  zephyr:
    "{% for message in messages %}{% if message['role'] in ['system', 'user', 'assistant'] %}" +
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] }}{{ eos_token }}{{ '\\n' }}" +
    "{% else %}{{ raise_exception('the zephyr template has system, user and assistant turns only, not ' + message['role']) }}" +
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
} as const;

export type BuiltinTemplateName = keyof typeof BUILTIN_TEMPLATES;

export function isBuiltinTemplate(name: string): name is BuiltinTemplateName {
  return Object.hasOwn(BUILTIN_TEMPLATES, name);
}

/** A built-in chat template by name (see {@link BUILTIN_TEMPLATES}). */
export function builtinTemplate(name: BuiltinTemplateName): PromptTemplate {
  return { name, kind: 'chat', source: BUILTIN_TEMPLATES[name] };
}

/** A template from Jinja source: `chat` where it reads the variable `messages`, else `text`. */
export function templateFromSource(source: string, name = '<template>'): PromptTemplate {
  let tokens: JinjaToken[];
  try {
    tokens = tokenize(source);
  } catch (e) {
    throw syntaxError(name, e);
  }
  const chat = tokens.some((t) => t.type === 'Identifier' && t.value === 'messages');
  return { name, kind: chat ? 'chat' : 'text', source };
}

/**
 * A built-in template by name, or a template file (Jinja; a chat template where it reads `messages`, e.g. an
 * HF `chat_template.jinja`, otherwise a text template such as the paper's guanaco_prompt.txt).
 */
export async function loadTemplate(fileOrName: string): Promise<PromptTemplate> {
  if (isBuiltinTemplate(fileOrName)) return builtinTemplate(fileOrName);
  let source: string;
  try {
    source = await fsp.readFile(fileOrName, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') {
      throw new TemplateError(
        'TEMPLATE_NOT_FOUND',
        `${fileOrName}: no such template file, and not a built-in template ` +
          `(${Object.keys(BUILTIN_TEMPLATES).join(', ')})`,
        { cause: e },
      );
    }
    throw e;
  }
  return templateFromSource(source, fileOrName);
}

/** A chat template given as a built-in name or as Jinja source. */
export function resolveChatTemplate(nameOrSource: string): { name: string; source: string } {
  return isBuiltinTemplate(nameOrSource)
    ? builtinTemplate(nameOrSource)
    : { name: '<chat template>', source: nameOrSource };
}

/**
 * Render a chat template as transformers' `apply_chat_template` does (without tokenizing): `messages`,
 * `add_generation_prompt`, `bos_token`, `eos_token` and any further keys of `context` are the variables.
 */
export function renderChatTemplate(
  template: string | { name: string; source: string },
  context: ChatTemplateContext,
): string {
  const { name, source } =
    typeof template === 'string' ? { name: '<chat template>', source: template } : template;
  const { messages, addGenerationPrompt = false, bosToken, eosToken, ...extra } = context;
  const vars: Record<string, unknown> = { ...extra, messages, add_generation_prompt: addGenerationPrompt };
  if (bosToken !== undefined) vars.bos_token = bosToken;
  if (eosToken !== undefined) vars.eos_token = eosToken;
  return render(compile(source, name, true), name, vars, false);
}

export interface RenderTemplateOptions {
  /** Default true: reading a variable that is not in `vars` throws `TEMPLATE_UNDEFINED` (also `x is defined`). */
  strict?: boolean;
}

/** Render a plain text template (e.g. `### Human: {{ instruction }}### Assistant:`) with `vars`. */
export function renderTemplate(
  template: string | { name: string; source: string },
  vars: Record<string, unknown>,
  { strict = true }: RenderTemplateOptions = {},
): string {
  const { name, source } = typeof template === 'string' ? { name: '<template>', source: template } : template;
  return render(compile(source, name, false), name, vars, strict);
}

export interface RenderInstructionOptions {
  /** A system message (chat templates: a first `system` turn; text templates: the variable `system`). */
  system?: string;
  bosToken?: string;
  eosToken?: string;
  /** Further template variables. */
  vars?: Record<string, unknown>;
}

/**
 * The prompt for one instruction: a chat template renders `[system?, user: instruction]` with the generation
 * prompt; a text template renders `instruction` (and `system` where given).
 */
export function renderInstruction(
  template: PromptTemplate,
  instruction: string,
  options: RenderInstructionOptions = {},
): string {
  const { system, bosToken, eosToken, vars } = options;
  if (template.kind === 'text') {
    return renderTemplate(template, { ...vars, instruction, ...(system === undefined ? {} : { system }) });
  }
  const messages: ChatMessage[] = [{ role: 'user', content: instruction }];
  if (system !== undefined) messages.unshift({ role: 'system', content: system });
  return renderChatTemplate(template, { ...vars, messages, addGenerationPrompt: true, bosToken, eosToken });
}

const compiled = new Map<string, Program>();
const MAX_COMPILED = 64;

function compile(source: string, name: string, chat: boolean): Program {
  const key = `${chat ? 'c' : 't'}${source}`;
  let program = compiled.get(key);
  if (program === undefined) {
    try {
      program = parse(tokenize(source, chat ? { trim_blocks: true, lstrip_blocks: true } : {}));
    } catch (e) {
      throw syntaxError(name, e);
    }
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, program);
  }
  return program;
}

function syntaxError(name: string, e: unknown): TemplateError {
  return new TemplateError('TEMPLATE_SYNTAX', `${name}: Jinja syntax error: ${(e as Error).message}`, {
    cause: e,
  });
}

/** What `raise_exception(message)` throws inside a template. */
class RaisedByTemplate extends Error {}

/** The root scope's variables; records the names looked up there and not found (undefined variables). */
class RecordingMap<K, V> extends Map<K, V> {
  readonly missing = new Set<K>();
  override has(key: K): boolean {
    const found = super.has(key);
    if (!found) this.missing.add(key);
    return found;
  }
}

function render(program: Program, name: string, vars: Record<string, unknown>, strict: boolean): string {
  const globals = new Environment();
  for (const [key, value] of Object.entries(GLOBAL_CONSTANTS)) globals.set(key, value);
  globals.set('raise_exception', (message: unknown) => {
    throw new RaisedByTemplate(String(message));
  });
  globals.set('range', range);
  globals.set('strftime_now', (format: string) => strftime(new Date(), format));
  const recorder = new RecordingMap(globals.variables);
  if (strict) globals.variables = recorder;
  const env = new Environment(globals);
  for (const [key, value] of Object.entries(vars)) if (value !== undefined) env.set(key, value);
  let result: { value: unknown };
  try {
    result = new Interpreter(env).run(program);
  } catch (e) {
    if (e instanceof RaisedByTemplate) {
      throw new TemplateError('TEMPLATE_RAISED', `${name}: ${e.message}`, { cause: e });
    }
    throw new TemplateError('TEMPLATE_RENDER', `${name}: cannot render: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (recorder.missing.size > 0) {
    const names = [...recorder.missing].map((n) => `"${n}"`).join(', ');
    const given = Object.keys(vars).join(', ') || 'none';
    throw new TemplateError(
      'TEMPLATE_UNDEFINED',
      `${name}: undefined variable ${names} (given: ${given}); pass it, or render with strict: false`,
    );
  }
  return String(result.value);
}

const GLOBAL_CONSTANTS = { true: true, false: false, none: null, True: true, False: false, None: null };

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** Python's `datetime.strftime` in the C locale, for the directives chat templates use; others stay as they are. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const hour12 = date.getHours() % 12 || 12;
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const dayOfYear =
    Math.round((+new Date(date.getFullYear(), date.getMonth(), date.getDate()) - +startOfYear) / 864e5) + 1;
  const values: Record<string, string> = {
    a: DAYS[date.getDay()].slice(0, 3),
    A: DAYS[date.getDay()],
    b: MONTHS[date.getMonth()].slice(0, 3),
    B: MONTHS[date.getMonth()],
    d: pad(date.getDate()),
    H: pad(date.getHours()),
    I: pad(hour12),
    j: pad(dayOfYear, 3),
    m: pad(date.getMonth() + 1),
    M: pad(date.getMinutes()),
    p: date.getHours() < 12 ? 'AM' : 'PM',
    S: pad(date.getSeconds()),
    y: pad(date.getFullYear() % 100),
    Y: String(date.getFullYear()),
    '%': '%',
  };
  return format.replace(/%(.)/g, (whole, directive: string) => values[directive] ?? whole);
}
