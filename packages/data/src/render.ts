// Rendering prompts from records: the record plumbing (which field, quotes, Guanaco conversations, where the
// prompt goes). The template itself is a function the caller gives — @polyglot/model renders Jinja, chat
// templates of tokenizers and the built-ins (the `polyglot data render` command wires them together), and
// the paper's own template is available here without a template engine.
import { DataError } from './errors.js';
import { type Message, parseGuanaco } from './guanaco.js';
import { type JsonObject, readJsonl, writeJsonlAtomic } from './jsonl.js';
import { applyQuoteMode, type QuoteMode } from './quotes.js';

/** The paper's chat prompt template (Jinja; `data/prompts/guanaco_prompt.txt`, no space before the second `###`). */
export const PAPER_PROMPT_TEMPLATE = '### Human: {{ instruction }}### Assistant:';

/** The paper's prompt for one instruction, without a template engine: `### Human: X### Assistant:`. */
export function renderPaperPrompt(instruction: string): string {
  return `### Human: ${instruction}### Assistant:`;
}

/** What a renderer gets for one record. */
export interface PromptInput {
  /** Instruction mode: the instruction (after quote handling). */
  instruction?: string;
  /** Conversation mode: the messages. */
  messages?: Message[];
  record: JsonObject;
  /** `file:line`, for error messages. */
  where: string;
}

/** Turns one record into prompt text (e.g. a Jinja template, a tokenizer's chat template). */
export type PromptRenderer = (input: PromptInput) => string;

export interface RenderOptions {
  render: PromptRenderer;
  /** Instruction mode: the field with the instruction (default `instruction`). */
  field?: string;
  /** Conversation mode: a field with Guanaco text (`### Human: …### Assistant: …`) to render as messages. */
  conversationField?: string;
  /** Conversation mode: a field with an array of `{role, content}` messages. */
  messagesField?: string;
  /**
   * Quotes wrapping a whole instruction: `keep` (default; the paper's prompts kept them, by a bug) or `strip`.
   * With `strip` the instruction field of the output holds the stripped text too.
   */
  quotes?: QuoteMode;
  /** Where the rendered text goes (default `prompt`). */
  outField?: string;
}

function messagesOf(value: unknown, where: string, field: string): Message[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new DataError(
      'bad-field',
      `${where}: field "${field}" must be a non-empty array of {role, content} messages`,
    );
  }
  return value.map((m, i) => {
    const role = (m as Message)?.role;
    const content = (m as Message)?.content;
    if (typeof role !== 'string' || typeof content !== 'string') {
      throw new DataError('bad-field', `${where}: ${field}[${i}] must be {role: string, content: string}`);
    }
    return { ...(m as Message) };
  });
}

/** Renders one record (see {@link RenderOptions}). */
export function renderRecord(record: JsonObject, options: RenderOptions, where = 'record'): JsonObject {
  const out: JsonObject = { ...record };
  let input: PromptInput;
  if (options.conversationField && options.messagesField) {
    throw new DataError('bad-option', 'render: give a conversation field or a messages field, not both');
  }
  if (options.conversationField) {
    const text = record[options.conversationField];
    if (typeof text !== 'string') {
      throw new DataError(
        text === undefined ? 'missing-field' : 'bad-field',
        `${where}: ${text === undefined ? 'no' : 'non-string'} field "${options.conversationField}" with a Guanaco conversation`,
      );
    }
    input = { messages: parseGuanaco(text, { source: where }), record, where };
  } else if (options.messagesField) {
    input = {
      messages: messagesOf(record[options.messagesField], where, options.messagesField),
      record,
      where,
    };
  } else {
    const field = options.field ?? 'instruction';
    const v = record[field];
    if (typeof v !== 'string') {
      throw new DataError(
        v === undefined ? 'missing-field' : 'bad-field',
        `${where}: ${v === undefined ? `no field "${field}"` : `field "${field}" is not a string`} (the record has: ${Object.keys(record).slice(0, 12).join(', ')}); choose it with --field`,
      );
    }
    const instruction = applyQuoteMode(v, options.quotes ?? 'keep');
    out[field] = instruction;
    input = { instruction, record, where };
  }
  let text: string;
  try {
    text = options.render(input);
  } catch (e) {
    const err = e as Error & { isPolyglotError?: boolean; code?: string };
    if (err?.isPolyglotError) {
      throw new DataError(err.code ?? 'render-failed', `${where}: ${err.message}`, { cause: e });
    }
    throw e;
  }
  out[options.outField ?? 'prompt'] = text;
  return out;
}

/** Renders every record of a JSON Lines file; errors name file:line. */
export async function* renderRecords(file: string, options: RenderOptions): AsyncGenerator<JsonObject> {
  for await (const { value, line } of readJsonl(file)) yield renderRecord(value, options, `${file}:${line}`);
}

/** {@link renderRecords} into `output`, atomically; returns the number of records. */
export function renderFile(input: string, output: string, options: RenderOptions): Promise<number> {
  return writeJsonlAtomic(output, renderRecords(input, options));
}
