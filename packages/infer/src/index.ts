export { type BatcherStats, ContinuousBatcher, RequestAbortedError } from './batcher.js';
export type {
  BatchOptions,
  Engine,
  EngineInfo,
  GenerateChoice,
  GenerateOptions,
  GenerateParams,
  GenerateRequest,
  GenerateResult,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ScoreOptions,
  ScoreRequest,
  ScoreResult,
} from './engine.js';
export { type EngineSpec, openEngine, parseEngineSpec } from './engines.js';
export { InferError, SamplingParamError } from './errors.js';
export {
  cachedGguf,
  importNodeLlamaCpp,
  LlamaCppEngine,
  type LlamaCppEngineOptions,
  NODE_LLAMA_CPP_VERSION,
} from './llamacpp-engine.js';
export {
  LocalEngine,
  type LocalEngineOptions,
  type LoglikelihoodOptions,
  RequestError,
  type SubmitOptions,
} from './local-engine.js';
export { logSoftmax, type PositionLogprobs, positionLogprobs, type TokenLogprob } from './logprobs.js';
export { isGreedy, SAMPLING_EPS, type SamplingParams, samplingParams } from './params.js';
export {
  type BackoffOptions,
  type EndpointStats,
  normalizeBaseUrl,
  RemoteEngine,
  type RemoteEngineOptions,
  RemoteError,
  retryAfterMs,
  wireParams,
} from './remote-engine.js';
export { Xoshiro128 } from './rng.js';
export type { TokenEvent } from './row.js';
export {
  itemSeed,
  modelId,
  PAPER_SAMPLING,
  PAPER_SEEDS,
  promptName,
  pyFloat,
  type RunFileNameParts,
  type RunFileResult,
  type RunOptions,
  runFileName,
  runInference,
  testsetName,
} from './run.js';
export {
  applyMinP,
  applyMinTokens,
  applyPenalties,
  applyTemperature,
  applyTopKTopP,
  argmax,
  kthLargest,
  processLogits,
  sampleFromLogits,
  sampleToken,
} from './sampler.js';
export { ApiError, OpenAIServer, type ServerLimits, type ServerOptions, toApiError } from './server.js';
export { ApiKeyCheck, defaultLimits, resolveLimits } from './server-security.js';
export { type FinishReason, SequenceState } from './state.js';
export { earliestStop, findStop, pyRstrip, pyStrip, StopChecker, type StopMatch } from './stop.js';
