import { expect } from 'chai';
import { AdamW, clipGradNorm, createSchedule } from '../src/index.js';

/** torch.optim.AdamW's documented update, written out for one scalar (float64). */
function reference(
  p0: number,
  grads: number[],
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  wd: number,
): number {
  let p = p0;
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p = p - lr * wd * p; // θ ← θ − γλθ
    m = b1 * m + (1 - b1) * g; // m ← β1 m + (1 − β1) g
    v = b2 * v + (1 - b2) * g * g; // v ← β2 v + (1 − β2) g²
    const mHat = m / (1 - b1 ** t);
    const vHat = v / (1 - b2 ** t);
    p = p - (lr * mHat) / (Math.sqrt(vHat) + eps); // θ ← θ − γ m̂ / (√v̂ + ε)
  });
  return p;
}

describe('AdamW (torch semantics)', () => {
  const p0 = [1.0, -2.0, 0.5];
  const grads = [
    [0.1, -0.2, 0.0],
    [0.3, 0.1, -0.5],
    [-0.2, 0.4, 0.25],
  ];

  it('the first step moves every parameter by lr·sign(g) after weight decay', () => {
    const p = Float32Array.from(p0);
    new AdamW([p], { lr: 0.1, weightDecay: 0.01 }).step([Float32Array.from(grads[0])]);
    // m̂ = g and √v̂ = |g| at t = 1, so the step is lr·g/(|g| + ε); a zero gradient only decays.
    expect(p[0]).to.be.closeTo(1.0 * 0.999 - 0.1, 1e-6);
    expect(p[1]).to.be.closeTo(-2.0 * 0.999 + 0.1, 1e-6);
    expect(p[2]).to.be.closeTo(0.5 * 0.999, 1e-7);
  });

  it('three steps match the written-out formulas', () => {
    // A large eps tells apart where it is added (after the square root of the bias-corrected v).
    for (const eps of [1e-8, 0.1]) {
      const p = Float32Array.from(p0);
      const opt = new AdamW([p], { lr: 0.1, betas: [0.9, 0.999], eps, weightDecay: 0.01 });
      for (const g of grads) opt.step([Float32Array.from(g)]);
      expect(opt.stepCount).to.equal(3);
      p0.forEach((x, j) => {
        const expected = reference(
          x,
          grads.map((g) => g[j]),
          0.1,
          0.9,
          0.999,
          eps,
          0.01,
        );
        expect(p[j], `parameter ${j}, eps ${eps}`).to.be.closeTo(expected, 1e-6 * Math.abs(expected));
      });
    }
    const opt = new AdamW([Float32Array.from(p0)], { lr: 0.1 });
    for (const g of grads) opt.step([Float32Array.from(g)]);
    // The moments after three steps: m = Σ (1 − β1) β1^(3−t) g_t.
    const m0 = 0.1 * (0.81 * 0.1 + 0.9 * 0.3 + -0.2);
    expect(opt.moments(0).expAvg[0]).to.be.closeTo(m0, 1e-8);
  });

  it('per-group weight decay and a scheduled learning rate', () => {
    const decayed = Float32Array.from([1, 1]);
    const exempt = Float32Array.from([1, 1]);
    const opt = new AdamW([{ params: [decayed] }, { params: [exempt], weightDecay: 0 }], {
      lr: 1e-3,
      weightDecay: 0.05,
    });
    const zero = () => new Float32Array(2);
    const schedule = createSchedule({ type: 'linear', baseLr: 0.1, numTrainingSteps: 4, warmupSteps: 0 });
    opt.step([zero(), zero()], schedule.lrAt(0)); // lr 0.1: p ← p·(1 − 0.1·0.05)
    opt.step([zero(), zero()], schedule.lrAt(1)); // lr 0.075
    expect(decayed[0]).to.be.closeTo((1 - 0.1 * 0.05) * (1 - 0.075 * 0.05), 1e-7);
    expect([...exempt]).to.deep.equal([1, 1]);
  });

  it('rejects mismatched gradients', () => {
    const opt = new AdamW([new Float32Array(3)]);
    expect(() => opt.step([new Float32Array(2)])).to.throw(
      /gradient 0 has 2 elements but its parameter has 3/,
    );
    expect(() => opt.step([])).to.throw(/got 0 gradients for 1 parameters/);
  });
});

describe('clipGradNorm (torch.nn.utils.clip_grad_norm_)', () => {
  it('scales all gradients by max_norm / (total + 1e-6) and returns the total L2 norm', () => {
    const a = Float32Array.from([3, 4]);
    const b = Float32Array.from([12]);
    expect(clipGradNorm([a, b], 1)).to.equal(13);
    const c = 1 / (13 + 1e-6);
    expect([...a, ...b]).to.deep.equal([3 * c, 4 * c, 12 * c].map(Math.fround));
  });

  it('leaves gradients under the limit alone, and still shrinks them a hair at the limit', () => {
    const a = Float32Array.from([0.1, -0.2]);
    expect(clipGradNorm([a], 0.3)).to.be.closeTo(Math.sqrt(0.05), 1e-8);
    expect([...a]).to.deep.equal([Math.fround(0.1), Math.fround(-0.2)]);
    const b = Float32Array.from([3, 4]);
    clipGradNorm([b], 5);
    expect(b[0]).to.equal(Math.fround(3 * (5 / (5 + 1e-6))));
    expect(b[0]).to.be.below(3);
  });

  it('non-finite norms: torch arithmetic, or an error on request', () => {
    const a = Float32Array.from([Number.POSITIVE_INFINITY, 1]);
    expect(clipGradNorm([a], 1)).to.equal(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(a[0])).to.equal(true);
    expect(a[1]).to.equal(0);
    expect(() => clipGradNorm([Float32Array.from([Number.NaN])], 1, { errorIfNonfinite: true })).to.throw(
      /total norm of the gradients is NaN/,
    );
  });
});
