/**
 * Full-parameter causal-LM pre-training of a small Llama with TensorFlow.js autodiff: documents are tokenized
 * (BOS … EOS each), concatenated into one stream and cut into `seqLen`-token windows (a seeded offset and order
 * per epoch); the loss is the mean next-token negative log-likelihood over every position of the batch; AdamW
 * (torch's, on the host, norms without weight decay), linear warm-up then cosine decay to `minLrRatio × lr`,
 * gradient clipping by global L2 norm. The forward pass is transformers' LlamaForCausalLM (RMSNorm, HF rotary,
 * SwiGLU, grouped-query attention, tied or untied head), so the result evaluates identically in
 * `@polyglot/model`'s LlamaModel.
 *
 * The embedding lookup is `oneHot(ids) · E` (a product rather than a gather): the gather's gradient needs the
 * UnsortedSegmentSum kernel, which the wasm backend lacks. That makes the cost grow with the vocabulary: meant
 * for byte-level and other small vocabularies.
 *
 * Output: `out/` becomes a complete Hugging Face checkpoint directory (model.safetensors in F32, config.json and
 * the source model's tokenizer and generation files) plus `train-log.jsonl` (one line per update) and
 * `pretrain_summary.json`, written last. Every `saveSteps` updates a checkpoint (the model as a checkpoint
 * directory, AdamW's moments, the step) goes to `out/checkpoints/checkpoint-<step>/`; a run started again on the
 * same `out` with the same arguments resumes from the latest one and, on the same backend, ends with the same
 * weights bit for bit as a run that was never interrupted. The data order, offsets and initial weights are
 * functions of the seed, so nothing but the step has to be saved.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  type BackendName,
  Checkpoint,
  type FullTrainParamSpec,
  fullTrainParamSpecs,
  LlamaFullTrainer,
  readLlamaConfig,
  SafetensorsFile,
  type TensorToWrite,
  Tokenizer,
  transpose2d,
  writeFileAtomic,
  writeJsonAtomic,
  writeSafetensors,
} from '@polyglot/model';
import { AdamW } from './adamw.js';
import { clipGradNorm } from './clip.js';
import { SftError } from './errors.js';
import { mixSeed, permutation, prng } from './rng.js';

export const PRETRAIN_LOG = 'train-log.jsonl';
export const PRETRAIN_SUMMARY = 'pretrain_summary.json';
const PRETRAIN_CHECKPOINTS = 'checkpoints';
const STATE_FILE = 'pretrain_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface PretrainOptions {
  /** Checkpoint directory to start from (e.g. one that `writeRandomLlama` wrote); its tokenizer is used. */
  model: string;
  /** The documents (each becomes BOS + text + EOS). Give `texts` or `data`. */
  texts?: readonly string[];
  /** A file of documents: JSON Lines with a `text` field per line, or any other file as one plain-text document. */
  data?: string;
  /** Output directory (becomes a checkpoint directory). */
  out: string;
  /** Optimizer updates. */
  steps: number;
  /** Tokens per window (positions trained per row); default 128. */
  seqLen?: number;
  /** Windows per update; default 8. */
  batchSize?: number;
  /** Peak learning rate; default 3e-3. */
  lr?: number;
  /** Linear warm-up updates; default 5% of `steps`. */
  warmup?: number;
  /** The cosine decays to `minLrRatio × lr`; default 0.1. */
  minLrRatio?: number;
  /** AdamW decoupled weight decay (not on norm weights); default 0.01. */
  weightDecay?: number;
  /** AdamW betas; default (0.9, 0.95). */
  betas?: [number, number];
  /** Clip the global gradient L2 norm to this (0: no clipping); default 1. */
  maxGradNorm?: number;
  /** Seed of the data order and window offsets; default 0. */
  seed?: number;
  /** TensorFlow.js backend; default `wasm`. */
  backend?: BackendName;
  /** wasm only: XNNPACK threads when the backend starts here. */
  wasmThreads?: number;
  /** Write a resumable checkpoint every this many updates (0: never); default max(1, steps / 4) rounded. */
  saveSteps?: number;
  /** Keep `out/checkpoints` after a finished run; default false (removed once the final model is written). */
  keepCheckpoints?: boolean;
}

export interface PretrainLogRecord {
  step: number;
  /** Mean next-token NLL (nats per token) of the update's batch, before the update. */
  loss: number;
  learning_rate: number;
  grad_norm: number;
  /** Epoch (fractional) of the token stream at the end of the update. */
  epoch: number;
  /** Seconds since the run (this process) started. */
  secs: number;
}

export interface PretrainHooks {
  onLog?: (record: PretrainLogRecord) => void;
  onMessage?: (text: string) => void;
  /** Stop right after this update as a crash would (no final model); for tests of resume. */
  haltAfterStep?: number;
  /** Continue from the latest checkpoint in `out/checkpoints` when there is one (default true). */
  resume?: boolean;
  /** Replace whatever is in `out` (a finished run included). */
  force?: boolean;
}

export interface PretrainSummary {
  out: string;
  steps: number;
  /** Updates done by this process (fewer than `steps` when it resumed). */
  stepsThisRun: number;
  resumedFrom: number | null;
  halted: boolean;
  /** Mean loss of the last update(s) (nats per token): the last 10% of the run, at least one update. */
  finalLoss: number;
  /** Tokens in the stream (all documents, with BOS and EOS). */
  streamTokens: number;
  documents: number;
  parameters: number;
  backend: string;
  secs: number;
  args: Record<string, unknown>;
}

interface Resolved {
  seqLen: number;
  batchSize: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  betas: [number, number];
  maxGradNorm: number;
  seed: number;
  steps: number;
  saveSteps: number;
}

function bad(message: string): never {
  throw new SftError('PRETRAIN_BAD_ARG', message);
}

function resolve(o: PretrainOptions): Resolved {
  const int = (name: string, v: number, min: number): number => {
    if (!Number.isSafeInteger(v) || v < min) bad(`pretrain: ${name} must be an integer ≥ ${min}, got ${v}`);
    return v;
  };
  const num = (name: string, v: number, ok: (v: number) => boolean, rule: string): number => {
    if (!(Number.isFinite(v) && ok(v))) bad(`pretrain: ${name} must be ${rule}, got ${v}`);
    return v;
  };
  const steps = int('steps', o.steps, 1);
  const betas = o.betas ?? [0.9, 0.95];
  return {
    steps,
    seqLen: int('seqLen', o.seqLen ?? 128, 2),
    batchSize: int('batchSize', o.batchSize ?? 8, 1),
    lr: num('lr', o.lr ?? 3e-3, (v) => v > 0, 'positive'),
    warmup: int('warmup', o.warmup ?? Math.ceil(steps * 0.05), 0),
    minLrRatio: num('minLrRatio', o.minLrRatio ?? 0.1, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    weightDecay: num('weightDecay', o.weightDecay ?? 0.01, (v) => v >= 0, 'non-negative'),
    betas: [
      num('betas[0]', betas[0], (v) => v >= 0 && v < 1, 'in [0, 1)'),
      num('betas[1]', betas[1], (v) => v >= 0 && v < 1, 'in [0, 1)'),
    ],
    maxGradNorm: num('maxGradNorm', o.maxGradNorm ?? 1, (v) => v >= 0, 'non-negative'),
    seed: int('seed', o.seed ?? 0, 0),
    saveSteps: int('saveSteps', o.saveSteps ?? Math.max(1, Math.round(steps / 4)), 0),
  };
}

/** Learning rate of update `s` (0-based): linear warm-up to `lr`, then cosine to `minLrRatio × lr`. */
export function pretrainLr(
  s: number,
  o: { steps: number; lr: number; warmup: number; minLrRatio: number },
): number {
  if (s < o.warmup) return (o.lr * (s + 1)) / o.warmup;
  const progress = (s - o.warmup) / Math.max(1, o.steps - o.warmup);
  const min = o.lr * o.minLrRatio;
  return min + (o.lr - min) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** Reads documents from a file: JSON Lines (`text` field) when every non-empty line is such an object. */
async function readDocuments(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new SftError('PRETRAIN_DATA', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const docs: string[] = [];
  for (const line of lines) {
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return [text];
    }
    if (typeof rec !== 'object' || rec === null || typeof (rec as { text?: unknown }).text !== 'string')
      return [text];
    docs.push((rec as { text: string }).text);
  }
  return docs;
}

/** The token stream: BOS + text + EOS per document (BOS as the tokenizer adds it). */
export function tokenStream(tokenizer: Tokenizer, texts: readonly string[]): Int32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const t of texts) {
    const ids = tokenizer.encode(t);
    if (tokenizer.eosId !== null) ids.push(tokenizer.eosId);
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The windows of each epoch: a seeded start offset in [0, seqLen) and a seeded order of the `seqLen + 1`-token
 * windows that follow it (each window's last token is the label of the one before it, and the first token of the
 * next window). Update s takes the windows s·B … s·B + B − 1 of the epochs laid end to end.
 */
export class WindowSampler {
  private readonly epochs = new Map<number, { offset: number; order: number[] }>();
  constructor(
    readonly streamLength: number,
    readonly seqLen: number,
    readonly seed: number,
  ) {
    if (streamLength < 2 * seqLen + 1) {
      throw new SftError(
        'PRETRAIN_DATA',
        `the corpus has ${streamLength} tokens: too few for windows of ${seqLen} (need at least ${2 * seqLen + 1}); ` +
          'give more text or a smaller seqLen',
      );
    }
  }

  private epoch(e: number): { offset: number; order: number[] } {
    let ep = this.epochs.get(e);
    if (!ep) {
      const offset = Math.floor(prng(mixSeed(this.seed, e, 1))() * this.seqLen);
      const count = Math.floor((this.streamLength - 1 - offset) / this.seqLen);
      ep = { offset, order: permutation(count, mixSeed(this.seed, e, 2)) };
      this.epochs.set(e, ep);
      if (this.epochs.size > 4) this.epochs.delete(this.epochs.keys().next().value as number);
    }
    return ep;
  }

  /** Start positions (in the stream) of windows k … k + n − 1 of the whole run, and the epoch after them. */
  starts(k: number, n: number): { starts: number[]; epoch: number } {
    const starts: number[] = [];
    let e = 0;
    let base = 0;
    let idx = k;
    // Epoch lengths differ by at most one window; walk to the epoch holding window `idx`.
    while (idx - base >= this.epoch(e).order.length) {
      base += this.epoch(e).order.length;
      e++;
    }
    let epochFrac = 0;
    for (let i = 0; i < n; i++, idx++) {
      let ep = this.epoch(e);
      if (idx - base >= ep.order.length) {
        base += ep.order.length;
        e++;
        ep = this.epoch(e);
      }
      starts.push(ep.offset + ep.order[idx - base] * this.seqLen);
      epochFrac = e + (idx - base + 1) / ep.order.length;
    }
    return { starts, epoch: epochFrac };
  }
}

/** Host values of the parameters (layouts of {@link paramSpecs}) from a checkpoint directory. */
async function readParams(dir: string, specs: FullTrainParamSpec[]): Promise<Float32Array[]> {
  const ckpt = await Checkpoint.open(dir);
  try {
    const out: Float32Array[] = [];
    for (const s of specs) {
      const v = await ckpt.readFloat32(s.name);
      out.push(s.transposed ? transpose2d(v, s.shape[1], s.shape[0]) : v.slice());
    }
    return out;
  } finally {
    await ckpt.close();
  }
}

/** Model files copied from the source model besides config.json and the weights. */
const COPIED_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'tokenizer.model',
  'chat_template.jinja',
];

/** Writes a checkpoint directory: weights (HF layouts, F32), config.json (dtype float32) and the copied files. */
async function writeModelDir(
  dir: string,
  source: string,
  rawConfig: Record<string, unknown>,
  specs: FullTrainParamSpec[],
  params: Float32Array[],
): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  specs.forEach((s, i) => {
    const shape = s.transposed ? [s.shape[1], s.shape[0]] : s.shape;
    tensors[s.name] = {
      dtype: 'F32',
      shape,
      data: s.transposed ? transpose2d(params[i], s.shape[0], s.shape[1]) : params[i],
    };
  });
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  for (const f of COPIED_FILES) {
    const from = path.join(source, f);
    if (existsSync(from)) await writeFileAtomic(path.join(dir, f), await fsp.readFile(from));
  }
  const config: Record<string, unknown> = { ...rawConfig };
  if ('dtype' in config) config.dtype = 'float32';
  else config.torch_dtype = 'float32';
  await writeJsonAtomic(path.join(dir, 'config.json'), config);
}

interface PretrainState {
  version: 1;
  step: number;
  secs: number;
  trajectory: Record<string, unknown>;
}

async function latestCheckpointDir(root: string): Promise<string | null> {
  if (!existsSync(root)) return null;
  const steps = (await fsp.readdir(root))
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const s of steps) {
    const dir = path.join(root, `checkpoint-${s}`);
    if (existsSync(path.join(dir, STATE_FILE))) return dir;
  }
  return null;
}

/** The inputs and labels of the windows starting at `starts` (each seqLen + 1 tokens of the stream). */
function windowBatch(
  stream: Int32Array,
  starts: number[],
  T: number,
): { ids: Int32Array; labels: Int32Array } {
  const ids = new Int32Array(starts.length * T);
  const labels = new Int32Array(starts.length * T);
  starts.forEach((s, b) => {
    ids.set(stream.subarray(s, s + T), b * T);
    labels.set(stream.subarray(s + 1, s + T + 1), b * T);
  });
  return { ids, labels };
}

/**
 * Mean next-token NLL of `[seqLen + 1]`-token windows (each trains seqLen positions) under the model in `dir`,
 * computed with the training forward pass (for checks against the inference model).
 */
export async function pretrainLoss(
  dir: string,
  windows: number[][],
  opts: { backend?: BackendName; wasmThreads?: number } = {},
): Promise<number> {
  const config = await readLlamaConfig(dir);
  const specs = fullTrainParamSpecs(config);
  const T = windows[0].length - 1;
  const trainer = await LlamaFullTrainer.create(config, await readParams(dir, specs), {
    seqLen: T,
    backend: opts.backend ?? 'wasm',
    wasmThreads: opts.wasmThreads,
  });
  try {
    const { ids, labels } = windowBatch(
      Int32Array.from(windows.flat()),
      windows.map((_, i) => i * (T + 1)),
      T,
    );
    return await trainer.loss(ids, labels, windows.length);
  } finally {
    trainer.dispose();
  }
}

/** Pre-trains the model in `opts.model` on the documents; see the module comment. */
export async function pretrain(opts: PretrainOptions, hooks: PretrainHooks = {}): Promise<PretrainSummary> {
  const started = Date.now();
  const r = resolve(opts);
  const say = hooks.onMessage ?? (() => {});
  if ((opts.texts === undefined) === (opts.data === undefined))
    bad('pretrain: give exactly one of `texts` and `data`');
  const texts = opts.texts ? [...opts.texts] : await readDocuments(opts.data!);
  if (texts.length === 0) throw new SftError('PRETRAIN_DATA', 'pretrain: no documents to train on');
  const out = path.resolve(opts.out);
  const summaryFile = path.join(out, PRETRAIN_SUMMARY);
  const ckptRoot = path.join(out, PRETRAIN_CHECKPOINTS);
  const logFile = path.join(out, PRETRAIN_LOG);
  if (hooks.force) {
    await fsp.rm(out, { recursive: true, force: true });
  } else if (existsSync(summaryFile)) {
    throw new SftError(
      'PRETRAIN_OUT_EXISTS',
      `${out} already holds a finished pre-training run (${PRETRAIN_SUMMARY}); pass force to replace it`,
    );
  }

  const config = await readLlamaConfig(opts.model);
  const rawConfig = config.raw;
  const tokenizer = await Tokenizer.fromDir(opts.model);
  if (tokenizer.vocabSize > config.vocabSize) {
    bad(`pretrain: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
  }
  const stream = tokenStream(tokenizer, texts);
  const sampler = new WindowSampler(stream.length, r.seqLen, r.seed);
  if (r.seqLen > config.maxPositionEmbeddings) {
    bad(`pretrain: seqLen ${r.seqLen} exceeds max_position_embeddings ${config.maxPositionEmbeddings}`);
  }
  const specs = fullTrainParamSpecs(config);
  const trajectory: Record<string, unknown> = {
    ...r,
    saveSteps: undefined,
    streamTokens: stream.length,
    streamHash: hashInts(stream),
    backend: opts.backend ?? 'wasm',
  };
  delete trajectory.saveSteps;

  // Start: the latest checkpoint of this run, or the source model.
  let startStep = 0;
  let resumedFrom: number | null = null;
  let prevSecs = 0;
  const resumeDir = hooks.resume === false ? null : await latestCheckpointDir(ckptRoot);
  const params = await readParams(resumeDir ?? opts.model, specs);
  const adam = new AdamW(
    specs.map((s, i) => ({ params: [params[i]], weightDecay: s.decay ? r.weightDecay : 0 })),
    { lr: r.lr, betas: r.betas, eps: 1e-8, weightDecay: r.weightDecay },
  );
  if (resumeDir) {
    const state = JSON.parse(await fsp.readFile(path.join(resumeDir, STATE_FILE), 'utf8')) as PretrainState;
    const same = JSON.stringify(state.trajectory) === JSON.stringify(trajectory);
    if (!same) {
      throw new SftError(
        'PRETRAIN_RESUME_MISMATCH',
        `${resumeDir} was written by a run with other arguments, data or backend ` +
          `(${JSON.stringify(state.trajectory)}); pass force to start over or resume: false`,
      );
    }
    const opt = await SafetensorsFile.open(path.join(resumeDir, OPTIMIZER_FILE));
    try {
      const expAvg: Float32Array[] = [];
      const expAvgSq: Float32Array[] = [];
      for (const s of specs) {
        expAvg.push(await opt.readFloat32(`${s.name}.exp_avg`));
        expAvgSq.push(await opt.readFloat32(`${s.name}.exp_avg_sq`));
      }
      adam.loadState({ step: state.step, expAvg, expAvgSq });
    } finally {
      await opt.close();
    }
    startStep = state.step;
    resumedFrom = state.step;
    prevSecs = state.secs;
    say(`resuming from ${resumeDir} (update ${state.step} of ${r.steps})`);
  } else if (hooks.resume !== false) {
    await fsp.rm(ckptRoot, { recursive: true, force: true });
  }
  await fsp.mkdir(out, { recursive: true });
  // The log keeps the updates up to the starting point (a killed run may have logged past its checkpoint).
  const kept: string[] = [];
  if (existsSync(logFile) && startStep > 0) {
    for (const line of (await fsp.readFile(logFile, 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      try {
        if ((JSON.parse(line) as PretrainLogRecord).step <= startStep) kept.push(line);
      } catch {
        // a torn last line
      }
    }
  }
  await writeFileAtomic(logFile, kept.map((l) => `${l}\n`).join(''));
  const recentLosses: number[] = kept.map((l) => (JSON.parse(l) as PretrainLogRecord).loss);

  const trainer = await LlamaFullTrainer.create(config, params, {
    seqLen: r.seqLen,
    backend: opts.backend ?? 'wasm',
    wasmThreads: opts.wasmThreads,
  });
  const backend = trainer.backend;
  const nParams = params.reduce((a, p) => a + p.length, 0);
  say(
    `pre-training ${nParams.toLocaleString('en')} parameters on ${stream.length.toLocaleString('en')} tokens ` +
      `(${texts.length} documents), ${r.steps} updates of ${r.batchSize}×${r.seqLen} on ${backend}`,
  );

  const saveCheckpoint = async (step: number, secs: number): Promise<void> => {
    await fsp.mkdir(ckptRoot, { recursive: true });
    const final = path.join(ckptRoot, `checkpoint-${step}`);
    const tmp = path.join(
      ckptRoot,
      `.checkpoint-${step}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
    );
    await writeModelDir(tmp, opts.model, rawConfig, specs, params);
    const moments: Record<string, TensorToWrite> = {};
    specs.forEach((s, i) => {
      const { expAvg, expAvgSq } = adam.moments(i);
      moments[`${s.name}.exp_avg`] = { dtype: 'F32', shape: [expAvg.length], data: expAvg };
      moments[`${s.name}.exp_avg_sq`] = { dtype: 'F32', shape: [expAvgSq.length], data: expAvgSq };
    });
    await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), moments);
    const state: PretrainState = { version: 1, step, secs, trajectory };
    await writeJsonAtomic(path.join(tmp, STATE_FILE), state);
    await fsp.rm(final, { recursive: true, force: true });
    await fsp.rename(tmp, final);
    // Keep the newest checkpoint only.
    for (const n of await fsp.readdir(ckptRoot)) {
      const m = /^checkpoint-(\d+)$/.exec(n);
      if (m && Number(m[1]) !== step) await fsp.rm(path.join(ckptRoot, n), { recursive: true, force: true });
    }
    say(`checkpoint ${final}`);
  };

  let halted = false;
  let step = startStep;
  const runStart = Date.now();
  try {
    while (step < r.steps) {
      const { starts, epoch } = sampler.starts(step * r.batchSize, r.batchSize);
      const { ids, labels } = windowBatch(stream, starts, r.seqLen);
      const { loss, grads: g } = await trainer.lossAndGrads(ids, labels, r.batchSize);
      const gradNorm =
        r.maxGradNorm > 0 ? clipGradNorm(g, r.maxGradNorm) : Math.sqrt(g.reduce((a, x) => a + sumSq(x), 0));
      const lr = pretrainLr(step, r);
      adam.step(g, lr);
      trainer.setParams(params);
      step++;
      if (!Number.isFinite(loss)) {
        throw new SftError(
          'PRETRAIN_NONFINITE',
          `pre-training diverged at update ${step} (loss ${loss}); lower lr or raise warmup`,
        );
      }
      const rec: PretrainLogRecord = {
        step,
        loss,
        learning_rate: lr,
        grad_norm: gradNorm,
        epoch: Math.round(epoch * 1e4) / 1e4,
        secs: Math.round((prevSecs + (Date.now() - runStart) / 1000) * 1000) / 1000,
      };
      await fsp.appendFile(logFile, `${JSON.stringify(rec)}\n`);
      recentLosses.push(loss);
      hooks.onLog?.(rec);
      if (r.saveSteps > 0 && step % r.saveSteps === 0 && step < r.steps) {
        await saveCheckpoint(step, prevSecs + (Date.now() - runStart) / 1000);
      }
      if (hooks.haltAfterStep !== undefined && step >= hooks.haltAfterStep && step < r.steps) {
        halted = true;
        break;
      }
    }
  } finally {
    trainer.dispose();
  }

  const tail = Math.max(1, Math.round(r.steps * 0.1));
  const last = recentLosses.slice(-tail);
  const summary: PretrainSummary = {
    out,
    steps: step,
    stepsThisRun: step - startStep,
    resumedFrom,
    halted,
    finalLoss: last.reduce((a, b) => a + b, 0) / Math.max(1, last.length),
    streamTokens: stream.length,
    documents: texts.length,
    parameters: nParams,
    backend,
    secs: prevSecs + (Date.now() - runStart) / 1000,
    args: { ...r, model: opts.model },
  };
  if (halted) return summary;
  await writeModelDir(out, opts.model, rawConfig, specs, params);
  if (!opts.keepCheckpoints) await fsp.rm(ckptRoot, { recursive: true, force: true });
  await writeJsonAtomic(summaryFile, { ...summary, wallSecs: (Date.now() - started) / 1000 });
  say(`pre-trained ${step} updates, final loss ${summary.finalLoss.toFixed(4)} nats/token → ${out}`);
  return summary;
}

function sumSq(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** FNV-1a over the token ids (hex), to tell corpora apart in checkpoints. */
function hashInts(xs: Int32Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < xs.length; i++) {
    h ^= xs[i] & 0xff;
    h = Math.imul(h, 0x01000193);
    h ^= (xs[i] >>> 8) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
