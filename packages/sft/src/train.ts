/**
 * A whole training run, as TRL's SFTTrainer with transformers' Trainer runs it on one process: data prepared once,
 * an epoch order (sorted by length, or shuffled with the seed), batches of `batchSize`, accumulation windows of
 * `gradAccum` batches (the last of an epoch may be short and still makes an update), the loss normalised over all
 * target tokens of the window, clipping, AdamW, the schedule stepped after each update; evaluation, checkpoints,
 * resume, a JSONL log and a summary.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Progress, type ProgressStream, Tokenizer, writeFileAtomic } from '@polyglot/model';
import { type Batch, collate, epochBatches, epochOrder, packExamples } from './batch.js';
import {
  CHECKPOINTS_DIR,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { type DatasetStats, type Example, loadSftDataset } from './data.js';
import { SftError } from './errors.js';
import { LoraTrainer } from './lora.js';
import { argsFromJson, argsJson, resolveArgs, type SftArgs, TRAJECTORY_ARGS } from './options.js';
import { createSchedule } from './schedule.js';
import { computeTrainingSteps } from './steps.js';

export const TRAIN_LOG = 'train-log.jsonl';
export const ARGS_FILE = 'training_args.json';
export const SUMMARY_FILE = 'train_summary.json';

/** One line of train-log.jsonl per optimizer update. */
export interface TrainLogRecord {
  step: number;
  /** Mean loss over the update's target tokens, measured before the update. */
  loss: number;
  /** Gradient norm before clipping. */
  grad_norm: number;
  /** The learning rate the update used. */
  lr: number;
  /** Non-padding tokens of the update's batches. */
  tokens: number;
  /** Tokens in the loss. */
  target_tokens: number;
  /** Wall seconds of the update. */
  secs: number;
  epoch: number;
}

/** An evaluation line of train-log.jsonl. */
export interface EvalLogRecord {
  step: number;
  eval_loss: number;
  eval_tokens: number;
  secs: number;
}

export interface TrainSummary {
  out: string;
  steps: number;
  maxSteps: number;
  epochs: number;
  examples: number;
  /** Rows trained on (examples, or packed rows). */
  rows: number;
  truncated: number;
  trainableParameters: number;
  /** Seconds spent in updates in this process. */
  trainSecs: number;
  tokens: number;
  tokensPerSec: number;
  targetTokens: number;
  firstLoss: number | null;
  lastLoss: number | null;
  evalLoss: { step: number; loss: number }[];
  peakRssMiB: number;
  timings: { forwardMs: number; backwardMs: number; optimizerMs: number };
  backend: string;
  resumedFrom: string | null;
  /** Training stopped early on purpose (`haltAfterStep`). */
  halted: boolean;
  data: DatasetStats;
}

export interface TrainHooks {
  /** Every log record (train and eval) as it is appended. */
  onLog?: (record: TrainLogRecord | EvalLogRecord) => void;
  /** Messages (data statistics, checkpoints); default: none. */
  onMessage?: (text: string) => void;
  /** Where the progress bar goes (TTY: one line; otherwise JSON lines every 10 s); null: none. Default null. */
  progress?: ProgressStream | null;
  /**
   * Continue from the latest checkpoint in `out/checkpoints` (true) or from the given checkpoint directory. With
   * true, a run in `out` killed before its first checkpoint starts over from step 0 (same arguments required).
   */
  resume?: boolean | string;
  /** Replace an existing run in `out`. */
  force?: boolean;
  /** Stop right after this update as a crash would (no final adapter); for tests of resume. */
  haltAfterStep?: number;
}

/** Whether a process with this id runs (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what a killed run left in `dir`: temp files of atomic writes (`.<name>.<pid>.<hex>.tmp`) and temp
 * checkpoint folders (`.checkpoint-<step>.<pid>.<hex>.tmp[.old]`) of processes that no longer run.
 */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp(?:\.old)?$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      await fsp.rm(path.join(dir, name), { recursive: true, force: true });
    }
  }
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** The rows of a dataset as batches, in order of length (evaluation: less padding; the result is the same). */
function evalBatches(examples: readonly Example[], batchSize: number, padId: number): Batch[] {
  const order = epochOrder(examples, 0, { sortByLength: true });
  return epochBatches(order, batchSize).map((idx) =>
    collate(
      idx.map((i) => examples[i]),
      padId,
    ),
  );
}

/** Runs (or resumes) a training run; see the module comment. Writes everything under `args.out`. */
export async function train(
  input: Partial<SftArgs> & Pick<SftArgs, 'model' | 'data' | 'out'>,
  hooks: TrainHooks = {},
): Promise<TrainSummary> {
  const args = resolveArgs(input);
  const out = args.out;
  const say = hooks.onMessage ?? (() => {});
  const argsFile = path.join(out, ARGS_FILE);
  const logFile = path.join(out, TRAIN_LOG);
  const ckptRoot = path.join(out, CHECKPOINTS_DIR);

  // Where to resume from, checked before any work.
  let resumeDir: string | null = null;
  // `--resume` of a run killed before its first checkpoint: it starts over (its arguments are checked below).
  let restart = false;
  if (hooks.resume) {
    resumeDir = typeof hooks.resume === 'string' ? hooks.resume : await latestCheckpoint(ckptRoot);
    if (hooks.resume === true && !resumeDir && existsSync(argsFile)) restart = true;
    else if (!resumeDir || !existsSync(resumeDir)) {
      throw new SftError(
        'SFT_NO_CHECKPOINT',
        typeof hooks.resume === 'string'
          ? `checkpoint ${hooks.resume} not found`
          : `no checkpoint to resume from in ${ckptRoot} (a run writes one every --save-steps updates)`,
      );
    }
    if (existsSync(argsFile)) {
      const saved = argsFromJson(JSON.parse(await fsp.readFile(argsFile, 'utf8')) as Record<string, unknown>);
      const differ = TRAJECTORY_ARGS.filter(
        (k) => JSON.stringify(saved[k] ?? null) !== JSON.stringify(args[k] ?? null),
      );
      if (differ.length > 0) {
        throw new SftError(
          'SFT_RESUME_MISMATCH',
          `cannot resume ${out}: ${differ
            .map((k) => `${k} was ${JSON.stringify(saved[k])}, now ${JSON.stringify(args[k])}`)
            .join('; ')} (a resumed run must use the arguments of the run it continues)`,
        );
      }
    }
  } else if (existsSync(argsFile) && !hooks.force) {
    throw new SftError(
      'SFT_OUT_EXISTS',
      `${out} already holds a training run (${ARGS_FILE}); continue it with --resume, or replace it with --force`,
    );
  }

  // Data.
  const tokenizer = await Tokenizer.fromDir(args.model);
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const format = {
    tokenizer,
    maxLength: args.maxLength,
    loss: args.loss,
    chatTemplate: args.chatTemplate ?? undefined,
  };
  const data = await loadSftDataset(args.data, format);
  const evalData = args.evalData ? await loadSftDataset(args.evalData, format) : null;
  const s = data.stats;
  say(
    `data: ${s.records} examples from ${args.data} (${Object.entries(s.formats)
      .filter(([, n]) => n > 0)
      .map(([f, n]) => `${n} ${f}`)
      .join(', ')}), ${s.tokens} tokens, ${s.targetTokens} in the loss; ` +
      `${s.truncated} truncated to ${args.maxLength} tokens (longest ${s.longest})` +
      (s.noTargets > 0 ? `; ${s.noTargets} with no token in the loss` : '') +
      (s.boundaryMismatches > 0
        ? `; ${s.boundaryMismatches} with a prompt/completion token boundary mismatch`
        : ''),
  );
  const rows: Example[] = args.packing ? packExamples(data.examples, args.maxLength) : data.examples;
  const plan = computeTrainingSteps({
    examples: rows.length,
    batchSize: args.batchSize,
    gradAccum: args.gradAccum,
    epochs: args.epochs,
    maxSteps: args.maxSteps,
  });
  const schedule = createSchedule({
    type: args.scheduler,
    baseLr: args.lr,
    numTrainingSteps: plan.maxSteps,
    warmupSteps: args.warmupSteps,
    warmupRatio: args.warmupRatio,
  });
  const order = { sortByLength: args.sortByLength, shuffle: args.shuffle, seed: args.seed };

  const trainer = await LoraTrainer.create({
    model: args.model,
    backend: args.backend,
    wasmThreads: args.wasmThreads ?? undefined,
    initAdapter: args.initAdapter ?? undefined,
    lora: {
      r: args.loraR,
      alpha: args.loraAlpha,
      targetModules: args.targetModules,
      useRslora: args.useRslora,
    },
    dropout: args.loraDropout,
    seed: args.seed,
    optimizer: {
      lr: args.lr,
      betas: [args.adamBeta1, args.adamBeta2],
      eps: args.adamEpsilon,
      weightDecay: args.weightDecay,
    },
    baseModelName: args.model,
  });
  try {
    const trajectory = Object.fromEntries(TRAJECTORY_ARGS.map((k) => [k, args[k]]));
    let epoch = 0;
    let window = 0;
    const totals = { tokens: 0, targetTokens: 0, trainSecs: 0 };
    await fsp.mkdir(out, { recursive: true });
    // What killed writers left: temp files beside the outputs, temp checkpoint folders.
    await removeStaleTemps(out);
    await removeStaleTemps(ckptRoot);
    // The arguments first: a run with a log always has them, so that --resume can continue it.
    await writeFileAtomic(argsFile, `${JSON.stringify(argsJson(args), null, 2)}\n`);
    if (resumeDir) {
      const state: TrainerState = await loadCheckpoint(resumeDir, trainer);
      epoch = state.epoch;
      window = state.window;
      Object.assign(totals, state.totals);
      // The log continues as if the run had never stopped: lines after the checkpoint go.
      if (existsSync(logFile)) {
        const kept = (await fsp.readFile(logFile, 'utf8')).split('\n').filter((line) => {
          if (line.trim() === '') return false;
          try {
            return (JSON.parse(line) as { step: number }).step <= state.step;
          } catch {
            return false; // a line cut by the crash
          }
        });
        await writeFileAtomic(logFile, kept.map((l) => `${l}\n`).join(''));
      }
      say(`resumed from ${resumeDir} at step ${state.step} (epoch ${epoch + 1}, window ${window})`);
    } else {
      if (hooks.force) {
        await fsp.rm(ckptRoot, { recursive: true, force: true });
      }
      if (restart) say(`no checkpoint in ${ckptRoot} yet: starting over from step 0`);
      await writeFileAtomic(logFile, '');
    }

    const log = async (record: TrainLogRecord | EvalLogRecord) => {
      await fsp.appendFile(logFile, `${JSON.stringify(record)}\n`);
      hooks.onLog?.(record);
    };
    const evalSet = evalData ? evalBatches(evalData.examples, args.batchSize, padId) : null;
    const evalLosses: { step: number; loss: number }[] = [];
    let lastEvalStep = -1;
    const evaluate = async () => {
      if (!evalSet || lastEvalStep === trainer.steps) return;
      const t0 = performance.now();
      const r = await trainer.evalLoss(evalSet);
      lastEvalStep = trainer.steps;
      evalLosses.push({ step: trainer.steps, loss: r.loss });
      await log({
        step: trainer.steps,
        eval_loss: r.loss,
        eval_tokens: r.targetTokens,
        secs: (performance.now() - t0) / 1000,
      });
    };

    const progress = hooks.progress
      ? new Progress({ total: plan.maxSteps, label: 'sft', stream: hooks.progress })
      : null;
    progress?.tick(trainer.steps);
    if (trainer.steps === 0) await evaluate();
    let firstLoss: number | null = null;
    let lastLoss: number | null = null;
    let runSecs = 0;
    let runTokens = 0;
    let halted = false;

    loop: while (trainer.steps < plan.maxSteps) {
      const batches = epochBatches(epochOrder(rows, epoch, order), args.batchSize);
      const windows: number[][][] = [];
      for (let i = 0; i < batches.length; i += args.gradAccum)
        windows.push(batches.slice(i, i + args.gradAccum));
      for (; window < windows.length; window++) {
        const t0 = performance.now();
        const micro = windows[window].map((idx) =>
          collate(
            idx.map((i) => rows[i]),
            padId,
          ),
        );
        const lr = schedule.lrAt(trainer.steps);
        const r = await trainer.step(micro, lr, args.maxGradNorm);
        const secs = (performance.now() - t0) / 1000;
        totals.tokens += r.tokens;
        totals.targetTokens += r.targetTokens;
        totals.trainSecs += secs;
        runSecs += secs;
        runTokens += r.tokens;
        firstLoss ??= r.loss;
        lastLoss = r.loss;
        await log({
          step: trainer.steps,
          loss: r.loss,
          grad_norm: r.gradNorm,
          lr,
          tokens: r.tokens,
          target_tokens: r.targetTokens,
          secs,
          epoch: epoch + (window + 1) / windows.length,
        });
        progress?.tick();
        if (args.evalSteps > 0 && trainer.steps % args.evalSteps === 0) await evaluate();
        const done = trainer.steps >= plan.maxSteps;
        if (args.saveSteps > 0 && trainer.steps % args.saveSteps === 0 && !done) {
          const next =
            window + 1 < windows.length ? { epoch, window: window + 1 } : { epoch: epoch + 1, window: 0 };
          const dir = await saveCheckpoint(ckptRoot, trainer, {
            version: 1,
            step: trainer.steps,
            ...next,
            adamStep: trainer.optimizer.stepCount,
            rng: { kind: 'counter', seed: args.seed },
            schedule: {
              type: schedule.type,
              baseLr: args.lr,
              numTrainingSteps: schedule.numTrainingSteps,
              warmupSteps: schedule.warmupSteps,
            },
            totals: { ...totals },
            trajectory,
          });
          say(`checkpoint ${dir}`);
        }
        if (hooks.haltAfterStep !== undefined && trainer.steps >= hooks.haltAfterStep && !done) {
          halted = true;
          break loop;
        }
        if (done) break loop;
      }
      epoch++;
      window = 0;
    }
    if (hooks.progress) progress?.done();

    if (!halted) {
      await evaluate();
      await trainer.saveAdapter(out);
    }
    const summary: TrainSummary = {
      out,
      steps: trainer.steps,
      maxSteps: plan.maxSteps,
      epochs: plan.epochs,
      examples: data.examples.length,
      rows: rows.length,
      truncated: data.stats.truncated,
      trainableParameters: trainer.parameterCount,
      trainSecs: runSecs,
      tokens: runTokens,
      tokensPerSec: runSecs > 0 ? runTokens / runSecs : 0,
      targetTokens: totals.targetTokens,
      firstLoss,
      lastLoss,
      evalLoss: evalLosses,
      peakRssMiB: peakRssMiB(),
      timings: { ...trainer.timings },
      backend: trainer.model.backend,
      resumedFrom: resumeDir,
      halted,
      data: data.stats,
    };
    if (!halted) await writeFileAtomic(path.join(out, SUMMARY_FILE), `${JSON.stringify(summary, null, 2)}\n`);
    return summary;
  } finally {
    trainer.dispose();
  }
}
