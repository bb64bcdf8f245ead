import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import {
  applyMinP,
  applyMinTokens,
  applyPenalties,
  applyTemperature,
  applyTopKTopP,
  argmax,
  kthLargest,
  processLogits,
  type SamplingParams,
  SequenceState,
  sampleToken,
  samplingParams,
  Xoshiro128,
} from '../src/index.js';

const fromProbs = (probs: number[]): Float32Array => Float32Array.from(probs.map(Math.log));
const kept = (x: Float32Array): number[] => [...x.keys()].filter((i) => x[i] > Number.NEGATIVE_INFINITY);

describe('penalties (vLLM apply_penalties)', () => {
  const logits = () => Float32Array.from([2.0, -1.0, 0.5, 3.0, -2.0]);
  const state = () => {
    const s = new SequenceState([0]);
    for (const t of [2, 2, 4]) s.append(t);
    return s;
  };

  it('repetition penalty divides positive and multiplies negative logits of prompt and output tokens', () => {
    const x = logits();
    applyPenalties(x, { repetition_penalty: 2, frequency_penalty: 0, presence_penalty: 0 }, state());
    expect([...x]).to.deep.equal([1.0, -1.0, 0.25, 3.0, -4.0]);
  });

  it('a token in both prompt and output is penalised once', () => {
    const s = new SequenceState([2]);
    s.append(2);
    const x = logits();
    applyPenalties(x, { repetition_penalty: 2, frequency_penalty: 0, presence_penalty: 0 }, s);
    expect(x[2]).to.equal(0.25);
  });

  it('repetition penalty is computed in float32 with 1/p as vLLM does', () => {
    const x = Float32Array.from([2.0, -1.0]);
    applyPenalties(
      x,
      { repetition_penalty: 1.3, frequency_penalty: 0, presence_penalty: 0 },
      new SequenceState([0, 1]),
    );
    expect(x[0]).to.be.closeTo(2 / 1.3, 1e-6);
    expect(x[1]).to.be.closeTo(-1.3, 1e-6);
  });

  it('frequency penalty subtracts penalty × count of output tokens only', () => {
    const x = logits();
    applyPenalties(x, { repetition_penalty: 1, frequency_penalty: 0.5, presence_penalty: 0 }, state());
    expect([...x]).to.deep.equal([2.0, -1.0, -0.5, 3.0, -2.5]);
  });

  it('presence penalty subtracts once per distinct output token', () => {
    const x = logits();
    applyPenalties(x, { repetition_penalty: 1, frequency_penalty: 0, presence_penalty: 0.25 }, state());
    expect([...x]).to.deep.equal([2.0, -1.0, 0.25, 3.0, -2.25]);
  });

  it('applies repetition, then frequency, then presence', () => {
    const x = logits();
    applyPenalties(x, { repetition_penalty: 2, frequency_penalty: 0.5, presence_penalty: 0.25 }, state());
    // token 2: 0.5/2 = 0.25, - 0.5·2 = -0.75, - 0.25 = -1.0; token 4: -2·2 = -4, - 0.5 = -4.5, - 0.25 = -4.75
    expect([...x]).to.deep.equal([1.0, -1.0, -1.0, 3.0, -4.75]);
  });

  it('negative frequency and presence penalties encourage repetition', () => {
    const x = logits();
    applyPenalties(x, { repetition_penalty: 1, frequency_penalty: -1, presence_penalty: -0.5 }, state());
    expect([...x]).to.deep.equal([2.0, -1.0, 3.0, 3.0, -0.5]);
  });

  it('rejects token ids outside the logits', () => {
    const x = Float32Array.from([0, 0]);
    expect(() =>
      applyPenalties(
        x,
        { repetition_penalty: 1.1, frequency_penalty: 0, presence_penalty: 0 },
        new SequenceState([5]),
      ),
    )
      .to.throw(/token id 5 is outside the vocabulary/)
      .that.satisfies(isPolyglotError);
  });
});

describe('min_tokens', () => {
  it('masks EOS and stop_token_ids until min_tokens tokens are generated', () => {
    const params = samplingParams({ min_tokens: 2, max_tokens: 10, stop_token_ids: [1] });
    const s = new SequenceState([], [3]);
    s.append(0);
    const x = Float32Array.from([0, 1, 2, 3]);
    applyMinTokens(x, params, s);
    expect([...x]).to.deep.equal([0, Number.NEGATIVE_INFINITY, 2, Number.NEGATIVE_INFINITY]);
    s.append(0);
    const y = Float32Array.from([0, 1, 2, 3]);
    applyMinTokens(y, params, s);
    expect([...y]).to.deep.equal([0, 1, 2, 3]);
  });

  it('leaves EOS alone with ignore_eos, but not stop_token_ids', () => {
    const params = samplingParams({ min_tokens: 1, stop_token_ids: [1], ignore_eos: true });
    const x = Float32Array.from([0, 1, 2, 3]);
    applyMinTokens(x, params, new SequenceState([], [3]));
    expect([...x]).to.deep.equal([0, Number.NEGATIVE_INFINITY, 2, 3]);
  });

  it('keeps greedy decoding off EOS before min_tokens', () => {
    const params = samplingParams({ temperature: 0, min_tokens: 1 });
    const s = new SequenceState([], [0]);
    const logits = Float32Array.from([5, 1, 2]);
    expect(sampleToken(logits, params, s, Xoshiro128.fromSeed(0))).to.equal(2);
    s.append(2);
    expect(sampleToken(logits, params, s, Xoshiro128.fromSeed(0))).to.equal(0);
  });
});

describe('temperature and greedy decoding', () => {
  it('divides the logits by the temperature', () => {
    const x = Float32Array.from([1, -2, 0.5]);
    applyTemperature(x, 0.5);
    expect([...x]).to.deep.equal([2, -4, 1]);
  });

  it('is greedy below 1e-5 (argmax of the penalised logits, lowest index on ties)', () => {
    const params = samplingParams({ temperature: 0 });
    expect(argmax(Float32Array.from([1, 3, 3, 2]))).to.equal(1);
    for (let seed = 0; seed < 20; seed++) {
      expect(
        sampleToken(
          Float32Array.from([1, 3, 3, 2]),
          params,
          new SequenceState([]),
          Xoshiro128.fromSeed(seed),
        ),
      ).to.equal(1);
    }
    // The repetition penalty applies before the argmax: token 1 (seen in the prompt) drops to 1.5.
    const rep = samplingParams({ temperature: 1e-6, repetition_penalty: 2 });
    expect(
      sampleToken(Float32Array.from([1, 3, 2]), rep, new SequenceState([1]), Xoshiro128.fromSeed(0)),
    ).to.equal(2);
  });

  it('greedy processing skips temperature and truncation', () => {
    const params = samplingParams({ temperature: 0, top_k: 1, top_p: 0.1 });
    expect(params.top_k).to.equal(0);
    expect(params.top_p).to.equal(1);
    expect([...processLogits(Float32Array.from([1, 2, 3]), params, new SequenceState([]))]).to.deep.equal([
      1, 2, 3,
    ]);
  });

  it('a temperature approaching 0 (but above 1e-5) samples the argmax', () => {
    const params = samplingParams({ temperature: 0.001 });
    const logits = Float32Array.from([1.0, 1.5, 0.2]);
    for (let seed = 0; seed < 200; seed++) {
      expect(sampleToken(logits, params, new SequenceState([]), Xoshiro128.fromSeed(seed))).to.equal(1);
    }
  });
});

describe('top-k and top-p (vLLM apply_top_k_top_p)', () => {
  it('top-k keeps the k largest logits', () => {
    const x = Float32Array.from([1, 3, 2.5, 2, 0]);
    applyTopKTopP(x, 2, 1);
    expect(kept(x)).to.deep.equal([1, 2]);
    expect([...x.subarray(1, 3)]).to.deep.equal([3, 2.5]);
  });

  it('top-k keeps every token tied with the k-th largest', () => {
    const x = Float32Array.from([1, 2, 2, 2, 0]);
    applyTopKTopP(x, 2, 1);
    expect(kept(x)).to.deep.equal([1, 2, 3]);
  });

  it('top-k of 0 or at least the vocabulary size keeps everything', () => {
    for (const k of [0, 5, 9]) {
      const x = Float32Array.from([1, 2, 2, 2, 0]);
      applyTopKTopP(x, k, 1);
      expect(kept(x)).to.deep.equal([0, 1, 2, 3, 4]);
    }
  });

  it('top-p keeps the smallest set of most likely tokens whose mass reaches p', () => {
    const probs = [0.05, 0.5, 0.15, 0.3];
    const cases: [number, number[]][] = [
      [0.45, [1]],
      [0.75, [1, 3]],
      [0.85, [1, 2, 3]],
      [0.94, [1, 2, 3]],
      [0.96, [0, 1, 2, 3]],
      [1, [0, 1, 2, 3]],
    ];
    for (const [p, expected] of cases) {
      const x = fromProbs(probs);
      applyTopKTopP(x, 0, p);
      expect(kept(x), `top_p ${p}`).to.deep.equal(expected);
    }
  });

  it('top-p just below and above a cumulative mass', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const below = fromProbs(probs);
    applyTopKTopP(below, 0, 0.8 - 1e-5);
    expect(kept(below)).to.deep.equal([0, 1]);
    const above = fromProbs(probs);
    applyTopKTopP(above, 0, 0.8 + 1e-5);
    expect(kept(above)).to.deep.equal([0, 1, 2]);
  });

  it('top-p at an exact boundary keeps the set whose mass equals p; ties keep the lower token id', () => {
    const half = Float32Array.from([0, 0, 0, 0]);
    applyTopKTopP(half, 0, 0.5);
    expect(kept(half)).to.deep.equal([0, 1]);
    const more = Float32Array.from([0, 0, 0, 0]);
    applyTopKTopP(more, 0, 0.6);
    expect(kept(more)).to.deep.equal([0, 1, 2]);
  });

  it('always keeps the most likely token', () => {
    const x = fromProbs([0.2, 0.7, 0.1]);
    applyTopKTopP(x, 0, 1e-9);
    expect(kept(x)).to.deep.equal([1]);
  });

  it('top-p applies to the distribution renormalised after top-k', () => {
    const probs = [0.4, 0.3, 0.2, 0.1];
    const alone = fromProbs(probs);
    applyTopKTopP(alone, 0, 0.5);
    expect(kept(alone)).to.deep.equal([0, 1]);
    // After top-k 2 the probabilities are 4/7 and 3/7: 4/7 ≥ 0.5 alone suffices.
    const both = fromProbs(probs);
    applyTopKTopP(both, 2, 0.5);
    expect(kept(both)).to.deep.equal([0]);
  });
});

describe('min_p', () => {
  it('drops tokens below min_p × the top probability', () => {
    const a = fromProbs([0.5, 0.3, 0.15, 0.05]);
    applyMinP(a, 0.2);
    expect(kept(a)).to.deep.equal([0, 1, 2]);
    const b = fromProbs([0.5, 0.3, 0.15, 0.05]);
    applyMinP(b, 0.5);
    expect(kept(b)).to.deep.equal([0, 1]);
  });
});

describe('processLogits', () => {
  it('leaves the input untouched and applies temperature before top-k/top-p', () => {
    const logits = Float32Array.from([2, 1, 0, -1]);
    const params = samplingParams({ temperature: 2, top_k: 2 });
    const x = processLogits(logits, params, new SequenceState([]));
    expect([...logits]).to.deep.equal([2, 1, 0, -1]);
    expect([...x]).to.deep.equal([1, 0.5, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });

  it('applies penalties before top-k', () => {
    // Token 0 leads but was generated: the frequency penalty pushes it out of the top-1.
    const s = new SequenceState([]);
    s.append(0);
    const x = processLogits(
      Float32Array.from([3, 2.5, 0]),
      samplingParams({ frequency_penalty: 1, top_k: 1 }),
      s,
    );
    expect(kept(x)).to.deep.equal([1]);
  });

  it('rejects NaN logits', () => {
    const params = samplingParams({});
    expect(() =>
      sampleToken(Float32Array.from([0, Number.NaN]), params, new SequenceState([]), Xoshiro128.fromSeed(1)),
    )
      .to.throw(/NaN/)
      .that.satisfies(isPolyglotError);
  });
});

/** A toy "model": the next logits depend only on the request's own tokens. */
function toyLogits(tokens: readonly number[], vocab = 8): Float32Array {
  const last = tokens.length ? tokens[tokens.length - 1] : 0;
  return Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 1.7 + last * 0.9 + tokens.length * 0.3));
}

interface Request {
  params: SamplingParams;
  state: SequenceState;
  rng: Xoshiro128;
  prompt: number[];
}

function request(seed: number, extra: Partial<SamplingParams> = {}): Request {
  const prompt = [1, 2, 3];
  return {
    params: samplingParams({
      temperature: 0.8,
      top_p: 0.9,
      top_k: 5,
      frequency_penalty: 0.2,
      seed,
      ...extra,
    }),
    state: new SequenceState(prompt),
    rng: Xoshiro128.forRequest(seed),
    prompt,
  };
}

/** Run requests together; `order(step)` gives the batch at each step (indices into `requests`). */
function run(requests: Request[], steps: number, order: (step: number) => number[]): number[][] {
  for (let step = 0; step < steps; step++) {
    const batch = order(step);
    const rows = batch.map((r) => toyLogits([...requests[r].prompt, ...requests[r].state.outputTokenIds]));
    const tokens = batch.map((r, i) =>
      sampleToken(rows[i], requests[r].params, requests[r].state, requests[r].rng),
    );
    for (const [i, r] of batch.entries()) requests[r].state.append(tokens[i]);
  }
  return requests.map((r) => [...r.state.outputTokenIds]);
}

describe('seeded sampling', () => {
  it('is reproducible for a seed and differs across seeds', () => {
    const a = run([request(42)], 40, () => [0])[0];
    const b = run([request(42)], 40, () => [0])[0];
    const c = run([request(723)], 40, () => [0])[0];
    expect(a).to.deep.equal(b);
    expect(a).to.not.deep.equal(c);
  });

  it('does not depend on which other requests share the batch, nor on their order', () => {
    const alone = run([request(42)], 30, () => [0])[0];
    const mixed = run(
      [request(7, { temperature: 1.2 }), request(42), request(0, { top_k: 0 })],
      30,
      (step) => (step % 3 === 0 ? [1] : step % 3 === 1 ? [2, 1, 0] : [0, 1]),
    )[1];
    expect(mixed).to.deep.equal(alone);
  });

  it('draws from the softmax distribution (chi-square, fixed seed)', () => {
    const probs = [0.1, 0.2, 0.3, 0.4];
    const n = 20000;
    const counts = [0, 0, 0, 0];
    const rng = Xoshiro128.fromSeed(1234);
    const params = samplingParams({});
    const state = new SequenceState([]);
    for (let i = 0; i < n; i++) counts[sampleToken(fromProbs(probs), params, state, rng)]++;
    const chi2 = probs.reduce((s, p, i) => s + (counts[i] - n * p) ** 2 / (n * p), 0);
    expect(chi2).to.be.below(16.27); // 99.9% quantile of chi-square with 3 degrees of freedom
  });

  it('draws from the truncated, tempered distribution', () => {
    // top_k 2 keeps tokens 2 and 3; temperature 0.5 squares their probabilities: 0.09 : 0.16.
    const n = 20000;
    const counts = [0, 0, 0, 0];
    const rng = Xoshiro128.fromSeed(99);
    const params = samplingParams({ temperature: 0.5, top_k: 2 });
    const state = new SequenceState([]);
    for (let i = 0; i < n; i++) counts[sampleToken(fromProbs([0.1, 0.2, 0.3, 0.4]), params, state, rng)]++;
    expect(counts.slice(0, 2)).to.deep.equal([0, 0]);
    const expected = [0.09 / 0.25, 0.16 / 0.25].map((p) => p * n);
    const chi2 = (counts[2] - expected[0]) ** 2 / expected[0] + (counts[3] - expected[1]) ** 2 / expected[1];
    expect(chi2).to.be.below(10.83); // 99.9% quantile, 1 degree of freedom
  });
});

describe('kthLargest (the top-k threshold)', () => {
  it('equals the value a full ascending sort puts at length - k, ties and -inf included', () => {
    const rng = Xoshiro128.fromSeed(11);
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + (rng.nextUint32() % 300);
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const u = rng.nextFloat();
        // Few distinct values in some trials (many ties), -inf in others.
        x[i] = trial % 3 === 0 ? Math.floor(u * 4) : trial % 3 === 1 && u < 0.3 ? -Infinity : (u - 0.5) * 20;
      }
      if (x.every((v) => v === -Infinity)) x[0] = 0;
      const sorted = Float32Array.from(x).sort();
      for (const k of [1, 2, Math.ceil(n / 2), n - 1, n].filter((k) => k >= 1 && k <= n)) {
        expect(kthLargest(x, k), `n ${n}, k ${k}`).to.equal(sorted[n - k]);
      }
    }
  });

  it('leaves its input alone and rejects NaN', () => {
    const x = Float32Array.from([3, 1, 2]);
    expect(kthLargest(x, 2)).to.equal(2);
    expect([...x]).to.deep.equal([3, 1, 2]);
    expect(() => kthLargest(Float32Array.from([1, Number.NaN]), 1)).to.throw(/NaN/);
  });
});
