export { type AttentionShape, hostAttention, tensorAttention } from './attention.js';
export {
  activeBackend,
  BACKEND_NAMES,
  BackendError,
  type BackendName,
  type BackendOptions,
  checkWebgpuBinding,
  initBackend,
  type WebgpuAdapterInfo,
  wasmBinaryDir,
  wasmThreadCount,
  webgpuAdapterInfo,
} from './backend.js';
export {
  type CacheRows,
  combineCaches,
  HostKVCache,
  type KVCache,
  KVCacheBase,
  TensorKVCache,
} from './cache.js';
export {
  type FullTrainerOptions,
  type FullTrainParamSpec,
  fullTrainParamSpecs,
  LlamaFullTrainer,
  transpose2d,
} from './full-train.js';
export {
  type AttentionImpl,
  argmax,
  DecodeState,
  type DecodeStepOptions,
  type GreedyOptions,
  type LlamaLoadOptions,
  LlamaModel,
  type Logits,
  type PrefillOptions,
  type ScoreOptions,
  type TokenScores,
} from './model.js';
export { largestWeight, llamaConfig, randomWeightSource } from './random.js';
export { type RopeSpec, RopeTable, ropeInvFreq } from './rope.js';
export type { AdapterInput, WeightSource } from './weights.js';
