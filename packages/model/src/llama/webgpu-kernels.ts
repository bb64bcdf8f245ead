/**
 * Fused WGSL kernels for the decoder on the `webgpu` backend. On a GPU the per-kernel cost of TensorFlow.js (a bind
 * group, a uniform buffer and a dispatch recorded from JavaScript, ~0.1–0.2 ms each through Dawn) dominates decoding,
 * not the arithmetic; these kernels do in one dispatch what the op-by-op path does in several:
 *
 * - {@link rmsNormGpu}: transformers' LlamaRMSNorm, one workgroup per row (6 ops → 1);
 * - {@link ropeSplitGpu}: cuts q, k or v out of the fused q|k|v projection output, applies the rotary embedding
 *   (queries also scaled by 1/√d) and writes `[batch, heads, T, d]` (slice + 7 rope ops + transpose → 1 per part);
 * - {@link attentionGpu}: grouped-query attention of the new queries over the cached keys/values with the additive
 *   mask: scores, softmax and probs·V in one workgroup per (row, head, query), written straight into the
 *   `[batch·T, heads·d]` layout the output projection reads (reshape/matmul/mul/add/softmax/matmul/transpose → 1);
 * - {@link swigluGpu}: silu(gate)·up (3 ops → 1).
 *
 * The arithmetic follows the op-by-op path (float32, the same operation order where it matters); results agree with
 * it to float32 rounding. Programs follow TensorFlow.js's WebGPUProgram protocol (the backend declares the buffers
 * `result` and one per variable name, and the uniforms) and run through the backend's `runWebGPUProgram`, so
 * nothing here imports @tensorflow/tfjs-backend-webgpu (an optional peer dependency).
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of TensorFlow.js's WebGPUProgram that the backend reads. */
interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  getUserCode(): string;
}

interface UniformData {
  type: 'float32' | 'int32';
  data: number[];
}

interface WebgpuBackendLike {
  runWebGPUProgram(
    program: Program,
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms?: UniformData[],
  ): tf.TensorInfo;
}

/** Workgroups are spread over y and z beyond this many in x (WebGPU's per-dimension minimum limit). */
const MAX_X = 65535;

function dispatchFor(groups: number): [number, number, number] {
  if (groups <= MAX_X) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_X);
  return [MAX_X, y, 1];
}

/** The flat workgroup index in WGSL (works for the y-spread dispatch of {@link dispatchFor}). */
const GROUP_INDEX = 'i32(workgroupId.y * numWorkgroups.x + workgroupId.x)';

function run(program: Program, inputs: tf.Tensor[], uniforms: UniformData[]): tf.Tensor {
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  const info = backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
  return tf.engine().makeTensorFromTensorInfo(info);
}

function program(
  key: string,
  inputs: string[],
  outputShape: number[],
  groups: number,
  wg: number,
  uniforms: string,
  code: string,
): Program {
  return {
    variableNames: inputs,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: dispatchFor(groups),
    workgroupSize: [wg, 1, 1],
    uniforms,
    getUserCode: () => code,
  };
}

/** Whether the fused kernels can run: the active backend is TensorFlow.js's webgpu backend. */
export function webgpuKernelsAvailable(): boolean {
  const b = tf.backend() as unknown as Partial<WebgpuBackendLike>;
  return tf.getBackend() === 'webgpu' && typeof b.runWebGPUProgram === 'function';
}

const RMS_WG = 256;

/** x · rsqrt(mean(x², -1) + eps) · weight for x `[rows, cols]` (transformers' LlamaRMSNorm in float32). */
export function rmsNormGpu(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [rows, cols] = x.shape;
  const code = `
    var<workgroup> buf : array<f32, ${RMS_WG}>;
    fn main(index : i32) {
      // Extra workgroups of a spread dispatch redo the last row (same values); no early return before barriers.
      let row = min(${GROUP_INDEX}, uniforms.rows - 1);
      let tid = i32(localId.x);
      let cols = uniforms.cols;
      let base = row * cols;
      var s = 0.0;
      for (var c = tid; c < cols; c += ${RMS_WG}) {
        let v = X[base + c];
        s += v * v;
      }
      buf[tid] = s;
      workgroupBarrier();
      for (var n = ${RMS_WG / 2}; n > 0; n = n >> 1) {
        if (tid < n) { buf[tid] = buf[tid] + buf[tid + n]; }
        workgroupBarrier();
      }
      let r = inverseSqrt(buf[0] / f32(cols) + uniforms.eps);
      for (var c = tid; c < cols; c += ${RMS_WG}) {
        result[base + c] = (X[base + c] * r) * W[c];
      }
    }`;
  const p = program(
    'polyglotRmsNorm',
    ['X', 'W'],
    [rows, cols],
    rows,
    RMS_WG,
    'rows : i32, cols : i32, eps : f32,',
    code,
  );
  return run(
    p,
    [x, weight],
    [
      { type: 'int32', data: [rows] },
      { type: 'int32', data: [cols] },
      { type: 'float32', data: [eps] },
    ],
  ) as tf.Tensor2D;
}

const EW_WG = 256;

/** silu(gate) · up, elementwise (gate · sigmoid(gate) · up, as the op-by-op path). */
export function swigluGpu(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  const n = gate.size;
  const code = `
    fn main(index : i32) {
      let i = ${GROUP_INDEX} * ${EW_WG} + i32(localId.x);
      if (i >= uniforms.n) { return; }
      let g = G[i];
      let s = 1.0 / (1.0 + exp(-1.0 * g));
      result[i] = (g * s) * U[i];
    }`;
  const p = program('polyglotSwiglu', ['G', 'U'], gate.shape, Math.ceil(n / EW_WG), EW_WG, 'n : i32,', code);
  return run(p, [gate, up], [{ type: 'int32', data: [n] }]) as tf.Tensor2D;
}

/**
 * One of q, k, v out of the fused projection `qkv` `[batch·T, (heads + 2·kvHeads)·d]`, as `[batch, n, T, d]`;
 * q and k rotated (`x·cos + rotate_half(x)·sin`, cos/sin `[batch·T, d]`), q then multiplied by `scale`.
 */
export function ropeSplitGpu(
  qkv: tf.Tensor2D,
  cos: tf.Tensor,
  sin: tf.Tensor,
  part: 'q' | 'k' | 'v',
  shape: { batch: number; T: number; heads: number; kvHeads: number; headDim: number },
  scale = 1,
): tf.Tensor4D {
  const { batch, T, heads, kvHeads, headDim: d } = shape;
  const n = part === 'q' ? heads : kvHeads;
  const first = part === 'q' ? 0 : part === 'k' ? heads : heads + kvHeads;
  const stride = (heads + 2 * kvHeads) * d;
  const total = batch * n * T * d;
  const rotate = part !== 'v';
  const code = `
    fn main(index : i32) {
      let i = ${GROUP_INDEX} * ${EW_WG} + i32(localId.x);
      if (i >= uniforms.total) { return; }
      let d = uniforms.d;
      let T = uniforms.T;
      let n = uniforms.n;
      let e = i % d;
      let t = (i / d) % T;
      let h = (i / (d * T)) % n;
      let b = i / (d * T * n);
      let row = b * T + t;
      let src = row * uniforms.stride + (uniforms.first + h) * d;
      ${
        rotate
          ? `let hd2 = d / 2;
      var other = 0.0;
      if (e < hd2) { other = -1.0 * X[src + e + hd2]; } else { other = X[src + e - hd2]; }
      let v = X[src + e] * C[row * d + e] + other * S[row * d + e];
      result[i] = v * uniforms.scale;`
          : 'result[i] = X[src + e];'
      }
    }`;
  const p = program(
    `polyglotRope_${rotate ? 'rot' : 'copy'}`,
    rotate ? ['X', 'C', 'S'] : ['X'],
    [batch, n, T, d],
    Math.ceil(total / EW_WG),
    EW_WG,
    'total : i32, d : i32, T : i32, n : i32, stride : i32, first : i32, scale : f32,',
    code,
  );
  return run(p, rotate ? [qkv, cos, sin] : [qkv], [
    { type: 'int32', data: [total] },
    { type: 'int32', data: [d] },
    { type: 'int32', data: [T] },
    { type: 'int32', data: [n] },
    { type: 'int32', data: [stride] },
    { type: 'int32', data: [first] },
    { type: 'float32', data: [scale] },
  ]) as tf.Tensor4D;
}

const ATT_WG = 64;
/** Keys per workgroup's score buffer: longer contexts take the op-by-op path. */
export const ATTENTION_MAX_KEYS = 3968; // 15.5 KiB of scores + the reduction buffer: within WebGPU's 16 KiB default

/**
 * softmax(q·kᵀ + mask)·v for queries `q` `[batch, heads, T, d]` (already scaled), keys/values `[batch, kvHeads, L, d]`,
 * additive mask `[batch, T, L]` (any shape of that size); query head h reads key/value head ⌊h / (heads/kvHeads)⌋.
 * Returns `[batch·T, heads·d]`.
 */
export function attentionGpu(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor): tf.Tensor2D {
  const [batch, heads, T, d] = q.shape;
  const kvHeads = k.shape[1];
  const L = k.shape[2];
  if (L > ATTENTION_MAX_KEYS) throw new Error(`attentionGpu: ${L} keys exceed ${ATTENTION_MAX_KEYS}`);
  const code = `
    var<workgroup> sc : array<f32, ${ATTENTION_MAX_KEYS}>;
    var<workgroup> red : array<f32, ${ATT_WG}>;
    fn main(index : i32) {
      let T = uniforms.T;
      let H = uniforms.heads;
      let g = min(${GROUP_INDEX}, uniforms.batch * H * T - 1);
      let tid = i32(localId.x);
      let d = uniforms.d;
      let L = uniforms.L;
      let t = g % T;
      let h = (g / T) % H;
      let b = g / (T * H);
      let kh = h / (H / uniforms.kvHeads);
      let qo = ((b * H + h) * T + t) * d;
      let kvBase = (b * uniforms.kvHeads + kh) * L * d;
      let mo = (b * T + t) * L;
      var m = -3.402823e+38;
      for (var j = tid; j < L; j += ${ATT_WG}) {
        var dot = 0.0;
        let ko = kvBase + j * d;
        for (var e = 0; e < d; e++) { dot += Q[qo + e] * K[ko + e]; }
        let s = dot + M[mo + j];
        sc[j] = s;
        m = max(m, s);
      }
      red[tid] = m;
      workgroupBarrier();
      for (var n = ${ATT_WG / 2}; n > 0; n = n >> 1) {
        if (tid < n) { red[tid] = max(red[tid], red[tid + n]); }
        workgroupBarrier();
      }
      let rowMax = red[0];
      workgroupBarrier();
      var acc0 = 0.0;
      for (var j = tid; j < L; j += ${ATT_WG}) {
        let p = exp(sc[j] - rowMax);
        sc[j] = p;
        acc0 += p;
      }
      red[tid] = acc0;
      workgroupBarrier();
      for (var n = ${ATT_WG / 2}; n > 0; n = n >> 1) {
        if (tid < n) { red[tid] = red[tid] + red[tid + n]; }
        workgroupBarrier();
      }
      let total = red[0];
      let oo = (b * T + t) * H * d + h * d;
      for (var e = tid; e < d; e += ${ATT_WG}) {
        var acc = 0.0;
        for (var j = 0; j < L; j++) { acc += sc[j] * V[kvBase + j * d + e]; }
        result[oo + e] = acc / total;
      }
    }`;
  const p = program(
    'polyglotAttention',
    ['Q', 'K', 'V', 'M'],
    [batch * T, heads * d],
    batch * heads * T,
    ATT_WG,
    'batch : i32, heads : i32, kvHeads : i32, T : i32, L : i32, d : i32,',
    code,
  );
  return run(
    p,
    [q, k, v, mask],
    [
      { type: 'int32', data: [batch] },
      { type: 'int32', data: [heads] },
      { type: 'int32', data: [kvHeads] },
      { type: 'int32', data: [T] },
      { type: 'int32', data: [L] },
      { type: 'int32', data: [d] },
    ],
  ) as tf.Tensor2D;
}
