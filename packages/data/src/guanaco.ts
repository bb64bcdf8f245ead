import { DataError } from './errors.js';

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
