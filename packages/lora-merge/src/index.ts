export { LoraMergeError } from './errors.js';
export { loraScale, type MergeOptions, mergeLoraInto } from './merge.js';
