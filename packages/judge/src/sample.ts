import { JudgeError } from './errors.js';

/**
 * The Mersenne Twister MT19937 as NumPy's legacy `RandomState` seeds and draws from it (`mt19937_seed`,
 * `random_interval`), so that sampling here picks the same items as `pandas.DataFrame.sample(n, random_state=seed)`.
 */
export class MT19937 {
  private readonly mt = new Uint32Array(624);
  private pos = 624;

  /** `seed` is an integer in [0, 2^32), as `numpy.random.RandomState(seed)` accepts. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new JudgeError('bad-seed', `the data seed must be an integer in [0, 2^32 - 1], got ${seed}`);
    }
    let s = seed >>> 0;
    for (let i = 0; i < 624; i++) {
      this.mt[i] = s;
      s = (Math.imul(1812433253, (s ^ (s >>> 30)) >>> 0) + i + 1) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      let v = mt[(i + 397) % 624] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.pos = 0;
  }

  /** The next 32-bit output. */
  nextUint32(): number {
    if (this.pos >= 624) this.twist();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform integer in [0, max] by masked rejection (NumPy's `random_interval`; max < 2^32). */
  interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    for (;;) {
      const v = (this.nextUint32() & mask) >>> 0;
      if (v <= max) return v;
    }
  }
}

/** `numpy.random.RandomState(seed).permutation(n)`: a Fisher–Yates shuffle of 0…n−1 from the end. */
export function numpyPermutation(n: number, seed: number): number[] {
  const rng = new MT19937(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i >= 1; i--) {
    const j = rng.interval(i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/**
 * The indices of the items to judge out of `n`: `limit` of them drawn with `seed`, in the order drawn. They equal
 * `pandas.DataFrame.sample(n=limit, random_state=seed).index` for a frame indexed 0…n−1 (NumPy's legacy
 * `RandomState(seed).choice(n, limit, replace=False)`), so files of the same length — the outputs of different
 * models for the same prompts — get the same items, and the same ones as the paper's scripts. Without a limit,
 * or with one of at least `n`, every item is taken (in the drawn order).
 */
export function sampleIndices(n: number, limit: number | undefined, seed: number): number[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new JudgeError('bad-limit', `bad item count ${n}`);
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new JudgeError('bad-limit', `the limit must be a positive integer, got ${limit}`);
  }
  const perm = numpyPermutation(n, seed);
  return limit === undefined ? perm : perm.slice(0, limit);
}
