/**
 * results.json in lm-evaluation-harness's shape (`results` with `"acc,none"` / `"acc_stderr,none"` keys, `configs`,
 * `versions`, `n-shot`, `higher_is_better`, `n-samples`, `config`), plus what polyglot adds: the engine and tensor
 * backend in `config`, per-seed values in `per_seed`.
 */
import { type MetricSummary, meanOfSubtasks } from './aggregate.js';
import type { Task, Variant } from './task.js';

/** One variant's aggregated outcome. */
export interface VariantOutcome {
  task: Task;
  variant: Variant;
  /** Documents in the data, and those run (after `--limit`). */
  docsTotal: number;
  docsUsed: number;
  seeds: readonly (number | null)[];
  summaries: MetricSummary[];
  /** The task's configuration for this variant. */
  config: Record<string, unknown>;
  /** The per-sample JSONL, where there is one. */
  samplesFile?: string;
}

/** How the run was made (results.json `config`). */
export interface RunConfig {
  /** The model: a directory (local engine) or the served model name. */
  model: string;
  /** The engine spec as given (`local:DIR`, `openai:URL`), or `score` for scored files. */
  engine: string;
  /** `local`, `openai`, … */
  engine_kind: string | null;
  /** The tensor backend (`wasm`, `tensorflow`, …); null where unknown (a server). */
  backend: string | null;
  adapter?: string | null;
  batch_size?: number | null;
  limit?: number | null;
  seeds?: readonly number[] | null;
  gen_kwargs?: Record<string, unknown> | null;
  bootstrap_iters?: number;
  task_options?: Record<string, unknown>;
  [key: string]: unknown;
}

export type ResultsEntry = Record<string, string | number | null>;

export interface ResultsFile {
  results: Record<string, ResultsEntry>;
  groups: Record<string, ResultsEntry>;
  group_subtasks: Record<string, string[]>;
  configs: Record<string, Record<string, unknown>>;
  versions: Record<string, string | number>;
  'n-shot': Record<string, number>;
  higher_is_better: Record<string, Record<string, boolean>>;
  'n-samples': Record<string, { original: number; effective: number }>;
  per_seed: Record<string, Record<string, Record<string, number>>>;
  samples: Record<string, string>;
  config: RunConfig;
  polyglot_version: string;
  date: number;
  total_evaluation_time_seconds: string;
}

/** lm-evaluation-harness writes "N/A" for a standard error it cannot compute. */
const NA = 'N/A';

function withSuffix(key: string, suffix: string): string {
  const comma = key.lastIndexOf(',');
  return comma < 0 ? `${key}${suffix}` : `${key.slice(0, comma)}${suffix}${key.slice(comma)}`;
}

/** The results entry of one variant: `metric,filter`, `metric_stderr,filter` and the extras. */
export function resultsEntry(
  alias: string,
  summaries: readonly MetricSummary[],
  docsUsed: number,
): ResultsEntry {
  const e: ResultsEntry = { alias };
  for (const s of summaries) {
    e[s.key] = s.value;
    e[withSuffix(s.key, '_stderr')] = s.stderr ?? NA;
    if (s.seedStd !== null) e[withSuffix(s.key, '_seed_std')] = s.seedStd;
    if (s.ci) {
      e[withSuffix(s.key, '_ci_low')] = s.ci.low;
      e[withSuffix(s.key, '_ci_high')] = s.ci.high;
    }
    if (s.n !== docsUsed) e[withSuffix(s.key, '_n')] = s.n;
  }
  return e;
}

/** Assembles results.json from the variants' outcomes. */
export function buildResults(
  outcomes: readonly VariantOutcome[],
  config: RunConfig,
  extra: { version: string; startedAt: number; samplesDir?: string },
): ResultsFile {
  const r: ResultsFile = {
    results: {},
    groups: {},
    group_subtasks: {},
    configs: {},
    versions: {},
    'n-shot': {},
    higher_is_better: {},
    'n-samples': {},
    per_seed: {},
    samples: {},
    config,
    polyglot_version: extra.version,
    date: Math.floor(extra.startedAt / 1000),
    total_evaluation_time_seconds: ((Date.now() - extra.startedAt) / 1000).toFixed(2),
  };
  const byTask = new Map<string, VariantOutcome[]>();
  for (const o of outcomes) {
    const name = o.variant.name;
    r.results[name] = resultsEntry(name, o.summaries, o.docsUsed);
    r.configs[name] = o.config;
    r.versions[name] = o.task.version;
    r['n-shot'][name] = o.task.numFewshot ?? 0;
    r.higher_is_better[name] = Object.fromEntries(
      o.task.metrics.map((m) => [m.name, m.higherIsBetter ?? true]),
    );
    r['n-samples'][name] = { original: o.docsTotal, effective: o.docsUsed };
    const perSeed: Record<string, Record<string, number>> = {};
    for (const s of o.summaries) {
      for (const [seed, v] of Object.entries(s.perSeed)) {
        perSeed[seed] ??= {};
        perSeed[seed][s.key] = v;
      }
    }
    if (Object.keys(perSeed).length > 0) r.per_seed[name] = perSeed;
    if (o.samplesFile) r.samples[name] = o.samplesFile;
    byTask.set(o.task.name, [...(byTask.get(o.task.name) ?? []), o]);
  }
  for (const [task, list] of byTask) {
    if (list.length < 2 || r.results[task]) continue;
    const entry: ResultsEntry = { alias: task };
    const keys = [...new Set(list.flatMap((o) => o.summaries.map((s) => s.key)))];
    for (const key of keys) {
      const parts = list.map((o) => o.summaries.find((s) => s.key === key));
      if (parts.some((p) => p === undefined)) continue;
      const m = meanOfSubtasks(parts as MetricSummary[]);
      entry[key] = m.value;
      entry[withSuffix(key, '_stderr')] = m.stderr ?? NA;
    }
    r.results[task] = entry;
    r.groups[task] = entry;
    r.group_subtasks[task] = list.map((o) => o.variant.name);
  }
  return r;
}
