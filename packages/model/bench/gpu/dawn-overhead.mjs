// Host cost of the WebGPU calls TensorFlow.js makes per kernel (bind group, uniforms, dispatch, submit), on the
// adapter Dawn picks here (or Dawn's null backend with `null`): what bounds the decode loop when it is host-bound.
// Usage: node dawn-overhead.mjs [null]   (needs the `webgpu` package resolvable from this file)
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create(process.argv[2] === 'null' ? ['backend=null'] : []);
const adapter = await gpu.requestAdapter();
const dev = await adapter.requestDevice();
const mod = dev.createShaderModule({
  code: '@group(0) @binding(0) var<storage, read_write> r: array<f32>; @group(0) @binding(1) var<uniform> u: vec4<f32>; @compute @workgroup_size(64) fn main() { r[0] = u.x; }',
});
const pipe = dev.createComputePipeline({ layout: 'auto', compute: { module: mod, entryPoint: 'main' } });
const buf = dev.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE });
const ub = dev.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
const ab = new ArrayBuffer(16);
const us = (t, n) => Number((((performance.now() - t) * 1000) / n).toFixed(2));
const N = 5000;
const out = { adapter: adapter.info.description || adapter.info.device };
let t = performance.now();
let layout;
for (let i = 0; i < N; i++) layout = pipe.getBindGroupLayout(0);
out.getBindGroupLayout_us = us(t, N);
const entries = [
  { binding: 0, resource: { buffer: buf } },
  { binding: 1, resource: { buffer: ub } },
];
t = performance.now();
for (let i = 0; i < N; i++) dev.createBindGroup({ layout, entries });
out.createBindGroup_us = us(t, N);
t = performance.now();
for (let i = 0; i < N; i++) dev.queue.writeBuffer(ub, 0, ab, 0, 16);
out.writeBuffer_us = us(t, N);
const bg = dev.createBindGroup({ layout, entries });
// What tfjs does per kernel, submitting every 15 dispatches.
t = performance.now();
let enc = dev.createCommandEncoder();
let pass = enc.beginComputePass();
for (let i = 1; i <= N; i++) {
  dev.queue.writeBuffer(ub, 0, ab, 0, 16);
  const g = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
  pass.setPipeline(pipe);
  pass.setBindGroup(0, g);
  pass.dispatchWorkgroups(1, 1, 1);
  if (i % 15 === 0) {
    pass.end();
    dev.queue.submit([enc.finish()]);
    enc = dev.createCommandEncoder();
    pass = enc.beginComputePass();
  }
}
pass.end();
dev.queue.submit([enc.finish()]);
out.tfjs_like_kernel_us = us(t, N);
t = performance.now();
await dev.queue.onSubmittedWorkDone();
out.drain_ms = Number((performance.now() - t).toFixed(2));
void bg;
console.log(JSON.stringify(out));
process.exit(0);
