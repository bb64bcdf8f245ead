import type { ChatMessage } from '@polyglot/model';
import type { TokenLogprob } from './logprobs.js';
import type { SamplingParams } from './params.js';
import type { FinishReason } from './state.js';

/**
 * What every engine does — the local TensorFlow.js engine ({@link LocalEngine}), a client of an OpenAI-compatible
 * server ({@link RemoteEngine}), and the HTTP server that serves an engine. Requests and results are plain JSON-able data so the same
 * interface can cross a process or network boundary unchanged.
 */
export interface Engine {
  readonly info: EngineInfo;
  /** Generates for each request; results come back in request order. */
  generate(reqs: GenerateRequest[], opts?: GenerateOptions): Promise<GenerateResult[]>;
  /** Log-probability of every token of each sequence given its prefix. */
  score(reqs: ScoreRequest[], opts?: ScoreOptions): Promise<ScoreResult[]>;
  /** lm-evaluation-harness's `loglikelihood`: log p(continuation | context), and whether it is the greedy one. */
  loglikelihood(reqs: LoglikelihoodRequest[], opts?: BatchOptions): Promise<LoglikelihoodResult[]>;
  /** Frees what the engine holds (weights, connections). */
  close(): Promise<void>;
}

export interface EngineInfo {
  /** `local` (this process), `openai` (an OpenAI-compatible server), or another engine's name. */
  kind: 'local' | 'openai' | (string & {});
  /** The model: a directory for the local engine, the served model name for a server. */
  model: string;
  /** The tensor backend the work runs on (`wasm`, `cpu`, `webgpu`, `tensorflow`); null where unknown (a server). */
  backend: string | null;
  /** The adapter applied, where the engine knows (local engine: its name, null for the base model). */
  adapter?: string | null;
}

/** Sampling parameters of one request, with vLLM's names (see `samplingParams`); missing ones take its defaults. */
export type GenerateParams = Partial<Omit<SamplingParams, 'stop' | 'seed' | 'logprobs'>> & {
  stop?: string | string[];
  seed?: number | null;
  logprobs?: number | null;
};

export interface GenerateRequest {
  /**
   * Text of the prompt, encoded with the tokenizer's special tokens (Llama: BOS). Exactly one of prompt, inputIds
   * and messages.
   */
  prompt?: string;
  /** Token ids of the prompt, used as they are. */
  inputIds?: number[];
  /**
   * A conversation, rendered with the chat template and the generation prompt: the local engine's (the tokenizer's,
   * or `chatTemplate` given at load) and encoded without special tokens (the template prints them), as vLLM's chat
   * API does; a remote engine sends it to `/v1/chat/completions`.
   */
  messages?: ChatMessage[];
  params?: GenerateParams;
  /**
   * Independent samples of the prompt (OpenAI's `n`), default 1. With n > 1 the result's `choices` holds all of
   * them (the first also at the top level). Sample k uses seed `params.seed + k` where a seed is given, else one
   * drawn from the engine's generator.
   */
  n?: number;
  /**
   * After a stop string, strip the text as Python's `str.strip()` — what the paper's inference script keeps
   * (default true). vLLM itself only cuts: pass false to get its text.
   */
  trim?: boolean;
}

/** One sample of a request. */
export interface GenerateChoice {
  /**
   * Generated ids, the stop token (EOS or one of stop_token_ids) included when one ended the output. A remote
   * engine knows them only where the server returns them (`RemoteEngine` option `tokenIds`); else empty.
   */
  outputIds: number[];
  /** Text of the output: without the stop token's text, cut before a stop string (then trimmed, unless trim false). */
  text: string;
  /** 'stop': a stop token or stop string ended the output; 'length': max_tokens was reached. */
  finishReason: FinishReason;
  /** vLLM's stop_reason: the stop string or stop_token_ids entry that ended the output; null for EOS and length. */
  stopReason: string | number | null;
  /** The seed the request's sampler was seeded with (its own, or one the engine drew for it). */
  seed: number;
  /** With `logprobs` set: log p of each output token under the model's raw distribution (vLLM v1's default). */
  tokenLogprobs?: number[];
  /** With `logprobs` = n > 0: the n most likely tokens at each output position, most likely first. */
  topLogprobs?: TokenLogprob[][];
}

export interface GenerateResult extends GenerateChoice {
  /** The prompt's token ids (a remote engine: where the server returns them, else empty). */
  inputIds: number[];
  /** With `n` > 1: every sample, the first being the one at the top level. */
  choices?: GenerateChoice[];
}

export interface BatchOptions {
  /** Requests run together; default 8. A remote engine: requests in flight per endpoint (its `concurrency`). */
  batchSize?: number;
  /**
   * The LoRA adapter to apply, by name (null: the base model); default the engine's default. A remote engine sends
   * it as the request's `model` (vLLM serves adapters under their names).
   */
  adapter?: string | null;
}

export interface GenerateOptions extends BatchOptions {
  /** Called as each request finishes (not in request order), with its index in `reqs`. */
  onResult?: (index: number, result: GenerateResult) => void;
}

export interface ScoreRequest {
  /** Text, encoded with the tokenizer's special tokens (Llama: BOS). Exactly one of text/inputIds. */
  text?: string;
  inputIds?: number[];
}

export interface ScoreOptions extends BatchOptions {
  /** Also return the n most likely tokens at each position (`topLogprobs`); default 0 (none). */
  topLogprobs?: number;
}

export interface ScoreResult {
  /** The sequence's ids (a remote engine scoring text: where the server returns them, else empty). */
  inputIds: number[];
  /** tokenLogprobs[i] = log p(inputIds[i+1] | inputIds[..i]); one fewer than the ids. */
  tokenLogprobs: number[];
  sumLogprob: number;
  /** With `topLogprobs` n > 0: topLogprobs[i] = the n most likely tokens in place of inputIds[i+1]. */
  topLogprobs?: TokenLogprob[][];
  /** A remote engine: the text of each token (tokens[0] is the first token, e.g. '' for BOS). */
  tokens?: string[];
}

/** Text (`context` + `continuation`) or token ids (`contextIds` + `continuationIds`). */
export interface LoglikelihoodRequest {
  context?: string;
  continuation?: string;
  contextIds?: number[];
  continuationIds?: number[];
}

export interface LoglikelihoodResult {
  /** Sum of the continuation tokens' log-probabilities. */
  logprob: number;
  /** Whether every continuation token is the argmax at its position (greedy decoding would produce it). */
  isGreedy: boolean;
  /** Number of continuation tokens. */
  tokens: number;
}
