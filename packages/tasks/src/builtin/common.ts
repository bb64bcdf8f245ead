import { type GenerateParams, PAPER_SAMPLING, PAPER_SEEDS } from '@polyglot/infer';
import { TasksError } from '../errors.js';
import { GUANACO_PROMPT } from '../prompts.js';
import type { Doc, TaskContext, TaskOptionSpec, TaskResponse } from '../task.js';

/** The paper's sampling settings for the generative QA tasks: its chat settings at temperature 0.001. */
export function paperQaParams(maxTokens: number): GenerateParams {
  return { ...PAPER_SAMPLING, stop: [...PAPER_SAMPLING.stop], temperature: 0.001, max_tokens: maxTokens };
}

export const PAPER_CHAT_PARAMS: GenerateParams = { ...PAPER_SAMPLING, stop: [...PAPER_SAMPLING.stop] };
export const SEEDS: readonly number[] = [...PAPER_SEEDS];

export const TEMPLATE_OPTION: TaskOptionSpec = {
  description: `chat prompt template, Jinja with {{ instruction }} (the assistant's opening text follows after a space); default the paper's ${JSON.stringify(GUANACO_PROMPT)}`,
  default: GUANACO_PROMPT,
};

/** A task option's value, else its declared default. */
export function option<T>(ctx: TaskContext, specs: Record<string, TaskOptionSpec>, key: string): T {
  const v = ctx.options[key];
  return (v === undefined ? specs[key]?.default : v) as T;
}

export function stringOption(ctx: TaskContext, specs: Record<string, TaskOptionSpec>, key: string): string {
  const v = option<unknown>(ctx, specs, key);
  if (typeof v !== 'string')
    throw new TasksError('bad-option', `option ${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function boolOption(ctx: TaskContext, specs: Record<string, TaskOptionSpec>, key: string): boolean {
  const v = option<unknown>(ctx, specs, key);
  if (v === true || v === 'true' || v === '1') return true;
  if (v === false || v === 'false' || v === '0' || v === undefined) return false;
  throw new TasksError('bad-option', `option ${key} must be true or false, got ${JSON.stringify(v)}`);
}

export function intOption(ctx: TaskContext, specs: Record<string, TaskOptionSpec>, key: string): number {
  const v = option<unknown>(ctx, specs, key);
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new TasksError(
      'bad-option',
      `option ${key} must be a non-negative integer, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** The generated text of a response (generation tasks). */
export function responseText(response: TaskResponse, task: string): string {
  if (response.type !== 'generate_until' || typeof response.text !== 'string') {
    throw new TasksError(
      'bad-response',
      `${task}: expected a generated text, got a ${response.type} response`,
    );
  }
  return response.text;
}

/** The first string field of a record among `keys`. */
export function firstString(record: Doc, keys: readonly string[]): string | null {
  for (const k of keys) if (typeof record[k] === 'string') return record[k] as string;
  return null;
}

/** The prompt of an instruction, fitted into the engine's context where the runner can (see `TaskContext.fitPrompt`). */
export function fittedPrompt(
  ctx: TaskContext,
  instruction: string,
  render: (instruction: string) => string,
): string {
  return ctx.fitPrompt ? ctx.fitPrompt(instruction, render) : render(instruction);
}
