import { positiveInt, SftError } from './errors.js';

export interface TrainingStepsOptions {
  /** Training examples (rows after any packing). */
  examples: number;
  /** Per-device batch size (`per_device_train_batch_size`). */
  batchSize: number;
  /** `gradient_accumulation_steps`; default 1. */
  gradAccum?: number;
  /** `num_train_epochs` (may be fractional); default 3, as transformers. Ignored when maxSteps > 0. */
  epochs?: number;
  /** `max_steps`; > 0 overrides epochs. Default -1. */
  maxSteps?: number;
  /** Data-parallel processes; default 1. */
  worldSize?: number;
  /** `dataloader_drop_last`; default false. */
  dropLast?: boolean;
  /**
   * How a last, incomplete accumulation window counts: 'ceil' (default) as transformers' Trainer since its
   * `set_initial_training_values` (the final short window makes an update), 'floor' as the older Trainers
   * (`len_dataloader // gradient_accumulation_steps`).
   */
  rounding?: 'ceil' | 'floor';
}

export interface TrainingSteps {
  /** Batches each process sees per epoch (`len(train_dataloader)`). */
  batchesPerEpoch: number;
  /** Optimizer updates per epoch (at least 1). */
  updateStepsPerEpoch: number;
  /** Optimizer updates of the whole run (the schedule's `numTrainingSteps`). */
  maxSteps: number;
  /** Epochs the training loop enters. */
  epochs: number;
  /** Examples per update over all processes: batchSize × gradAccum × worldSize. */
  totalBatchSize: number;
}

/**
 * The step arithmetic of transformers' Trainer. Each process's dataloader holds ceil(examples / (batchSize ×
 * worldSize)) batches (floor with dropLast) — accelerate's even sharding and the older DistributedSampler give
 * the same count; an epoch makes max(1, batches / gradAccum) updates (rounded per `rounding`); then
 * `maxSteps` > 0 wins, else maxSteps = ceil(epochs × updates per epoch).
 */
export function computeTrainingSteps(options: TrainingStepsOptions): TrainingSteps {
  const examples = positiveInt('examples', options.examples);
  const batchSize = positiveInt('batchSize', options.batchSize);
  const gradAccum = positiveInt('gradAccum', options.gradAccum ?? 1);
  const worldSize = positiveInt('worldSize', options.worldSize ?? 1);
  const epochs = options.epochs ?? 3;
  const maxStepsArg = options.maxSteps ?? -1;
  if (!Number.isSafeInteger(maxStepsArg)) {
    throw new SftError('SFT_BAD_ARG', `maxSteps must be an integer, got ${maxStepsArg}`);
  }
  if (maxStepsArg <= 0 && !(Number.isFinite(epochs) && epochs > 0)) {
    throw new SftError(
      'SFT_BAD_ARG',
      `epochs must be a positive number when maxSteps is not set, got ${epochs}`,
    );
  }
  const perUpdate = batchSize * worldSize;
  const batchesPerEpoch = options.dropLast
    ? Math.floor(examples / perUpdate)
    : Math.ceil(examples / perUpdate);
  if (batchesPerEpoch === 0) {
    throw new SftError(
      'SFT_NO_BATCHES',
      `${examples} examples make no full batch of ${batchSize} × ${worldSize} processes with dropLast; ` +
        'lower the batch size or turn dropLast off',
    );
  }
  const round = options.rounding === 'floor' ? Math.floor : Math.ceil;
  const updateStepsPerEpoch = Math.max(1, round(batchesPerEpoch / gradAccum));
  const maxSteps = maxStepsArg > 0 ? maxStepsArg : Math.ceil(epochs * updateStepsPerEpoch);
  return {
    batchesPerEpoch,
    updateStepsPerEpoch,
    maxSteps,
    epochs: maxStepsArg > 0 ? Math.ceil(maxSteps / updateStepsPerEpoch) : Math.ceil(epochs),
    totalBatchSize: batchSize * gradAccum * worldSize,
  };
}
