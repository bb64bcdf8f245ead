import { LoraMergeError } from './errors.js';

/**
 * PEFT's LoRA scaling: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with `use_rslora` (the paper: 16 / 64).
 */
export function loraScale(alpha: number, r: number, useRslora = false): number {
  if (!Number.isSafeInteger(r) || r < 1)
    throw new LoraMergeError('LORA_BAD_CONFIG', `LoRA rank r must be a positive integer, got ${r}`);
  if (!Number.isFinite(alpha))
    throw new LoraMergeError('LORA_BAD_CONFIG', `lora_alpha must be a finite number, got ${alpha}`);
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

export interface MergeOptions {
  /**
   * The base weight is stored transposed, [in, out] (GPT-2's Conv1D; PEFT's `fan_in_fan_out`): the delta is
   * added transposed. lora_A stays [r, in] and lora_B [out, r] either way, as PEFT stores them.
   */
  fanInFanOut?: boolean;
  /** The module's name, for error messages (e.g. `model.layers.0.self_attn.q_proj`). */
  name?: string;
}

function shapeError(what: string, message: string): LoraMergeError {
  return new LoraMergeError('LORA_SHAPE_MISMATCH', `${what}: ${message}`);
}

/**
 * Merge a LoRA adapter into its base weight in place: W += scale · (B · A), as PEFT's `merge` does, in
 * float32 (for float32 weights; keeping float16/bfloat16 checkpoints in their dtype comes with the streaming merge). `wShape` is W's shape as stored: [out, in], or [in, out] with `fanInFanOut`. A is lora_A [r, in],
 * B is lora_B [out, r]; the rank r follows from A's length. Each element of B · A is summed in float64,
 * rounded to float32, scaled (rounded again) and added to W, the order of PEFT's
 * `W + transpose(B @ A) * scaling` up to the summation order of the matrix product. Loops run along rows of
 * A and of W so that memory is read in order.
 */
export function mergeLoraInto(
  w: Float32Array,
  wShape: readonly [number, number],
  a: Float32Array,
  b: Float32Array,
  scale: number,
  options: MergeOptions = {},
): void {
  const { fanInFanOut = false } = options;
  const where = options.name ? `LoRA merge of ${options.name}` : 'LoRA merge';
  const [rows, cols] = wShape;
  if (!(Number.isSafeInteger(rows) && Number.isSafeInteger(cols) && rows > 0 && cols > 0)) {
    throw shapeError(where, `base weight shape must be two positive integers, got [${wShape.join(', ')}]`);
  }
  const [out, inF] = fanInFanOut ? [cols, rows] : [rows, cols];
  const layout = fanInFanOut ? '[in, out] (fan_in_fan_out)' : '[out, in]';
  if (w.length !== rows * cols) {
    throw shapeError(
      where,
      `base weight has ${w.length} elements, but its shape [${rows}, ${cols}] needs ${rows * cols}`,
    );
  }
  const r = a.length / inF;
  if (!Number.isInteger(r) || r < 1) {
    throw shapeError(
      where,
      `lora_A has ${a.length} elements, not a multiple of in_features = ${inF} (base weight ${layout} [${rows}, ${cols}]); ` +
        'is the adapter for another model, or does fan_in_fan_out need to be set?',
    );
  }
  if (b.length !== out * r) {
    throw shapeError(
      where,
      `lora_B has ${b.length} elements, expected out_features × r = ${out} × ${r} = ${out * r} (lora_A is [${r}, ${inF}])`,
    );
  }
  if (!Number.isFinite(scale))
    throw new LoraMergeError('LORA_BAD_CONFIG', `${where}: scale must be finite, got ${scale}`);
  const s32 = Math.fround(scale); // torch multiplies a float32 tensor by a Python float in float32

  if (!fanInFanOut) {
    // Row o of B·A is Σ_k B[o,k] · A[k,:]: accumulate rows of A into row o of W.
    const acc = new Float64Array(inF);
    for (let o = 0; o < out; o++) {
      acc.fill(0);
      for (let k = 0; k < r; k++) {
        const bok = b[o * r + k];
        const aRow = k * inF;
        for (let i = 0; i < inF; i++) acc[i] += bok * a[aRow + i];
      }
      addRow(w, o * inF, acc, s32);
    }
    return;
  }
  // Row i of (B·A)ᵀ is Σ_k A[k,i] · B[:,k]: accumulate columns of B (transposed once) into row i of W.
  const bt = new Float32Array(r * out);
  for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) bt[k * out + o] = b[o * r + k];
  const acc = new Float64Array(out);
  for (let i = 0; i < inF; i++) {
    acc.fill(0);
    for (let k = 0; k < r; k++) {
      const aki = a[k * inF + i];
      const btRow = k * out;
      for (let o = 0; o < out; o++) acc[o] += aki * bt[btRow + o];
    }
    addRow(w, i * out, acc, s32);
  }
}

/** W[offset + j] += fround(fround(acc[j]) · scale), each result stored as float32. */
function addRow(w: Float32Array, offset: number, acc: Float64Array, scale: number): void {
  for (let j = 0; j < acc.length; j++) w[offset + j] += Math.fround(Math.fround(acc[j]) * scale);
}
