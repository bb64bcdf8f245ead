export * from './errors.js';
export * from './normalize.js';
export * from './squad.js';
export * from './stats.js';
export * from './xcsqa.js';
export * from './xquad.js';
