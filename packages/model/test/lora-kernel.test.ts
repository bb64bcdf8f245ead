import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { isPolyglotError, loraKernel, mergeLoraInto } from '../src/index.js';
import { LORA_KERNEL_WASM_BASE64, LORA_KERNEL_WAT_SHA256 } from '../src/lora-kernel-wasm.js';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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

const matrix = (n: number, rnd: () => number, scale = 1) =>
  Float32Array.from({ length: n }, () => rnd() * scale);

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}

/** Bit patterns, so that -0 / +0 and every last bit count. */
const bits = (x: Float32Array) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];

function firstDifference(x: Float32Array, y: Float32Array): string | null {
  for (let i = 0; i < x.length; i++) {
    if (!Object.is(x[i], y[i])) return `element ${i}: ${x[i]} vs ${y[i]}`;
  }
  return null;
}

describe('LoRA merge kernel (lora-kernel.ts)', () => {
  it('the WebAssembly SIMD kernel runs on this Node', () => {
    expect(loraKernel()).to.equal('wasm');
  });

  it('adds scale · B·A (a hand-checked case), with both kernels', () => {
    for (const kernel of ['js', 'wasm'] as const) {
      const w = new Float32Array(6); // [2, 3]
      mergeLoraInto(w, [2, 3], Float32Array.from([1, 2, 3]), Float32Array.from([1, -1]), 2, { kernel });
      expect([...w], kernel).to.deep.equal([2, 4, 6, -2, -4, -6]);
      const t = Float32Array.from([1, 1, 1, 1, 1, 1]); // [3, 2], fan_in_fan_out
      mergeLoraInto(t, [3, 2], Float32Array.from([1, 2, 3]), Float32Array.from([1, -1]), 2, {
        kernel,
        fanInFanOut: true,
      });
      expect([...t], kernel).to.deep.equal([3, -1, 5, -3, 7, -5]);
    }
  });

  it('the WebAssembly kernel equals the JS reference bit for bit on random inputs', () => {
    const rnd = random(42);
    // Tails of the 4-row and 8-column blocking, several row and column blocks, r = 1 and r = 64.
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [3, 5, 2],
      [4, 8, 1],
      [37, 23, 5],
      [64, 176, 8],
      [176, 64, 8],
      [301, 1100, 16],
      [130, 520, 64],
      [9, 4099, 3],
      [700, 2048, 8], // several blocks of rows, each split between the threads
    ];
    for (const [rows, cols, r] of shapes) {
      for (const fanInFanOut of [false, true]) {
        const [out, inF] = fanInFanOut ? [cols, rows] : [rows, cols];
        const w0 = matrix(rows * cols, rnd);
        const a = matrix(r * inF, rnd, 0.5);
        const b = matrix(out * r, rnd, 0.5);
        const scale = 16 / Math.sqrt(r);
        const js = Float32Array.from(w0);
        mergeLoraInto(js, [rows, cols], a, b, scale, { fanInFanOut, kernel: 'js' });
        for (const threads of [1, 2, 3]) {
          const wasm = Float32Array.from(w0);
          mergeLoraInto(wasm, [rows, cols], a, b, scale, { fanInFanOut, kernel: 'wasm', threads });
          const where = `[${rows}, ${cols}] r ${r}${fanInFanOut ? ' fan_in_fan_out' : ''}, ${threads} thread(s)`;
          expect(firstDifference(wasm, js), where).to.equal(null);
          expect(bits(wasm), where).to.deep.equal(bits(js));
        }
        expect(firstDifference(js, w0), `[${rows}, ${cols}] changed nothing`).to.not.equal(null);
      }
    }
  });

  it('merging a slice of rows at a time gives the bits of the whole merge', () => {
    const rnd = random(5);
    const [rows, cols, r] = [103, 72, 8];
    for (const fanInFanOut of [false, true]) {
      const [out, inF] = fanInFanOut ? [cols, rows] : [rows, cols];
      const a = matrix(r * inF, rnd);
      const b = matrix(out * r, rnd);
      const whole = matrix(rows * cols, rnd);
      const sliced = Float32Array.from(whole);
      mergeLoraInto(whole, [rows, cols], a, b, 0.5, { fanInFanOut });
      for (const [start, end] of [
        [0, 10],
        [10, 11],
        [11, 64],
        [64, 103],
      ] as const) {
        const part = sliced.subarray(start * cols, end * cols);
        mergeLoraInto(part, [rows, cols], a, b, 0.5, { fanInFanOut, rows: [start, end], kernel: 'wasm' });
      }
      expect(bits(sliced)).to.deep.equal(bits(whole));
    }
  });

  it('is within float32 rounding of the exact (float64) result', () => {
    const rnd = random(11);
    for (const [out, inF, r] of [
      [50, 70, 64],
      [16, 64, 8],
    ]) {
      const w0 = matrix(out * inF, rnd);
      const a = matrix(r * inF, rnd);
      const b = matrix(out * r, rnd);
      const w = Float32Array.from(w0);
      mergeLoraInto(w, [out, inF], a, b, 0.25);
      let worst = 0;
      for (let o = 0; o < out; o++) {
        for (let i = 0; i < inF; i++) {
          let sum = 0;
          let magnitude = 0;
          for (let k = 0; k < r; k++) {
            sum += b[o * r + k] * a[k * inF + i];
            magnitude += Math.abs(b[o * r + k] * a[k * inF + i]);
          }
          const exact = w0[o * inF + i] + 0.25 * sum;
          const err = Math.abs(w[o * inF + i] - exact) / (Math.abs(w0[o * inF + i]) + 0.25 * magnitude);
          worst = Math.max(worst, err);
        }
      }
      // r float32 additions: at most r · 2^-24 of the terms' magnitude (a bound, far from typical)
      expect(worst, `[${out}, ${inF}] r ${r}`).to.be.below((r + 2) * 2 ** -24);
    }
  });

  it('fan_in_fan_out gives exactly the transpose of the plain merge', () => {
    const rnd = random(7);
    const [out, inF, r] = [19, 11, 4];
    const w = matrix(out * inF, rnd);
    const a = matrix(r * inF, rnd);
    const b = matrix(out * r, rnd);
    const wt = transpose(w, out, inF);
    mergeLoraInto(w, [out, inF], a, b, 0.25);
    mergeLoraInto(wt, [inF, out], a, b, 0.25, { fanInFanOut: true });
    expect(bits(wt)).to.deep.equal(bits(transpose(w, out, inF)));
  });

  it('raises typed errors naming the module, the tensor and the rows', () => {
    const name = 'model.layers.0.self_attn.q_proj';
    const cases: [() => void, RegExp, string][] = [
      [
        () =>
          mergeLoraInto(new Float32Array(5), [2, 3], new Float32Array(3), new Float32Array(2), 1, { name }),
        /base weight has 5 elements, but its shape \[2, 3\] needs 6/,
        'LORA_SHAPE_MISMATCH',
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(6), [4, 3], new Float32Array(3), new Float32Array(4), 1, {
            name,
            rows: [1, 2],
          }),
        /rows \[1, 2\) of \[4, 3\] need 3 elements, got 6/,
        'LORA_SHAPE_MISMATCH',
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(3), [2, 3], new Float32Array(3), new Float32Array(2), 1, {
            name,
            rows: [1, 3],
          }),
        /rows \[1, 3\) are not a non-empty range of the 2 rows/,
        'LORA_SHAPE_MISMATCH',
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(6), [2, 3], new Float32Array(6), new Float32Array(2), 1, { name }),
        /lora_B has 2 elements, expected out_features × r = 2 × 2 = 4/,
        'LORA_SHAPE_MISMATCH',
      ],
      [
        () =>
          mergeLoraInto(new Float32Array(6), [2, 3], new Float32Array(3), new Float32Array(2), NaN, { name }),
        /scale must be finite/,
        'LORA_BAD_CONFIG',
      ],
    ];
    for (const [f, message, code] of cases) {
      let caught: unknown;
      try {
        f();
      } catch (e) {
        caught = e;
      }
      expect(isPolyglotError(caught), String(message)).to.equal(true);
      expect((caught as { code: string }).code).to.equal(code);
      expect((caught as Error).message)
        .to.match(message)
        .and.to.contain(name);
    }
  });

  it('the committed module was generated from lora-kernel.wat (recompiled when wat2wasm is installed)', () => {
    const wat = readFileSync(path.join(pkgDir, 'src', 'lora-kernel.wat'));
    expect(createHash('sha256').update(wat).digest('hex'), 'edit the .wat, then run gen-wasm').to.equal(
      LORA_KERNEL_WAT_SHA256,
    );
    const bytes = Buffer.from(LORA_KERNEL_WASM_BASE64, 'base64');
    const wasm = (globalThis as any).WebAssembly;
    expect(wasm.validate(bytes)).to.equal(true);
    const module = new wasm.Module(bytes);
    const list = (l: { module?: string; name: string; kind: string }[]) =>
      l.map((e) => `${e.module ? `${e.module}.` : ''}${e.name}:${e.kind}`);
    expect(list(wasm.Module.exports(module))).to.deep.equal(['merge:function']);
    expect(list(wasm.Module.imports(module))).to.deep.equal(['env.memory:memory']);
    const which = spawnSync('wat2wasm', ['--version'], { encoding: 'utf8' });
    if (which.error) {
      console.log(
        '      (wat2wasm not installed: checked the .wat hash only; apt-get install wabt to recompile)',
      );
      return;
    }
    const r = spawnSync(process.execPath, [path.join(pkgDir, 'scripts', 'gen-wasm.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).to.equal(0);
  });
});
