export { type LoraKernel, loraKernel, type MergeLoraOptions, mergeLoraInto } from '@polyglot/model';
export type { AdapterSpec } from './adapters.js';
export { LoraMergeError } from './errors.js';
export { loraScale, type MergeOptions } from './merge.js';
export {
  type MergeAdapterOptions,
  type MergeContribution,
  type MergedTensor,
  type MergeReport,
  mergeAdapter,
  OUTPUT_DTYPES,
  type OutputDtype,
  type ShardProgress,
  setConfigDtype,
  type VerifyMergeOptions,
  type VerifyReport,
  verifyMerge,
} from './merge-adapter.js';
