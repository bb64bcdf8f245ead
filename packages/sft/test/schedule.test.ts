import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import { createSchedule, warmupStepsFor } from '../src/index.js';

describe('warm-up steps (transformers get_warmup_steps)', () => {
  it('rounds the ratio up and lets explicit steps win', () => {
    expect(warmupStepsFor(1000, 0, 0.03)).to.equal(30); // the paper: 3% of 1,000 steps
    expect(warmupStepsFor(1001, 0, 0.03)).to.equal(31);
    expect(warmupStepsFor(1000, 5, 0.03)).to.equal(5);
    expect(warmupStepsFor(1000)).to.equal(0);
    // Python: math.ceil(100 * 0.07) == math.ceil(7.000000000000001) == 8
    expect(warmupStepsFor(100, 0, 0.07)).to.equal(8);
  });

  it('rejects bad values', () => {
    expect(() => warmupStepsFor(10, -1)).to.throw(/warmupSteps must be a non-negative integer/);
    expect(() => warmupStepsFor(10, 0, 1.5)).to.throw(/warmupRatio must be in \[0, 1\]/);
  });
});

describe('learning-rate schedules', () => {
  const base = { baseLr: 1e-5, numTrainingSteps: 130, warmupSteps: 30 };

  it('cosine: linear warm-up, then half a cosine from 1 to 0', () => {
    const s = createSchedule({ type: 'cosine', ...base });
    expect(s.lrAt(0)).to.equal(0);
    expect(s.lrAt(15)).to.be.closeTo(5e-6, 1e-20);
    expect(s.multiplier(30)).to.equal(1);
    // progress (step - 30) / 100; multiplier 0.5 · (1 + cos(π · progress))
    expect(s.multiplier(55)).to.be.closeTo(0.5 * (1 + Math.SQRT1_2), 1e-15);
    expect(s.multiplier(80)).to.be.closeTo(0.5, 1e-15);
    expect(s.multiplier(105)).to.be.closeTo(0.5 * (1 - Math.SQRT1_2), 1e-15);
    expect(s.multiplier(130)).to.equal(0);
  });

  it("cosine with the paper's run: 1,000 steps, 3% warm-up, lr 1e-5", () => {
    const s = createSchedule({ type: 'cosine', baseLr: 1e-5, numTrainingSteps: 1000, warmupRatio: 0.03 });
    expect(s.warmupSteps).to.equal(30);
    expect(s.lrAt(1)).to.be.closeTo(1e-5 / 30, 1e-20);
    expect(s.lrAt(515)).to.be.closeTo(5e-6, 1e-18);
  });

  it('cosine with other cycle counts', () => {
    const s = createSchedule({ type: 'cosine', baseLr: 1, numTrainingSteps: 100, numCycles: 1 });
    expect(s.multiplier(50)).to.equal(0); // max(0, 0.5·(1 + cos(π))) at mid-run
    expect(s.multiplier(100)).to.equal(1);
  });

  it('linear: warm-up, then down to 0 at the last step, never below', () => {
    const s = createSchedule({ type: 'linear', ...base });
    expect(s.multiplier(10)).to.be.closeTo(1 / 3, 1e-15);
    expect(s.multiplier(30)).to.equal(1);
    expect(s.multiplier(80)).to.equal(0.5);
    expect(s.multiplier(130)).to.equal(0);
    expect(s.multiplier(140)).to.equal(0);
  });

  it('constant_with_warmup and constant (which ignores warm-up, as transformers does)', () => {
    const w = createSchedule({ type: 'constant_with_warmup', ...base });
    expect([w.multiplier(0), w.multiplier(10), w.multiplier(30), w.multiplier(129)]).to.deep.equal([
      0,
      1 / 3,
      1,
      1,
    ]);
    const c = createSchedule({ type: 'constant', ...base });
    expect(c.warmupSteps).to.equal(0);
    expect([c.lrAt(0), c.lrAt(129)]).to.deep.equal([1e-5, 1e-5]);
  });

  it('no warm-up starts at the base rate', () => {
    expect(createSchedule({ type: 'cosine', baseLr: 2e-4, numTrainingSteps: 10 }).lrAt(0)).to.equal(2e-4);
  });

  it('rejects unknown types and bad numbers with typed errors', () => {
    const bad = [
      () => createSchedule({ type: 'polynomial' as 'linear', ...base }),
      () => createSchedule({ type: 'linear', ...base, numTrainingSteps: 0 }),
      () => createSchedule({ type: 'linear', ...base, baseLr: -1 }),
      () => createSchedule({ type: 'linear', ...base }).lrAt(-1),
      () => createSchedule({ type: 'linear', ...base }).lrAt(1.5),
    ];
    const messages = [
      /unknown scheduler type 'polynomial'/,
      /numTrainingSteps must be at least 1/,
      /baseLr/,
      /step/,
      /step/,
    ];
    bad.forEach((f, i) => {
      expect(f).to.throw(messages[i]);
      try {
        f();
      } catch (e) {
        expect(isPolyglotError(e)).to.equal(true);
      }
    });
  });
});
