import type { TokenLogprob } from './logprobs.js';
import type { SamplingParams } from './params.js';
import type { FinishReason } from './state.js';

/**
 * What every engine does — the local TensorFlow.js engine ({@link LocalEngine}), a client of an OpenAI-compatible
 * server, and the HTTP server that serves an engine. Requests and results are plain JSON-able data so the same
 * interface can cross a process or network boundary unchanged.
 */
export interface Engine {
  readonly info: EngineInfo;
  /** Generates for each request; results come back in request order. */
  generate(reqs: GenerateRequest[], opts?: GenerateOptions): Promise<GenerateResult[]>;
  /** Log-probability of every token of each sequence given its prefix. */
  score(reqs: ScoreRequest[], opts?: BatchOptions): Promise<ScoreResult[]>;
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
  /** Text of the prompt, encoded with the tokenizer's special tokens (Llama: BOS). Exactly one of prompt/inputIds. */
  prompt?: string;
  /** Token ids of the prompt, used as they are. */
  inputIds?: number[];
  params?: GenerateParams;
  /**
   * After a stop string, strip the text as Python's `str.strip()` — what the paper's inference script keeps
   * (default true). vLLM itself only cuts: pass false to get its text.
   */
  trim?: boolean;
}

export interface GenerateResult {
  /** The prompt's token ids. */
  inputIds: number[];
  /** Generated ids, the stop token (EOS or one of stop_token_ids) included when one ended the output. */
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

export interface BatchOptions {
  /** Requests run together; default 8. */
  batchSize?: number;
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

export interface ScoreResult {
  inputIds: number[];
  /** tokenLogprobs[i] = log p(inputIds[i+1] | inputIds[..i]); one fewer than the ids. */
  tokenLogprobs: number[];
  sumLogprob: number;
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
