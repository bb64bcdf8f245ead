import { expect } from 'chai';
import { JudgeError, MT19937, numpyPermutation, sampleIndices } from '../src/index.js';

// Reference values from NumPy 2.4 (`numpy.random.RandomState(seed).choice(n, k, replace=False)`), which is what
// `pandas.DataFrame.sample(n=k, random_state=seed)` draws.
const NUMPY_805_300_42_HEAD = [
  192, 718, 168, 522, 536, 791, 765, 328, 218, 788, 66, 640, 235, 801, 323, 424, 446, 109, 292, 529,
];
const NUMPY_805_300_42_TAIL = [163, 248, 521, 715, 74, 473, 450, 104, 114, 302];

describe('item sampling (NumPy-compatible)', () => {
  it('draws the same 300 of 805 items as pandas sample(n=300, random_state=42)', () => {
    const ids = sampleIndices(805, 300, 42);
    expect(ids).to.have.length(300);
    expect(ids.slice(0, 20)).to.deep.equal(NUMPY_805_300_42_HEAD);
    expect(ids.slice(-10)).to.deep.equal(NUMPY_805_300_42_TAIL);
    expect(new Set(ids).size).to.equal(300);
  });

  it('matches NumPy for other seeds and sizes', () => {
    expect(sampleIndices(805, 10, 0)).to.deep.equal([8, 258, 172, 317, 294, 251, 609, 331, 775, 320]);
    expect(numpyPermutation(10, 42)).to.deep.equal([8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
    expect(sampleIndices(20, undefined, 723)).to.deep.equal([
      4, 5, 19, 17, 8, 16, 14, 7, 6, 3, 10, 18, 0, 11, 13, 2, 9, 12, 1, 15,
    ]);
    expect(sampleIndices(100000, 5, 4294967295)).to.deep.equal([85117, 19600, 4648, 56853, 35772]);
    expect(sampleIndices(1, 1, 42)).to.deep.equal([0]);
    expect(sampleIndices(0, 300, 42)).to.deep.equal([]);
  });

  it('is deterministic, takes everything when the limit is at least the count, and checks its arguments', () => {
    expect(sampleIndices(50, 5, 9)).to.deep.equal(sampleIndices(50, 5, 9));
    expect(sampleIndices(50, 5, 9)).to.not.deep.equal(sampleIndices(50, 5, 10));
    expect([...sampleIndices(5, 300, 42)].sort()).to.deep.equal([0, 1, 2, 3, 4]);
    expect(() => sampleIndices(5, 0, 42)).to.throw(JudgeError, /positive integer/);
    expect(() => new MT19937(-1)).to.throw(JudgeError, /2\^32/);
  });
});
