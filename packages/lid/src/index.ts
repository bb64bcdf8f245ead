export * from './codes.js';
export {
  cachedModelPath,
  type DownloadableModel,
  type DownloadErrorFactory,
  type DownloadFileOptions,
  type DownloadFileResult,
  type DownloadOptions,
  type DownloadResult,
  defaultCacheDir,
  downloadFile,
  downloadModel,
  isSha256,
  KNOWN_MODELS,
  type KnownModel,
  readSha256Sidecar,
  sha256File,
} from './download.js';
export * from './errors.js';
export { fnv1a } from './fasttext/dictionary.js';
export {
  FASTTEXT_MAGIC,
  FASTTEXT_VERSION,
  type FastTextArgs,
  FastTextModel,
  type LoadOptions,
  type LossName,
  type Prediction,
  type PredictOptions,
} from './fasttext/model.js';
export * from './fidelity.js';
export { readJsonlLines, writeFileAtomic } from './fsutil.js';
export * from './lid.js';
export * from './tag.js';
