import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeJsonlAtomic } from '@polyglot/data';
import {
  type Engine,
  type GenerateParams,
  openEngine,
  parseEngineSpec,
  SamplingParamError,
  samplingParams,
} from '@polyglot/infer';
import {
  buildJudgeMessages,
  HELPFULNESS_RUBRIC,
  JudgeClient,
  parseJudgeResponse,
  safeUrl,
} from '@polyglot/judge';
import { writeFileAtomic } from '@polyglot/lid';
import { BACKEND_NAMES, type BackendName, Tokenizer } from '@polyglot/model';
import {
  buildResults,
  type HelpfulnessJudge,
  type ResultsFile,
  runTasks,
  scoreFiles,
  TASKS_VERSION,
  type Task,
  TaskRegistry,
  taskVariants,
} from '@polyglot/tasks';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, processIo } from '../io.js';
import { resolveKey, shownEngineSpec } from '../secrets.js';
import { intArg } from './infer.js';

interface RegistryOptions {
  includePath?: string[];
  taskPackage?: string[];
}

interface JudgeOptions {
  judgeUrl?: string;
  judgeModel?: string;
  judgeApiKey?: string;
  judgeApiKeyFile?: string;
}

interface RunOptions extends RegistryOptions, JudgeOptions {
  task: string[];
  langs?: string[];
  engine: string;
  model?: string;
  outputDir: string;
  limit?: number;
  seeds?: number[];
  batchSize: number;
  dataDir?: string;
  genKwargs?: GenerateParams;
  set: Record<string, string>;
  backend: BackendName;
  adapter?: string;
  apiKey?: string;
  apiKeyFile?: string;
  concurrency?: number;
  tokenizer?: string;
  maxPromptTokens: number;
  bootstrapIters: number;
  quiet?: boolean;
}

interface ScoreOptions extends RegistryOptions, JudgeOptions {
  task: string;
  input: string[];
  langs?: string[];
  outputDir?: string;
  dataDir?: string;
  responseKey?: string;
  set: Record<string, string>;
  bootstrapIters: number;
  json?: boolean;
}

function listArg(v: string, prev: string[] = []): string[] {
  return [
    ...prev,
    ...v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ];
}

function repeatArg(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function seedsArg(v: string): number[] {
  const seeds = v.split(',').map((s) => s.trim());
  if (!seeds.every((s) => s !== '' && Number.isSafeInteger(Number(s)))) {
    throw new InvalidArgumentError(
      `expected integers separated by commas (e.g. 0,42,723), got ${JSON.stringify(v)}`,
    );
  }
  return seeds.map(Number);
}

/** A scalar from the command line: numbers, true/false, JSON arrays and strings. */
function scalar(v: string): unknown {
  const t = v.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  if (t.startsWith('[') || t.startsWith('{') || t.startsWith('"')) {
    try {
      return JSON.parse(t);
    } catch {
      return v;
    }
  }
  return v;
}

/** `--gen-kwargs temperature=0,max_tokens=64` (vLLM names; `stop` may be a JSON list), or a JSON object. */
function genKwargsArg(v: string): GenerateParams {
  let obj: Record<string, unknown>;
  if (v.trim().startsWith('{')) {
    try {
      obj = JSON.parse(v);
    } catch (e) {
      throw new InvalidArgumentError(`not a JSON object: ${(e as Error).message}`);
    }
  } else {
    obj = {};
    for (const part of v.split(/,(?=[A-Za-z_]+=)/)) {
      const eq = part.indexOf('=');
      if (eq <= 0)
        throw new InvalidArgumentError(
          `expected key=value pairs separated by commas, got ${JSON.stringify(part)}`,
        );
      obj[part.slice(0, eq).trim()] = scalar(part.slice(eq + 1));
    }
  }
  if (obj.max_gen_toks !== undefined && obj.max_tokens === undefined) {
    obj.max_tokens = obj.max_gen_toks;
    delete obj.max_gen_toks;
  }
  if (obj.until !== undefined && obj.stop === undefined) {
    obj.stop = obj.until;
    delete obj.until;
  }
  try {
    samplingParams(obj as Record<string, unknown>);
  } catch (e) {
    if (e instanceof SamplingParamError) throw new InvalidArgumentError(e.message);
    throw e;
  }
  return obj as GenerateParams;
}

function setArg(v: string, prev: Record<string, string> = {}): Record<string, string> {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(v)}`);
  return { ...prev, [v.slice(0, eq).trim()]: v.slice(eq + 1) };
}

function taskOptions(set: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(set).map(([k, v]) => [k, scalar(v)]));
}

function registryOptions(cmd: Command): Command {
  return cmd
    .option('--include-path <dir>', 'a folder of lm-evaluation-harness YAML tasks (repeatable)', repeatArg)
    .option(
      '--task-package <name>',
      'an npm task package (installed, by name) or its folder (./path) (repeatable)',
      repeatArg,
    );
}

function judgeOptions(cmd: Command): Command {
  return cmd
    .option(
      '--judge-url <url>',
      'chat helpfulness: an OpenAI-compatible endpoint of the judge (e.g. https://api.openai.com/v1)',
    )
    .option('--judge-model <name>', 'chat helpfulness: the judge model (the paper: gpt-3.5-turbo-1106)')
    .option(
      '--judge-api-key-file <file>',
      "chat helpfulness: file whose first line is the judge's API key (default: $OPENAI_API_KEY)",
    )
    .option('--judge-api-key <key>', 'chat helpfulness: the key itself (discouraged: it shows in ps)');
}

async function buildRegistry(opts: RegistryOptions): Promise<TaskRegistry> {
  const registry = TaskRegistry.withBuiltins();
  for (const dir of opts.includePath ?? []) await registry.addIncludePath(dir);
  for (const p of opts.taskPackage ?? []) await registry.addTaskPackage(p);
  return registry;
}

/** The paper's judge: the helpfulness rubric, temperature 0, seed 42, JSON mode where the endpoint has it. */
function makeJudge(opts: JudgeOptions): HelpfulnessJudge | undefined {
  if (opts.judgeUrl === undefined && opts.judgeModel === undefined) return undefined;
  if (!opts.judgeUrl || !opts.judgeModel) throw new UsageError('--judge-url and --judge-model go together');
  const client = new JudgeClient({
    baseURL: opts.judgeUrl,
    model: opts.judgeModel,
    apiKey: resolveKey({
      flag: '--judge-api-key',
      value: opts.judgeApiKey,
      file: opts.judgeApiKeyFile,
      env: 'OPENAI_API_KEY',
      warn: (m) => process.stderr.write(`polyglot tasks: warning: ${m}\n`),
    }),
  });
  return {
    name: `${opts.judgeModel} @ ${safeUrl(opts.judgeUrl)}`,
    async judge(items) {
      const out: (number | null)[] = new Array(items.length).fill(null);
      let next = 0;
      const worker = async () => {
        while (next < items.length) {
          const i = next++;
          const it = items[i]!;
          if (it.instruction.trim() === '') continue;
          const c = await client.complete(buildJudgeMessages(it.instruction, it.response), {
            temperature: 0,
            seed: 42,
          });
          const parsed = parseJudgeResponse(c.content ?? '', HELPFULNESS_RUBRIC);
          out[i] = parsed.ok ? parsed.score : null;
        }
      };
      await Promise.all(Array.from({ length: Math.min(8, items.length) }, worker));
      return out;
    },
  };
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : String(v ?? '');
}

/** lm-evaluation-harness's summary table (Markdown): task, version, filter, n-shot, metric, value, stderr. */
export function resultsTable(results: ResultsFile): string {
  const rows: string[][] = [];
  for (const [name, entry] of Object.entries(results.results)) {
    for (const key of Object.keys(entry)) {
      if (key === 'alias' || /_(stderr|seed_std|ci_low|ci_high|n),/.test(key)) continue;
      const comma = key.lastIndexOf(',');
      const metric = key.slice(0, comma);
      const filter = key.slice(comma + 1);
      const se = entry[`${metric}_stderr,${filter}`];
      rows.push([
        name,
        String(results.versions[name] ?? ''),
        filter,
        String(results['n-shot'][name] ?? ''),
        metric,
        fmt(entry[key]),
        se === undefined ? '' : `± ${fmt(se)}`,
      ]);
    }
  }
  const head = ['Tasks', 'Version', 'Filter', 'n-shot', 'Metric', 'Value', 'Stderr'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `|${cells.map((c, i) => ` ${c.padEnd(widths[i]!)} `).join('|')}|`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function openTaskEngine(opts: RunOptions): Promise<Engine> {
  const spec = parseEngineSpec(opts.engine);
  if (spec.kind === 'local') {
    if (
      opts.concurrency !== undefined ||
      opts.tokenizer !== undefined ||
      opts.apiKey !== undefined ||
      opts.apiKeyFile !== undefined
    ) {
      throw new UsageError('--concurrency, --tokenizer and --api-key(-file) are for openai: engines');
    }
    if (opts.model !== undefined) {
      throw new UsageError(
        '--model names the served model of an openai: engine; a local: engine is its directory',
      );
    }
    return openEngine(spec, {
      local: { adapter: opts.adapter, backend: opts.backend, batchSize: opts.batchSize },
    });
  }
  if (spec.kind === 'llamacpp') {
    return openEngine(spec, {
      llamacpp: { adapter: opts.adapter, tokenizer: opts.tokenizer, batchSize: opts.batchSize },
    });
  }
  if (opts.adapter !== undefined) {
    throw new UsageError(
      '--adapter is for local: engines; a server serves adapters as models: pass --model NAME',
    );
  }
  return openEngine(spec, {
    openai: {
      model: opts.model,
      apiKey: resolveKey({
        flag: '--api-key',
        value: opts.apiKey,
        file: opts.apiKeyFile,
        env: 'OPENAI_API_KEY',
        warn: (m) => process.stderr.write(`polyglot tasks: warning: ${m}\n`),
      }),
      concurrency: opts.concurrency,
    },
  });
}

export function registerTasks(program: Command, io: Io = processIo): void {
  const tasks = program
    .command('tasks')
    .description('Multilingual evaluation tasks and results (@polyglot/tasks)');

  registryOptions(
    tasks
      .command('list')
      .description('List built-in tasks, YAML tasks (--include-path) and task packages (--task-package)')
      .option('--json', 'one JSON object per task'),
  ).action(async (opts: RegistryOptions & { json?: boolean }) => {
    const registry = await buildRegistry(opts);
    for (const t of registry.list()) {
      const info = describe(t);
      if (opts.json) io.stdout(`${JSON.stringify(info)}\n`);
      else {
        const langs = t.languages.length ? ` [${t.languages.join(' ')}]` : '';
        const pairs = t.promptLanguages
          ? ` (prompt:data pairs; prompts in ${t.promptLanguages.join(' ')})`
          : '';
        io.stdout(
          `${t.name}  ${t.outputType}  ${t.metrics.map((m) => m.name).join(', ')}  (${t.source ?? 'builtin'})\n  ${t.description}${langs}${pairs}\n`,
        );
      }
    }
    const groups = registry.groupNames();
    if (!opts.json) {
      for (const [g, members] of Object.entries(groups)) io.stdout(`group ${g}: ${members.join(', ')}\n`);
    }
  });

  judgeOptions(
    registryOptions(
      tasks
        .command('run')
        .description(
          'Run tasks over an engine: per-sample samples_<task>.jsonl (appended as it goes; a killed run resumes) and ' +
            'results.json in the lm-evaluation-harness shape in --output-dir',
        )
        .requiredOption('--task <names>', 'tasks, variants (xquad_de) or groups, comma-separated', listArg)
        .option(
          '--langs <specs>',
          'languages: de, en:de (prompt:data), all, en:all; comma-separated',
          listArg,
        )
        .requiredOption(
          '--engine <spec>',
          'local:DIR (a model directory) or openai:URL[,URL…] (OpenAI-compatible servers)',
        )
        .option('--model <name>', 'openai: the served model name (default: the first one the server lists)')
        .requiredOption('--output-dir <dir>', 'output folder (results.json, samples_*.jsonl, run.json)')
        .option('--limit <n>', 'only the first n documents of each language', intArg('--limit', 1))
        .option(
          '--seeds <list>',
          "sampling seeds of generation tasks (default the task's: 0,42,723)",
          seedsArg,
        )
        .option(
          '--batch-size <n>',
          'requests per engine call and per append to the samples file',
          intArg('--batch-size', 1),
          8,
        )
        .option('--data-dir <dir>', 'data folder (default: the `polyglot data get` cache)')
        .option(
          '--gen-kwargs <kv>',
          'override sampling parameters (vLLM names): temperature=0,max_tokens=64 or a JSON object',
          genKwargsArg,
        )
        .option('--set <key=value>', 'a task option (see `tasks list --json`), repeatable', setArg, {})
        .addOption(
          new Option('--backend <name>', 'local: TensorFlow.js backend')
            .choices([...BACKEND_NAMES])
            .default('auto'),
        )
        .option('--adapter <dir>', 'local: a PEFT LoRA adapter directory applied un-merged')
        .option(
          '--api-key-file <file>',
          'openai: file whose first line is the API key (default: $OPENAI_API_KEY)',
        )
        .option('--api-key <key>', 'openai: the API key itself (discouraged: it shows in ps)')
        .option('--concurrency <n>', 'openai: requests in flight per endpoint', intArg('--concurrency', 1))
        .option(
          '--tokenizer <dir>',
          'openai: tokenizer used to fit over-long prompts (else sent as they are)',
        )
        .option(
          '--max-prompt-tokens <n>',
          'longer prompts lose words from the start of their instruction',
          intArg('--max-prompt-tokens', 1),
          4096,
        )
        .option(
          '--bootstrap-iters <n>',
          'add a 95% bootstrap interval with n resamples',
          intArg('--bootstrap-iters', 0),
          0,
        )
        .option('--quiet', 'no progress on stderr'),
    ),
  ).action(async (opts: RunOptions) => {
    const registry = await buildRegistry(opts);
    const selection = registry.resolve(opts.task, opts.langs);
    const judge = makeJudge(opts);
    const engine = await openTaskEngine(opts);
    try {
      const tokenizer = opts.tokenizer ? await Tokenizer.fromDir(opts.tokenizer) : undefined;
      const results = await runTasks({
        tasks: selection,
        engine,
        engineSpec: shownEngineSpec(opts.engine),
        outputDir: opts.outputDir,
        limit: opts.limit,
        seeds: opts.seeds,
        genKwargs: opts.genKwargs,
        batchSize: opts.batchSize,
        dataDir: opts.dataDir,
        taskOptions: taskOptions(opts.set),
        judge,
        bootstrapIters: opts.bootstrapIters,
        maxPromptTokens: opts.maxPromptTokens,
        tokenizer,
        onProgress: opts.quiet
          ? undefined
          : (p) => io.stderr(`${JSON.stringify({ event: 'progress', ...p })}\n`),
      });
      io.stdout(`${resultsTable(results)}\n`);
      io.stdout(`results: ${path.join(opts.outputDir, 'results.json')}\n`);
    } finally {
      await engine.close();
    }
  });

  judgeOptions(
    registryOptions(
      tasks
        .command('score')
        .description(
          'Score existing run files without generating: samples_*.jsonl of `tasks run`, lm-evaluation-harness samples, ' +
            "or generation files (the paper's {prompt, system, …} lines, vLLM outputs) matched to the task's data",
        )
        .requiredOption('--task <name>', 'the task (or a variant name such as xquad_en_de)')
        .requiredOption(
          '--input <files...>',
          'run files (JSON Lines); several are several seeds of the same documents',
        )
        .option(
          '--langs <spec>',
          'the language (de, or en:de for a prompt:data pair); default: from the file name',
          listArg,
        )
        .option('--output-dir <dir>', 'write results.json and the rescored samples_<task>.jsonl here')
        .option('--data-dir <dir>', "the task's data, for files whose lines do not carry their document")
        .option(
          '--response-key <key>',
          'the field with the response (default: response, system, output, text, …)',
        )
        .option('--set <key=value>', 'a task option, repeatable', setArg, {})
        .option(
          '--bootstrap-iters <n>',
          'add a 95% bootstrap interval with n resamples',
          intArg('--bootstrap-iters', 0),
          0,
        )
        .option('--json', 'print results.json instead of the table'),
    ),
  ).action(async (opts: ScoreOptions) => {
    const startedAt = Date.now();
    const registry = await buildRegistry(opts);
    const selection = registry.resolve([opts.task], opts.langs);
    if (selection.length !== 1) throw new UsageError(`--task ${opts.task}: give one task to score`);
    const { task, variants } = selection[0]!;
    const explicit = opts.langs !== undefined || registry.get(opts.task) === undefined;
    if (explicit && variants.length !== 1) {
      throw new UsageError(
        `--langs: give one language for the files (got ${variants.map((v) => v.name).join(', ')})`,
      );
    }
    const { outcome, records } = await scoreFiles({
      task,
      variant: explicit ? variants[0] : undefined,
      inputs: opts.input,
      dataDir: opts.dataDir,
      taskOptions: taskOptions(opts.set),
      judge: makeJudge(opts),
      responseKey: opts.responseKey,
      bootstrapIters: opts.bootstrapIters,
    });
    const results = buildResults(
      [{ ...outcome, samplesFile: opts.outputDir ? `samples_${outcome.variant.name}.jsonl` : undefined }],
      {
        model: 'unknown (scored files)',
        engine: 'score',
        engine_kind: null,
        backend: null,
        inputs: opts.input,
        task_options: taskOptions(opts.set),
        bootstrap_iters: opts.bootstrapIters,
      },
      { version: TASKS_VERSION, startedAt },
    );
    if (opts.outputDir) {
      await mkdir(opts.outputDir, { recursive: true });
      await writeJsonlAtomic(path.join(opts.outputDir, `samples_${outcome.variant.name}.jsonl`), records);
      await writeFileAtomic(
        path.join(opts.outputDir, 'results.json'),
        `${JSON.stringify(results, null, 2)}\n`,
      );
    }
    io.stdout(opts.json ? `${JSON.stringify(results, null, 2)}\n` : `${resultsTable(results)}\n`);
  });
}

function describe(t: Task): Record<string, unknown> {
  return {
    name: t.name,
    version: t.version,
    description: t.description,
    output_type: t.outputType,
    languages: t.languages,
    default_languages: t.languages.length ? taskVariants(t).map((v) => v.lang) : [],
    prompt_languages: t.promptLanguages ?? null,
    metrics: t.metrics.map((m) => m.name),
    generation: t.generation ?? null,
    options: t.options ?? {},
    source: t.source ?? 'builtin',
    data_help: t.dataHelp ?? null,
  };
}
