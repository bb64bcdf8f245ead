/**
 * LoRA parameters as PEFT makes them: which modules (`target_modules`, `all-linear` = every linear layer of the
 * blocks but the LM head), rank, alpha, rsLoRA, the initialisation (`lora_A` Kaiming-uniform with a = √5, i.e.
 * U(−1/√in, 1/√in), `lora_B` zero, from our seeded generator), and PEFT adapter directories in and out.
 */
import {
  type Adapter,
  type BackendName,
  type Checkpoint,
  createLoraConfig,
  isTargetModule,
  LlamaLoraTrainer,
  type LoraConfig,
  type LoraFactors,
  type LoraTarget,
  type LoraTargetInfo,
  loadAdapterTensors,
  loraModuleScale,
  readAdapter,
  readLlamaConfig,
  type TensorToWrite,
  type WeightSource,
  writeAdapter,
} from '@polyglot/model';
import { AdamW } from './adamw.js';
import type { Batch } from './batch.js';
import { clipGradNorm } from './clip.js';
import { SftError } from './errors.js';
import { mixSeed, prng } from './rng.js';

/** The Llama projections LoRA can target; `all-linear` means all of them (not the LM head), as PEFT. */
export const LLAMA_PROJECTIONS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;

export interface LoraOptions {
  r: number;
  alpha: number;
  /** `all-linear` or projection names (`q_proj`, …, or full module names). */
  targetModules: 'all-linear' | readonly string[];
  useRslora?: boolean;
}

/**
 * Validates target modules: `all-linear`, or names that are Llama projections (short `q_proj` or suffixed module
 * names like `self_attn.q_proj`). Returns the list PEFT would save (`all-linear` expanded, as PEFT saves it).
 */
export function resolveTargetModules(targets: 'all-linear' | readonly string[]): string[] {
  if (targets === 'all-linear') return [...LLAMA_PROJECTIONS];
  if (targets.length === 0) {
    throw new SftError(
      'SFT_UNKNOWN_TARGET',
      `no target modules given; use all-linear or some of ${LLAMA_PROJECTIONS.join(', ')}`,
    );
  }
  const out: string[] = [];
  for (const t of targets) {
    if (t === 'all-linear') return [...LLAMA_PROJECTIONS];
    const last = t.split('.').at(-1) ?? t;
    if (!(LLAMA_PROJECTIONS as readonly string[]).includes(last)) {
      throw new SftError(
        'SFT_UNKNOWN_TARGET',
        `unknown target module "${t}": LoRA can target ${LLAMA_PROJECTIONS.join(', ')} (or all-linear = all of ` +
          "them, the paper's setting); the LM head and the embeddings are not trainable here",
      );
    }
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** A new adapter config (PEFT's fields; task type CAUSAL_LM). */
export function loraConfigFor(
  opts: LoraOptions & { dropout?: number; baseModel?: string | null },
): LoraConfig {
  if (!(Number.isSafeInteger(opts.r) && opts.r > 0)) {
    throw new SftError('SFT_BAD_ARG', `--lora-r must be a positive integer, got ${opts.r}`);
  }
  if (!Number.isFinite(opts.alpha)) {
    throw new SftError('SFT_BAD_ARG', `--lora-alpha must be a number, got ${opts.alpha}`);
  }
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) {
    throw new SftError('SFT_BAD_ARG', `--lora-dropout must be in [0, 1), got ${dropout}`);
  }
  return createLoraConfig({
    r: opts.r,
    loraAlpha: opts.alpha,
    targetModules: resolveTargetModules(opts.targetModules),
    useRslora: opts.useRslora ?? false,
    loraDropout: dropout,
    baseModelNameOrPath: opts.baseModel ?? null,
  });
}

/** The LoRA layers a config puts on a model with `numLayers` blocks, in (layer, projection) order. */
export function targetsFor(config: LoraConfig, numLayers: number): LoraTarget[] {
  const out: LoraTarget[] = [];
  for (let l = 0; l < numLayers; l++) {
    for (const p of LLAMA_PROJECTIONS) {
      const part = p === 'gate_proj' || p === 'up_proj' || p === 'down_proj' ? 'mlp' : 'self_attn';
      const module = `model.layers.${l}.${part}.${p}`;
      if (!isTargetModule(config, module)) continue;
      const { r, scale } = loraModuleScale(config, module);
      out.push({ module, r, scale });
    }
  }
  if (out.length === 0) {
    throw new SftError(
      'SFT_UNKNOWN_TARGET',
      `target_modules ${JSON.stringify(config.targetModules)} select no layer of this ${numLayers}-layer model`,
    );
  }
  return out;
}

/** PEFT's parameter names of a target's factors (`…lora_A.default.weight`). */
export function parameterNames(module: string): { a: string; b: string } {
  return {
    a: `base_model.model.${module}.lora_A.default.weight`,
    b: `base_model.model.${module}.lora_B.default.weight`,
  };
}

/** Fresh factors: lora_A ~ U(−1/√in, 1/√in) (PEFT's Kaiming-uniform, a = √5), lora_B = 0; seeded. */
export function initFactors(targets: readonly LoraTargetInfo[], seed: number): LoraFactors[] {
  return targets.map((t, i) => {
    const rand = prng(mixSeed(seed, 0x10a, i));
    const bound = 1 / Math.sqrt(t.inDim);
    const a = new Float32Array(t.r * t.inDim);
    for (let j = 0; j < a.length; j++) a[j] = (2 * rand() - 1) * bound;
    return { a, b: new Float32Array(t.outDim * t.r) };
  });
}

/** Reads an adapter's factors and checks that they fit the model's targets (else `SFT_ADAPTER_MISMATCH`). */
export async function readFactors(
  adapter: Adapter,
  targets: readonly LoraTargetInfo[],
): Promise<LoraFactors[]> {
  const byModule = new Map(adapter.modules.map((m) => [m.module, m]));
  const keys: string[] = [];
  for (const t of targets) {
    const m = byModule.get(t.module);
    if (!m) {
      throw new SftError('SFT_ADAPTER_MISMATCH', `${adapter.dir} has no LoRA factors for ${t.module}`);
    }
    const wantA = [t.r, t.inDim];
    const wantB = [t.outDim, t.r];
    for (const [key, got, want] of [
      [m.aKey, m.aShape, wantA],
      [m.bKey, m.bShape, wantB],
    ] as const) {
      if (got.length !== 2 || got[0] !== want[0] || got[1] !== want[1]) {
        throw new SftError(
          'SFT_ADAPTER_MISMATCH',
          `${adapter.dir}: tensor "${key}" has shape [${got.join(', ')}] but ${t.module} of this model with ` +
            `r ${t.r} needs [${want.join(', ')}]: the adapter was made for a different model`,
        );
      }
    }
    keys.push(m.aKey, m.bKey);
  }
  const data = await loadAdapterTensors(adapter, keys);
  return targets.map((t) => {
    const m = byModule.get(t.module)!;
    return { a: Float32Array.from(data.get(m.aKey)!), b: Float32Array.from(data.get(m.bKey)!) };
  });
}

/** The adapter's tensors for writeAdapter. */
export function adapterTensors(
  targets: readonly LoraTargetInfo[],
  factors: readonly LoraFactors[],
): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  targets.forEach((t, i) => {
    const n = parameterNames(t.module);
    out[n.a] = { dtype: 'F32', shape: [t.r, t.inDim], data: factors[i].a };
    out[n.b] = { dtype: 'F32', shape: [t.outDim, t.r], data: factors[i].b };
  });
  return out;
}

export interface OptimizerOptions {
  /** Default 1e-5 (the paper). */
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled weight decay; default 0.05 (the paper). */
  weightDecay?: number;
}

export interface LoraTrainerOptions {
  /** The base model: a checkpoint directory (or an open Checkpoint / WeightSource). */
  model: string | Checkpoint | WeightSource;
  /** Backend (default: the active one, else auto). */
  backend?: BackendName;
  wasmThreads?: number;
  /** Start from this PEFT adapter directory (its config decides r, alpha, targets). */
  initAdapter?: string;
  /** A new adapter (ignored with initAdapter). Default: r 64, alpha 16, all-linear (the paper). */
  lora?: LoraOptions;
  /** LoRA dropout (default 0.05 for a new adapter; the paper); 0 is exact. */
  dropout?: number;
  /** Seed of the initialisation and the dropout masks; default 42. */
  seed?: number;
  optimizer?: OptimizerOptions;
  /** Name of the base model written into adapter_config.json. */
  baseModelName?: string | null;
}

export interface StepResult {
  /** Mean loss over the target tokens of the accumulated batch, before the update. */
  loss: number;
  /** The total gradient norm before clipping. */
  gradNorm: number;
  /** Target tokens of the accumulated batch. */
  targetTokens: number;
  /** Non-padding tokens of the accumulated batch. */
  tokens: number;
  lr: number;
}

export interface Timings {
  forwardMs: number;
  backwardMs: number;
  optimizerMs: number;
}

/**
 * The model with trainable LoRA factors and their AdamW: {@link lossAndGrads} over micro-batches (the loss
 * normalised over all their target tokens, as the Trainer with gradient accumulation), {@link step} (clip,
 * AdamW, upload), {@link evalLoss}, {@link saveAdapter}. Parameters, gradients and optimizer state live in host
 * memory as Float32Arrays in PEFT's layouts.
 */
export class LoraTrainer {
  readonly model: LlamaLoraTrainer;
  readonly config: LoraConfig;
  readonly targets: readonly LoraTargetInfo[];
  readonly factors: LoraFactors[];
  readonly optimizer: AdamW;
  readonly dropout: number;
  readonly seed: number;
  readonly timings: Timings = { forwardMs: 0, backwardMs: 0, optimizerMs: 0 };
  /** Optimizer updates made. */
  steps = 0;
  private readonly grads: LoraFactors[];

  private constructor(args: {
    model: LlamaLoraTrainer;
    config: LoraConfig;
    factors: LoraFactors[];
    dropout: number;
    seed: number;
    optimizer: OptimizerOptions;
  }) {
    this.model = args.model;
    this.config = args.config;
    this.targets = args.model.targets;
    this.factors = args.factors;
    this.dropout = args.dropout;
    this.seed = args.seed;
    const o = args.optimizer;
    this.optimizer = new AdamW(
      [{ params: this.factors.flatMap((f) => [f.a, f.b]), weightDecay: o.weightDecay ?? 0.05 }],
      { lr: o.lr ?? 1e-5, betas: o.betas, eps: o.eps },
    );
    this.grads = this.targets.map((t) => ({
      a: new Float32Array(t.r * t.inDim),
      b: new Float32Array(t.outDim * t.r),
    }));
    this.model.setLora(this.factors);
  }

  static async create(opts: LoraTrainerOptions): Promise<LoraTrainer> {
    const seed = opts.seed ?? 42;
    let config: LoraConfig;
    let adapter: Adapter | null = null;
    if (opts.initAdapter !== undefined) {
      adapter = await readAdapter(opts.initAdapter);
      if (adapter.otherTensors.length > 0) {
        throw new SftError(
          'SFT_ADAPTER_UNSUPPORTED',
          `${opts.initAdapter} holds tensors that are not LoRA factors (${adapter.otherTensors.slice(0, 3).join(', ')}); ` +
            'only plain LoRA adapters can be trained further',
        );
      }
      config = adapter.config;
    } else {
      const lora = opts.lora ?? { r: 64, alpha: 16, targetModules: 'all-linear' };
      config = loraConfigFor({ ...lora, dropout: opts.dropout ?? 0.05, baseModel: opts.baseModelName });
    }
    const dropout = opts.dropout ?? (adapter ? config.loraDropout : 0.05);
    if (!(dropout >= 0 && dropout < 1)) {
      throw new SftError('SFT_BAD_ARG', `LoRA dropout must be in [0, 1), got ${dropout}`);
    }
    const targets: LoraTarget[] = adapter
      ? sortTargets(adapter.modules.map((m) => ({ module: m.module, r: m.r, scale: m.scale })))
      : targetsFor(config, await numLayersOf(opts.model));
    const model = await LlamaLoraTrainer.load(opts.model, {
      backend: opts.backend,
      wasmThreads: opts.wasmThreads,
      targets,
    });
    try {
      const factors = adapter ? await readFactors(adapter, model.targets) : initFactors(model.targets, seed);
      const cfg: LoraConfig = {
        ...config,
        loraDropout: dropout,
        raw: { ...config.raw, lora_dropout: dropout },
      };
      return new LoraTrainer({ model, config: cfg, factors, dropout, seed, optimizer: opts.optimizer ?? {} });
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /** Trainable parameters (Σ r·(in + out)). */
  get parameterCount(): number {
    return this.targets.reduce((s, t) => s + t.r * (t.inDim + t.outDim), 0);
  }

  /** PEFT's names of the trainable tensors, in order (lora_A, lora_B per target). */
  get parameterNames(): string[] {
    return this.targets.flatMap((t) => {
      const n = parameterNames(t.module);
      return [n.a, n.b];
    });
  }

  /** The current gradients (after {@link lossAndGrads}), in the order of {@link parameterNames}. */
  get gradients(): Float32Array[] {
    return this.grads.flatMap((g) => [g.a, g.b]);
  }

  /**
   * Forward and backward over micro-batches: gradients (replacing the previous ones) of the mean loss over all
   * their target tokens. `stepIndex` seeds the dropout masks (with the micro-batch index).
   */
  async lossAndGrads(
    batches: readonly Batch[],
    stepIndex = this.steps,
  ): Promise<{ loss: number; targetTokens: number; tokens: number }> {
    for (const g of this.grads) {
      g.a.fill(0);
      g.b.fill(0);
    }
    const targetTokens = batches.reduce((s, b) => s + b.targetTokens, 0);
    const tokens = batches.reduce((s, b) => s + b.tokens, 0);
    const gradScale = 1 / Math.max(1, targetTokens);
    let lossSum = 0;
    for (const [i, b] of batches.entries()) {
      const r = await this.model.lossAndGrads(b, {
        grads: this.grads,
        gradScale,
        dropout: this.dropout,
        dropoutSeed: mixSeed(this.seed, 0xd0, stepIndex, i),
        timings: this.timings,
      });
      lossSum += r.lossSum;
    }
    return { loss: lossSum / Math.max(1, targetTokens), targetTokens, tokens };
  }

  /**
   * One optimizer update over micro-batches: loss and gradients, gradient-norm clipping at `maxGradNorm` (0: no
   * clipping; the norm is still reported), AdamW at `lr`, upload of the new factors.
   */
  async step(batches: readonly Batch[], lr: number, maxGradNorm: number): Promise<StepResult> {
    const { loss, targetTokens, tokens } = await this.lossAndGrads(batches, this.steps);
    const t0 = performance.now();
    const grads = this.gradients;
    const gradNorm =
      maxGradNorm > 0 ? clipGradNorm(grads, maxGradNorm) : clipGradNorm(grads, Number.POSITIVE_INFINITY);
    this.optimizer.step(grads, lr);
    this.model.setLora(this.factors);
    this.steps++;
    this.timings.optimizerMs += performance.now() - t0;
    return { loss, gradNorm, targetTokens, tokens, lr };
  }

  /** Token-weighted mean loss over batches, without dropout and without gradients. */
  async evalLoss(batches: Iterable<Batch>): Promise<{ loss: number; targetTokens: number }> {
    let lossSum = 0;
    let targetTokens = 0;
    for (const b of batches) {
      const r = await this.model.lossAndGrads(b);
      lossSum += r.lossSum;
      targetTokens += r.tokens;
    }
    return { loss: targetTokens > 0 ? lossSum / targetTokens : Number.NaN, targetTokens };
  }

  /** Restores factors (and uploads them), e.g. from a checkpoint. */
  setFactors(factors: readonly LoraFactors[]): void {
    factors.forEach((f, i) => {
      if (f.a.length !== this.factors[i].a.length || f.b.length !== this.factors[i].b.length) {
        throw new SftError('SFT_SHAPE', `factors of ${this.targets[i].module} have the wrong size`);
      }
      this.factors[i].a.set(f.a);
      this.factors[i].b.set(f.b);
    });
    this.model.setLora(this.factors);
  }

  /** Writes the adapter as PEFT's save_pretrained does. */
  async saveAdapter(dir: string): Promise<void> {
    await writeAdapter(dir, { config: this.config, tensors: adapterTensors(this.targets, this.factors) });
  }

  dispose(): void {
    this.model.dispose();
  }
}

async function numLayersOf(model: string | Checkpoint | WeightSource): Promise<number> {
  return typeof model === 'string'
    ? (await readLlamaConfig(model)).numHiddenLayers
    : model.config.numHiddenLayers;
}

/** (layer, projection) order; modules that are not layer projections last (the trainer refuses them). */
function sortTargets(targets: LoraTarget[]): LoraTarget[] {
  const key = (m: string): number => {
    const match = /\.layers\.(\d+)\..*\.(\w+_proj)$/.exec(m);
    if (!match) return Number.MAX_SAFE_INTEGER;
    return Number(match[1]) * 16 + (LLAMA_PROJECTIONS as readonly string[]).indexOf(match[2]);
  };
  return [...targets].sort((a, b) => key(a.module) - key(b.module));
}
