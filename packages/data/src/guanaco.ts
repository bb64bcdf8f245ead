import { DataError } from './errors.js';
import { readJsonl } from './jsonl.js';

/** Who speaks a turn: `### Human:` is the user, `### Assistant:` the assistant. */
export type Role = 'user' | 'assistant';

export interface Message {
  role: Role;
  content: string;
}

const MARKER: Record<Role, string> = { user: '### Human:', assistant: '### Assistant:' };
const MARKER_RE = /### (Human|Assistant):/g;

export interface ParseGuanacoOptions {
  /** Names the record in error messages, e.g. `guanaco_test.json:3` or `id 9849`. */
  source?: string;
}

function bad(source: string | undefined, what: string): DataError {
  return new DataError(
    'bad-conversation',
    `${source ?? 'conversation'}: ${what} (expected "### Human: …### Assistant: …", alternating, Human first)`,
  );
}

function preview(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/**
 * Splits a Guanaco `text` field (`### Human: …### Assistant: …### Human: …`) into messages. Each marker is
 * `### Human:` or `### Assistant:`; one space after its colon belongs to the marker, everything else up to the
 * next marker (newlines and spaces included) is the content, so `formatGuanaco` gives the text back exactly.
 * Raises `DataError` `bad-conversation` for text before the first marker, no Human turn, a conversation that
 * starts with the assistant, or two consecutive turns of the same role.
 */
export function parseGuanaco(text: string, options: ParseGuanacoOptions = {}): Message[] {
  const { source } = options;
  if (typeof text !== 'string') throw bad(source, `expected a string, got ${typeof text}`);
  const marks = [...text.matchAll(MARKER_RE)];
  const first = marks[0];
  if (!first || !marks.some((m) => m[1] === 'Human')) throw bad(source, 'no "### Human:" turn');
  if (first.index! > 0)
    throw bad(source, `text before the first marker: ${preview(text.slice(0, first.index))}`);
  const messages: Message[] = [];
  marks.forEach((m, i) => {
    const role: Role = m[1] === 'Human' ? 'user' : 'assistant';
    const start = m.index! + m[0].length;
    const end = marks[i + 1]?.index ?? text.length;
    const content = text.slice(text[start] === ' ' ? start + 1 : start, end);
    const previous = messages[i - 1];
    if (!previous && role !== 'user') throw bad(source, 'starts with an "### Assistant:" turn');
    if (previous?.role === role) throw bad(source, `turns ${i} and ${i + 1} are both ${m[0]} turns`);
    messages.push({ role, content });
  });
  return messages;
}

/**
 * Renders messages as Guanaco text: `### Human: {content}` and `### Assistant: {content}` concatenated with
 * nothing in between (the paper's data puts no newline before `###`). The inverse of {@link parseGuanaco}.
 */
export function formatGuanaco(messages: readonly Message[]): string {
  if (!Array.isArray(messages) || messages.length === 0) throw bad(undefined, 'no messages to format');
  return messages
    .map((m: Message, i) => {
      const where = `message ${i + 1}`;
      const role: unknown = m?.role;
      if (role !== 'user' && role !== 'assistant')
        throw bad(where, `role must be user or assistant, got ${role}`);
      if (typeof m.content !== 'string') throw bad(where, 'content must be a string');
      if (i === 0 && role !== 'user') throw bad(where, 'the first message must be the user');
      if (i > 0 && messages[i - 1]!.role === role) throw bad(where, `two consecutive ${role} messages`);
      if (new RegExp(MARKER_RE.source).test(m.content)) {
        throw bad(
          where,
          'content contains a "### Human:" or "### Assistant:" marker, which would not parse back',
        );
      }
      return `${MARKER[role]} ${m.content}`;
    })
    .join('');
}

/** A conversation of a Guanaco file. */
export interface GuanacoRecord {
  /** The `text` field as stored. */
  text: string;
  messages: Message[];
  /** The language tag where the file has one (the paper's files: OpenLID labels such as `rus_Cyrl`). */
  lang?: string;
  /** Confidence of the language tag, where stored. */
  langProb?: number;
  /** The record's `id` where it has one. */
  id?: string | number;
  /** `file:line`. */
  where: string;
}

/**
 * Reads a Guanaco file: JSON Lines of `{"text": "### Human: …### Assistant: …"}` as on the Hugging Face Hub
 * (`openassistant_best_replies_{train,eval}.jsonl`), or the paper's language-tagged files (`text`, `lang`,
 * `id`). Every conversation is parsed; errors name file:line.
 */
export async function* readGuanaco(
  file: string,
  options: { textField?: string; langField?: string; probField?: string } = {},
): AsyncGenerator<GuanacoRecord> {
  const textField = options.textField ?? 'text';
  const langField = options.langField ?? 'lang';
  const probField = options.probField ?? 'lang_prob';
  for await (const { value, line } of readJsonl(file)) {
    const where = `${file}:${line}`;
    const text = value[textField];
    if (typeof text !== 'string') {
      throw new DataError(
        text === undefined ? 'missing-field' : 'bad-field',
        `${where}: ${text === undefined ? `no field "${textField}"` : `field "${textField}" is not a string`} (a Guanaco record holds the conversation in "${textField}")`,
      );
    }
    const rec: GuanacoRecord = { text, messages: parseGuanaco(text, { source: where }), where };
    const lang = value[langField];
    if (typeof lang === 'string') rec.lang = lang;
    const prob = value[probField];
    if (typeof prob === 'number') rec.langProb = prob;
    const id = value.id;
    if (typeof id === 'string' || typeof id === 'number') rec.id = id;
    yield rec;
  }
}
