import { type JsonObject, readJsonl, writeJsonlAtomic } from '@polyglot/data';
import {
  type GenerateParams,
  type GenerateRequest,
  type GenerateResult,
  LocalEngine,
  RequestError,
  SamplingParamError,
  samplingParams,
} from '@polyglot/infer';
import {
  BACKEND_NAMES,
  type BackendName,
  PolyglotError,
  Progress,
  type ProgressStream,
} from '@polyglot/model';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, processIo } from '../io.js';
import { registerRun } from './infer-run.js';
import { registerServe } from './infer-serve.js';

interface CommonOptions {
  model: string;
  adapter?: string;
  input: string;
  out?: string;
  backend: BackendName;
  batchSize: number;
}

interface GenerateOptions extends CommonOptions {
  maxNewTokens: number;
  minNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
  ignoreEos?: boolean;
  logprobs?: number;
}

/** A line of the input file and where it was. */
interface Line {
  value: JsonObject;
  line: number;
}

/** Flag of each sampling parameter, for messages. */
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
  ignore_eos: '--ignore-eos',
  logprobs: '--logprobs',
};

export function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

export function seedArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`the seed must be an integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function numArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n))
    throw new InvalidArgumentError(`not a number: ${JSON.stringify(v)}`);
  return n;
}

/** The options `score` and `generate` share. */
function common(cmd: Command): Command {
  return cmd
    .requiredOption(
      '--model <dir>',
      'Hugging Face model directory (config.json, safetensors, tokenizer.json)',
    )
    .option('--adapter <dir>', 'PEFT LoRA adapter directory, applied un-merged')
    .requiredOption('--input <file>', 'JSON Lines input')
    .option('--out <file>', 'write the JSON Lines output here (atomically) instead of stdout')
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend (auto: tensorflow, else webgpu, else wasm)')
        .choices([...BACKEND_NAMES])
        .default('auto'),
    )
    .option('--batch-size <n>', 'sequences per batch', intArg('--batch-size', 1), 8);
}

export function registerInfer(program: Command, io: Io): void {
  const infer = program
    .command('infer')
    .description('Generation, scoring and an OpenAI-compatible server (@polyglot/infer)');

  common(
    infer
      .command('score')
      .description(
        'Token log-probs of JSONL inputs: lines {"input_ids":[…]} or {"text":"…"} (BOS added) → input_ids, ' +
          'token_logprobs (token_logprobs[i] = log p(input_ids[i+1] | input_ids[..i])), sum_logprob, backend',
      ),
  ).action(async (opts: CommonOptions) => {
    await runScore(opts, io);
  });

  common(
    infer
      .command('generate')
      .description(
        'Batched generation with vLLM sampling semantics: lines {"input_ids":[…]} or {"prompt":"…"} (BOS added), ' +
          'optionally "seed" → output_ids, text, finish_reason (stop|length), stop_reason, seed, backend',
      ),
  )
    .requiredOption(
      '--max-new-tokens <n>',
      'most tokens to generate (vLLM max_tokens)',
      intArg('--max-new-tokens', 0),
    )
    .option(
      '--min-new-tokens <n>',
      'EOS and stop tokens are masked, stop strings ignored, until this many tokens exist (vLLM min_tokens)',
      intArg('--min-new-tokens', 0),
    )
    .option('--temperature <t>', 'softmax temperature; 0 = greedy (default 1)', numArg)
    .option('--top-k <k>', 'keep the k most likely tokens; 0 or -1 = off', intArg('--top-k', -1))
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (default 1 = off)', numArg)
    .option('--frequency-penalty <f>', 'subtract f × count from output tokens, in [-2, 2]', numArg)
    .option('--presence-penalty <p>', 'subtract p once from output tokens, in [-2, 2]', numArg)
    .option('--repetition-penalty <r>', 'divide/multiply logits of prompt and output tokens, > 0', numArg)
    .option(
      '--seed <n>',
      'engine seed: lines without their own "seed" get one drawn from it in input order (default random)',
      seedArg,
    )
    .option('--stop <strings...>', 'stop strings: the text is cut at the first one, then stripped')
    .option('--ignore-eos', 'keep generating after EOS')
    .option(
      '--logprobs <n>',
      'add token_logprobs (and the top n per token when n > 0)',
      intArg('--logprobs', 0),
    )
    .action(async (opts: GenerateOptions) => {
      await runGenerate(opts, io);
    });

  registerServe(infer, io);
  registerRun(infer, io);
}

// -----------------------------------------------------------------------------------------------------------------

async function readLines(file: string): Promise<Line[]> {
  const lines: Line[] = [];
  for await (const { value, line } of readJsonl(file)) lines.push({ value, line });
  return lines;
}

function lineError(file: string, line: number, code: string, message: string): PolyglotError {
  return new PolyglotError(code, `${file}:${line}: ${message}`);
}

/**
 * Exactly one of `textKey` / `input_ids`; input_ids must be non-negative integers below `vocab` (when known), the
 * text a non-empty string. Errors name file:line.
 */
function checkPromptFields(file: string, l: Line, textKey: 'text' | 'prompt', vocab: number | null): void {
  const v = l.value;
  const hasText = v[textKey] !== undefined;
  const hasIds = v.input_ids !== undefined;
  if (hasText === hasIds) {
    throw lineError(
      file,
      l.line,
      'BAD_INPUT_LINE',
      hasText
        ? `give either "${textKey}" or "input_ids", not both`
        : `expected a "${textKey}" (string) or "input_ids" (list of token ids) field`,
    );
  }
  if (hasText) {
    if (typeof v[textKey] !== 'string') {
      throw lineError(file, l.line, 'BAD_INPUT_LINE', `"${textKey}" must be a string`);
    }
    if ((v[textKey] as string).length === 0) {
      throw lineError(file, l.line, 'EMPTY_PROMPT', `"${textKey}" is empty`);
    }
    return;
  }
  const ids = v.input_ids;
  if (!Array.isArray(ids))
    throw lineError(file, l.line, 'BAD_INPUT_LINE', '"input_ids" must be a list of token ids');
  if (ids.length === 0) throw lineError(file, l.line, 'EMPTY_PROMPT', '"input_ids" is empty');
  ids.forEach((t, k) => {
    if (!Number.isSafeInteger(t) || (t as number) < 0) {
      throw lineError(
        file,
        l.line,
        'BAD_INPUT_LINE',
        `input_ids[${k}] = ${JSON.stringify(t)} is not a non-negative integer`,
      );
    }
    if (vocab !== null && (t as number) >= vocab) {
      throw lineError(
        file,
        l.line,
        'TOKEN_OUT_OF_RANGE',
        `input_ids[${k}] = ${t} is outside the model's vocabulary [0, ${vocab})`,
      );
    }
  });
}

async function loadEngine(opts: CommonOptions, seed?: number): Promise<LocalEngine> {
  return LocalEngine.load({
    model: opts.model,
    adapter: opts.adapter,
    backend: opts.backend,
    batchSize: opts.batchSize,
    seed: seed ?? null,
  });
}

export function progressFor(io: Io, total: number, label: string): Progress {
  const stream: ProgressStream =
    io === processIo
      ? process.stderr
      : {
          write: (t: string) => {
            io.stderr(t);
          },
          isTTY: false,
        };
  return new Progress({ total, label, stream });
}

/** Rows to stdout in input order as they complete, or all at once to --out (atomically). */
class Output {
  private readonly rows: (JsonObject | undefined)[];
  private next = 0;

  constructor(
    private readonly io: Io,
    private readonly out: string | undefined,
    n: number,
  ) {
    this.rows = new Array(n);
  }

  set(i: number, row: JsonObject): void {
    this.rows[i] = row;
    if (this.out !== undefined) return;
    while (this.next < this.rows.length && this.rows[this.next] !== undefined) {
      this.io.stdout(`${JSON.stringify(this.rows[this.next])}\n`);
      this.next++;
    }
  }

  async finish(): Promise<void> {
    if (this.out !== undefined) await writeJsonlAtomic(this.out, this.rows);
  }
}

/** An engine error about request i, reworded to name the input file and line. */
function atLine(e: unknown, file: string, lines: Line[], offset = 0): unknown {
  if (e instanceof RequestError) {
    const l = lines[offset + e.request];
    if (l) return lineError(file, l.line, e.code, e.detail);
  }
  return e;
}

async function runScore(opts: CommonOptions, io: Io): Promise<void> {
  const lines = await readLines(opts.input);
  for (const l of lines) checkPromptFields(opts.input, l, 'text', null);
  const output = new Output(io, opts.out, lines.length);
  if (lines.length > 0) {
    const engine = await loadEngine(opts);
    try {
      const vocab = engine.model.config.vocabSize;
      for (const l of lines) checkPromptFields(opts.input, l, 'text', vocab);
      const backend = engine.info.backend;
      const progress = progressFor(io, lines.length, 'infer score');
      for (let start = 0; start < lines.length; start += opts.batchSize) {
        const chunk = lines.slice(start, start + opts.batchSize);
        let scores: Awaited<ReturnType<LocalEngine['score']>>;
        try {
          scores = await engine.score(
            chunk.map(({ value: v }) =>
              v.text !== undefined ? { text: v.text as string } : { inputIds: v.input_ids as number[] },
            ),
          );
        } catch (e) {
          throw atLine(e, opts.input, lines, start);
        }
        scores.forEach((s, k) => {
          output.set(start + k, {
            ...chunk[k].value,
            input_ids: s.inputIds,
            token_logprobs: s.tokenLogprobs,
            sum_logprob: s.sumLogprob,
            backend,
          });
        });
        progress.tick(chunk.length);
      }
      progress.done();
    } finally {
      await engine.close();
    }
  }
  await output.finish();
}

/** The sampling parameters the flags give (validated here, so that a bad value names its flag). */
function paramsFromFlags(opts: GenerateOptions): GenerateParams {
  const p: GenerateParams = { max_tokens: opts.maxNewTokens };
  if (opts.minNewTokens !== undefined) p.min_tokens = opts.minNewTokens;
  if (opts.temperature !== undefined) p.temperature = opts.temperature;
  if (opts.topK !== undefined) p.top_k = opts.topK;
  if (opts.topP !== undefined) p.top_p = opts.topP;
  if (opts.frequencyPenalty !== undefined) p.frequency_penalty = opts.frequencyPenalty;
  if (opts.presencePenalty !== undefined) p.presence_penalty = opts.presencePenalty;
  if (opts.repetitionPenalty !== undefined) p.repetition_penalty = opts.repetitionPenalty;
  if (opts.stop !== undefined) p.stop = opts.stop;
  if (opts.ignoreEos) p.ignore_eos = true;
  if (opts.logprobs !== undefined) p.logprobs = opts.logprobs;
  try {
    samplingParams(p as Record<string, unknown>);
  } catch (e) {
    if (e instanceof SamplingParamError) throw new UsageError(`${FLAG_OF[e.param] ?? e.param}: ${e.message}`);
    throw e;
  }
  return p;
}

async function runGenerate(opts: GenerateOptions, io: Io): Promise<void> {
  const params = paramsFromFlags(opts);
  const lines = await readLines(opts.input);
  for (const l of lines) {
    checkPromptFields(opts.input, l, 'prompt', null);
    const seed = l.value.seed;
    if (seed !== undefined && !Number.isSafeInteger(seed)) {
      throw lineError(
        opts.input,
        l.line,
        'BAD_INPUT_LINE',
        `"seed" must be an integer, got ${JSON.stringify(seed)}`,
      );
    }
  }
  const output = new Output(io, opts.out, lines.length);
  if (lines.length > 0) {
    const engine = await loadEngine(opts, opts.seed);
    try {
      const vocab = engine.model.config.vocabSize;
      for (const l of lines) checkPromptFields(opts.input, l, 'prompt', vocab);
      const backend = engine.info.backend;
      const reqs: GenerateRequest[] = lines.map(({ value: v }) => {
        const p = v.seed === undefined ? params : { ...params, seed: v.seed as number };
        return v.prompt !== undefined
          ? { prompt: v.prompt as string, params: p }
          : { inputIds: v.input_ids as number[], params: p };
      });
      const progress = progressFor(io, lines.length, 'infer generate');
      try {
        await engine.generate(reqs, {
          batchSize: opts.batchSize,
          onResult: (i, r) => {
            output.set(i, generateRow(lines[i].value, r, backend));
            progress.tick();
          },
        });
      } catch (e) {
        throw atLine(e, opts.input, lines);
      }
      progress.done();
    } finally {
      await engine.close();
    }
  }
  await output.finish();
}

function generateRow(input: JsonObject, r: GenerateResult, backend: string | null): JsonObject {
  const row: JsonObject = {
    ...input,
    output_ids: r.outputIds,
    text: r.text,
    finish_reason: r.finishReason,
    stop_reason: r.stopReason,
    seed: r.seed,
    backend,
  };
  if (r.tokenLogprobs) row.token_logprobs = r.tokenLogprobs;
  if (r.topLogprobs) row.top_logprobs = r.topLogprobs;
  return row;
}
