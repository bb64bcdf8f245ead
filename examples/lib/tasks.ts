// What examples 05–07 share: run one @polyglot/tasks task over the base model and every merged model (or one
// served model), into WORK/runs/<Model>/<task>/ (results.json in lm-evaluation-harness's shape, samples files),
// and print a model × variant table.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type Engine, type GenerateParams, openEngine } from '@polyglot/infer';
import { runTasks, TaskRegistry } from '@polyglot/tasks';
import {
  backendOf,
  baseModel,
  ExampleError,
  flags,
  foldersWith,
  layout,
  list,
  MODEL_OPTIONS,
  num,
  repoPath,
  show,
  workDir,
} from './common.js';

/** The flags of examples 05–07. */
export const TASK_OPTIONS = {
  ...MODEL_OPTIONS,
  models: { type: 'string' },
  'models-dir': { type: 'string' },
  'no-base': { type: 'boolean' },
  engine: { type: 'string' },
  'served-model': { type: 'string' },
  name: { type: 'string' },
  langs: { type: 'string' },
  'data-dir': { type: 'string' },
  limit: { type: 'string' },
  seeds: { type: 'string' },
  'max-tokens': { type: 'string' },
  'batch-size': { type: 'string' },
  resume: { type: 'boolean' },
  'runs-dir': { type: 'string' },
} as const;

export interface TaskExample {
  /** The script's import.meta.url (for --help). */
  file: string;
  task: string;
  /** Default variants on the embedded defaults (`de`, `en:de`). */
  langs: string[];
  /** The demo data folder under data/demo. */
  demoData: string;
  /** Default seeds of generation tasks on the embedded defaults (null: a log-likelihood task, no seeds). */
  seeds: number[] | null;
  /** Default max_tokens of generation tasks on the embedded defaults. */
  maxTokens?: number;
  /** The metric shown in the printed table. */
  metric: string;
}

/** Parses the flags, runs the task on each model and prints the table. */
export async function runTaskExample(spec: TaskExample): Promise<void> {
  const f = flags(spec.file, TASK_OPTIONS);
  const work = await workDir(f.work);
  const dirs = layout(work);
  const runsDir = path.resolve(f['runs-dir'] ?? dirs.runs);
  const backend = backendOf(f.backend);
  const langs = list(f.langs, spec.langs);
  const dataDir = path.resolve(f['data-dir'] ?? repoPath('data', 'demo', spec.demoData));
  const limit = num(f.limit, 'limit');
  const batchSize = num(f['batch-size'], 'batch-size', 8);
  const seeds = f.seeds !== undefined ? list(f.seeds, []).map((s) => num(s, 'seeds', 0)) : spec.seeds;
  const genKwargs: GenerateParams = {};
  if (spec.seeds !== null) genKwargs.max_tokens = num(f['max-tokens'], 'max-tokens', spec.maxTokens ?? 32);
  else if (f['max-tokens'] !== undefined)
    throw new ExampleError(`--max-tokens: ${spec.task} generates nothing`);

  // The models: the base and every merged model of example 03, or one engine given by the user.
  const targets: { name: string; spec: string; open: () => Promise<Engine> }[] = [];
  if (f.engine) {
    const remote = !f.engine.startsWith('local:');
    if (remote && !f.name)
      throw new ExampleError('--engine openai:… needs --name (the output folder, e.g. Multi-2)');
    const served = f['served-model'];
    targets.push({
      name: f.name ?? path.basename(f.engine.slice('local:'.length)),
      spec: f.engine,
      open: () =>
        openEngine(
          f.engine!,
          remote ? (served ? { openai: { model: served } } : {}) : { local: { backend } },
        ),
    });
  } else {
    if (!f['no-base']) {
      const base = await baseModel({ model: f.model, preset: f.preset, baseCache: f['base-cache'] });
      targets.push({
        name: 'base',
        spec: `local:${base}`,
        open: () => openEngine(`local:${base}`, { local: { backend } }),
      });
    }
    const modelsDir = path.resolve(f['models-dir'] ?? dirs.models);
    const names = f.models ? list(f.models, []) : foldersWith(modelsDir, 'config.json');
    for (const n of names) {
      const dir = path.join(modelsDir, n);
      if (!existsSync(path.join(dir, 'config.json'))) {
        throw new ExampleError(
          `${dir}: no merged model; run examples/03-merge.ts first (or give --models-dir)`,
        );
      }
      targets.push({
        name: n,
        spec: `local:${dir}`,
        open: () => openEngine(`local:${dir}`, { local: { backend } }),
      });
    }
    if (targets.length === 0)
      throw new ExampleError('no models: drop --no-base or run examples/03-merge.ts first');
  }

  const registry = TaskRegistry.withBuiltins();
  const selection = registry.resolve([spec.task], langs);
  const table: Record<string, Record<string, number | null>> = {};
  const columns: string[] = [];
  for (const t of targets) {
    const outputDir = path.join(runsDir, t.name, spec.task);
    // A fresh run replaces an earlier one's results; --resume continues it (runTasks skips the samples done).
    if (!f.resume) await rm(outputDir, { recursive: true, force: true });
    const engine = await t.open();
    try {
      const results = await runTasks({
        tasks: selection,
        engine,
        engineSpec: t.spec,
        outputDir,
        dataDir,
        batchSize,
        ...(limit !== undefined ? { limit } : {}),
        ...(seeds ? { seeds } : {}),
        ...(Object.keys(genKwargs).length ? { genKwargs } : {}),
      });
      const row: Record<string, number | null> = {};
      for (const [variant, entry] of Object.entries(results.results)) {
        const v = entry[`${spec.metric},none`];
        row[variant] = typeof v === 'number' ? v : null;
        if (!columns.includes(variant)) columns.push(variant);
      }
      table[t.name] = row;
      console.log(
        `${t.name}: ${Object.keys(results.results).length} results → ${show(path.join(outputDir, 'results.json'))}`,
      );
    } finally {
      await engine.close();
    }
  }

  const seedNote = seeds ? `, mean over seeds ${seeds.join(', ')}` : '';
  console.log(`\n${spec.task} ${spec.metric}${seedNote}:`);
  const width = Math.max(8, ...columns.map((c) => c.length + 1));
  console.log(['model'.padEnd(10), ...columns.map((c) => c.padStart(width))].join(''));
  for (const [model, row] of Object.entries(table)) {
    const cells = columns.map((c) =>
      (row[c] === null || row[c] === undefined ? '–' : row[c]!.toFixed(3)).padStart(width),
    );
    console.log([model.padEnd(10), ...cells].join(''));
  }
  console.log(`results.json and samples_*.jsonl: ${show(runsDir)}/<Model>/${spec.task}/`);
}
