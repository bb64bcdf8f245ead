/**
 * Rotary position embeddings in the Hugging Face convention: `inv_freq[i] = 1 / theta^(2i/d)`, angles
 * `pos · inv_freq` duplicated over both halves of the head (`cat(freqs, freqs)`), and
 * `x·cos + rotate_half(x)·sin` with `rotate_half([x1, x2]) = [-x2, x1]`.
 *
 * Every step that transformers computes in float32 (the exponent, the power, the reciprocal, the product with the
 * position, cos and sin) is rounded to float32 here too, so the tables match theirs to the last bit or two.
 */
import { ModelFormatError } from '../errors.js';

const f32 = Math.fround;

export interface RopeSpec {
  /** Rotated dimensions per head (the head dimension). */
  dim: number;
  theta: number;
  /** `rope_scaling` / `rope_parameters` of config.json, or null for the default. */
  scaling: { type?: string; rope_type?: string; factor?: number; [k: string]: unknown } | null;
}

function num(scaling: Record<string, unknown>, keys: string[], what: string): number {
  for (const k of keys) {
    const v = scaling[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  throw new ModelFormatError(
    'CONFIG_INVALID',
    `rope scaling '${what}' needs a numeric ${keys[0]} in config.json`,
  );
}

/** The inverse frequencies (length dim/2), float32-rounded like transformers' `_compute_*_parameters`. */
export function ropeInvFreq(spec: RopeSpec): Float32Array {
  const { dim, theta } = spec;
  if (!Number.isInteger(dim) || dim <= 0 || dim % 2 !== 0) {
    throw new ModelFormatError(
      'CONFIG_INVALID',
      `rotary dimension must be a positive even number, got ${dim}`,
    );
  }
  const half = dim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f32(1 / f32(theta ** f32(f32(2 * i) / dim)));
  const scaling = spec.scaling;
  const type = String(scaling?.rope_type ?? scaling?.type ?? 'default');
  if (type === 'default') return inv;
  const s = scaling as Record<string, unknown>;
  if (type === 'linear') {
    const factor = num(s, ['factor'], type);
    for (let i = 0; i < half; i++) inv[i] = f32(inv[i] / factor);
    return inv;
  }
  if (type === 'llama3') {
    const factor = num(s, ['factor'], type);
    const lowFreqFactor = num(s, ['low_freq_factor', 'lowFreqFactor'], type);
    const highFreqFactor = num(s, ['high_freq_factor', 'highFreqFactor'], type);
    const oldContext = num(s, ['original_max_position_embeddings', 'originalMaxPositionEmbeddings'], type);
    const lowFreqWavelen = oldContext / lowFreqFactor;
    const highFreqWavelen = oldContext / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      let v = wavelen > lowFreqWavelen ? f32(inv[i] / factor) : inv[i];
      if (!(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen)) {
        const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        v = f32((1 - smooth) * (v / factor) + smooth * v);
      }
      inv[i] = v;
    }
    return inv;
  }
  throw new ModelFormatError(
    'UNSUPPORTED_ROPE_SCALING',
    `rope scaling type '${type}' is not supported (supported: default, linear, llama3)`,
  );
}

/**
 * cos/sin of `pos · inv_freq` for positions 0..n-1, grown on demand. Rows are `dim/2` long: the second half of
 * each head uses the same values (transformers' `cat(freqs, freqs)`).
 */
export class RopeTable {
  readonly half: number;
  private readonly invFreq: Float32Array;
  private cosT = new Float32Array(0);
  private sinT = new Float32Array(0);
  private n = 0;

  constructor(spec: RopeSpec) {
    this.invFreq = ropeInvFreq(spec);
    this.half = this.invFreq.length;
  }

  /** Makes positions 0..upTo-1 available. */
  ensure(upTo: number): void {
    if (upTo <= this.n) return;
    const n = Math.max(upTo, Math.min(2 * this.n, upTo + 4096), 64);
    const h = this.half;
    const cos = new Float32Array(n * h);
    const sin = new Float32Array(n * h);
    cos.set(this.cosT);
    sin.set(this.sinT);
    for (let p = this.n; p < n; p++) {
      for (let i = 0; i < h; i++) {
        const a = f32(p * this.invFreq[i]);
        cos[p * h + i] = Math.cos(a);
        sin[p * h + i] = Math.sin(a);
      }
    }
    this.cosT = cos;
    this.sinT = sin;
    this.n = n;
  }

  /** The cos row of a position (length dim/2, a view). */
  cos(pos: number): Float32Array {
    this.ensure(pos + 1);
    return this.cosT.subarray(pos * this.half, (pos + 1) * this.half);
  }

  sin(pos: number): Float32Array {
    this.ensure(pos + 1);
    return this.sinT.subarray(pos * this.half, (pos + 1) * this.half);
  }

  /**
   * Full-width cos and sin rows (length dim, both halves) for a list of positions, for the tensor path:
   * `x·cos + rotate_half(x)·sin`.
   */
  fullRows(positions: ArrayLike<number>): { cos: Float32Array; sin: Float32Array } {
    const h = this.half;
    const d = 2 * h;
    const cos = new Float32Array(positions.length * d);
    const sin = new Float32Array(positions.length * d);
    for (let j = 0; j < positions.length; j++) {
      const c = this.cos(positions[j]);
      const s = this.sin(positions[j]);
      cos.set(c, j * d);
      cos.set(c, j * d + h);
      sin.set(s, j * d);
      sin.set(s, j * d + h);
    }
    return { cos, sin };
  }
}
