/**
 * Safetensors dtypes and the float conversions between F32, F16 and BF16.
 *
 * The conversions to F16 and BF16 round to nearest, ties to even, exactly like torch's `.half()` and
 * `.to(torch.bfloat16)` on CPU, so that weights written back in their base dtype are bit-identical to what
 * PyTorch would write. NaN stays NaN: BF16 gives torch's canonical 0x7FC0, F16 keeps the sign and gives 0x7E00 or
 * 0xFE00 (torch's scalar conversions).
 */

/** The safetensors dtypes, in the order of the Rust crate's `Dtype` enum (increasing alignment). */
export const SAFETENSORS_DTYPES = [
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
] as const;

export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type TypedArrayConstructor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** The typed array that holds each dtype's elements (F16/BF16 as raw 16-bit patterns, F8 as raw bytes). */
const ARRAY_TYPES: Record<SafetensorsDtype, TypedArrayConstructor> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(ARRAY_TYPES, value);
}

/** Bytes per element. */
export function dtypeSize(dtype: SafetensorsDtype): number {
  return ARRAY_TYPES[dtype].BYTES_PER_ELEMENT;
}

/** Position in the Rust `Dtype` enum: safetensors writers lay tensors out by descending rank, then by name. */
export function dtypeRank(dtype: SafetensorsDtype): number {
  return SAFETENSORS_DTYPES.indexOf(dtype);
}

/** The dtypes that {@link toFloat32} and {@link fromFloat32} convert. */
export function isFloatDtype(dtype: string): dtype is 'F16' | 'BF16' | 'F32' | 'F64' {
  return dtype === 'F16' || dtype === 'BF16' || dtype === 'F32' || dtype === 'F64';
}

/** The typed array class for a dtype (Uint16Array for F16/BF16, Uint8Array for BOOL and F8). */
export function arrayTypeFor(dtype: SafetensorsDtype): TypedArrayConstructor {
  return ARRAY_TYPES[dtype];
}

/** View little-endian bytes as the dtype's typed array; copies only when `bytes` is not aligned. */
export function typedArrayFor(dtype: SafetensorsDtype, bytes: Uint8Array): TypedArray {
  const Ctor = ARRAY_TYPES[dtype];
  const size = Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new Ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

let f16Table: Float32Array | null = null;

/** All 65536 F16 values as F32 (built on first use). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else table[h] = (sign ? -mant : mant) * 2 ** -24; // zero and subnormals, exact in F32
  }
  f16Table = table;
  return table;
}

/** F16 bit patterns to F32 (exact: every F16 value is an F32 value). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** BF16 bit patterns to F32 (exact: BF16 is the top half of F32). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}

/** One F32 bit pattern to F16 bits, round to nearest even; overflow gives ±inf, NaN gives sign|0x7E00. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 112; // F16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // F16 subnormal (or zero): value = m * 2^-24 with m = (1.mant) * 2^(e-1+10)
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is still correct (up to inf)
  return sign | h;
}

/** One F32 bit pattern to BF16 bits, round to nearest even; NaN gives 0x7FC0 (as c10::BFloat16). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** F32 to F16 bit patterns, as torch's `.half()`. */
export function f32ToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/** F32 to BF16 bit patterns, as torch's `.to(torch.bfloat16)`. */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

/** Little-endian bytes of a float dtype to F32 (F64 rounds to nearest). */
export function toFloat32(dtype: 'F16' | 'BF16' | 'F32' | 'F64', bytes: Uint8Array): Float32Array {
  switch (dtype) {
    case 'F32':
      return typedArrayFor('F32', bytes) as Float32Array;
    case 'F16':
      return f16ToF32(typedArrayFor('F16', bytes) as Uint16Array);
    case 'BF16':
      return bf16ToF32(typedArrayFor('BF16', bytes) as Uint16Array);
    case 'F64':
      return Float32Array.from(typedArrayFor('F64', bytes) as Float64Array);
  }
}

/** F32 values as little-endian bytes of a float dtype (rounding as torch does). */
export function fromFloat32(dtype: 'F16' | 'BF16' | 'F32' | 'F64', values: Float32Array): Uint8Array {
  switch (dtype) {
    case 'F32':
      return bytesOf(values);
    case 'F16':
      return bytesOf(f32ToF16(values));
    case 'BF16':
      return bytesOf(f32ToBf16(values));
    case 'F64':
      return bytesOf(Float64Array.from(values));
  }
}
