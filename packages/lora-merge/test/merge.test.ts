import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import { LoraMergeError, loraKernel, loraScale, mergeLoraInto } from '../src/index.js';

/** Deterministic uniform numbers in [-1, 1) (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  };
}

function matrix(n: number, rnd: () => number): Float32Array {
  return Float32Array.from({ length: n }, rnd);
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}

describe('loraScale (PEFT scaling)', () => {
  it('is alpha / r, or alpha / sqrt(r) with rsLoRA', () => {
    expect(loraScale(16, 64)).to.equal(0.25); // the paper's adapters
    expect(loraScale(16, 64, true)).to.equal(2);
    expect(() => loraScale(16, 0)).to.throw(LoraMergeError, /rank r must be a positive integer/);
  });
});

describe('mergeLoraInto (the kernel of @polyglot/model, re-exported)', () => {
  it('runs the WebAssembly SIMD kernel here', () => {
    expect(loraKernel()).to.equal('wasm');
  });

  it('adds scale · B·A (a hand-checked case)', () => {
    const w = new Float32Array(6); // [2, 3]
    mergeLoraInto(w, [2, 3], Float32Array.from([1, 2, 3]), Float32Array.from([1, -1]), 2);
    expect([...w]).to.deep.equal([2, 4, 6, -2, -4, -6]);
  });

  it('adds the transposed delta with fan_in_fan_out (base stored [in, out])', () => {
    const w = Float32Array.from([1, 1, 1, 1, 1, 1]); // [3, 2]
    mergeLoraInto(w, [3, 2], Float32Array.from([1, 2, 3]), Float32Array.from([1, -1]), 2, {
      fanInFanOut: true,
    });
    expect([...w]).to.deep.equal([3, -1, 5, -3, 7, -5]);
  });

  it('matches a naive triple loop on random matrices (max relative error < 1e-6)', () => {
    const rnd = random(2312);
    for (const [out, inF, r] of [
      [37, 23, 5],
      [16, 64, 8],
      [1, 1, 1],
      [50, 3, 7],
    ]) {
      const w0 = matrix(out * inF, rnd);
      const a = matrix(r * inF, rnd);
      const b = matrix(out * r, rnd);
      const scale = 16 / r;
      const w = Float32Array.from(w0);
      mergeLoraInto(w, [out, inF], a, b, scale);
      let worst = 0;
      for (let o = 0; o < out; o++) {
        for (let i = 0; i < inF; i++) {
          let sum = 0;
          let magnitude = 0;
          for (let k = 0; k < r; k++) {
            sum += b[o * r + k] * a[k * inF + i];
            magnitude += Math.abs(b[o * r + k] * a[k * inF + i]);
          }
          const expected = w0[o * inF + i] + scale * sum;
          // Relative to the size of the terms, so that cancellation does not inflate it.
          const err = Math.abs(w[o * inF + i] - expected) / (Math.abs(w0[o * inF + i]) + scale * magnitude);
          worst = Math.max(worst, err);
        }
      }
      expect(worst, `[${out}, ${inF}] r ${r}`).to.be.below(1e-6);
    }
  });

  it('fan_in_fan_out gives exactly the transpose of the plain merge; the JS kernel the same bits', () => {
    const rnd = random(7);
    const [out, inF, r] = [19, 11, 4];
    const w = matrix(out * inF, rnd);
    const a = matrix(r * inF, rnd);
    const b = matrix(out * r, rnd);
    const wt = transpose(w, out, inF);
    const js = Float32Array.from(w);
    mergeLoraInto(w, [out, inF], a, b, 0.25);
    mergeLoraInto(js, [out, inF], a, b, 0.25, { kernel: 'js' });
    mergeLoraInto(wt, [inF, out], a, b, 0.25, { fanInFanOut: true });
    expect([...wt]).to.deep.equal([...transpose(w, out, inF)]);
    expect([...js]).to.deep.equal([...w]);
  });

  it('a zero lora_B (a fresh PEFT adapter) leaves the weight unchanged', () => {
    const rnd = random(3);
    const w = matrix(12, rnd);
    const before = [...w];
    mergeLoraInto(w, [3, 4], matrix(8, rnd), new Float32Array(6), 0.25);
    expect([...w]).to.deep.equal(before);
  });

  it('raises typed errors that name the module and the tensor', () => {
    const name = 'model.layers.0.self_attn.q_proj';
    const cases: [() => void, RegExp][] = [
      [
        () =>
          mergeLoraInto(new Float32Array(5), [2, 3], new Float32Array(3), new Float32Array(2), 1, { name }),
        /base weight has 5 elements, but its shape \[2, 3\] needs 6/,
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(6), [2, 3], new Float32Array(4), new Float32Array(2), 1, { name }),
        /lora_A has 4 elements, not a multiple of in_features = 3/,
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(6), [2, 3], new Float32Array(6), new Float32Array(2), 1, { name }),
        /lora_B has 2 elements, expected out_features × r = 2 × 2 = 4/,
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(6), [2, 3], new Float32Array(3), new Float32Array(3), 1, {
            fanInFanOut: true,
            name,
          }),
        /lora_A has 3 elements, not a multiple of in_features = 2.*fan_in_fan_out/,
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(0), [0, 3], new Float32Array(3), new Float32Array(0), 1, { name }),
        /two positive integers/,
      ],
    ];
    for (const [f, message] of cases) {
      let caught: unknown;
      try {
        f();
      } catch (e) {
        caught = e;
      }
      expect(isPolyglotError(caught)).to.equal(true);
      expect((caught as { code: string }).code).to.equal('LORA_SHAPE_MISMATCH');
      expect((caught as Error).message)
        .to.match(message)
        .and.to.contain(name);
    }
  });
});
