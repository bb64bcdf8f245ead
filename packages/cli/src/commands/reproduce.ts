// `polyglot reproduce`: the paper's experiment end to end (see ../reproduce/pipeline.ts for the stages).
import { BACKEND_NAMES, type BackendName } from '@polyglot/model';
import { type Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { type ReproduceResult, reproduce } from '../reproduce/pipeline.js';
import { PRESET_NAMES, type PresetName } from '../reproduce/presets.js';
import { STAGES } from '../reproduce/state.js';
import { resolveKey } from '../secrets.js';

interface ReproduceFlags {
  preset: PresetName;
  out?: string;
  from?: string;
  model?: string;
  data?: string;
  prompts?: string;
  taskDataDir?: string;
  mixes?: string[];
  langs?: string[];
  seeds?: number[];
  tasks?: string[];
  engine?: string;
  backend: BackendName;
  judgeUrl?: string;
  judgeModel?: string;
  judgeApiKeyFile?: string;
  judgeLimit?: number;
  cacheDir?: string;
  quiet?: boolean;
  json?: boolean;
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function seedsArg(v: string): number[] {
  return list(v).map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new UsageError(`--seeds ${v}: seeds are non-negative integers`);
    return n;
  });
}

function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : x.toFixed(2);
}

/** The fidelity table printed at the end: one row per model, one column per test language. */
export function fidelityTable(result: ReproduceResult): string {
  const models = Object.keys(result.models);
  const langs = Object.keys(result.models[models[0]!]?.fidelity ?? {});
  const head = ['model', ...langs, 'mean'];
  const rows = models.map((m) => {
    const s = result.models[m]!;
    return [m, ...langs.map((l) => fmt(s.fidelity[l])), fmt(s.fidelityMean)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

export function registerReproduce(program: Command, io: Io): void {
  program
    .command('reproduce')
    .description(
      "Run the paper's experiment end to end: language mixes → base model → LoRA per mix → merge → generation in " +
        'every test language (3 seeds) → language fidelity, tasks, helpfulness (with a judge) → report. Every stage ' +
        'is cached in <out>/reproduce.json and resumes after an interruption.',
    )
    .addOption(
      new Option('--preset <name>', 'smoke (CI, < 2 min), tiny (the demo, < 15 min) or paper (full scale)')
        .choices([...PRESET_NAMES])
        .default('tiny'),
    )
    .option('--out <dir>', 'output folder (default reproduce-<preset>)')
    .addOption(new Option('--from <stage>', 'rerun this stage and every later one').choices([...STAGES]))
    .option('--model <dir>', 'base model (HF directory); required by --preset paper')
    .option(
      '--data <file>',
      'instruction pool, JSON Lines with a lang field (paper: the tagged Guanaco pool)',
    )
    .option(
      '--prompts <dir>',
      'test prompts: <lang>.jsonl or <testset>_<lang>.json[l] files with "instruction"',
    )
    .option(
      '--task-data-dir <dir>',
      'data of the tasks (default: the demo data; paper: the `data get` cache)',
    )
    .option('--mixes <list>', 'mixes to tune: mono,multi-2,…,multi-6,all,loo-XX', list)
    .option('--langs <list>', 'test languages of the chat prompts', list)
    .option('--seeds <list>', 'sampling seeds (default 0,42,723)', seedsArg)
    .option('--tasks <list>', 'tasks to run (xcsqa_mc, xcsqa, xquad, xnli; empty: none)', (v: string) =>
      v === '' ? [] : list(v),
    )
    .option(
      '--engine <spec>',
      'local (default) or openai:URL[,URL…] (e.g. vLLM serving the adapters by mix name)',
    )
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend of local work')
        .choices([...BACKEND_NAMES])
        .default('auto'),
    )
    .option('--judge-url <url>', 'OpenAI-compatible judge endpoint (e.g. https://api.openai.com/v1)')
    .option('--judge-model <name>', 'judge model (the paper: gpt-3.5-turbo-1106)')
    .option(
      '--judge-api-key-file <file>',
      'file holding the judge API key (default: the OPENAI_API_KEY variable)',
    )
    .option('--judge-limit <n>', 'responses judged per file (the paper: 300)', (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--judge-limit ${v}: a positive integer`);
      return n;
    })
    .option(
      '--cache-dir <dir>',
      'cache of the embedded base models (default $POLYGLOT_CACHE or ~/.cache/polyglot)',
    )
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print the result as JSON')
    .action(async (opts: ReproduceFlags) => {
      if ((opts.judgeUrl === undefined) !== (opts.judgeModel === undefined)) {
        throw new UsageError('--judge-url and --judge-model go together');
      }
      const apiKey = resolveKey({
        flag: '--judge-api-key',
        file: opts.judgeApiKeyFile,
        env: 'OPENAI_API_KEY',
        warn: (m) => io.stderr(`polyglot: warning: ${m}\n`),
      });
      const result = await reproduce({
        preset: opts.preset,
        out: opts.out,
        from: opts.from,
        model: opts.model,
        data: opts.data,
        prompts: opts.prompts,
        taskDataDir: opts.taskDataDir,
        mixes: opts.mixes,
        langs: opts.langs,
        seeds: opts.seeds,
        tasks: opts.tasks,
        engine: opts.engine,
        backend: opts.backend,
        judge: opts.judgeUrl
          ? { url: opts.judgeUrl, model: opts.judgeModel!, apiKey, limit: opts.judgeLimit }
          : null,
        cacheDir: opts.cacheDir,
        quiet: opts.quiet,
        log: opts.quiet ? () => {} : (line) => io.stderr(`${line}\n`),
      });
      if (opts.json) {
        io.stdout(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const cached = result.stages.filter((s) => s.cached).map((s) => s.stage);
      io.stdout(
        `language fidelity (share of responses in the prompt's language, mean over ${result.preset === 'paper' ? 'seeds' : '3 seeds'}):\n` +
          `${fidelityTable(result)}\n` +
          (result.judged ? '' : 'helpfulness: not scored (no judge configured; see --judge-url)\n') +
          (cached.length > 0 ? `cached stages: ${cached.join(', ')}\n` : '') +
          `summary: ${result.summary}\nreport: ${result.report}\n`,
      );
    });
}
