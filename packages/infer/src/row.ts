import { type DecodeStream, type Tokenizer, TokenizerError } from '@polyglot/model';
import type { GenerateChoice } from './engine.js';
import { logSoftmax, positionLogprobs, type TokenLogprob } from './logprobs.js';
import type { SamplingParams } from './params.js';
import { Xoshiro128 } from './rng.js';
import { sampleToken } from './sampler.js';
import { type FinishReason, SequenceState } from './state.js';
import { pyStrip, StopChecker } from './stop.js';

/** A checked request: its prompt ids, completed parameters and seed (null until the engine draws one). */
export interface PreparedGenerate {
  /** Index of the request in its call. */
  index: number;
  ids: number[];
  params: SamplingParams;
  seed: number | null;
  trim: boolean;
}

/** What one generated token added (streaming). */
export interface TokenEvent {
  /** The token id. */
  token: number;
  /** Text that became final with this token ('' while held back: a partial character or a possible stop string). */
  text: string;
  /** The token's own text in context ('' for a stop token and while a character is incomplete). */
  piece: string;
  /** With `logprobs`: the token's log-probability and the top n (n > 0). */
  logprob?: number;
  top?: TokenLogprob[];
}

/**
 * One sequence being generated: its sampler state, random stream, incremental detokenizer and stop strings. The
 * engine feeds it the logits of its next position ({@link step}) until {@link done}.
 */
export class Row {
  private readonly seq: SequenceState;
  private readonly rng: Xoshiro128;
  private readonly stream: DecodeStream;
  private readonly stops: StopChecker;
  private readonly eos: ReadonlySet<number>;
  private readonly out: number[] = [];
  private readonly lps: number[] | null;
  private readonly tops: TokenLogprob[][] | null;
  finish: FinishReason | null = null;
  private stopReason: string | number | null = null;
  /** The last sampled token (fed to the model at the next decode step). */
  pending = -1;

  constructor(
    readonly req: PreparedGenerate,
    eosIds: readonly number[],
    tokenizer: Tokenizer,
    private readonly onToken?: (event: TokenEvent) => void,
  ) {
    this.seq = new SequenceState(req.ids, eosIds);
    this.rng = Xoshiro128.fromSeed(req.seed!);
    this.stream = tokenizer.decodeStream({ promptIds: req.ids });
    this.stops = new StopChecker(req.params.stop);
    this.eos = new Set(req.params.ignore_eos ? [] : eosIds);
    this.lps = req.params.logprobs === null ? null : [];
    this.tops = req.params.logprobs ? [] : null;
    if (req.params.max_tokens === 0) this.finish = 'length';
  }

  get done(): boolean {
    return this.finish !== null;
  }

  /** Tokens generated so far. */
  get generated(): number {
    return this.out.length;
  }

  /** Samples the next token from this row's logits, records it, and decides whether the request is finished. */
  step(logits: Float32Array): number {
    const { params } = this.req;
    const token = sampleToken(logits, params, this.seq, this.rng);
    this.seq.append(token);
    this.out.push(token);
    this.pending = token;
    let pos: { logprob: number; top: TokenLogprob[] } | null = null;
    if (this.lps !== null) {
      pos = positionLogprobs(logSoftmax(logits), token, params.logprobs ?? 0);
      this.lps.push(pos.logprob);
      this.tops?.push(pos.top);
    }
    let text = '';
    let piece = '';
    const reason = this.seq.finishReason(params);
    if (reason === 'stop') {
      // A stop token (EOS or one of stop_token_ids): kept in the ids, its text left out of the output (vLLM).
      this.finish = 'stop';
      this.stopReason = this.eos.has(token) ? null : token;
    } else {
      const chunk = this.detokenize(token);
      piece = chunk;
      // vLLM looks for stop strings only once more than min_tokens tokens exist.
      text =
        this.seq.numGenerated > params.min_tokens ? this.stops.push(chunk) : this.stops.pushUnchecked(chunk);
      if (this.stops.stopped) {
        this.finish = 'stop';
        this.stopReason = this.stops.stopped.stop;
      } else if (reason === 'length') {
        this.finish = 'length';
      }
    }
    if (this.onToken) {
      const event: TokenEvent = { token, text, piece };
      if (pos) {
        event.logprob = pos.logprob;
        if (this.tops) event.top = pos.top;
      }
      this.onToken(event);
    }
    return token;
  }

  result(): GenerateChoice {
    // An incomplete UTF-8 character at the very end is dropped, as vLLM's detokenizer never emits one.
    const text = this.stops.text;
    const r: GenerateChoice = {
      outputIds: this.out,
      text: this.req.trim ? pyStrip(text) : text,
      finishReason: this.finish ?? 'length',
      stopReason: this.stopReason,
      seed: this.req.seed!,
    };
    if (this.lps !== null) r.tokenLogprobs = this.lps;
    if (this.tops !== null) r.topLogprobs = this.tops;
    return r;
  }

  private detokenize(token: number): string {
    try {
      return this.stream.step(token);
    } catch (e) {
      // An id the model can produce but the tokenizer lacks (a vocabulary padded for speed) has no text.
      if (e instanceof TokenizerError) return '';
      throw e;
    }
  }
}
