export * from './errors.js';
export * from './guanaco.js';
export * from './jsonl.js';
