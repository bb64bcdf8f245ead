import { InferError } from './errors.js';
import type { SamplingParams } from './params.js';

/** Why a request ended: a stop token or stop string ('stop'), or max_tokens reached ('length'). */
export type FinishReason = 'stop' | 'length';

/**
 * What the sampler needs to know about one sequence: which tokens the prompt holds (repetition penalty), how
 * often each token occurs in the output so far (frequency/presence penalties), how many tokens were generated
 * (min_tokens, max_tokens), and the model's EOS token ids.
 */
export class SequenceState {
  private readonly prompt: ReadonlySet<number>;
  private readonly counts = new Map<number, number>();
  private readonly output: number[] = [];
  readonly eosTokenIds: readonly number[];

  constructor(promptTokenIds: Iterable<number>, eosTokenIds: readonly number[] = []) {
    this.prompt = new Set(promptTokenIds);
    this.eosTokenIds = [...eosTokenIds];
    for (const t of [...this.prompt, ...this.eosTokenIds]) checkTokenId(t);
  }

  /** Record a generated token. */
  append(token: number): void {
    checkTokenId(token);
    this.output.push(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  get numGenerated(): number {
    return this.output.length;
  }

  get outputTokenIds(): readonly number[] {
    return this.output;
  }

  /** Distinct prompt token ids. */
  get promptTokenIds(): ReadonlySet<number> {
    return this.prompt;
  }

  /** Occurrences of each token in the output so far. */
  get outputCounts(): ReadonlyMap<number, number> {
    return this.counts;
  }

  /** vLLM's `all_stop_token_ids`: stop_token_ids plus the EOS ids unless ignore_eos. */
  stopTokenIds(params: Pick<SamplingParams, 'stop_token_ids' | 'ignore_eos'>): Set<number> {
    const ids = new Set(params.stop_token_ids);
    if (!params.ignore_eos) for (const e of this.eosTokenIds) ids.add(e);
    return ids;
  }

  /**
   * After {@link append}: 'stop' when the last token is a stop token (EOS unless ignore_eos, or one of
   * stop_token_ids), else 'length' once max_tokens tokens exist, else null. As in vLLM, nothing stops the
   * sequence before min_tokens tokens, and a stop token wins over the length limit. Stop strings are checked
   * on the text, by a {@link StopChecker}.
   */
  finishReason(
    params: Pick<SamplingParams, 'stop_token_ids' | 'ignore_eos' | 'max_tokens' | 'min_tokens'>,
  ): FinishReason | null {
    const n = this.output.length;
    if (n === 0 || n < params.min_tokens) return null;
    if (this.stopTokenIds(params).has(this.output[n - 1])) return 'stop';
    return n >= params.max_tokens ? 'length' : null;
  }
}

function checkTokenId(t: number): void {
  if (!Number.isSafeInteger(t) || t < 0) {
    throw new InferError('INFER_BAD_TOKEN', `token ids must be non-negative integers, got ${t}`);
  }
}
