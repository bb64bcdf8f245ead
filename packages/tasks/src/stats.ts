import { Xoshiro128 } from '@polyglot/infer';
import { TasksError } from './errors.js';

function checked(values: readonly number[], what: string): readonly number[] {
  if (!Array.isArray(values) || values.length === 0) {
    throw new TasksError('empty-sample', `${what}: no values to aggregate`);
  }
  const bad = values.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad >= 0)
    throw new TasksError('bad-value', `${what}: value ${bad} is ${values[bad]}, not a finite number`);
  return values;
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample standard deviation (n − 1 in the denominator); NaN for a single value. */
function sampleStd(values: readonly number[], m: number): number {
  if (values.length < 2) return Number.NaN;
  let ss = 0;
  for (const v of values) ss += (v - m) ** 2;
  return Math.sqrt(ss / (values.length - 1));
}

/**
 * Mean and its standard error, as lm-evaluation-harness reports them: stderr = sample standard deviation
 * (n − 1) / √n. With a single value the stderr is NaN.
 */
export function meanStderr(values: readonly number[]): { mean: number; stderr: number; n: number } {
  checked(values, 'meanStderr');
  const m = mean(values);
  return { mean: m, stderr: sampleStd(values, m) / Math.sqrt(values.length), n: values.length };
}

/**
 * Mean and sample standard deviation (n − 1, as pandas) — e.g. of one metric over sampling seeds (the paper
 * reports the mean over seeds 0, 42 and 723). With a single value the std is NaN.
 */
export function meanStd(values: readonly number[]): { mean: number; std: number; n: number } {
  checked(values, 'meanStd');
  const m = mean(values);
  return { mean: m, std: sampleStd(values, m), n: values.length };
}

/** The q-quantile (0 ≤ q ≤ 1) of sorted values, interpolating linearly (numpy's default method). */
export function quantile(sorted: readonly number[], q: number): number {
  checked(sorted, 'quantile');
  if (!(q >= 0 && q <= 1)) throw new TasksError('bad-option', `quantile: q must be in [0, 1], got ${q}`);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface BootstrapOptions {
  /** Resamples (default 1000). */
  iterations?: number;
  /** Confidence level (default 0.95). */
  confidence?: number;
  /** Seed of the resampling generator (default 0): the same seed gives the same interval. */
  seed?: number;
  /** The statistic (default the mean). */
  statistic?: (sample: readonly number[]) => number;
}

/**
 * Percentile bootstrap confidence interval of a statistic: `iterations` resamples of the values with
 * replacement (drawn with the seeded xoshiro128** generator of `@polyglot/infer`), the statistic of each, and
 * the (1 − confidence)/2 and (1 + confidence)/2 quantiles of those. `estimate` is the statistic of the values.
 */
export function bootstrapCI(
  values: readonly number[],
  options: BootstrapOptions = {},
): { estimate: number; low: number; high: number } {
  const { iterations = 1000, confidence = 0.95, seed = 0, statistic = mean } = options;
  checked(values, 'bootstrapCI');
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new TasksError(
      'bad-option',
      `bootstrapCI: iterations must be a positive integer, got ${iterations}`,
    );
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new TasksError('bad-option', `bootstrapCI: confidence must be between 0 and 1, got ${confidence}`);
  }
  const rng = Xoshiro128.fromSeed(seed);
  const n = values.length;
  const sample = new Array<number>(n);
  const stats = new Array<number>(iterations);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) sample[i] = values[Math.floor(rng.nextFloat() * n)]!;
    stats[it] = statistic(sample);
  }
  stats.sort((a, b) => a - b);
  const alpha = (1 - confidence) / 2;
  return { estimate: statistic(values), low: quantile(stats, alpha), high: quantile(stats, 1 - alpha) };
}
