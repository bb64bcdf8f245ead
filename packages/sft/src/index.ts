export { AdamW, type AdamWOptions, type ParamGroup } from './adamw.js';
export { clipGradNorm } from './clip.js';
export { SftError } from './errors.js';
export {
  createSchedule,
  type Schedule,
  type ScheduleOptions,
  type SchedulerType,
  warmupStepsFor,
} from './schedule.js';
export { computeTrainingSteps, type TrainingSteps, type TrainingStepsOptions } from './steps.js';
