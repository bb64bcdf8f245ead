/**
 * The arguments of a training run and their defaults: the paper's settings (PAPER.md, "Training (LoRA SFT)"):
 * LoRA on every linear projection, r 64, alpha 16, dropout 0.05; AdamW lr 1e-5, weight decay 0.05, cosine schedule
 * with 3% warm-up, gradient-norm clip 0.3; max length 1024, no packing, pad = EOS, loss on every token, examples
 * sorted by token length; 10 epochs, per-device batch 4, accumulation 4.
 */
import type { BackendName } from '@polyglot/model';
import type { LossMode } from './data.js';
import { SftError } from './errors.js';
import type { SchedulerType } from './schedule.js';

export interface SftArgs {
  /** Base model directory (config.json, safetensors, tokenizer). */
  model: string;
  /** Training data, JSON Lines. */
  data: string;
  /** Output directory: the adapter, training_args.json, train-log.jsonl, checkpoints/. */
  out: string;
  evalData: string | null;
  initAdapter: string | null;
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  /** `all-linear` or projection names. */
  targetModules: 'all-linear' | string[];
  useRslora: boolean;
  lr: number;
  scheduler: SchedulerType;
  warmupRatio: number;
  /** > 0 overrides warmupRatio. */
  warmupSteps: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /** 0: no clipping. */
  maxGradNorm: number;
  epochs: number;
  /** > 0 overrides epochs. */
  maxSteps: number;
  batchSize: number;
  gradAccum: number;
  maxLength: number;
  loss: LossMode;
  chatTemplate: string | null;
  sortByLength: boolean;
  /** Seeded shuffling each epoch (when not sorting by length). */
  shuffle: boolean;
  packing: boolean;
  seed: number;
  /** Evaluate every N steps (and before the first and after the last); 0 = only before and after. */
  evalSteps: number;
  /** Checkpoint every N steps; 0 = never. */
  saveSteps: number;
  backend: BackendName;
  wasmThreads: number | null;
}

/** The paper's settings (and transformers' defaults where the paper says nothing: Adam betas/epsilon, seed 42). */
export const SFT_DEFAULTS: Omit<SftArgs, 'model' | 'data' | 'out'> = {
  evalData: null,
  initAdapter: null,
  loraR: 64,
  loraAlpha: 16,
  loraDropout: 0.05,
  targetModules: 'all-linear',
  useRslora: false,
  lr: 1e-5,
  scheduler: 'cosine',
  warmupRatio: 0.03,
  warmupSteps: 0,
  weightDecay: 0.05,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 0.3,
  epochs: 10,
  maxSteps: -1,
  batchSize: 4,
  gradAccum: 4,
  maxLength: 1024,
  loss: 'auto',
  chatTemplate: null,
  sortByLength: true,
  shuffle: true,
  packing: false,
  seed: 42,
  evalSteps: 0,
  saveSteps: 500,
  backend: 'auto',
  wasmThreads: null,
};

/**
 * The arguments that decide what a run computes: a resumed run must have the same values as the run that wrote
 * the checkpoint (output and evaluation settings may change).
 */
export const TRAJECTORY_ARGS: readonly (keyof SftArgs)[] = [
  'model',
  'data',
  'initAdapter',
  'loraR',
  'loraAlpha',
  'loraDropout',
  'targetModules',
  'useRslora',
  'lr',
  'scheduler',
  'warmupRatio',
  'warmupSteps',
  'weightDecay',
  'adamBeta1',
  'adamBeta2',
  'adamEpsilon',
  'maxGradNorm',
  'epochs',
  'maxSteps',
  'batchSize',
  'gradAccum',
  'maxLength',
  'loss',
  'chatTemplate',
  'sortByLength',
  'shuffle',
  'packing',
  'seed',
];

const bad = (flag: string, rule: string, v: unknown): SftError =>
  new SftError('SFT_BAD_ARG', `${flag} must be ${rule}, got ${JSON.stringify(v)}`);

/** Fills in the defaults and checks every value (errors name the CLI flag). */
export function resolveArgs(input: Partial<SftArgs> & Pick<SftArgs, 'model' | 'data' | 'out'>): SftArgs {
  const a: SftArgs = { ...SFT_DEFAULTS, ...stripUndefined(input) } as SftArgs;
  const int = (flag: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) throw bad(flag, `an integer ≥ ${min}`, v);
  };
  const num = (flag: string, v: number, ok: (v: number) => boolean, rule: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw bad(flag, rule, v);
  };
  int('--lora-r', a.loraR, 1);
  num('--lora-alpha', a.loraAlpha, (v) => v > 0, 'a positive number');
  num('--lora-dropout', a.loraDropout, (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('--lr', a.lr, (v) => v >= 0, 'a non-negative number');
  if (!['constant', 'constant_with_warmup', 'linear', 'cosine'].includes(a.scheduler)) {
    throw bad('--scheduler', 'constant, constant_with_warmup, linear or cosine', a.scheduler);
  }
  num('--warmup-ratio', a.warmupRatio, (v) => v >= 0 && v <= 1, 'in [0, 1]');
  int('--warmup-steps', a.warmupSteps, 0);
  num('--weight-decay', a.weightDecay, (v) => v >= 0, 'a non-negative number');
  num('--adam-beta1', a.adamBeta1, (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('--adam-beta2', a.adamBeta2, (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('--adam-epsilon', a.adamEpsilon, (v) => v >= 0, 'a non-negative number');
  num('--max-grad-norm', a.maxGradNorm, (v) => v >= 0, 'a non-negative number (0: no clipping)');
  num('--epochs', a.epochs, (v) => v > 0, 'a positive number');
  if (!Number.isSafeInteger(a.maxSteps) || a.maxSteps === 0 || a.maxSteps < -1) {
    throw bad('--max-steps', 'a positive integer (or -1: use --epochs)', a.maxSteps);
  }
  int('--batch-size', a.batchSize, 1);
  int('--grad-accum', a.gradAccum, 1);
  int('--max-length', a.maxLength, 2);
  if (!['auto', 'full', 'completion'].includes(a.loss))
    throw bad('--loss', 'auto, full or completion', a.loss);
  int('--seed', a.seed, 0);
  int('--eval-steps', a.evalSteps, 0);
  int('--save-steps', a.saveSteps, 0);
  if (a.wasmThreads !== null) int('--wasm-threads', a.wasmThreads, 1);
  if (typeof a.model !== 'string' || a.model === '') throw bad('--model', 'a model directory', a.model);
  if (typeof a.data !== 'string' || a.data === '') throw bad('--data', 'a JSON Lines file', a.data);
  if (typeof a.out !== 'string' || a.out === '') throw bad('--out', 'an output directory', a.out);
  return a;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The arguments as the paper's scripts saved them next to the adapter (snake_case JSON). */
export function argsJson(a: SftArgs): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(a).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
  );
}

/** Inverse of {@link argsJson}. */
export function argsFromJson(json: Record<string, unknown>): Partial<SftArgs> {
  return Object.fromEntries(
    Object.entries(json).map(([k, v]) => [k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), v]),
  ) as Partial<SftArgs>;
}
