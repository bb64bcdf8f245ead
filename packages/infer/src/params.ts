import { SamplingParamError } from './errors.js';

/** vLLM's `_SAMPLING_EPS`: a temperature below it means greedy decoding (argmax). */
export const SAMPLING_EPS = 1e-5;

/**
 * Sampling parameters of one request, named and defaulted as vLLM's `SamplingParams` (and the OpenAI API
 * that vLLM serves) name them, so that a run's generation arguments read the same here and there.
 */
export interface SamplingParams {
  /** Divides the logits; below {@link SAMPLING_EPS} decoding is greedy. Default 1. */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches top_p. Default 1 (off). */
  top_p: number;
  /** Keep the top_k most likely tokens (and any tied with the k-th); 0 or -1 turns it off. Default 0. */
  top_k: number;
  /** Drop tokens whose probability is below min_p times the top token's. Default 0 (off). */
  min_p: number;
  /** Subtracted once from the logit of every token that occurs in the output so far, in [-2, 2]. Default 0. */
  presence_penalty: number;
  /** Subtracted per occurrence in the output so far, in [-2, 2]. Default 0. */
  frequency_penalty: number;
  /** Divides positive / multiplies negative logits of tokens seen in prompt or output; > 0. Default 1 (off). */
  repetition_penalty: number;
  /** Most tokens to generate; 0 is accepted for scoring requests that generate nothing. Default 16. */
  max_tokens: number;
  /** EOS and stop tokens are masked until this many tokens have been generated. Default 0. */
  min_tokens: number;
  /** Stop strings: the output is cut before the first one. Default none. */
  stop: string[];
  /** Token ids that end generation (besides EOS unless ignore_eos). Default none. */
  stop_token_ids: number[];
  /** Keep generating after EOS. Default false. */
  ignore_eos: boolean;
  /** Per-request seed; null draws a random one. Default null. */
  seed: number | null;
  /** Number of top log-probabilities to return per generated token; null for none. Default null. */
  logprobs: number | null;
}

function defaults(): SamplingParams {
  return {
    temperature: 1,
    top_p: 1,
    top_k: 0,
    min_p: 0,
    presence_penalty: 0,
    frequency_penalty: 0,
    repetition_penalty: 1,
    max_tokens: 16,
    min_tokens: 0,
    stop: [],
    stop_token_ids: [],
    ignore_eos: false,
    seed: null,
    logprobs: null,
  };
}

const NAMES = Object.keys(defaults()) as (keyof SamplingParams)[];

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function finite(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new SamplingParamError(name, `must be a finite number, got ${show(v)}`);
  }
  return v;
}

function integer(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v)) throw new SamplingParamError(name, `must be an integer, got ${show(v)}`);
  return v as number;
}

function check(name: string, ok: boolean, rule: string, v: unknown): void {
  if (!ok) throw new SamplingParamError(name, `must be ${rule}, got ${show(v)}`);
}

/**
 * Complete and validate sampling parameters: missing or null fields take vLLM's defaults, unknown names and
 * values outside vLLM's allowed ranges raise a {@link SamplingParamError} naming the parameter. As vLLM does,
 * a greedy request (temperature < 1e-5) gets top_p 1, top_k 0 and min_p 0.
 */
export function samplingParams(input: Partial<Record<keyof SamplingParams, unknown>> = {}): SamplingParams {
  for (const key of Object.keys(input)) {
    if (!(NAMES as string[]).includes(key)) {
      throw new SamplingParamError(key, `unknown parameter; known ones are ${NAMES.join(', ')}`);
    }
  }
  const p = defaults();
  const given = (k: keyof SamplingParams): unknown => input[k] ?? undefined;
  const num = (k: keyof SamplingParams): number =>
    given(k) === undefined ? (p[k] as number) : finite(k, given(k));

  p.temperature = num('temperature');
  check('temperature', p.temperature >= 0, 'non-negative', p.temperature);
  p.top_p = num('top_p');
  check('top_p', p.top_p > 0 && p.top_p <= 1, 'in (0, 1]', p.top_p);
  p.top_k = integer('top_k', num('top_k'));
  check('top_k', p.top_k >= -1, '-1 or 0 (off) or at least 1', p.top_k);
  if (p.top_k === -1) p.top_k = 0;
  p.min_p = num('min_p');
  check('min_p', p.min_p >= 0 && p.min_p <= 1, 'in [0, 1]', p.min_p);
  for (const k of ['presence_penalty', 'frequency_penalty'] as const) {
    p[k] = num(k);
    check(k, p[k] >= -2 && p[k] <= 2, 'in [-2, 2]', p[k]);
  }
  p.repetition_penalty = num('repetition_penalty');
  check('repetition_penalty', p.repetition_penalty > 0, 'greater than 0', p.repetition_penalty);
  p.max_tokens = integer('max_tokens', num('max_tokens'));
  check('max_tokens', p.max_tokens >= 0, 'at least 1 (or 0 to only score the prompt)', p.max_tokens);
  p.min_tokens = integer('min_tokens', num('min_tokens'));
  check('min_tokens', p.min_tokens >= 0, 'non-negative', p.min_tokens);
  check('min_tokens', p.min_tokens <= p.max_tokens, `at most max_tokens (${p.max_tokens})`, p.min_tokens);

  const stop = given('stop');
  if (stop !== undefined) {
    const list = typeof stop === 'string' ? [stop] : stop;
    check(
      'stop',
      Array.isArray(list) && list.every((s) => typeof s === 'string'),
      'a string or a list of strings',
      stop,
    );
    check(
      'stop',
      (list as string[]).every((s) => s.length > 0),
      'free of empty strings',
      stop,
    );
    p.stop = [...(list as string[])];
  }
  const ids = given('stop_token_ids');
  if (ids !== undefined) {
    check('stop_token_ids', Array.isArray(ids), 'a list of token ids', ids);
    p.stop_token_ids = (ids as unknown[]).map((id) => integer('stop_token_ids', id));
    check(
      'stop_token_ids',
      p.stop_token_ids.every((id) => id >= 0),
      'non-negative token ids',
      ids,
    );
  }
  const ignoreEos = given('ignore_eos');
  if (ignoreEos !== undefined) {
    check('ignore_eos', typeof ignoreEos === 'boolean', 'true or false', ignoreEos);
    p.ignore_eos = ignoreEos as boolean;
  }
  if (given('seed') !== undefined) p.seed = integer('seed', given('seed'));
  if (given('logprobs') !== undefined) {
    p.logprobs = integer('logprobs', given('logprobs'));
    check('logprobs', p.logprobs >= 0, 'non-negative', p.logprobs);
  }
  if (isGreedy(p)) {
    p.top_p = 1;
    p.top_k = 0;
    p.min_p = 0;
  }
  return p;
}

/** Whether vLLM decodes this request greedily (temperature below {@link SAMPLING_EPS}). */
export function isGreedy(params: Pick<SamplingParams, 'temperature'>): boolean {
  return params.temperature < SAMPLING_EPS;
}
