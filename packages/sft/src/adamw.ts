import { SftError } from './errors.js';

/** Parameters that share a weight decay (torch's param groups; the Trainer exempts biases and norms). */
export interface ParamGroup {
  params: Float32Array[];
  /** Decoupled weight decay; default: the optimizer's. */
  weightDecay?: number;
}

export interface AdamWOptions {
  /** Learning rate used when `step` is given none. Default 1e-3 (torch). */
  lr?: number;
  /** (beta1, beta2); default (0.9, 0.999). */
  betas?: [number, number];
  /** Added to the denominator after the square root; default 1e-8. */
  eps?: number;
  /** Default weight decay of the groups; default 0.01 (torch's AdamW). */
  weightDecay?: number;
}

interface Slot {
  param: Float32Array;
  weightDecay: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

function checkNumber(name: string, v: number, ok: (v: number) => boolean, rule: string): void {
  if (!(Number.isFinite(v) && ok(v)))
    throw new SftError('SFT_BAD_ARG', `AdamW ${name} must be ${rule}, got ${v}`);
}

/**
 * AdamW as `torch.optim.AdamW` computes it (amsgrad off), over Float32Array parameters updated in place. Per
 * step t (from 1), for each element with gradient g:
 *
 *     p ← p · (1 − lr·wd)                                  decoupled weight decay
 *     m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
 *     p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * State and parameters are float32; each element's arithmetic runs in float64 and is rounded when stored.
 */
export class AdamW {
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  private readonly slots: Slot[];
  private t = 0;

  constructor(params: Float32Array[] | ParamGroup[], options: AdamWOptions = {}) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01 } = options;
    checkNumber('lr', lr, (v) => v >= 0, 'non-negative');
    checkNumber('beta1', betas[0], (v) => v >= 0 && v < 1, 'in [0, 1)');
    checkNumber('beta2', betas[1], (v) => v >= 0 && v < 1, 'in [0, 1)');
    checkNumber('eps', eps, (v) => v >= 0, 'non-negative');
    const groups: ParamGroup[] = params.map((p) => (p instanceof Float32Array ? { params: [p] } : p));
    this.slots = groups.flatMap((g) => {
      const wd = g.weightDecay ?? weightDecay;
      checkNumber('weight decay', wd, (v) => v >= 0, 'non-negative');
      return g.params.map((param) => ({
        param,
        weightDecay: wd,
        expAvg: new Float32Array(param.length),
        expAvgSq: new Float32Array(param.length),
      }));
    });
    this.lr = lr;
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
  }

  /** Updates done so far (torch's `state['step']`). */
  get stepCount(): number {
    return this.t;
  }

  /** First and second moments of parameter `i` (in the order given), for checkpoints. */
  moments(i: number): { expAvg: Float32Array; expAvgSq: Float32Array } {
    const s = this.slots[i];
    if (!s) throw new SftError('SFT_BAD_ARG', `AdamW has ${this.slots.length} parameters, no parameter ${i}`);
    return { expAvg: s.expAvg, expAvgSq: s.expAvgSq };
  }

  /** Parameters updated (in the order given). */
  get size(): number {
    return this.slots.length;
  }

  /**
   * Restores the state a checkpoint saved: the update count and every parameter's moments (copied in). The
   * parameters themselves are restored by their owner.
   */
  loadState(state: {
    step: number;
    expAvg: readonly Float32Array[];
    expAvgSq: readonly Float32Array[];
  }): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) {
      throw new SftError(
        'SFT_BAD_STATE',
        `AdamW state step must be a non-negative integer, got ${state.step}`,
      );
    }
    if (state.expAvg.length !== this.slots.length || state.expAvgSq.length !== this.slots.length) {
      throw new SftError(
        'SFT_BAD_STATE',
        `AdamW state has moments for ${state.expAvg.length} parameters, the optimizer has ${this.slots.length}`,
      );
    }
    this.slots.forEach((s, i) => {
      if (state.expAvg[i].length !== s.param.length || state.expAvgSq[i].length !== s.param.length) {
        throw new SftError('SFT_BAD_STATE', `AdamW state of parameter ${i} has the wrong size`);
      }
      s.expAvg.set(state.expAvg[i]);
      s.expAvgSq.set(state.expAvgSq[i]);
    });
    this.t = state.step;
  }

  /** One update with `grads` (one per parameter, in order) at learning rate `lr` (from a schedule). */
  step(grads: readonly Float32Array[], lr = this.lr): void {
    if (grads.length !== this.slots.length) {
      throw new SftError(
        'SFT_SHAPE',
        `AdamW.step got ${grads.length} gradients for ${this.slots.length} parameters`,
      );
    }
    checkNumber('lr', lr, (v) => v >= 0, 'non-negative');
    grads.forEach((g, i) => {
      if (g.length !== this.slots[i].param.length) {
        throw new SftError(
          'SFT_SHAPE',
          `gradient ${i} has ${g.length} elements but its parameter has ${this.slots[i].param.length}`,
        );
      }
    });
    this.t += 1;
    const [beta1, beta2] = this.betas;
    const stepSize = lr / (1 - beta1 ** this.t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.t);
    for (const [i, { param: p, weightDecay, expAvg: m, expAvgSq: v }] of this.slots.entries()) {
      const g = grads[i];
      const decay = 1 - lr * weightDecay;
      for (let j = 0; j < p.length; j++) {
        p[j] = p[j] * decay;
        m[j] = m[j] * beta1 + (1 - beta1) * g[j];
        v[j] = v[j] * beta2 + (1 - beta2) * g[j] * g[j];
        p[j] = p[j] - (stepSize * m[j]) / (Math.sqrt(v[j]) / bc2Sqrt + this.eps);
      }
    }
  }
}
