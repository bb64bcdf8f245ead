import { InferError } from './errors.js';

/** One token with its log-probability. */
export interface TokenLogprob {
  /** The token id; -1 where a remote server gives only its text. */
  token: number;
  logprob: number;
  /** The token's text, where a remote engine gives it. */
  text?: string;
}

/** What vLLM returns per position: the chosen token's log-probability and rank, and the top `n` tokens. */
export interface PositionLogprobs extends TokenLogprob {
  /** 1 + the number of other tokens at least as likely (vLLM v1: the count of logprobs ≥ this one's). */
  rank: number;
  /** The `n` most likely tokens, most likely first (lower token id first among equals). */
  top: TokenLogprob[];
}

/**
 * log(softmax(logits)), computed in float64 and stored as float32 (vLLM returns float32 log-probabilities).
 *
 * Which logits to pass is the caller's choice of vLLM's `logprobs_mode`: vLLM v1 returns by default
 * (`raw_logprobs`) the log-softmax of the model's raw logits, before penalties, temperature and top-k/top-p;
 * vLLM v0 returned those of the processed logits. This package follows the v1 default: engines pass the raw
 * row; `logSoftmax(processLogits(row, …))` gives the processed variant.
 */
export function logSoftmax(logits: Float32Array): Float32Array {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i])) throw new InferError('INFER_BAD_LOGITS', `logits hold NaN (at index ${i})`);
    if (logits[i] > m) m = logits[i];
  }
  if (m === Number.NEGATIVE_INFINITY) throw new InferError('INFER_BAD_LOGITS', 'every logit is -inf');
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - m);
  const lse = m + Math.log(sum);
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/** The chosen `token`'s log-probability and rank, and the `n` most likely tokens, from a row of log-probabilities. */
export function positionLogprobs(logprobs: Float32Array, token: number, n: number): PositionLogprobs {
  if (!Number.isSafeInteger(token) || token < 0 || token >= logprobs.length) {
    throw new InferError(
      'INFER_BAD_TOKEN',
      `token id ${token} is outside the vocabulary (size ${logprobs.length})`,
    );
  }
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InferError(
      'INFER_BAD_PARAM',
      `the number of top logprobs must be a non-negative integer, got ${n}`,
    );
  }
  const logprob = logprobs[token];
  let rank = 0;
  for (let i = 0; i < logprobs.length; i++) if (logprobs[i] >= logprob) rank++;
  const top: TokenLogprob[] = [];
  if (n > 0) {
    // Keep the best n seen so far, sorted; the vocabulary is scanned once.
    for (let i = 0; i < logprobs.length; i++) {
      const v = logprobs[i];
      if (top.length === n && v <= top[n - 1].logprob) continue;
      let j = Math.min(top.length, n - 1);
      while (j > 0 && top[j - 1].logprob < v) j--;
      top.splice(j, 0, { token: i, logprob: v });
      if (top.length > n) top.pop();
    }
  }
  return { token, logprob, rank, top };
}
