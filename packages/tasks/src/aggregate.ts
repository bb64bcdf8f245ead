/**
 * From per-document scores to the numbers of results.json: per metric and filter the value (mean over seeds of the
 * per-seed aggregate), its standard error over documents, the spread over seeds, a bootstrap interval on request.
 */
import { Xoshiro128 } from '@polyglot/infer';
import { bootstrapCI, meanStd, meanStderr, quantile } from './stats.js';
import type { Aggregation, MetricSpec } from './task.js';

/** The scores of one document under one seed (null seed: deterministic tasks). */
export interface ScoredSample {
  docIndex: number;
  seed: number | null;
  scores: Record<string, number | null>;
}

export interface MetricSummary {
  /** `metric,filter`. */
  key: string;
  metric: string;
  filter: string;
  value: number;
  /** Standard error over documents (of the per-document mean over seeds); null when fewer than two documents. */
  stderr: number | null;
  /** Documents with a value. */
  n: number;
  /** The value under each seed (seeds as strings), where there are seeds. */
  perSeed: Record<string, number>;
  /** Sample standard deviation over seeds (null with fewer than two). */
  seedStd: number | null;
  /** Percentile bootstrap interval over documents, when asked for. */
  ci?: { low: number; high: number; confidence: number };
}

export interface AggregateOptions {
  /** Bootstrap resamples for the confidence interval (0: none, the default). */
  bootstrapIters?: number;
  /** Confidence of the interval (default 0.95). */
  confidence?: number;
}

function mean(v: readonly number[]): number {
  let s = 0;
  for (const x of v) s += x;
  return s / v.length;
}

/** The statistic an aggregation computes over per-document values. */
export function aggregationStatistic(aggregation: Aggregation): (values: readonly number[]) => number {
  switch (aggregation) {
    case 'median':
      return (v) =>
        quantile(
          [...v].sort((a, b) => a - b),
          0.5,
        );
    case 'perplexity':
      return (v) => Math.exp(-mean(v));
    default:
      return mean;
  }
}

/** Standard deviation of the statistic over bootstrap resamples (lm-evaluation-harness's stderr for non-mean aggregations). */
function bootstrapStderr(
  values: readonly number[],
  statistic: (v: readonly number[]) => number,
  iters = 1000,
): number | null {
  if (values.length < 2) return null;
  const rng = Xoshiro128.fromSeed(1234);
  const stats: number[] = [];
  const sample = new Array<number>(values.length);
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < values.length; i++) sample[i] = values[Math.floor(rng.nextFloat() * values.length)]!;
    stats.push(statistic(sample));
  }
  return meanStd(stats).std;
}

function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/**
 * Summaries of every `metric,filter` key of the samples, in the order of the task's metrics and filters (keys the
 * task does not declare follow). Keys no sample has a value for are left out.
 */
export function aggregateSamples(
  samples: readonly ScoredSample[],
  metrics: readonly MetricSpec[],
  filters: readonly string[] = ['none'],
  options: AggregateOptions = {},
): MetricSummary[] {
  const declared = metrics.flatMap((m) => filters.map((f) => `${m.name},${f}`));
  const seen = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.scores)) seen.add(k);
  const keys = [
    ...declared.filter((k) => seen.has(k)),
    ...[...seen].filter((k) => !declared.includes(k)).sort(),
  ];
  const out: MetricSummary[] = [];
  for (const key of keys) {
    const comma = key.lastIndexOf(',');
    const metric = comma >= 0 ? key.slice(0, comma) : key;
    const filter = comma >= 0 ? key.slice(comma + 1) : 'none';
    const spec = metrics.find((m) => m.name === metric);
    const statistic = aggregationStatistic(spec?.aggregation ?? 'mean');
    const bySeed = new Map<string, number[]>();
    const byDoc = new Map<number, number[]>();
    for (const s of samples) {
      const v = s.scores[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const seedKey = s.seed === null ? 'none' : String(s.seed);
      bySeed.set(seedKey, [...(bySeed.get(seedKey) ?? []), v]);
      byDoc.set(s.docIndex, [...(byDoc.get(s.docIndex) ?? []), v]);
    }
    if (byDoc.size === 0) continue;
    const perSeed: Record<string, number> = {};
    for (const [seed, values] of bySeed) if (seed !== 'none') perSeed[seed] = statistic(values);
    const seedValues = [...bySeed.values()].map((v) => statistic(v));
    const value = mean(seedValues);
    const docMeans = [...byDoc.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => mean(v));
    const stderr =
      (spec?.aggregation ?? 'mean') === 'mean'
        ? finiteOrNull(meanStderr(docMeans).stderr)
        : bootstrapStderr(docMeans, statistic);
    const summary: MetricSummary = {
      key,
      metric,
      filter,
      value,
      stderr,
      n: byDoc.size,
      perSeed,
      seedStd: seedValues.length > 1 ? finiteOrNull(meanStd(seedValues).std) : null,
    };
    if ((options.bootstrapIters ?? 0) > 0 && docMeans.length > 1) {
      const confidence = options.confidence ?? 0.95;
      const ci = bootstrapCI(docMeans, {
        iterations: options.bootstrapIters,
        confidence,
        seed: 1234,
        statistic,
      });
      summary.ci = { low: ci.low, high: ci.high, confidence };
    }
    out.push(summary);
  }
  return out;
}

/**
 * The unweighted mean of subtask values (the paper's "mean of 9 languages") with the standard error of that mean,
 * √(Σ se²)/k (null where a subtask has none).
 */
export function meanOfSubtasks(values: readonly { value: number; stderr: number | null }[]): {
  value: number;
  stderr: number | null;
} {
  const value = mean(values.map((v) => v.value));
  const ses = values.map((v) => v.stderr);
  const stderr = ses.every((s) => s !== null)
    ? Math.sqrt(ses.reduce((a, s) => a + (s as number) ** 2, 0)) / values.length
    : null;
  return { value, stderr };
}
