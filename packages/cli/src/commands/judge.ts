import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  defaultCachePath,
  formatSummary,
  JudgeCache,
  JudgeClient,
  JudgeError,
  type JudgeEvent,
  judgeFile,
  judgePairwise,
  loadPrices,
  outputName,
  type PairwiseRubric,
  type Rubric,
  type RunOptions,
  type RunResult,
  resolveRubric,
  summarize,
} from '@polyglot/judge';
import { Progress, type ProgressStream } from '@polyglot/model';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, processIo } from '../io.js';

interface CommonOptions {
  endpoint: string;
  model: string;
  rubric: string;
  limit?: number;
  dataSeed: number;
  apiSeed: number | null;
  concurrency: number;
  rpm?: number;
  tpm?: number;
  maxCost?: number;
  prices?: string;
  outputDir?: string;
  instructionKey: string;
  responseKey: string;
  temperature: number;
  maxTokens: number;
  jsonMode: 'auto' | 'on' | 'off';
  timeout: number;
  maxRetries: number;
  cache: string | false;
  apiKeyEnv?: string;
  apiKeyFile?: string;
  azureApiVersion?: string;
  batch?: boolean;
  pollInterval: number;
  retryFailed?: boolean;
  quiet?: boolean;
}

interface RunCliOptions extends CommonOptions {
  input: string[];
}

interface CompareCliOptions extends CommonOptions {
  input: string;
  against: string;
  labels?: string;
}

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

function posArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

function numArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be a number ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

function seedArg(v: string): number | null {
  if (v === 'none') return null;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(`--api-seed must be an integer ≥ 0 or "none", got ${JSON.stringify(v)}`);
  }
  return n;
}

/** The options `run` and `compare` share. */
function common(cmd: Command): Command {
  return cmd
    .requiredOption(
      '--endpoint <url>',
      'base URL of an OpenAI-compatible API, e.g. https://api.openai.com/v1',
    )
    .requiredOption('--model <name>', 'judge model at the endpoint (Azure: the deployment)')
    .option(
      '--rubric <file|helpfulness>',
      'rubric: the built-in "helpfulness" or a rubric file (JSON, text)',
      'helpfulness',
    )
    .option(
      '--limit <n>',
      'judge n items per file, sampled with --data-seed (default all)',
      intArg('--limit', 1),
    )
    .option(
      '--data-seed <n>',
      'seed of the item sample (the same items for every model)',
      intArg('--data-seed', 0),
      42,
    )
    .option('--api-seed <n|none>', 'seed sent to the judge', seedArg, 42)
    .option('--concurrency <n>', 'requests in flight at once', intArg('--concurrency', 1), 8)
    .option('--rpm <n>', 'at most n requests per minute', posArg('--rpm'))
    .option(
      '--tpm <n>',
      'at most n tokens per minute (estimated before, corrected by the usage returned)',
      posArg('--tpm'),
    )
    .option(
      '--max-cost <usd>',
      'stop cleanly before spending more than this on new requests',
      numArg('--max-cost', 0),
    )
    .option('--prices <file>', 'price table: JSON {"<model>": {"input": USD per 1M tokens, "output": …}}')
    .option('--output-dir <dir>', "where the outputs go (default: each input's folder)")
    .option('--instruction-key <key>', 'field holding the task', 'source')
    .option('--response-key <key>', 'field holding the response judged', 'system')
    .option('--temperature <t>', 'judge temperature', numArg('--temperature', 0), 0)
    .option('--max-tokens <n>', 'most tokens of a judge answer', intArg('--max-tokens', 1), 512)
    .addOption(
      new Option('--json-mode <mode>', 'ask for JSON mode (auto: drop it if the endpoint refuses)')
        .choices(['auto', 'on', 'off'])
        .default('auto'),
    )
    .option('--timeout <seconds>', 'timeout of one attempt', posArg('--timeout'), 60)
    .option(
      '--max-retries <n>',
      'retries of a failed request (back-off with jitter, Retry-After)',
      intArg('--max-retries', 0),
      6,
    )
    .option('--cache <file>', 'answer cache (SQLite; default $POLYGLOT_CACHE/judge/cache.sqlite)')
    .option('--no-cache', 'keep no answers across runs')
    .option('--api-key-env <name>', 'environment variable holding the API key (default OPENAI_API_KEY)')
    .option('--api-key-file <file>', 'file holding the API key')
    .option(
      '--azure-api-version <v>',
      'Azure OpenAI api-version (the endpoint is then https://NAME.openai.azure.com)',
    )
    .option('--batch', 'send the requests through the OpenAI Batch API (half price, results within 24 h)')
    .option(
      '--poll-interval <seconds>',
      'Batch API: time between status checks',
      posArg('--poll-interval'),
      30,
    )
    .option('--retry-failed', 'judge again the items recorded as failed (refused requests)')
    .option('--quiet', 'no progress or notices on stderr');
}

export function registerJudge(program: Command, io: Io): void {
  const judge = program
    .command('judge')
    .description('LLM-as-judge over OpenAI-compatible endpoints (@polyglot/judge)');

  common(
    judge
      .command('run')
      .description(
        'Judge responses on a rubric (default: 6-point helpfulness): JSONL records with the task and the response ' +
          '→ <input-stem>-l<N>-ds<seed>-as<seed>-<task key>-<response key>.jsonl with eval_score, eval_reasoning, ' +
          'eval_meta; cached, resumable, one summary line per input on stdout',
      ),
  )
    .requiredOption('--input <files...>', 'JSON Lines files of responses (e.g. one per model)')
    .action(async (opts: RunCliOptions) => {
      await runJudge(opts, io);
    });

  common(
    judge
      .command('compare')
      .description(
        'Pairwise comparison of two systems on the same tasks, judged in both orders (position bias reported) → ' +
          '<a-stem>-l…-vs-<label b>.jsonl with eval_winner, eval_consistent, eval_verdicts',
      ),
  )
    .requiredOption('--input <file>', "system a's responses")
    .requiredOption('--against <file>', "system b's responses to the same tasks, in the same order")
    .option('--labels <a,b>', "names of the two systems (default: their folders' names)")
    .action(async (opts: CompareCliOptions) => {
      await runCompare(opts, io);
    });

  judge
    .command('summarize')
    .description(
      'Aggregate judged files under DIR (recursively): per model (folder) and language (file name) the judged ' +
        'count, unparseable and failed counts, the mean over seeds and its bootstrap CI; pairwise files: wins, ' +
        'consistency, position bias',
    )
    .argument('<dir>', 'folder of judged JSONL files')
    .option('--json', 'print the summary as JSON instead of tables')
    .option('--bootstrap <n>', 'bootstrap resamples', intArg('--bootstrap', 100), 2000)
    .option('--ci <level>', 'confidence level of the intervals', numArg('--ci', 0), 0.95)
    .option('--seed <n>', 'seed of the resampling', intArg('--seed', 0), 0)
    .action((dir: string, opts: { json?: boolean; bootstrap: number; ci: number; seed: number }) => {
      if (!(opts.ci > 0 && opts.ci < 1)) throw new UsageError(`--ci must be in (0, 1), got ${opts.ci}`);
      const s = summarize(dir, { resamples: opts.bootstrap, level: opts.ci, seed: opts.seed });
      io.stdout(opts.json ? `${JSON.stringify(s, null, 2)}\n` : formatSummary(s));
    });
}

// -----------------------------------------------------------------------------------------------------------------

function apiKey(opts: CommonOptions): string | undefined {
  if (opts.apiKeyFile !== undefined && opts.apiKeyEnv !== undefined) {
    throw new UsageError('give --api-key-env or --api-key-file, not both');
  }
  if (opts.apiKeyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.apiKeyFile, 'utf8');
    } catch (e) {
      throw new UsageError(
        `--api-key-file ${opts.apiKeyFile}: cannot read it (${(e as NodeJS.ErrnoException).code})`,
      );
    }
    const key = text.split(/\r?\n/)[0]!.trim();
    if (key === '') throw new UsageError(`--api-key-file ${opts.apiKeyFile}: the file is empty`);
    return key;
  }
  if (opts.apiKeyEnv !== undefined) {
    const key = process.env[opts.apiKeyEnv];
    if (!key) throw new UsageError(`--api-key-env ${opts.apiKeyEnv}: that environment variable is not set`);
    return key;
  }
  return process.env.OPENAI_API_KEY || undefined;
}

function stderrStream(io: Io): ProgressStream {
  return io === processIo
    ? process.stderr
    : {
        write: (t: string) => {
          io.stderr(t);
        },
        isTTY: false,
      };
}

function makeClient(opts: CommonOptions, io: Io): JudgeClient {
  const notice = (m: string) => {
    if (!opts.quiet) io.stderr(`polyglot judge: ${m}\n`);
  };
  const onEvent = (e: JudgeEvent) => {
    if (e.type === 'retry') {
      notice(
        `retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)} s after ${e.status ?? 'no response'}: ${e.message}`,
      );
    } else notice(e.message);
  };
  const cache = JudgeCache.open(opts.cache === false ? ':memory:' : (opts.cache ?? defaultCachePath()));
  try {
    return new JudgeClient({
      baseURL: opts.endpoint,
      model: opts.model,
      apiKey: apiKey(opts),
      azureApiVersion: opts.azureApiVersion,
      cache,
      timeoutMs: opts.timeout * 1000,
      retry: { maxRetries: opts.maxRetries },
      rpm: opts.rpm,
      tpm: opts.tpm,
      jsonMode: opts.jsonMode,
      prices: opts.prices === undefined ? undefined : loadPrices(opts.prices),
      maxCost: opts.maxCost,
      onEvent,
    });
  } catch (e) {
    cache.close();
    throw e;
  }
}

function runOptions(
  opts: CommonOptions,
  client: JudgeClient,
  io: Io,
  label: string,
  batchState: string | undefined,
) {
  const notice = (m: string) => {
    if (!opts.quiet) io.stderr(`polyglot judge: ${m}\n`);
  };
  let progress: Progress | undefined;
  let seen = 0;
  const run: RunOptions = {
    client,
    outputDir: opts.outputDir,
    instructionKey: opts.instructionKey,
    responseKey: opts.responseKey,
    limit: opts.limit,
    dataSeed: opts.dataSeed,
    apiSeed: opts.apiSeed,
    temperature: opts.temperature,
    maxTokens: opts.maxTokens,
    concurrency: opts.concurrency,
    retryFailed: opts.retryFailed,
    onNotice: notice,
    onProgress: (done, total) => {
      if (opts.quiet) return;
      progress ??= new Progress({ total, label, stream: stderrStream(io) });
      if (done > seen) progress.tick(done - seen);
      seen = done;
    },
  };
  if (opts.batch && batchState !== undefined) {
    run.batch = { stateFile: batchState, pollIntervalMs: opts.pollInterval * 1000, onNotice: notice };
  }
  return { run, finish: () => progress?.done() };
}

function summaryLine(r: RunResult, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    ...extra,
    output: r.output,
    total: r.total,
    done: r.done,
    judged: r.judged,
    unparseable: r.unparseable,
    failed: r.failed,
    resumed: r.resumed,
    requests: r.requests,
    cache_hits: r.cacheHits,
    cost_usd: { run: round6(r.cost.run), output: round6(r.cost.output), unpriced: r.cost.unpriced },
    tokens: r.tokens,
    stopped: r.stopped,
    ...(r.batch ? { batch: r.batch } : {}),
  };
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

function budgetStop(opts: CommonOptions, r: RunResult): never {
  throw new JudgeError(
    'budget',
    `stopped at --max-cost $${opts.maxCost}: ${r.done} of ${r.total} items judged in ${r.output}; rerun with a ` +
      'higher --max-cost to judge the rest (the judged items are kept)',
  );
}

function batchStateFor(opts: CommonOptions, output: string): string | undefined {
  return opts.batch ? output.replace(/\.jsonl$/, '.batch.json') : undefined;
}

async function runJudge(opts: RunCliOptions, io: Io): Promise<void> {
  const rubric = resolveRubric(opts.rubric, 'single').rubric as Rubric;
  const client = makeClient(opts, io);
  try {
    for (const input of opts.input) {
      const out = path.join(opts.outputDir ?? path.dirname(input), outputName(input, opts));
      const { run, finish } = runOptions(
        opts,
        client,
        io,
        `judge ${path.basename(input)}`,
        batchStateFor(opts, out),
      );
      let r: Awaited<ReturnType<typeof judgeFile>>;
      try {
        r = await judgeFile({ ...run, input, rubric });
      } finally {
        finish();
      }
      io.stdout(`${JSON.stringify(summaryLine(r, { input, mean: r.mean }))}\n`);
      if (r.stopped === 'budget') budgetStop(opts, r);
    }
  } finally {
    client.close();
    client.cache.close();
  }
}

async function runCompare(opts: CompareCliOptions, io: Io): Promise<void> {
  const rubric = resolveRubric(opts.rubric, 'pairwise').rubric as PairwiseRubric;
  let labels: [string, string] | undefined;
  if (opts.labels !== undefined) {
    const parts = opts.labels.split(',').map((s) => s.trim());
    if (parts.length !== 2 || parts.some((p) => p === '')) {
      throw new UsageError(
        `--labels must be two names separated by a comma, got ${JSON.stringify(opts.labels)}`,
      );
    }
    labels = [parts[0]!, parts[1]!];
  }
  const client = makeClient(opts, io);
  try {
    const stem = path.basename(opts.input).replace(/\.jsonl?$/i, '');
    const state = opts.batch
      ? path.join(opts.outputDir ?? path.dirname(opts.input), `${stem}-compare.batch.json`)
      : undefined;
    const { run, finish } = runOptions(opts, client, io, `judge compare ${path.basename(opts.input)}`, state);
    let r: Awaited<ReturnType<typeof judgePairwise>>;
    try {
      r = await judgePairwise({ ...run, inputA: opts.input, inputB: opts.against, labels, rubric });
    } finally {
      finish();
    }
    io.stdout(
      `${JSON.stringify(
        summaryLine(r, {
          input: opts.input,
          against: opts.against,
          labels: r.labels,
          wins: r.wins,
          win_rate_a: r.winRateA,
          consistent: r.consistent,
          first_position_rate: r.firstPositionRate,
        }),
      )}\n`,
    );
    if (r.stopped === 'budget') budgetStop(opts, r);
  } finally {
    client.close();
    client.cache.close();
  }
}
