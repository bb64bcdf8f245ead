export * from './batch.js';
export * from './cache.js';
export * from './client.js';
export * from './errors.js';
export { nodeFetch } from './fetch.js';
export { canonicalJson, requestKey, sha256 } from './hash.js';
export {
  type JsonRecord,
  type Line,
  LineAppender,
  readJsonl,
  readResumable,
  writeFileAtomic,
} from './jsonl.js';
export { type Clock, pool, realClock, TokenBucket } from './limiter.js';
export * from './pairwise.js';
export * from './parse.js';
export * from './prices.js';
export { redact, safeUrl } from './redact.js';
export * from './retry.js';
export * from './rubric.js';
export * from './rubric-file.js';
export * from './run.js';
export * from './sample.js';
export * from './summarize.js';
