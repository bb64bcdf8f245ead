import type { Task } from '../task.js';
import { chatTask } from './chat.js';
import { xcsqaMcTask, xcsqaTask } from './xcsqa.js';
import { xnliTask } from './xnli.js';
import { xquadTask } from './xquad.js';

export { CHAT_LANGUAGES, chatTask, sampleIndices } from './chat.js';
export { XCSQA_LANGUAGES, xcsqaMcTask, xcsqaTask } from './xcsqa.js';
export { XNLI_PAPER_LANGUAGES, XNLI_VERBALISERS, xnliChoices, xnliTask } from './xnli.js';
export { XQUAD_LANGUAGES, xquadTask } from './xquad.js';

/** The built-in tasks: chat, xcsqa, xcsqa_mc, xquad, xnli. */
export const BUILTIN_TASKS: readonly Task[] = [chatTask, xcsqaTask, xcsqaMcTask, xquadTask, xnliTask];
