export { AdamW, type AdamWOptions, type ParamGroup } from './adamw.js';
export {
  type Batch,
  collate,
  epochBatches,
  epochOrder,
  IGNORE,
  type OrderOptions,
  packExamples,
} from './batch.js';
export {
  CHECKPOINTS_DIR,
  latestCheckpoint,
  loadCheckpoint,
  readTrainerState,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
export { clipGradNorm } from './clip.js';
export {
  type DatasetStats,
  type Example,
  type FormatOptions,
  type FormattedExample,
  formatRecord,
  LOSS_MODES,
  type LossMode,
  loadSftDataset,
  type RecordFormat,
  readRecords,
  recordFormat,
  type SftDataset,
} from './data.js';
export { SftError } from './errors.js';
export {
  exportTrl,
  TRL_CONFIG_FILE,
  TRL_SCRIPT,
  TRL_SCRIPT_FILE,
  type TrlConfig,
  trlConfig,
} from './export.js';
export {
  adapterTensors,
  initFactors,
  LLAMA_PROJECTIONS,
  type LoraOptions,
  LoraTrainer,
  type LoraTrainerOptions,
  loraConfigFor,
  type OptimizerOptions,
  parameterNames,
  readFactors,
  resolveTargetModules,
  type StepResult,
  type Timings,
  targetsFor,
} from './lora.js';
export {
  argsFromJson,
  argsJson,
  resolveArgs,
  SFT_DEFAULTS,
  type SftArgs,
  TRAJECTORY_ARGS,
} from './options.js';
export {
  PRETRAIN_LOG,
  PRETRAIN_SUMMARY,
  type PretrainHooks,
  type PretrainLogRecord,
  type PretrainOptions,
  type PretrainSummary,
  pretrain,
  pretrainLoss,
  pretrainLr,
  tokenStream,
  WindowSampler,
} from './pretrain.js';
export { mixSeed, permutation, prng } from './rng.js';
export {
  createSchedule,
  type Schedule,
  type ScheduleOptions,
  type SchedulerType,
  warmupStepsFor,
} from './schedule.js';
export { computeTrainingSteps, type TrainingSteps, type TrainingStepsOptions } from './steps.js';
export {
  ARGS_FILE,
  type EvalLogRecord,
  SUMMARY_FILE,
  TRAIN_LOG,
  type TrainHooks,
  type TrainLogRecord,
  type TrainSummary,
  train,
} from './train.js';
