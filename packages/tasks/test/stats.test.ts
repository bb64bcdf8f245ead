import { expect } from 'chai';
import { bootstrapCI, meanStd, meanStderr, quantile, TasksError } from '../src/index.js';

describe('aggregation', () => {
  it('mean and standard error as lm-evaluation-harness (hand-computed)', () => {
    const a = meanStderr([1, 2, 3, 4]);
    expect(a.mean).to.equal(2.5);
    expect(a.n).to.equal(4);
    // sample std = sqrt(5/3), stderr = sqrt(5/3) / 2
    expect(a.stderr).to.be.closeTo(Math.sqrt(5 / 3) / 2, 1e-12);
    const acc = meanStderr([0, 1, 1, 1]);
    expect(acc.mean).to.equal(0.75);
    expect(acc.stderr).to.be.closeTo(0.25, 1e-12); // std 0.5 / sqrt(4)
    expect(meanStderr([0.7]).stderr).to.be.NaN;
  });

  it('mean and std over seeds (hand-computed)', () => {
    const s = meanStd([0.406, 0.41, 0.402]);
    expect(s.mean).to.be.closeTo(0.406, 1e-12);
    expect(s.std).to.be.closeTo(0.004, 1e-12); // sqrt((0 + 0.004² + 0.004²) / 2)
    expect(meanStd([0.9]).std).to.be.NaN;
  });

  it('quantiles interpolate linearly', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).to.equal(2.5);
    expect(quantile([1, 2, 3, 4], 0.25)).to.equal(1.75);
    expect(quantile([1, 2, 3, 4], 0)).to.equal(1);
    expect(quantile([1, 2, 3, 4], 1)).to.equal(4);
    expect(quantile([7], 0.3)).to.equal(7);
    expect(() => quantile([1], 1.5)).to.throw(TasksError, /q must be/);
  });

  it('bootstrap intervals are seeded and sensible', () => {
    const values = [...Array(50).fill(0), ...Array(50).fill(1)];
    const ci = bootstrapCI(values, { seed: 42 });
    expect(ci.estimate).to.equal(0.5);
    // normal approximation: 0.5 ± 1.96 · 0.05
    expect(ci.low).to.be.within(0.38, 0.44);
    expect(ci.high).to.be.within(0.56, 0.62);
    expect(bootstrapCI(values, { seed: 42 })).to.deep.equal(ci);
    expect(bootstrapCI(values, { seed: 7 })).to.not.deep.equal(ci);
    const narrow = bootstrapCI(values, { seed: 42, confidence: 0.5 });
    expect(narrow.low).to.be.greaterThan(ci.low);
    expect(narrow.high).to.be.lessThan(ci.high);
    expect(bootstrapCI([3, 3, 3], { iterations: 10 })).to.deep.equal({ estimate: 3, low: 3, high: 3 });
    const max = bootstrapCI([1, 2, 3, 10], { statistic: (s) => Math.max(...s), iterations: 200 });
    expect(max.estimate).to.equal(10);
    expect(max.high).to.equal(10);
    expect(max.low).to.be.lessThan(10);
  });

  it('rejects empty samples, non-finite values and bad options', () => {
    expect(() => meanStderr([])).to.throw(TasksError, /no values/);
    expect(() => meanStd([1, Number.NaN])).to.throw(TasksError, /value 1 is NaN/);
    expect(() => bootstrapCI([1, 2], { iterations: 0 })).to.throw(TasksError, /iterations/);
    expect(() => bootstrapCI([1, 2], { confidence: 1 })).to.throw(TasksError, /confidence/);
  });
});
