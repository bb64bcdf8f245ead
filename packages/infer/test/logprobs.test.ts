import { expect } from 'chai';
import { logSoftmax, positionLogprobs } from '../src/index.js';

describe('logprobs', () => {
  it('logSoftmax normalises in log space', () => {
    const lp = logSoftmax(
      Float32Array.from([Math.log(0.5), Math.log(0.25), Math.log(0.25)].map((v) => v + 7)),
    );
    expect(lp[0]).to.be.closeTo(Math.log(0.5), 1e-6);
    expect(lp[1]).to.be.closeTo(Math.log(0.25), 1e-6);
    expect([...lp].reduce((s, v) => s + Math.exp(v), 0)).to.be.closeTo(1, 1e-6);
  });

  it('handles -inf and large logits without overflow', () => {
    const lp = logSoftmax(Float32Array.from([1000, Number.NEGATIVE_INFINITY, 1000]));
    expect([...lp]).to.deep.equal([Math.fround(-Math.LN2), Number.NEGATIVE_INFINITY, Math.fround(-Math.LN2)]);
  });

  it("gives the token's logprob, its vLLM rank and the top n (lower id first among equals)", () => {
    const lp = Float32Array.from([-3, -1, -2, -1, -5]);
    expect(positionLogprobs(lp, 2, 3)).to.deep.equal({
      token: 2,
      logprob: -2,
      rank: 3,
      top: [
        { token: 1, logprob: -1 },
        { token: 3, logprob: -1 },
        { token: 2, logprob: -2 },
      ],
    });
    // vLLM v1 counts the logprobs ≥ the token's: a token tied for first has rank 2.
    expect(positionLogprobs(lp, 1, 0)).to.deep.equal({ token: 1, logprob: -1, rank: 2, top: [] });
    expect(positionLogprobs(lp, 4, 9).top.map((t) => t.token)).to.deep.equal([1, 3, 2, 0, 4]);
  });

  it('rejects tokens outside the vocabulary', () => {
    expect(() => positionLogprobs(Float32Array.from([0]), 1, 1)).to.throw(/outside the vocabulary/);
  });
});
