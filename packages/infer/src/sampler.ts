import { InferError } from './errors.js';
import { isGreedy, type SamplingParams } from './params.js';
import type { Xoshiro128 } from './rng.js';
import type { SequenceState } from './state.js';

/*
 * vLLM's (v1) sampler, for one row of logits, in its order:
 *   1. min_tokens: stop tokens masked to -inf while fewer than min_tokens tokens were generated;
 *   2. penalties: repetition (prompt ∪ output), then frequency and presence (output only);
 *   3. greedy requests (temperature < 1e-5) take the argmax here, lowest index on ties;
 *   4. temperature; 5. min_p; 6. top-k, then top-p over the renormalised top-k set;
 *   7. a draw from the softmax of what is left.
 * Penalties and temperature compute in float32 as vLLM does (the logits are a Float32Array and every
 * result is stored back into one); min-p, softmax, cumulative sums and the draw use float64.
 */

function checkToken(logits: Float32Array, token: number, what: string): void {
  if (token >= logits.length) {
    throw new InferError(
      'INFER_BAD_TOKEN',
      `${what} token id ${token} is outside the vocabulary of the logits (size ${logits.length})`,
    );
  }
}

/** Step 1, in place: mask stop tokens (EOS unless ignore_eos, stop_token_ids) until min_tokens are generated. */
export function applyMinTokens(
  logits: Float32Array,
  params: Pick<SamplingParams, 'min_tokens' | 'stop_token_ids' | 'ignore_eos'>,
  state: SequenceState,
): void {
  if (state.numGenerated >= params.min_tokens) return;
  for (const t of state.stopTokenIds(params)) {
    checkToken(logits, t, 'stop');
    logits[t] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * Step 2, in place, as vLLM's `apply_penalties`: for every token seen in the prompt or the output, a positive
 * logit is multiplied by 1/repetition_penalty and any other by repetition_penalty; then each output token's
 * logit loses frequency_penalty × its count, and presence_penalty once.
 */
export function applyPenalties(
  logits: Float32Array,
  params: Pick<SamplingParams, 'repetition_penalty' | 'frequency_penalty' | 'presence_penalty'>,
  state: SequenceState,
): void {
  const rep = Math.fround(params.repetition_penalty);
  if (rep !== 1) {
    const inv = Math.fround(1 / rep);
    const penalise = (t: number): void => {
      checkToken(logits, t, 'prompt/output');
      logits[t] = logits[t] > 0 ? logits[t] * inv : logits[t] * rep;
    };
    for (const t of state.promptTokenIds) penalise(t);
    for (const t of state.outputCounts.keys()) if (!state.promptTokenIds.has(t)) penalise(t);
  }
  const freq = Math.fround(params.frequency_penalty);
  const pres = Math.fround(params.presence_penalty);
  if (freq === 0 && pres === 0) return;
  for (const [t, count] of state.outputCounts) {
    checkToken(logits, t, 'output');
    logits[t] = logits[t] - Math.fround(freq * count);
    logits[t] = logits[t] - pres;
  }
}

/** Step 4, in place: divide by the temperature (in float32, as vLLM). */
export function applyTemperature(logits: Float32Array, temperature: number): void {
  const t = Math.fround(temperature);
  if (t === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i] = logits[i] / t;
}

function max(logits: Float32Array): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (Number.isNaN(v)) throw new InferError('INFER_BAD_LOGITS', `logits hold NaN (at index ${i})`);
    if (v > m) m = v;
  }
  if (m === Number.NEGATIVE_INFINITY) {
    throw new InferError('INFER_BAD_LOGITS', 'every logit is -inf: no token can be sampled');
  }
  return m;
}

/** Step 5, in place: drop tokens whose probability is below min_p × the most likely token's probability. */
export function applyMinP(logits: Float32Array, minP: number): void {
  if (minP <= 0) return;
  const m = max(logits);
  for (let i = 0; i < logits.length; i++) {
    if (Math.exp(logits[i] - m) < minP) logits[i] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * Step 6, in place, with vLLM's rules. Top-k (k ≥ 1 and below the vocabulary size) keeps every token whose
 * logit is at least the k-th largest, ties included. Top-p (p < 1) sorts the survivors by probability, sums
 * from the least likely upwards and drops each token whose running sum is ≤ 1 - p; the most likely token is
 * always kept. The result is the smallest prefix of the most likely tokens whose mass reaches p. torch's sort
 * does not order ties, so vLLM keeps an arbitrary one of tied tokens at the nucleus edge; here the lower token
 * id ranks higher and is kept.
 */
export function applyTopKTopP(logits: Float32Array, topK: number, topP: number): void {
  const vocab = logits.length;
  if (topK >= 1 && topK < vocab) {
    const threshold = kthLargest(logits, topK);
    for (let i = 0; i < vocab; i++) if (logits[i] < threshold) logits[i] = Number.NEGATIVE_INFINITY;
  }
  if (topP >= 1) return;
  const m = max(logits);
  const candidates: number[] = [];
  for (let i = 0; i < vocab; i++) if (logits[i] > Number.NEGATIVE_INFINITY) candidates.push(i);
  // Least likely first; among equal logits the higher id first, so that it is the one dropped.
  candidates.sort((a, b) => logits[a] - logits[b] || b - a);
  const weights = candidates.map((i) => Math.exp(logits[i] - m));
  const total = weights.reduce((s, w) => s + w, 0);
  const limit = 1 - topP;
  let cum = 0;
  for (let j = 0; j < candidates.length - 1; j++) {
    cum += weights[j] / total;
    if (cum > limit) break;
    logits[candidates[j]] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * The k-th largest of `values` (1 ≤ k ≤ length, duplicates counted) — the value an ascending sort puts at
 * `length - k` — by quickselect on a copy: linear time on average instead of a full sort of the vocabulary.
 */
export function kthLargest(values: Float32Array, k: number): number {
  max(values); // NaN (which has no rank) and all -inf are errors, as for every sampling step
  const a = Float32Array.from(values);
  const target = a.length - k;
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    // Hoare partition around the middle element: afterwards a[lo..j] ≤ pivot ≤ a[i..hi], and any index strictly
    // between j and i holds the pivot value itself.
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

/** Index of the largest logit, the lowest index on ties (torch.argmax). */
export function argmax(logits: Float32Array): number {
  const m = max(logits);
  return logits.indexOf(m);
}

/**
 * Draw from softmax(logits) by inversion: the first token whose cumulative probability (in token-id order)
 * exceeds `u`, a uniform number in [0, 1). Tokens at -inf are never drawn.
 */
export function sampleFromLogits(logits: Float32Array, u: number): number {
  const m = max(logits);
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    weights[i] = Math.exp(logits[i] - m);
    total += weights[i];
  }
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    cum += weights[i];
    last = i;
    if (cum > target) return i;
  }
  return last; // only reached when rounding leaves `cum` a hair below `target`
}

/**
 * Steps 1–6 on a copy of `logits` (the input is left as it is): the logits a draw is made from. For a
 * greedy request, the penalised logits (no temperature, no truncation), whose argmax is the token.
 */
export function processLogits(
  logits: Float32Array,
  params: SamplingParams,
  state: SequenceState,
): Float32Array {
  const x = Float32Array.from(logits);
  applyMinTokens(x, params, state);
  applyPenalties(x, params, state);
  if (isGreedy(params)) return x;
  applyTemperature(x, params.temperature);
  applyMinP(x, params.min_p);
  applyTopKTopP(x, params.top_k, params.top_p);
  return x;
}

/**
 * The next token of one request from its row of logits. Every call draws exactly one uniform number from the
 * request's own generator (greedy calls too), so the token at step n depends only on the seed, n, the logits
 * and the request's own parameters and tokens — never on which other requests share the batch. The draw
 * follows vLLM's distribution but not its random stream (vLLM draws with torch's Philox generator).
 */
export function sampleToken(
  logits: Float32Array,
  params: SamplingParams,
  state: SequenceState,
  rng: Xoshiro128,
): number {
  const u = rng.nextFloat();
  if (
    isGreedy(params) &&
    params.repetition_penalty === 1 &&
    params.frequency_penalty === 0 &&
    params.presence_penalty === 0 &&
    state.numGenerated >= params.min_tokens
  ) {
    // Plain greedy: nothing would change the row, so the argmax of the logits themselves (no copy).
    return argmax(logits);
  }
  const x = processLogits(logits, params, state);
  return isGreedy(params) ? argmax(x) : sampleFromLogits(x, u);
}
