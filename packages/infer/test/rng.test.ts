import { expect } from 'chai';
import { Xoshiro128 } from '../src/index.js';

describe('Xoshiro128 (xoshiro128**)', () => {
  it('matches the reference algorithm from state [1, 2, 3, 4]', () => {
    // By hand: out = rotl(s1·5, 7)·9; 1st: rotl(10, 7)·9 = 11520; the update gives s1 = 0, then s1 = 1029.
    const g = new Xoshiro128([1, 2, 3, 4]);
    expect([g.nextUint32(), g.nextUint32(), g.nextUint32()]).to.deep.equal([11520, 0, 5927040]);
  });

  it('is seeded from SplitMix64', () => {
    // SplitMix64(0) yields 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 (the published reference values).
    expect(Xoshiro128.fromSeed(0).state).to.deep.equal([0x7b1dcdaf, 0xe220a839, 0xa1b965f4, 0x6e789e6a]);
  });

  it('gives the same stream for the same seed and different ones otherwise', () => {
    const draw = (seed: number) => {
      const g = Xoshiro128.fromSeed(seed);
      return Array.from({ length: 8 }, () => g.nextUint32());
    };
    expect(draw(42)).to.deep.equal(draw(42));
    expect(draw(42)).to.not.deep.equal(draw(43));
    expect(draw(-1)).to.not.deep.equal(draw(2 ** 53 - 1));
  });

  it('nextFloat is uniform in [0, 1)', () => {
    const g = Xoshiro128.fromSeed(7);
    const bins = new Array(10).fill(0);
    const n = 100000;
    for (let i = 0; i < n; i++) {
      const u = g.nextFloat();
      expect(u).to.be.at.least(0).and.below(1);
      bins[Math.floor(u * 10)]++;
    }
    const chi2 = bins.reduce((s, c) => s + (c - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).to.be.below(27.88); // 99.9% quantile, 9 degrees of freedom
  });

  it('rejects an all-zero state and unsafe seeds', () => {
    expect(() => new Xoshiro128([0, 0, 0, 0])).to.throw(/all zero/);
    expect(() => Xoshiro128.fromSeed(2 ** 60)).to.throw(/safe integer/);
  });
});
