// `polyglot reproduce`: the paper's experiment end to end, as one resumable pipeline over the packages' public
// APIs. Stages (each cached in <out>/reproduce.json, each resumable, `from` reruns one and all after it):
//
//   mixes     Mono, Multi-2 … Multi-k from the instruction pool      @polyglot/data    <out>/mixes/<Mix>.jsonl
//   base      the base model (embedded presets: a small Llama the    @polyglot/model,  cache dir (base.json)
//             project defines, pre-trained English-centric; cached)   @polyglot/sft
//   train     one LoRA adapter per mix                               @polyglot/sft     <out>/train/<Mix>/
//   merge     each adapter merged into the base                      @polyglot/lora-merge <out>/models/<Mix>/
//   generate  chat prompts in every test language, every seed       @polyglot/infer   <out>/runs/<Mix>/*.jsonl
//   fidelity  language fidelity of every generation file             @polyglot/lid     <out>/runs/<Mix>/*.eval
//   tasks     X-CSQA, XQuAD, XNLI                                    @polyglot/tasks   <out>/runs/<Mix>/tasks/
//   judge     helpfulness, where a judge endpoint is configured      @polyglot/judge   <out>/runs/<Mix>/*-l300-…
//   report    figures and tables                                     @polyglot/plots   <out>/report/index.html
import { existsSync, promises as fsp, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  buildMix,
  parseRunFileName,
  readMixSources,
  readPlacedRecords,
  writeJsonlAtomic,
  writeMix,
} from '@polyglot/data';
import {
  type Engine,
  LocalEngine,
  RemoteEngine,
  runFileName,
  runInference,
  testsetName,
} from '@polyglot/infer';
import { JudgeClient, judgeFile } from '@polyglot/judge';
import { evalPathFor, fidelityOfFile, type LidModel, loadLidModel, writeEvalCsv } from '@polyglot/lid';
import { mergeAdapter } from '@polyglot/lora-merge';
import { type BackendName, Progress, type ProgressStream } from '@polyglot/model';
import { writeFileAtomic, writeReport } from '@polyglot/plots';
import { train } from '@polyglot/sft';
import { runTasks, TaskRegistry } from '@polyglot/tasks';
import { UsageError } from '../errors.js';
import { ensureBaseModel, findDemoData } from './base.js';
import { mixLabel, mixLanguages, PRESETS, type Preset, type PresetName } from './presets.js';
import {
  checkStage,
  type ReproduceState,
  readState,
  STAGES,
  type StageName,
  stageKey,
  writeState,
} from './state.js';

export interface JudgeSettings {
  /** OpenAI-compatible base URL (`https://api.openai.com/v1`). */
  url: string;
  model: string;
  /** The API key (from the environment or a file the user names; never written anywhere). */
  apiKey?: string;
  /** Responses judged per generation file (the paper: 300). */
  limit?: number;
}

export interface ReproduceOptions {
  preset?: PresetName;
  /** Output folder; default `reproduce-<preset>`. */
  out?: string;
  /** Rerun this stage and every later one. */
  from?: StageName | string;
  /** Base model directory (required by `paper`; replaces the embedded base model of the other presets). */
  model?: string;
  /** Instruction pool (JSON Lines with a `lang` field per record); default the demo data. */
  data?: string;
  /** Folder of test prompts: `<lang>.jsonl` or `<testset>_<lang>.json[l]` files with `instruction`. */
  prompts?: string;
  /** Data folder of the tasks; default the demo data for smoke/tiny, the `polyglot data get` cache for paper. */
  taskDataDir?: string;
  /** Overrides of the preset. */
  mixes?: string[];
  langs?: string[];
  seeds?: number[];
  tasks?: string[];
  /** Generation engine: `local` (default; the merged models in this process) or `openai:URL[,URL…]`. */
  engine?: string;
  backend?: BackendName;
  judge?: JudgeSettings | null;
  /** Cache of the embedded base models; default `$POLYGLOT_CACHE` or `~/.cache/polyglot`. */
  cacheDir?: string;
  /** Where progress goes; default process.stderr. */
  progress?: ProgressStream;
  quiet?: boolean;
  /** Status lines (stage started, cached, done); default: written to `progress`. */
  log?: (line: string) => void;
}

export interface StageOutcome {
  stage: StageName;
  cached: boolean;
  resumed: boolean;
  secs: number;
}

export interface ModelSummary {
  languages: string[] | null;
  /** Mean lang_match over seeds per test language, and its mean over languages. */
  fidelity: Record<string, number | null>;
  fidelityMean: number | null;
  /** Task metrics: `<task variant>` → accuracy-like score. */
  tasks: Record<string, number>;
  /** Mean judge score per test language (where judged). */
  helpfulness: Record<string, number | null>;
}

export interface ReproduceResult {
  out: string;
  preset: PresetName;
  stages: StageOutcome[];
  report: string;
  summary: string;
  models: Record<string, ModelSummary>;
  judged: boolean;
}

interface Resolved {
  preset: Preset;
  out: string;
  data: string;
  prompts: string;
  taskDataDir: string | undefined;
  engine: string;
  backend: BackendName;
  judge: JudgeSettings | null;
}

function resolve(opts: ReproduceOptions): Resolved {
  const name = opts.preset ?? 'tiny';
  const base = PRESETS[name];
  if (!base) throw new UsageError(`--preset ${name}: unknown preset; use smoke, tiny or paper`);
  const preset: Preset = {
    ...base,
    mixes: opts.mixes ?? base.mixes,
    testLangs: opts.langs ?? base.testLangs,
    seeds: opts.seeds ?? base.seeds,
    tasks: opts.tasks
      ? opts.tasks.map(
          (t) => base.tasks.find((x) => x.task === t) ?? { task: t, langs: base.testLangs, limit: null },
        )
      : base.tasks,
  };
  for (const mix of preset.mixes) {
    if (mixLanguages(mix, preset.order) === null && mix !== 'all') {
      throw new UsageError(
        `--mixes ${mix}: use mono, multi-K (K = 2…${preset.order.length + 1}), loo-XX or all`,
      );
    }
  }
  if (name === 'paper') {
    for (const [flag, v] of [
      ['--model', opts.model],
      ['--data', opts.data],
      ['--prompts', opts.prompts],
    ] as const) {
      if (!v)
        throw new UsageError(
          `--preset paper needs ${flag} (see "From tiny to real" in the README: the base model directory, the ` +
            'language-tagged Guanaco pool and the translated test prompts)',
        );
    }
  }
  const demo = name === 'paper' ? null : findDemoData();
  const engine = opts.engine ?? 'local';
  if (engine !== 'local' && !engine.startsWith('openai:')) {
    throw new UsageError(`--engine ${engine}: use local or openai:URL[,URL…]`);
  }
  return {
    preset,
    out: path.resolve(opts.out ?? `reproduce-${name}`),
    data: path.resolve(opts.data ?? path.join(demo!, 'chat.jsonl')),
    prompts: path.resolve(opts.prompts ?? path.join(demo!, 'test_prompts')),
    taskDataDir: opts.taskDataDir ? path.resolve(opts.taskDataDir) : demo ? demo : undefined,
    engine,
    backend: opts.backend ?? 'auto',
    judge: opts.judge ?? null,
  };
}

/** The prompt file of a language in a prompts folder: `<lang>.jsonl`, or `<testset>_<lang>.json[l]`. */
function findPromptFile(dir: string, lang: string): { file: string; testset: string } {
  if (!existsSync(dir)) throw new UsageError(`--prompts ${dir}: no such folder`);
  const names = readdirSync(dir);
  for (const n of names) {
    if (n === `${lang}.jsonl` || n === `${lang}.json`)
      return { file: path.join(dir, n), testset: 'test_prompts' };
  }
  for (const n of names) {
    const m = new RegExp(`^(.+)_${lang}\\.jsonl?$`).exec(n);
    if (m) return { file: path.join(dir, n), testset: m[1]! };
  }
  throw new UsageError(
    `--prompts ${dir}: no prompts for ${lang} (expected ${lang}.jsonl or <testset>_${lang}.json[l], e.g. ` +
      `alpaca_eval_instructions_${lang}.json)`,
  );
}

/** Generation files (not judge outputs) directly in a model folder. */
function generationFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => {
      const p = parseRunFileName(n);
      return p !== null && p.ext === 'jsonl' && p.suffix === null;
    })
    .sort()
    .map((n) => path.join(dir, n));
}

function countLines(file: string): number {
  if (!existsSync(file)) return -1;
  const text = readFileSync(file, 'utf8');
  if (text !== '' && !text.endsWith('\n')) return -1;
  return text === '' ? 0 : text.split('\n').length - 1;
}

function rm(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Runs (or resumes) the pipeline. Every stage writes files in the formats of the ecosystem (JSON Lines mixes, PEFT
 * adapters, HF model dirs, the paper's run files, `.eval` CSVs, lm-evaluation-harness results.json), so each can be
 * replaced by another tool and the pipeline picked up after it with `from`.
 */
export async function reproduce(opts: ReproduceOptions = {}): Promise<ReproduceResult> {
  const r = resolve(opts);
  const { preset, out } = r;
  const stream = opts.progress ?? process.stderr;
  const quiet = opts.quiet ?? false;
  const log = opts.log ?? ((line: string) => (quiet ? undefined : stream.write(`${line}\n`)));
  mkdirSync(out, { recursive: true });
  const stateFile = path.join(out, 'reproduce.json');
  const state: ReproduceState = readState(stateFile, preset.name);
  if (state.preset !== preset.name && Object.keys(state.stages).length > 0) {
    throw new UsageError(
      `${out} holds a reproduce run of preset ${state.preset}; choose another --out for preset ${preset.name}`,
    );
  }
  state.preset = preset.name;
  const from = opts.from === undefined ? null : checkStage(opts.from, '--from');
  const fromIndex = from === null ? STAGES.length : STAGES.indexOf(from);

  const dirs = {
    mixes: path.join(out, 'mixes'),
    prompts: path.join(out, 'prompts'),
    train: path.join(out, 'train'),
    models: path.join(out, 'models'),
    runs: path.join(out, 'runs'),
    report: path.join(out, 'report'),
  };
  const labels = preset.mixes.map(mixLabel);
  const modelLabels = [...(preset.evalBase ? ['base'] : []), ...labels];
  const outcomes: StageOutcome[] = [];
  let prevKey = 'polyglot-reproduce/1';
  let invalidated = false;

  /** Runs one stage unless it is cached; cleans its outputs first when it starts afresh. */
  const stage = async <T>(
    name: StageName,
    settings: unknown,
    clean: () => void,
    work: () => Promise<T>,
  ): Promise<T> => {
    const i = STAGES.indexOf(name);
    const key = stageKey(prevKey, settings);
    prevKey = key;
    const rec = state.stages[name];
    const forced = i >= fromIndex;
    if (rec && rec.status === 'done' && rec.key === key && !forced && !invalidated) {
      log(`[${i + 1}/${STAGES.length}] ${name}: cached (ran in ${rec.workSecs.toFixed(1)} s)`);
      outcomes.push({ stage: name, cached: true, resumed: false, secs: 0 });
      return rec.detail as T;
    }
    const resumed = !!rec && rec.status === 'running' && rec.key === key && !forced && !invalidated;
    if (!resumed) clean();
    // Everything after a stage that runs is stale.
    invalidated = true;
    for (const later of STAGES.slice(i + 1)) delete state.stages[later];
    const attempts = resumed ? (rec?.attempts ?? 0) + 1 : 1;
    state.stages[name] = {
      status: 'running',
      key,
      secs: 0,
      workSecs: 0,
      startedAt: new Date().toISOString(),
      attempts,
    };
    await writeState(stateFile, state);
    log(`[${i + 1}/${STAGES.length}] ${name}${resumed ? ': resuming' : ''}`);
    const t0 = performance.now();
    const detail = await work();
    const secs = (performance.now() - t0) / 1000;
    state.stages[name] = {
      ...state.stages[name]!,
      status: 'done',
      secs,
      workSecs: secs,
      finishedAt: new Date().toISOString(),
      detail,
    };
    await writeState(stateFile, state);
    log(`[${i + 1}/${STAGES.length}] ${name}: done in ${secs.toFixed(1)} s`);
    outcomes.push({ stage: name, cached: false, resumed, secs });
    return detail;
  };

  // 1. Mixes.
  const mixDetail = await stage(
    'mixes',
    {
      data: r.data,
      dataSize: existsSync(r.data) ? (await fsp.stat(r.data)).size : null,
      mixes: preset.mixes,
      total: preset.mixTotal,
      perLanguage: preset.perLanguage,
      order: preset.order,
      seed: preset.mixSeed,
    },
    () => rm(dirs.mixes),
    async () => {
      if (!existsSync(r.data)) throw new UsageError(`--data ${r.data}: no such file`);
      const { records, sources } = await readMixSources([r.data]);
      const counts: Record<string, Record<string, number>> = {};
      for (const mix of preset.mixes) {
        const result = buildMix(
          records,
          {
            kind: 'paper',
            mix,
            total: preset.mixTotal,
            perLanguage: preset.perLanguage,
            order: preset.order,
          },
          {
            seed: preset.mixSeed,
            minConfidence: preset.name === 'paper' ? 0.8 : undefined,
            name: mixLabel(mix),
          },
        );
        await writeMix(path.join(dirs.mixes, `${mixLabel(mix)}.jsonl`), result, sources);
        counts[mixLabel(mix)] = result.counts;
      }
      return { counts };
    },
  );

  // 2. Base model.
  const baseDetail = await stage(
    'base',
    {
      model: opts.model ? path.resolve(opts.model) : null,
      preset: preset.base,
      cacheDir: opts.cacheDir ?? null,
    },
    () => {},
    async () => {
      if (opts.model) {
        const dir = path.resolve(opts.model);
        if (!existsSync(path.join(dir, 'config.json'))) {
          throw new UsageError(`--model ${dir}: not a Hugging Face model directory (no config.json)`);
        }
        return { dir, cached: false, pretrainSecs: 0, finalLoss: null as number | null, embedded: false };
      }
      let bar: Progress | null = null;
      let last = 0;
      const b = await ensureBaseModel({
        preset: preset.base!,
        cacheDir: opts.cacheDir,
        onProgress: (p: unknown) => {
          const e = p as { event?: string; step?: number; steps?: number };
          if (e.event === 'step' && typeof e.step === 'number') {
            bar ??= new Progress({ label: 'pretrain base', total: e.steps ?? null, stream, quiet });
            bar.tick(e.step - last);
            last = e.step;
          } else if (e.event === 'done') bar?.done();
        },
      });
      return {
        dir: b.dir,
        cached: b.cached,
        pretrainSecs: b.pretrainSecs,
        finalLoss: b.finalLoss,
        embedded: true,
      };
    },
  );
  const baseDir = baseDetail.dir;
  if (!existsSync(path.join(baseDir, 'config.json'))) {
    throw new UsageError(
      `the base model ${baseDir} recorded in ${stateFile} is gone; rerun with --from base`,
    );
  }

  // 3. LoRA fine-tuning, one adapter per mix.
  await stage(
    'train',
    { sft: preset.sft, backend: r.backend },
    () => {
      rm(dirs.train);
      for (const l of labels) rm(path.join(dirs.runs, l, 'train-log.jsonl'));
    },
    async () => {
      const summaries: Record<
        string,
        { steps: number; firstLoss: number | null; lastLoss: number | null; secs: number }
      > = {};
      for (const label of labels) {
        const dir = path.join(dirs.train, label);
        const summaryFile = path.join(dir, 'train_summary.json');
        if (!existsSync(summaryFile)) {
          const hasCheckpoint =
            existsSync(path.join(dir, 'checkpoints')) &&
            readdirSync(path.join(dir, 'checkpoints')).length > 0;
          const started = existsSync(path.join(dir, 'training_args.json'));
          log(`  train ${label}${hasCheckpoint ? ' (resuming from its last checkpoint)' : ''}`);
          await train(
            {
              ...preset.sft,
              model: baseDir,
              data: path.join(dirs.mixes, `${label}.jsonl`),
              out: dir,
              backend: r.backend,
            },
            {
              resume: hasCheckpoint,
              force: started && !hasCheckpoint,
              progress: quiet ? null : stream,
            },
          );
        }
        const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as {
          steps: number;
          firstLoss: number | null;
          lastLoss: number | null;
          trainSecs: number;
        };
        summaries[label] = {
          steps: s.steps,
          firstLoss: s.firstLoss,
          lastLoss: s.lastLoss,
          secs: s.trainSecs,
        };
        mkdirSync(path.join(dirs.runs, label), { recursive: true });
        await writeFileAtomic(
          path.join(dirs.runs, label, 'train-log.jsonl'),
          readFileSync(path.join(dir, 'train-log.jsonl')),
        );
      }
      return { summaries };
    },
  );

  // 4. Merge each adapter into the base.
  await stage(
    'merge',
    {},
    () => rm(dirs.models),
    async () => {
      for (const label of labels) {
        const dir = path.join(dirs.models, label);
        if (existsSync(path.join(dir, 'config.json'))) continue;
        log(`  merge ${label}`);
        await mergeAdapter({
          base: baseDir,
          adapters: [path.join(dirs.train, label)],
          out: dir,
          force: true,
        });
      }
      return { models: labels };
    },
  );
  const modelDir = (label: string) => (label === 'base' ? baseDir : path.join(dirs.models, label));

  // Engines: the merged models in this process, or an OpenAI-compatible server serving them by name.
  const openModel = async (
    label: string,
  ): Promise<{ engine: Engine; adapter: string | null; spec: string }> => {
    if (r.engine === 'local') {
      const engine = await LocalEngine.load({
        model: modelDir(label),
        backend: r.backend,
        seed: 0,
        batchSize: preset.batchSize,
      });
      return { engine, adapter: null, spec: `local:${modelDir(label)}` };
    }
    const urls = r.engine.slice('openai:'.length).split(',').filter(Boolean);
    const engine = await RemoteEngine.connect({ endpoints: urls });
    return { engine, adapter: label === 'base' ? null : label, spec: r.engine };
  };

  // 5. Generation: the chat prompts of every test language, every seed.
  await stage(
    'generate',
    {
      langs: preset.testLangs,
      prompts: r.prompts,
      perLang: preset.promptsPerLang,
      seeds: preset.seeds,
      sampling: preset.sampling,
      batch: preset.batchSize,
      engine: r.engine,
      models: modelLabels,
    },
    () => {
      rm(dirs.prompts);
      for (const l of modelLabels)
        for (const f of generationFiles(path.join(dirs.runs, l))) {
          rm(f);
          rm(f.replace(/\.jsonl$/, '.json'));
        }
    },
    async () => {
      mkdirSync(dirs.prompts, { recursive: true });
      const inputs: { lang: string; file: string; n: number }[] = [];
      for (const lang of preset.testLangs) {
        const { file, testset } = findPromptFile(r.prompts, lang);
        const records = (await readPlacedRecords(file))
          .map((r) => r.value)
          .slice(0, preset.promptsPerLang ?? undefined);
        if (records.length === 0) throw new UsageError(`${file}: no prompts`);
        const target = path.join(dirs.prompts, `${testset}_${lang}.jsonl`);
        if (!existsSync(target)) await writeJsonlAtomic(target, records);
        inputs.push({ lang, file: target, n: records.length });
      }
      const bar = new Progress({
        label: 'generate (models × languages)',
        total: modelLabels.length * inputs.length,
        stream,
        quiet,
      });
      let generated = 0;
      for (const label of modelLabels) {
        const modelOut = path.join(dirs.runs, label);
        // A model whose files are all complete needs no engine (a resumed run skips loading it).
        const expected = inputs.flatMap((input) =>
          preset.seeds.map((seed) => ({
            n: input.n,
            file: path.join(
              modelOut,
              runFileName({
                testset: testsetName(input.file),
                prompt: 'guanaco',
                seed,
                topK: preset.sampling.top_k ?? -1,
                topP: preset.sampling.top_p ?? 1,
                temperature: preset.sampling.temperature ?? 1,
                batchSize: preset.batchSize,
              }),
            ),
          })),
        );
        if (expected.every((x) => countLines(x.file) === x.n)) {
          bar.tick(inputs.length);
          continue;
        }
        const { engine, adapter, spec } = await openModel(label);
        try {
          for (const input of inputs) {
            const results = await runInference({
              engine,
              model: label,
              input: input.file,
              promptTemplate: 'guanaco',
              outputDir: dirs.runs,
              params: preset.sampling,
              seeds: preset.seeds,
              batchSize: preset.batchSize,
              adapter,
              progress: stream,
              quiet: true,
              extraArgs: { engine: spec },
            });
            generated += results.reduce((a, x) => a + x.generated, 0);
            bar.tick();
          }
        } finally {
          await engine.close();
        }
      }
      bar.done();
      return { generated, files: modelLabels.length * inputs.length * preset.seeds.length };
    },
  );

  // 6. Language fidelity of every generation file (fastText lid.176, as the paper).
  const fidelityDetail = await stage(
    'fidelity',
    { lid: 'lid176', empty: 'fail' },
    () => {
      for (const l of modelLabels)
        for (const f of generationFiles(path.join(dirs.runs, l))) rm(evalPathFor(f));
    },
    async () => {
      const lid: LidModel = await loadLidModel('lid176');
      const rows: {
        model: string;
        lang: string;
        seed: number;
        lang_match: number | null;
        n: number;
        empty: number;
      }[] = [];
      for (const label of modelLabels) {
        for (const file of generationFiles(path.join(dirs.runs, label))) {
          const res = await fidelityOfFile(file, lid, { empty: 'fail' });
          await writeEvalCsv(evalPathFor(file), res, { file: path.basename(file) });
          const name = parseRunFileName(file)!;
          rows.push({
            model: label,
            lang: name.testset.slice(name.testset.lastIndexOf('_') + 1),
            seed: name.seed,
            lang_match: res.lang_match,
            n: res.n,
            empty: res.empty,
          });
        }
      }
      return { rows };
    },
  );

  // 7. Tasks (X-CSQA, XQuAD, XNLI) on every model.
  const tasksDetail = await stage(
    'tasks',
    { tasks: preset.tasks, dataDir: r.taskDataDir ?? null, engine: r.engine, seeds: preset.taskSeeds },
    () => {
      for (const l of modelLabels) rm(path.join(dirs.runs, l, 'tasks'));
    },
    async () => {
      const scores: Record<string, Record<string, number>> = {};
      if (preset.tasks.length === 0) return { scores };
      const registry = TaskRegistry.withBuiltins();
      const bar = new Progress({
        label: 'tasks (models × tasks)',
        total: modelLabels.length * preset.tasks.length,
        stream,
        quiet,
      });
      for (const label of modelLabels) {
        const { engine, adapter, spec } = await openModel(label);
        scores[label] = {};
        try {
          for (const t of preset.tasks) {
            const results = await runTasks({
              tasks: registry.resolve([t.task], t.langs),
              engine,
              engineSpec: spec,
              outputDir: path.join(dirs.runs, label, 'tasks', t.task),
              limit: t.limit ?? undefined,
              seeds: preset.taskSeeds ?? undefined,
              batchSize: preset.batchSize,
              dataDir: r.taskDataDir,
              adapter,
            });
            for (const [variant, metrics] of Object.entries(results.results)) {
              const m = metrics as Record<string, unknown>;
              const key = Object.keys(m).find((k) => /^(acc|containment|exact_match|lang_match),/.test(k));
              if (key && typeof m[key] === 'number') scores[label]![variant] = m[key] as number;
            }
            bar.tick();
          }
        } finally {
          await engine.close();
        }
      }
      bar.done();
      return { scores };
    },
  );

  // 8. Helpfulness, where a judge is configured (the paper: GPT-3.5, 300 responses per file, temperature 0).
  const judgeDetail = await stage(
    'judge',
    r.judge ? { url: r.judge.url, model: r.judge.model, limit: r.judge.limit ?? 300 } : null,
    () => {
      for (const l of modelLabels) {
        const dir = path.join(dirs.runs, l);
        if (!existsSync(dir)) continue;
        for (const n of readdirSync(dir)) {
          const p = parseRunFileName(n);
          if (p && p.suffix !== null && p.ext === 'jsonl') rm(path.join(dir, n));
        }
      }
    },
    async () => {
      if (!r.judge) {
        log(
          '  no judge configured: helpfulness is not scored (pass --judge-url and --judge-model, key in OPENAI_API_KEY)',
        );
        return {
          judged: false,
          rows: [] as { model: string; lang: string; seed: number; mean: number | null }[],
        };
      }
      const client = new JudgeClient({ baseURL: r.judge.url, model: r.judge.model, apiKey: r.judge.apiKey });
      const rows: { model: string; lang: string; seed: number; mean: number | null }[] = [];
      for (const label of modelLabels) {
        for (const file of generationFiles(path.join(dirs.runs, label))) {
          const res = await judgeFile({ client, input: file, limit: r.judge.limit ?? 300, dataSeed: 42 });
          const name = parseRunFileName(file)!;
          rows.push({
            model: label,
            lang: name.testset.slice(name.testset.lastIndexOf('_') + 1),
            seed: name.seed,
            mean: res.mean,
          });
        }
      }
      return { judged: true, rows };
    },
  );

  // 9. Report: run.json (what was run), the figures and tables, and summary.json.
  const models: Record<string, ModelSummary> = {};
  for (const label of modelLabels) {
    const mix = label === 'base' ? null : preset.mixes[labels.indexOf(label)]!;
    const languages = mix === null ? [] : mixLanguages(mix, preset.order);
    const fid: Record<string, number | null> = {};
    const help: Record<string, number | null> = {};
    for (const lang of preset.testLangs) {
      fid[lang] = mean(
        fidelityDetail.rows
          .filter((x) => x.model === label && x.lang === lang && x.lang_match !== null)
          .map((x) => x.lang_match as number),
      );
      if (judgeDetail.judged)
        help[lang] = mean(
          judgeDetail.rows
            .filter((x) => x.model === label && x.lang === lang && x.mean !== null)
            .map((x) => x.mean as number),
        );
    }
    const vals = Object.values(fid).filter((v): v is number => v !== null);
    models[label] = {
      languages,
      fidelity: fid,
      fidelityMean: mean(vals),
      tasks: tasksDetail.scores[label] ?? {},
      helpfulness: help,
    };
  }
  await stage(
    'report',
    { formats: ['csv', 'md'] },
    () => rm(dirs.report),
    async () => {
      const runJson = {
        title: `polyglot reproduce --preset ${preset.name}: how much multilinguality is needed?`,
        base_model: baseDetail.embedded
          ? `polyglot tiny Llama (${preset.base}, pre-trained English-centric)`
          : baseDir,
        models: Object.fromEntries(
          modelLabels.map((l) => [
            l,
            l === 'base'
              ? { n_languages: 0 }
              : { languages: models[l]!.languages, adapter: path.relative(out, path.join(dirs.train, l)) },
          ]),
        ),
        sampling: preset.sampling,
        seeds: preset.seeds,
        backend: r.engine === 'local' ? r.backend : r.engine,
        judge: r.judge ? { model: r.judge.model, temperature: 0, seed: 42 } : null,
        helpfulness: judgeDetail.judged
          ? 'judged'
          : 'not scored: no judge configured (polyglot reproduce --judge-url URL --judge-model NAME, key in OPENAI_API_KEY)',
        preset: preset.name,
      };
      await writeFileAtomic(path.join(dirs.runs, 'run.json'), `${JSON.stringify(runJson, null, 2)}\n`);
      const rep = await writeReport(dirs.runs, {
        out: dirs.report,
        formats: ['csv', 'md'],
        title: runJson.title,
      });
      return { html: rep.html, figures: rep.figures.length, warnings: rep.warnings.length };
    },
  );

  const summaryFile = path.join(out, 'summary.json');
  const result: ReproduceResult = {
    out,
    preset: preset.name,
    stages: outcomes,
    report: path.join(dirs.report, 'index.html'),
    summary: summaryFile,
    models,
    judged: judgeDetail.judged,
  };
  await writeFileAtomic(
    summaryFile,
    `${JSON.stringify({ preset: preset.name, models, judged: judgeDetail.judged, mixes: mixDetail.counts, stages: outcomes }, null, 2)}\n`,
  );
  return result;
}
