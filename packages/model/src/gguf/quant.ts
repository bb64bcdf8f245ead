/** Tensor encodings of GGUF: F32, F16 and Q8_0 (blocks of 32 int8 values sharing one F16 scale). */
import { bytesOf, f16ToF32, f32BitsToF16Bits, f32ToF16 } from '../dtype.js';
import { ModelFormatError } from '../errors.js';
import { GgmlType } from './format.js';

export const Q8_0_BLOCK = 32;
const Q8_0_BYTES = 34;

/** Round half away from zero, in float32 (C's roundf, as ggml and gguf-py's np_roundf). */
function roundf(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

/**
 * Q8_0 as ggml's `quantize_row_q8_0_ref`: per block of 32, d = max|x| / 127 (float32), q = roundf(x / d) computed as
 * x · (1/d) in float32, d stored as F16.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) {
    throw new ModelFormatError(
      'GGUF_BLOCK_SIZE',
      `Q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${values.length}`,
    );
  }
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BYTES);
  const view = new DataView(out.buffer);
  const f32 = new Float32Array(1);
  const f32bits = new Uint32Array(f32.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[base + j]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    f32[0] = d;
    view.setUint16(b * Q8_0_BYTES, f32BitsToF16Bits(f32bits[0]), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      out[b * Q8_0_BYTES + 2 + j] = roundf(Math.fround(values[base + j] * id)) & 0xff;
    }
  }
  return out;
}

/** Q8_0 blocks back to float32 (d · q, d from its F16). */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / Q8_0_BYTES;
  const out = new Float32Array(blocks * Q8_0_BLOCK);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scale = new Uint16Array(1);
  for (let b = 0; b < blocks; b++) {
    scale[0] = view.getUint16(b * Q8_0_BYTES, true);
    const d = f16ToF32(scale)[0];
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * view.getInt8(b * Q8_0_BYTES + 2 + j);
  }
  return out;
}

/** A float32 tensor's bytes in a ggml type. */
export function encodeTensor(type: GgmlType, values: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return bytesOf(values);
    case GgmlType.F16:
      return bytesOf(f32ToF16(values));
    case GgmlType.Q8_0:
      return quantizeQ8_0(values);
  }
}

/** Bytes of a ggml type back to float32. */
export function decodeTensor(type: GgmlType, bytes: Uint8Array): Float32Array {
  switch (type) {
    case GgmlType.F32:
      return new Float32Array(bytes.slice().buffer);
    case GgmlType.F16:
      return f16ToF32(new Uint16Array(bytes.slice().buffer));
    case GgmlType.Q8_0:
      return dequantizeQ8_0(bytes);
  }
}
