import { nonNegativeInt, positiveInt, SftError } from './errors.js';

/** The learning-rate schedules of transformers' `get_scheduler` that the paper's setups use. */
export type SchedulerType = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';

const TYPES: readonly SchedulerType[] = ['constant', 'constant_with_warmup', 'linear', 'cosine'];

export interface ScheduleOptions {
  type: SchedulerType;
  /** The optimizer's base learning rate. */
  baseLr: number;
  /** Optimizer steps of the whole run (the Trainer's `max_steps`). */
  numTrainingSteps: number;
  /** Warm-up steps; when 0 or absent, `warmupRatio` decides. */
  warmupSteps?: number;
  /** Share of `numTrainingSteps` to warm up over, rounded up (transformers' `get_warmup_steps`). */
  warmupRatio?: number;
  /** Cosine only: waves of the cosine over the decay phase; 0.5 (the default) decays once from 1 to 0. */
  numCycles?: number;
}

export interface Schedule {
  readonly type: SchedulerType;
  readonly numTrainingSteps: number;
  /** Warm-up steps in effect (0 for 'constant', which ignores warm-up as transformers does). */
  readonly warmupSteps: number;
  /** The factor on the base learning rate after `step` optimizer steps (`LambdaLR`'s lambda). */
  multiplier(step: number): number;
  /**
   * The learning rate after `step` scheduler steps: `baseLr × multiplier(step)`. As with `LambdaLR` in the
   * Trainer, update n (1-based) uses `lrAt(n - 1)` — 0 for the first update when warming up — and the
   * `learning_rate` the Trainer logs after n updates is `lrAt(n)`.
   */
  lrAt(step: number): number;
}

/**
 * transformers' `TrainingArguments.get_warmup_steps`: `warmupSteps` if positive, else
 * `ceil(numTrainingSteps × warmupRatio)`.
 */
export function warmupStepsFor(numTrainingSteps: number, warmupSteps = 0, warmupRatio = 0): number {
  nonNegativeInt('warmupSteps', warmupSteps);
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
    throw new SftError('SFT_BAD_ARG', `warmupRatio must be in [0, 1], got ${warmupRatio}`);
  }
  return warmupSteps > 0 ? warmupSteps : Math.ceil(numTrainingSteps * warmupRatio);
}

/** A learning-rate schedule with the lambdas of transformers' `get_*_schedule*` functions. */
export function createSchedule(options: ScheduleOptions): Schedule {
  const { type, baseLr, numCycles = 0.5 } = options;
  if (!TYPES.includes(type)) {
    throw new SftError('SFT_BAD_ARG', `unknown scheduler type '${type}'; known ones are ${TYPES.join(', ')}`);
  }
  if (!(Number.isFinite(baseLr) && baseLr >= 0)) {
    throw new SftError('SFT_BAD_ARG', `baseLr must be a non-negative number, got ${baseLr}`);
  }
  if (!Number.isFinite(numCycles))
    throw new SftError('SFT_BAD_ARG', `numCycles must be finite, got ${numCycles}`);
  const total = positiveInt('numTrainingSteps', options.numTrainingSteps);
  const warmup = type === 'constant' ? 0 : warmupStepsFor(total, options.warmupSteps, options.warmupRatio);

  const decay: (step: number) => number = {
    constant: () => 1,
    constant_with_warmup: () => 1,
    linear: (step: number) => Math.max(0, (total - step) / Math.max(1, total - warmup)),
    cosine: (step: number) => {
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    },
  }[type];
  const multiplier = (step: number): number => {
    nonNegativeInt('step', step);
    return step < warmup ? step / Math.max(1, warmup) : decay(step);
  };
  return {
    type,
    numTrainingSteps: total,
    warmupSteps: warmup,
    multiplier,
    lrAt: (step) => baseLr * multiplier(step),
  };
}
