import { randomBytes } from 'node:crypto';
import { InferError } from './errors.js';

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 (Steele, Lea & Flood), the generator recommended for seeding the xoshiro family. */
function* splitMix64(seed: bigint): Generator<bigint, never> {
  let x = seed & MASK64;
  for (;;) {
    x = (x + 0x9e3779b97f4a7c15n) & MASK64;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    yield z ^ (z >> 31n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * xoshiro128** (Blackman & Vigna): a small, fast 32-bit generator. One instance belongs to one request, so
 * what it draws depends only on the request's seed and how many draws came before, never on other requests.
 */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** From a raw state of four 32-bit words (not all zero). */
  constructor(state: readonly [number, number, number, number]) {
    [this.s0, this.s1, this.s2, this.s3] = state.map((w) => w | 0);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) {
      throw new InferError('INFER_BAD_SEED', 'xoshiro128** state must not be all zero');
    }
  }

  /**
   * From an integer seed (any safe integer, negative ones taken modulo 2^64): the state is the first two
   * outputs of SplitMix64(seed), low word first.
   */
  static fromSeed(seed: number): Xoshiro128 {
    if (!Number.isSafeInteger(seed)) {
      throw new InferError('INFER_BAD_SEED', `seed must be a safe integer, got ${seed}`);
    }
    const gen = splitMix64(BigInt(seed));
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      const z = gen.next().value;
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    return new Xoshiro128(words as [number, number, number, number]);
  }

  /** A generator for a request: seeded from `seed`, or from the operating system's entropy when null. */
  static forRequest(seed: number | null): Xoshiro128 {
    return Xoshiro128.fromSeed(seed ?? Number(randomBytes(6).readUIntBE(0, 6)));
  }

  /** The current state, as unsigned 32-bit words (to save and resume a request). */
  get state(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** The next unsigned 32-bit output. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** A uniform double in [0, 1) with 53 random bits (two outputs). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}
