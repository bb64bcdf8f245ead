// Request checks and lm-evaluation-harness's `_encode_pair`, shared by the engines that tokenize in this process
// (the local TensorFlow.js engine and the llama.cpp engine).
import type { Tokenizer } from '@polyglot/model';
import type { LoglikelihoodRequest } from './engine.js';
import { RequestError } from './errors.js';
import { pyRstrip } from './stop.js';

export function isTokenIds(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((t) => Number.isSafeInteger(t));
}

/** A value as shown in an error message (JSON, cut at 60 characters). */
export function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

export interface EncodePairContext {
  tokenizer: Tokenizer;
  /** lm-eval's prefix token for an empty context (BOS, else EOS, else the engine's choice). */
  prefix: number;
  /** Throws a RequestError for ids outside the vocabulary. */
  checkIds: (ids: readonly number[], i: number, what: string) => void;
}

/**
 * Context and continuation token ids of loglikelihood request `i` (lm-evaluation-harness's `_encode_pair`): trailing
 * whitespace of the context moves to the continuation, the continuation's ids are those of the whole text after the
 * context's, and an empty context becomes the prefix token.
 */
export function encodeLoglikelihoodPair(
  r: LoglikelihoodRequest,
  i: number,
  special: boolean,
  ctx: EncodePairContext,
): { context: number[]; continuation: number[] } {
  const byText = r.context !== undefined || r.continuation !== undefined;
  const byIds = r.contextIds !== undefined || r.continuationIds !== undefined;
  if (byText === byIds) {
    throw new RequestError(
      i,
      'INFER_BAD_REQUEST',
      'give context and continuation (text) or contextIds and continuationIds (token ids)',
    );
  }
  if (byIds) {
    for (const [name, v] of [
      ['contextIds', r.contextIds],
      ['continuationIds', r.continuationIds],
    ] as const) {
      if (!isTokenIds(v)) {
        throw new RequestError(i, 'INFER_BAD_REQUEST', `${name} must be a list of token ids, got ${show(v)}`);
      }
      ctx.checkIds(v, i, name);
    }
    const context = r.contextIds!.length > 0 ? [...r.contextIds!] : [ctx.prefix];
    return { context, continuation: [...r.continuationIds!] };
  }
  let context = r.context;
  let continuation = r.continuation;
  if (typeof context !== 'string' || typeof continuation !== 'string') {
    throw new RequestError(i, 'INFER_BAD_REQUEST', 'context and continuation must both be strings');
  }
  const kept = pyRstrip(context);
  if (kept.length < context.length) {
    continuation = context.slice(kept.length) + continuation;
    context = kept;
  }
  const opts = { addSpecialTokens: special };
  const contextIds = ctx.tokenizer.encode(context, opts);
  if (contextIds.length === 0) {
    // lm-eval: an empty context is the prefix token (BOS) and the continuation is encoded on its own.
    const ids = { context: [ctx.prefix], continuation: ctx.tokenizer.encode(continuation, opts) };
    ctx.checkIds(ids.continuation, i, 'the encoded continuation');
    return ids;
  }
  const whole = ctx.tokenizer.encode(context + continuation, opts);
  const ids = { context: contextIds, continuation: whole.slice(contextIds.length) };
  ctx.checkIds([...ids.context, ...ids.continuation], i, 'the encoded text');
  return ids;
}
