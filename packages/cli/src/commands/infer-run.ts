import path from 'node:path';
import {
  type Engine,
  type GenerateParams,
  LlamaCppEngine,
  LocalEngine,
  PAPER_SAMPLING,
  PAPER_SEEDS,
  parseEngineSpec,
  RemoteEngine,
  runInference,
  SamplingParamError,
  samplingParams,
} from '@polyglot/infer';
import { BACKEND_NAMES, type BackendName, type ProgressStream, Tokenizer } from '@polyglot/model';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, processIo } from '../io.js';
import { resolveKey, shownEngineSpec } from '../secrets.js';
import { intArg, numArg } from './infer.js';

interface RunOptions {
  engine: string;
  model?: string;
  input: string;
  promptTemplate: string;
  srcKey: string;
  tgtKey?: string;
  outputDir: string;
  temperature: number;
  topP: number;
  topK: number;
  frequencyPenalty: number;
  presencePenalty?: number;
  repetitionPenalty?: number;
  maxNewTokens: number;
  minNewTokens?: number;
  stop: string[];
  seeds: number[];
  batchSize: number;
  maxPromptTokens: number;
  limit?: number;
  adapter?: string;
  backend: BackendName;
  tokenizer?: string;
  concurrency?: number;
  timeout?: number;
  retries?: number;
  apiKey?: string;
  apiKeyFile?: string;
  quiet?: boolean;
}

const FLAG_OF: Record<string, string> = {
  max_tokens: '--max-new-tokens',
  min_tokens: '--min-new-tokens',
  temperature: '--temperature',
  top_k: '--top-k',
  top_p: '--top-p',
  frequency_penalty: '--frequency-penalty',
  presence_penalty: '--presence-penalty',
  repetition_penalty: '--repetition-penalty',
  stop: '--stop',
};

function seedsArg(v: string): number[] {
  const seeds = v.split(',').map((s) => s.trim());
  if (seeds.length === 0 || !seeds.every((s) => s !== '' && Number.isSafeInteger(Number(s)))) {
    throw new InvalidArgumentError(
      `expected integers separated by commas (e.g. 0,42,723), got ${JSON.stringify(v)}`,
    );
  }
  return seeds.map(Number);
}

/** `polyglot infer run`: the paper's inference.py over a local or remote engine, resumable. */
export function registerRun(infer: Command, io: Io = processIo): void {
  const p = PAPER_SAMPLING;
  infer
    .command('run')
    .description(
      "The paper's inference.py: render each item's prompt, generate (one file per seed), cut at stop strings and " +
        'append {prompt, system, finish_reason, source, secs[, reference]} to ' +
        '{output-dir}/{model_id}/{testset}-none-{prompt}-s{seed}-k{top_k}-p{top_p}-t{temperature}-b{batch}.jsonl ' +
        "(+ a .json of the arguments); a killed run resumes where it stopped. Defaults: the paper's chat settings",
    )
    .requiredOption(
      '--engine <spec>',
      'local:DIR (a model directory) or openai:URL[,URL…] (OpenAI-compatible servers)',
    )
    .option(
      '--model <name>',
      'the model name: names the output folder; the served model for openai: (default: DIR / the first one served)',
    )
    .requiredOption('--input <file>', 'test set: .json (array or JSON lines) or .jsonl')
    .requiredOption(
      '--prompt-template <file>',
      'Jinja prompt template (e.g. guanaco_prompt.txt) or a built-in chat template name',
    )
    .option('--src-key <key>', 'field of the instruction', 'instruction')
    .option('--tgt-key <key>', 'field copied to the output as "reference"')
    .requiredOption('--output-dir <dir>', 'output folder (the files go to a subfolder named after the model)')
    .option('--temperature <t>', 'sampling temperature', numArg, p.temperature)
    .option('--top-p <p>', 'nucleus sampling mass', numArg, p.top_p)
    .option('--top-k <k>', 'top-k (-1: off)', intArg('--top-k', -1), p.top_k)
    .option('--frequency-penalty <f>', 'frequency penalty', numArg, p.frequency_penalty)
    .option('--presence-penalty <p>', 'presence penalty', numArg)
    .option('--repetition-penalty <r>', 'repetition penalty', numArg)
    .option(
      '--max-new-tokens <n>',
      'most new tokens per response',
      intArg('--max-new-tokens', 1),
      p.max_tokens,
    )
    .option('--min-new-tokens <n>', 'fewest new tokens per response', intArg('--min-new-tokens', 0))
    .option('--stop <strings...>', 'stop strings (the response is cut at the first one and stripped)', [
      ...p.stop,
    ])
    .option('--seeds <list>', 'sampling seeds, one output file each', seedsArg, [...PAPER_SEEDS])
    .option(
      '--batch-size <n>',
      'requests run together (local batch; the b of the file name)',
      intArg('--batch-size', 1),
      8,
    )
    .option(
      '--max-prompt-tokens <n>',
      'longer prompts lose words from the start',
      intArg('--max-prompt-tokens', 1),
      4096,
    )
    .option('--limit <n>', 'only the first n items', intArg('--limit', 1))
    .option('--adapter <dir>', 'local: a PEFT LoRA adapter directory applied un-merged')
    .addOption(
      new Option('--backend <name>', 'local: TensorFlow.js backend')
        .choices([...BACKEND_NAMES])
        .default('auto'),
    )
    .option(
      '--tokenizer <dir>',
      'openai: tokenizer directory used to cut over-long prompts (else they are sent as they are)',
    )
    .option('--concurrency <n>', 'openai: requests in flight per endpoint', intArg('--concurrency', 1))
    .option('--timeout <secs>', 'openai: time limit of one attempt', numArg)
    .option('--retries <n>', 'openai: retries of a failed request', intArg('--retries', 0))
    .option(
      '--api-key-file <file>',
      'openai: file whose first line is the API key (default: $OPENAI_API_KEY)',
    )
    .option('--api-key <key>', 'openai: the API key itself (discouraged: it shows in ps; use --api-key-file)')
    .option('--quiet', 'no progress')
    .action(async (opts: RunOptions) => {
      const params: GenerateParams = {
        temperature: opts.temperature,
        top_p: opts.topP,
        top_k: opts.topK,
        frequency_penalty: opts.frequencyPenalty,
        max_tokens: opts.maxNewTokens,
        stop: opts.stop,
      };
      if (opts.presencePenalty !== undefined) params.presence_penalty = opts.presencePenalty;
      if (opts.repetitionPenalty !== undefined) params.repetition_penalty = opts.repetitionPenalty;
      if (opts.minNewTokens !== undefined) params.min_tokens = opts.minNewTokens;
      try {
        samplingParams(params as Record<string, unknown>);
      } catch (e) {
        if (e instanceof SamplingParamError)
          throw new UsageError(`${FLAG_OF[e.param] ?? e.param}: ${e.message}`);
        throw e;
      }
      const spec = parseEngineSpec(opts.engine);
      let engine: Engine;
      let tokenizer: Tokenizer | null | undefined;
      let model: string;
      if (spec.kind === 'local') {
        if (
          opts.concurrency !== undefined ||
          opts.tokenizer !== undefined ||
          opts.apiKey !== undefined ||
          opts.apiKeyFile !== undefined
        ) {
          throw new UsageError('--concurrency, --tokenizer and --api-key(-file) are for openai: engines');
        }
        engine = await LocalEngine.load({
          model: spec.dir,
          adapter: opts.adapter,
          backend: opts.backend,
          batchSize: opts.batchSize,
        });
        model = opts.model ?? spec.dir;
      } else if (spec.kind === 'llamacpp') {
        // llama.cpp (node-llama-cpp): a GGUF file, or a model directory exported to a cached GGUF
        engine = await LlamaCppEngine.load({
          model: spec.path,
          dtype: spec.dtype,
          adapter: opts.adapter,
          tokenizer: opts.tokenizer,
          batchSize: opts.batchSize,
        });
        model = opts.model ?? spec.path;
      } else {
        if (opts.adapter !== undefined) {
          throw new UsageError(
            '--adapter is for local: engines; a server serves adapters as models: pass --model NAME',
          );
        }
        const apiKey = resolveKey({
          flag: '--api-key',
          value: opts.apiKey,
          file: opts.apiKeyFile,
          env: 'OPENAI_API_KEY',
          warn: (m) => io.stderr(`polyglot infer run: warning: ${m}\n`),
        });
        engine = await RemoteEngine.connect({
          endpoints: spec.urls,
          model: opts.model,
          apiKey,
          concurrency: opts.concurrency,
          timeoutMs: opts.timeout === undefined ? undefined : opts.timeout * 1000,
          retries: opts.retries,
        });
        tokenizer = opts.tokenizer === undefined ? null : await Tokenizer.fromDir(opts.tokenizer);
        model = opts.model ?? engine.info.model;
      }
      const progress: ProgressStream =
        io === processIo ? process.stderr : { write: (t: string) => io.stderr(t), isTTY: false };
      try {
        const results = await runInference({
          engine,
          model,
          input: opts.input,
          promptTemplate: opts.promptTemplate,
          srcKey: opts.srcKey,
          tgtKey: opts.tgtKey,
          outputDir: opts.outputDir,
          params,
          seeds: opts.seeds,
          batchSize: opts.batchSize,
          maxPromptTokens: opts.maxPromptTokens,
          tokenizer,
          limit: opts.limit,
          progress,
          quiet: opts.quiet,
          // The spec as written down: URLs without credentials or key-like query parameters.
          extraArgs: {
            engine_spec: shownEngineSpec(opts.engine),
            backend: engine.info.backend,
          },
        });
        for (const r of results) {
          io.stdout(
            `${JSON.stringify({ file: path.relative(process.cwd(), r.file) || r.file, seed: r.seed, resumed: r.resumed, generated: r.generated, total: r.total })}\n`,
          );
        }
      } finally {
        await engine.close();
      }
    });
}
