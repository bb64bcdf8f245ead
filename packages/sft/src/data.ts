/**
 * Training data as TRL's SFTTrainer prepares it: JSON Lines records in one of three formats, tokenized, with a
 * per-token target mask (which tokens the loss is computed on), EOS appended and truncated to the maximum length.
 *
 * - `{"text": …}`: the tokenizer's encoding (BOS included where the tokenizer adds it), loss on every token (the
 *   paper's setting; TRL's language-modeling datasets).
 * - `{"prompt": …, "completion": …}`: `prompt + completion` encoded as one text; the first
 *   `len(encode(prompt))` tokens are the prompt (TRL's `completion_mask`): loss on the completion (and EOS) only,
 *   unless `loss: 'full'`.
 * - `{"messages": [{role, content}, …]}`: rendered with a chat template and encoded without adding special tokens
 *   (the template writes them), as `apply_chat_template(tokenize=True)`. Assistant turns are located by rendering
 *   each prefix of the conversation (with the generation prompt before an assistant turn): tokens from the end of
 *   `messages[:i]` + generation prompt to the end of `messages[:i+1]` belong to assistant turn i. Loss on those
 *   tokens (and the EOS after a final assistant turn) only, unless `loss: 'full'`.
 *
 * EOS is appended when the encoding does not already end with it. Longer examples keep their first `maxLength`
 * tokens (TRL's `truncation_mode="keep_start"`) and are counted.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ChatMessage, Tokenizer } from '@polyglot/model';
import { SftError } from './errors.js';

/** The record formats, by the fields that identify them. */
export type RecordFormat = 'text' | 'prompt-completion' | 'messages';

/**
 * Which tokens are trained on: `auto` = the format's default (text: all; prompt/completion: the completion;
 * messages: the assistant turns), `full` = every token, `completion` = the completion / assistant turns (an error
 * for `text` records, which have none).
 */
export type LossMode = 'auto' | 'full' | 'completion';

export const LOSS_MODES: readonly LossMode[] = ['auto', 'full', 'completion'];

/** One tokenized training example (or a packed row of several). */
export interface Example {
  ids: number[];
  /** 1 where the token is a training target: the loss includes predicting it from the previous position. */
  targets: Uint8Array;
  /** Packed rows: the example (1, 2, …) each token belongs to; absent = one example. */
  segments?: Int32Array;
}

/** An example made from one record. */
export interface FormattedExample extends Example {
  format: RecordFormat;
  /** `file:line` of the record. */
  source: string;
  /** Tokens before truncation. */
  fullLength: number;
  truncated: boolean;
  /** The prompt's (or a turn prefix's) tokens were not a prefix of the whole text's tokens (TRL warns too). */
  boundaryMismatch: boolean;
}

export interface FormatOptions {
  tokenizer: Tokenizer;
  /** Keep at most this many tokens (after EOS is appended). */
  maxLength: number;
  /** Default `auto`. */
  loss?: LossMode;
  /** Chat template for `messages` records: a built-in name, Jinja source, or one of the tokenizer's; default the tokenizer's. */
  chatTemplate?: string;
  /** Append EOS where the encoding does not end with it; default true. */
  addEos?: boolean;
}

export interface DatasetStats {
  records: number;
  formats: Record<RecordFormat, number>;
  /** Examples longer than the maximum length (cut to it). */
  truncated: number;
  /** The longest example before truncation, in tokens. */
  longest: number;
  /** Tokens after truncation. */
  tokens: number;
  /** Target tokens (positions in the loss). */
  targetTokens: number;
  /** Examples with no target token left (e.g. a completion cut away by truncation). */
  noTargets: number;
  boundaryMismatches: number;
}

export interface SftDataset {
  file: string;
  examples: FormattedExample[];
  stats: DatasetStats;
}

const isString = (v: unknown): v is string => typeof v === 'string';

function badRecord(where: string, what: string): SftError {
  return new SftError(
    'SFT_BAD_RECORD',
    `${where}: ${what}; each line must be {"text": …}, {"prompt": …, "completion": …} or {"messages": [{"role": …, "content": …}, …]}`,
  );
}

/** The format of a record, or an error naming what is wrong with it. */
export function recordFormat(record: Record<string, unknown>, where: string): RecordFormat {
  if ('messages' in record) {
    const m = record.messages;
    if (!Array.isArray(m) || m.length === 0) throw badRecord(where, '"messages" must be a non-empty array');
    m.forEach((msg, i) => {
      const ok =
        typeof msg === 'object' &&
        msg !== null &&
        isString((msg as ChatMessage).role) &&
        isString((msg as ChatMessage).content);
      if (!ok) throw badRecord(where, `messages[${i}] must be an object with string "role" and "content"`);
    });
    return 'messages';
  }
  if ('prompt' in record || 'completion' in record) {
    if (!isString(record.prompt) || !isString(record.completion)) {
      throw badRecord(where, '"prompt" and "completion" must both be strings');
    }
    return 'prompt-completion';
  }
  if ('text' in record) {
    if (!isString(record.text)) throw badRecord(where, '"text" must be a string');
    return 'text';
  }
  const keys = Object.keys(record);
  throw badRecord(
    where,
    `no usable field (found ${keys.length > 0 ? keys.map((k) => JSON.stringify(k)).join(', ') : 'an empty object'})`,
  );
}

function startsWith(ids: number[], prefix: number[]): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

/** Tokenizes one record into an example (see the module comment for the rules). */
export function formatRecord(
  record: Record<string, unknown>,
  opts: FormatOptions,
  where = '<record>',
): FormattedExample {
  const { tokenizer: tok, maxLength } = opts;
  const loss = opts.loss ?? 'auto';
  if (!Number.isSafeInteger(maxLength) || maxLength < 2) {
    throw new SftError('SFT_BAD_ARG', `maxLength must be an integer ≥ 2, got ${maxLength}`);
  }
  const format = recordFormat(record, where);
  let ids: number[];
  /** Token ranges [start, end) that are completion / assistant tokens. */
  let spans: [number, number][];
  let boundaryMismatch = false;
  if (format === 'text') {
    if (loss === 'completion') {
      throw new SftError(
        'SFT_BAD_RECORD',
        `${where}: --loss completion needs prompt/completion or messages records; a "text" record has no completion`,
      );
    }
    ids = tok.encode(record.text as string);
    spans = [[0, ids.length]];
  } else if (format === 'prompt-completion') {
    const prompt = tok.encode(record.prompt as string);
    ids = tok.encode((record.prompt as string) + (record.completion as string));
    boundaryMismatch = !startsWith(ids, prompt);
    spans = [[Math.min(prompt.length, ids.length), ids.length]];
  } else {
    const messages = record.messages as ChatMessage[];
    const render = (msgs: ChatMessage[], addGenerationPrompt: boolean): number[] =>
      tok.applyChatTemplate(msgs, { chatTemplate: opts.chatTemplate, addGenerationPrompt, tokenize: true });
    ids = render(messages, false);
    spans = [];
    messages.forEach((m, i) => {
      if (m.role !== 'assistant') return;
      const before = render(messages.slice(0, i), true);
      const upTo = render(messages.slice(0, i + 1), false);
      if (!startsWith(ids, before) || !startsWith(ids, upTo)) boundaryMismatch = true;
      spans.push([Math.min(before.length, ids.length), Math.min(upTo.length, ids.length)]);
    });
  }
  const eos = tok.eosId;
  if ((opts.addEos ?? true) && eos !== null && ids[ids.length - 1] !== eos) {
    // The EOS closes the last span when the text ends with it (a completion, a final assistant turn).
    const last = spans[spans.length - 1];
    if (last && last[1] === ids.length) last[1] = ids.length + 1;
    ids = [...ids, eos];
  }
  const targets = new Uint8Array(ids.length);
  if (loss === 'full') targets.fill(1);
  else for (const [a, b] of spans) targets.fill(1, a, b);
  targets[0] = 0; // nothing predicts the first token
  const fullLength = ids.length;
  const truncated = fullLength > maxLength;
  return {
    format,
    source: where,
    ids: truncated ? ids.slice(0, maxLength) : ids,
    targets: truncated ? targets.slice(0, maxLength) : targets,
    fullLength,
    truncated,
    boundaryMismatch,
  };
}

/** The records of a JSON Lines file with their line numbers (blank lines skipped). */
export async function* readRecords(
  file: string,
): AsyncGenerator<{ value: Record<string, unknown>; line: number }> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new SftError(
          'SFT_BAD_JSON',
          `${file}:${line}: invalid JSON (${(e as Error).message}): ${JSON.stringify(text.slice(0, 80))}`,
        );
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw badRecord(`${file}:${line}`, 'not a JSON object');
      }
      yield { value: value as Record<string, unknown>, line };
    }
  } catch (e) {
    if (e instanceof SftError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SftError(
      'SFT_DATA_READ',
      `${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e },
    );
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** Reads and tokenizes a JSON Lines file; an empty file (no records) is an `SFT_EMPTY_DATASET` error. */
export async function loadSftDataset(file: string, opts: FormatOptions): Promise<SftDataset> {
  const examples: FormattedExample[] = [];
  const stats: DatasetStats = {
    records: 0,
    formats: { text: 0, 'prompt-completion': 0, messages: 0 },
    truncated: 0,
    longest: 0,
    tokens: 0,
    targetTokens: 0,
    noTargets: 0,
    boundaryMismatches: 0,
  };
  for await (const { value, line } of readRecords(file)) {
    const ex = formatRecord(value, opts, `${file}:${line}`);
    examples.push(ex);
    stats.records++;
    stats.formats[ex.format]++;
    if (ex.truncated) stats.truncated++;
    if (ex.boundaryMismatch) stats.boundaryMismatches++;
    stats.longest = Math.max(stats.longest, ex.fullLength);
    stats.tokens += ex.ids.length;
    let n = 0;
    for (let i = 1; i < ex.targets.length; i++) n += ex.targets[i];
    stats.targetTokens += n;
    if (n === 0) stats.noTargets++;
  }
  if (examples.length === 0) {
    throw new SftError(
      'SFT_EMPTY_DATASET',
      `${file}: no records (the file is empty or has only blank lines); give a JSON Lines file with one example per line`,
    );
  }
  return { file, examples, stats };
}
