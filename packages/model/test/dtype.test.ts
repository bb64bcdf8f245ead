import { expect } from 'chai';
import {
  bf16ToF32,
  dtypeRank,
  dtypeSize,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  fromFloat32,
  isSafetensorsDtype,
  SAFETENSORS_DTYPES,
  toFloat32,
  typedArrayFor,
} from '../src/dtype.js';

/** Float32 values from bit patterns. */
function fromBits(bits: number[] | Uint32Array): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

/** Deterministic pseudo-random 32-bit patterns. */
function randomBits(n: number, seed = 12345): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s >>> 0;
  }
  return out;
}

/**
 * Reference rounding, independent of the code under test: the nearest of the candidates (the value's neighbours
 * in the target format, as exact doubles), ties to the even bit pattern.
 */
function nearestEven(x: number, lo: number, loBits: number, hi: number, hiBits: number): number {
  const dLo = Math.abs(x - lo);
  const dHi = Math.abs(hi - x);
  if (dLo < dHi) return loBits;
  if (dHi < dLo) return hiBits;
  return (loBits & 1) === 0 ? loBits : hiBits;
}

describe('dtype', () => {
  it('knows every safetensors dtype, its size and the Rust enum order', () => {
    expect(SAFETENSORS_DTYPES).to.deep.equal([
      'BOOL',
      'U8',
      'I8',
      'F8_E5M2',
      'F8_E4M3',
      'I16',
      'U16',
      'F16',
      'BF16',
      'I32',
      'U32',
      'F32',
      'F64',
      'I64',
      'U64',
    ]);
    const sizes = SAFETENSORS_DTYPES.map(dtypeSize);
    expect(sizes).to.deep.equal([1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8]);
    expect(dtypeRank('U64')).to.be.greaterThan(dtypeRank('F32'));
    expect(dtypeRank('F16')).to.be.lessThan(dtypeRank('BF16'));
    expect(isSafetensorsDtype('BF16')).to.equal(true);
    expect(isSafetensorsDtype('F4')).to.equal(false);
    expect(isSafetensorsDtype('toString')).to.equal(false);
  });

  it('decodes F16 special values, subnormals and extremes', () => {
    const bits = Uint16Array.from([
      0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x3555,
    ]);
    const f = f16ToF32(bits);
    expect(Array.from(f.subarray(0, 9))).to.deep.equal([
      1,
      -2,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      65504,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
    ]);
    expect(Object.is(f[8], -0)).to.equal(true);
    expect(f[9]).to.equal(0.333251953125);
    expect(Number.isNaN(f16ToF32(Uint16Array.from([0x7e00]))[0])).to.equal(true);
    expect(Number.isNaN(f16ToF32(Uint16Array.from([0xfc01]))[0])).to.equal(true);
  });

  it('decodes BF16 as the upper half of F32', () => {
    const f = bf16ToF32(Uint16Array.from([0x3f80, 0xc040, 0x7f80, 0x0001, 0x7fc0]));
    expect(Array.from(f.subarray(0, 4))).to.deep.equal([1, -3, Number.POSITIVE_INFINITY, 2 ** -133]);
    expect(Number.isNaN(f[4])).to.equal(true);
  });

  it('F32 -> F16 -> F32 is the identity on every F16 value', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let h = 0; h < 65536; h++) {
      const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (nan) expect(back[h] & 0x7e00, h.toString(16)).to.equal(0x7e00);
      else if (back[h] !== h) expect.fail(`0x${h.toString(16)} came back as 0x${back[h].toString(16)}`);
    }
  });

  it('F32 -> F16 rounds to nearest even, including ties, subnormals and overflow', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10 -> even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie -> even (1+2^-9)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal -> 0
      [2 ** -25 + 2 ** -40, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal steps -> 2
      [2 ** -26, 0x0000],
      [-(2 ** -24), 0x8001],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00], // tie between 65504 and 2^16 -> even -> inf
      [1e10, 0x7c00],
      [-1e10, 0xfc00],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal region rounds up into the smallest normal
      [-0, 0x8000],
    ];
    const out = f32ToF16(Float32Array.from(cases.map(([x]) => x)));
    cases.forEach(([x, h], i) => {
      expect(out[i], `${x}`).to.equal(h);
    });
    const nan = f32ToF16(fromBits([0x7fc00000, 0xffc00000, 0x7f800001]));
    expect(Array.from(nan)).to.deep.equal([0x7e00, 0xfe00, 0x7e00]);
  });

  it('F32 -> F16 matches a reference nearest-even search on random values', () => {
    // Sorted positive finite F16 values, as doubles, for the reference.
    const positive = f16ToF32(new Uint16Array(0x7c00).map((_, i) => i));
    const bits = randomBits(50000);
    // Keep exponents near the F16 range so that most values are interesting (normal, subnormal, overflow).
    for (let i = 0; i < bits.length; i++)
      bits[i] = (bits[i] & 0x80ffffff) | ((((bits[i] >>> 24) % 48) + 96) << 23);
    const values = fromBits(bits);
    const got = f32ToF16(values);
    for (let i = 0; i < values.length; i++) {
      const x = Math.abs(values[i]);
      const sign = values[i] < 0 ? 0x8000 : 0;
      let want: number;
      if (x >= 65520) want = 0x7c00;
      else {
        let lo = 0;
        let hi = 0x7bff;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (positive[mid] <= x) lo = mid;
          else hi = mid - 1;
        }
        want = lo === 0x7bff ? lo : nearestEven(x, positive[lo], lo, positive[lo + 1], lo + 1);
      }
      if (got[i] !== (sign | want))
        expect.fail(`${values[i]}: got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
    }
  });

  it('F32 -> BF16 matches a reference nearest-even on random values, NaN -> 0x7FC0', () => {
    const bits = randomBits(50000, 777);
    const values = fromBits(bits);
    const got = f32ToBf16(values);
    for (let i = 0; i < values.length; i++) {
      const b = bits[i];
      if ((b & 0x7fffffff) > 0x7f800000) {
        expect(got[i]).to.equal(0x7fc0);
        continue;
      }
      const low = b >>> 16;
      const lo = Math.abs(bf16ToF32(Uint16Array.from([low]))[0]);
      const hiBits = low + 1;
      // the next BF16 magnitude up (may be infinity: treat it as 2^128 for the distance)
      const hi = (hiBits & 0x7fff) === 0x7f80 ? 2 ** 128 : Math.abs(bf16ToF32(Uint16Array.from([hiBits]))[0]);
      const want = nearestEven(Math.abs(values[i]), lo, low, hi, hiBits);
      if (got[i] !== want)
        expect.fail(`${values[i]}: got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
    }
    expect(
      Array.from(f32ToBf16(Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4028234663852886e38]))),
    ).to.deep.equal([0x3f80, 0x3f82, 0x7f80]);
  });

  it('converts bytes of every float dtype to F32 and back', () => {
    const values = Float32Array.from([0, 1.5, -2.25, 65504, 1e-3, 3.25]);
    for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as const) {
      const bytes = fromFloat32(dtype, values);
      expect(bytes.byteLength).to.equal(values.length * dtypeSize(dtype));
      const back = toFloat32(dtype, bytes);
      const again = fromFloat32(dtype, back);
      expect(Buffer.from(again).equals(Buffer.from(bytes)), dtype).to.equal(true);
      for (let i = 0; i < values.length; i++) {
        const tol = dtype === 'BF16' ? 2 ** -8 : dtype === 'F16' ? 2 ** -11 : 0;
        expect(Math.abs(back[i] - values[i])).to.be.at.most(Math.abs(values[i]) * tol);
      }
    }
    expect(Array.from(toFloat32('F64', new Uint8Array(Float64Array.from([0.1]).buffer)))).to.deep.equal([
      Math.fround(0.1),
    ]);
  });

  it('views unaligned bytes by copying', () => {
    const buf = new Uint8Array(9);
    buf.set(new Uint8Array(Float64Array.from([2.5]).buffer), 1);
    const f = typedArrayFor('F64', buf.subarray(1));
    expect(f).to.be.instanceOf(Float64Array);
    expect(f[0]).to.equal(2.5);
    expect(() => typedArrayFor('I32', new Uint8Array(6))).to.throw(RangeError);
    expect(typedArrayFor('I64', new Uint8Array(8))).to.be.instanceOf(BigInt64Array);
  });
});
