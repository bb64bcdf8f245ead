import { existsSync, readFileSync, statSync } from 'node:fs';
import { BACKEND_NAMES, type BackendName } from '@polyglot/model';
import {
  exportTrl,
  LOSS_MODES,
  type LossMode,
  resolveArgs,
  SFT_DEFAULTS,
  type SftArgs,
  type TrainSummary,
  train,
} from '@polyglot/sft';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';

interface SftFlags {
  model: string;
  data: string;
  out: string;
  evalData?: string;
  initAdapter?: string;
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  targetModules?: string;
  useRslora?: boolean;
  lr?: number;
  scheduler?: SftArgs['scheduler'];
  warmupRatio?: number;
  warmupSteps?: number;
  weightDecay?: number;
  adamBeta1?: number;
  adamBeta2?: number;
  adamEpsilon?: number;
  maxGradNorm?: number;
  epochs?: number;
  maxSteps?: number;
  batchSize?: number;
  gradAccum?: number;
  maxLength?: number;
  loss?: LossMode;
  chatTemplate?: string;
  sortByLength?: boolean;
  shuffle?: boolean;
  packing?: boolean;
  seed?: number;
  evalSteps?: number;
  saveSteps?: number;
  backend?: BackendName;
  wasmThreads?: number;
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

function numArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) {
      throw new InvalidArgumentError(`${name} must be a number, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

const d = SFT_DEFAULTS;

/** The flags of `sft train` and `sft export` (they describe the same run). */
function runOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--model <dir>', 'base model directory (config.json, safetensors, tokenizer)')
    .requiredOption(
      '--data <file>',
      'training data, JSON Lines: {"text"} | {"prompt", "completion"} | {"messages": [{role, content}]}',
    )
    .requiredOption(
      '--out <dir>',
      'output directory (adapter, training_args.json, train-log.jsonl, checkpoints/)',
    )
    .option(
      '--eval-data <file>',
      'evaluation data (same formats): eval loss before, every --eval-steps and after',
    )
    .option('--init-adapter <dir>', 'start from this PEFT LoRA adapter (its r, alpha and target modules)')
    .option('--lora-r <n>', `LoRA rank (default ${d.loraR})`, intArg('--lora-r', 1))
    .option('--lora-alpha <x>', `LoRA alpha (default ${d.loraAlpha})`, numArg('--lora-alpha'))
    .option(
      '--lora-dropout <p>',
      `LoRA dropout (default ${d.loraDropout}; 0 is exact)`,
      numArg('--lora-dropout'),
    )
    .option(
      '--target-modules <list>',
      'all-linear (every projection of the blocks, not the LM head) or a comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (default all-linear)',
    )
    .option('--use-rslora', 'rank-stabilised LoRA: scale alpha / sqrt(r)')
    .option('--lr <x>', `peak learning rate (default ${d.lr})`, numArg('--lr'))
    .addOption(
      new Option('--scheduler <name>', `learning-rate schedule (default ${d.scheduler})`).choices([
        'constant',
        'constant_with_warmup',
        'linear',
        'cosine',
      ]),
    )
    .option(
      '--warmup-ratio <x>',
      `warm-up share of the steps (default ${d.warmupRatio})`,
      numArg('--warmup-ratio'),
    )
    .option('--warmup-steps <n>', 'warm-up steps (> 0 overrides --warmup-ratio)', intArg('--warmup-steps', 0))
    .option(
      '--weight-decay <x>',
      `AdamW decoupled weight decay (default ${d.weightDecay})`,
      numArg('--weight-decay'),
    )
    .option('--adam-beta1 <x>', `AdamW beta1 (default ${d.adamBeta1})`, numArg('--adam-beta1'))
    .option('--adam-beta2 <x>', `AdamW beta2 (default ${d.adamBeta2})`, numArg('--adam-beta2'))
    .option('--adam-epsilon <x>', `AdamW epsilon (default ${d.adamEpsilon})`, numArg('--adam-epsilon'))
    .option(
      '--max-grad-norm <x>',
      `gradient-norm clipping over all LoRA tensors, 0 = off (default ${d.maxGradNorm})`,
      numArg('--max-grad-norm'),
    )
    .option('--epochs <n>', `epochs (default ${d.epochs})`, numArg('--epochs'))
    .option('--max-steps <n>', 'optimizer steps (overrides --epochs)', intArg('--max-steps', 1))
    .option('--batch-size <n>', `examples per batch (default ${d.batchSize})`, intArg('--batch-size', 1))
    .option(
      '--grad-accum <n>',
      `batches per optimizer step (default ${d.gradAccum})`,
      intArg('--grad-accum', 1),
    )
    .option(
      '--max-length <n>',
      `truncate examples to this many tokens (default ${d.maxLength})`,
      intArg('--max-length', 2),
    )
    .addOption(
      new Option(
        '--loss <mode>',
        'tokens in the loss: auto (text: all; prompt/completion: the completion; messages: assistant turns), full, completion (default auto)',
      ).choices(LOSS_MODES as string[]),
    )
    .option(
      '--chat-template <name|file>',
      "chat template for messages records (built-in name, Jinja file; default the tokenizer's)",
    )
    .option('--sort-by-length', 'order examples by token length, as the paper (default)')
    .option(
      '--no-sort-by-length',
      'do not sort by length: shuffle each epoch with --seed (or keep the file order with --no-shuffle)',
    )
    .option('--no-shuffle', 'keep the file order when not sorting by length')
    .option('--packing', 'pack several examples per row (no attention across them)')
    .option(
      '--seed <n>',
      `seed of the LoRA initialisation, dropout and shuffling (default ${d.seed})`,
      intArg('--seed', 0),
    )
    .option(
      '--eval-steps <n>',
      'evaluate every N steps (0 = before and after only)',
      intArg('--eval-steps', 0),
    )
    .option(
      '--save-steps <n>',
      `checkpoint every N steps, 0 = never (default ${d.saveSteps})`,
      intArg('--save-steps', 0),
    )
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend (auto: tensorflow, else webgpu, else wasm)')
        .choices(BACKEND_NAMES as string[])
        .default('auto'),
    )
    .option(
      '--wasm-threads <n>',
      'wasm backend threads (default POLYGLOT_WASM_THREADS, else 1)',
      intArg('--wasm-threads', 1),
    );
}

function toArgs(f: SftFlags): SftArgs {
  let chatTemplate = f.chatTemplate;
  if (chatTemplate !== undefined && existsSync(chatTemplate) && statSync(chatTemplate).isFile()) {
    chatTemplate = readFileSync(chatTemplate, 'utf8');
  }
  const targets = f.targetModules
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return resolveArgs({
    model: f.model,
    data: f.data,
    out: f.out,
    evalData: f.evalData,
    initAdapter: f.initAdapter,
    loraR: f.loraR,
    loraAlpha: f.loraAlpha,
    loraDropout: f.loraDropout,
    targetModules:
      targets === undefined
        ? undefined
        : targets.length === 1 && targets[0] === 'all-linear'
          ? 'all-linear'
          : targets,
    useRslora: f.useRslora,
    lr: f.lr,
    scheduler: f.scheduler,
    warmupRatio: f.warmupRatio,
    warmupSteps: f.warmupSteps,
    weightDecay: f.weightDecay,
    adamBeta1: f.adamBeta1,
    adamBeta2: f.adamBeta2,
    adamEpsilon: f.adamEpsilon,
    maxGradNorm: f.maxGradNorm,
    epochs: f.epochs,
    maxSteps: f.maxSteps,
    batchSize: f.batchSize,
    gradAccum: f.gradAccum,
    maxLength: f.maxLength,
    loss: f.loss,
    chatTemplate,
    sortByLength: f.sortByLength,
    shuffle: f.shuffle,
    packing: f.packing,
    seed: f.seed,
    evalSteps: f.evalSteps,
    saveSteps: f.saveSteps,
    backend: f.backend,
    wasmThreads: f.wasmThreads,
  });
}

const fmtLoss = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(4));

function formatSummary(s: TrainSummary): string {
  const ev = s.evalLoss;
  const lines = [
    `trained ${s.steps}/${s.maxSteps} steps on ${s.backend}${s.resumedFrom ? ` (resumed from ${s.resumedFrom})` : ''}: ` +
      `${s.rows} rows, ${s.trainableParameters.toLocaleString('en-US')} LoRA parameters`,
    `loss ${fmtLoss(s.firstLoss)} → ${fmtLoss(s.lastLoss)}` +
      (ev.length > 0
        ? `; eval loss ${fmtLoss(ev[0].loss)} (step ${ev[0].step}) → ${fmtLoss(ev.at(-1)?.loss)} (step ${ev.at(-1)?.step})`
        : ''),
    `${s.tokens.toLocaleString('en-US')} tokens in ${s.trainSecs.toFixed(1)} s: ${s.tokensPerSec.toFixed(1)} tokens/s ` +
      `(forward ${(s.timings.forwardMs / 1000).toFixed(1)} s, backward ${(s.timings.backwardMs / 1000).toFixed(1)} s, ` +
      `optimizer ${(s.timings.optimizerMs / 1000).toFixed(1)} s); peak RSS ${s.peakRssMiB.toFixed(0)} MiB`,
    `adapter: ${s.out} (adapter_config.json, adapter_model.safetensors; arguments in training_args.json)`,
  ];
  return `${lines.join('\n')}\n`;
}

export function registerSft(program: Command, io: Io): void {
  const sft = program.command('sft').description('LoRA supervised fine-tuning (@polyglot/sft)');
  runOptions(
    sft
      .command('train')
      .description(
        "LoRA-tune a model on JSONL data with the paper's defaults (PEFT adapter out; matches PEFT + TRL)",
      ),
  )
    .option(
      '--resume [checkpoint]',
      'continue from the latest checkpoint in --out (or the given checkpoint directory); a run killed before its first checkpoint starts over',
    )
    .option('--force', 'replace an existing run in --out')
    .option('--json', 'print the summary as JSON')
    .action(async (f: SftFlags & { resume?: boolean | string; force?: boolean; json?: boolean }) => {
      const args = toArgs(f);
      const tty = process.stderr.isTTY === true;
      const summary = await train(args, {
        resume: f.resume,
        force: f.force,
        progress: tty ? process.stderr : null,
        onMessage: (t) => io.stderr(`${t}\n`),
      });
      io.stdout(f.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    });
  runOptions(
    sft
      .command('export')
      .description(
        'Write an equivalent TRL + PEFT training config and script (train_config.json, train_trl.py) into --out',
      ),
  )
    .requiredOption('--to <stack>', 'target stack: trl')
    .action(async (f: SftFlags & { to: string }) => {
      if (f.to !== 'trl') throw new UsageError(`--to must be trl, got ${JSON.stringify(f.to)}`);
      const { configFile, scriptFile } = await exportTrl(toArgs(f), f.out);
      io.stdout(
        `wrote ${configFile} and ${scriptFile}\nrun it with: accelerate launch ${scriptFile} ` +
          '(torch, transformers, peft, trl ≥ 0.20, accelerate; DeepSpeed through an accelerate config)\n',
      );
    });
}
