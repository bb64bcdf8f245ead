// The webgpu backend (TensorFlow.js on Dawn) against the fixtures: token log-probs, greedy ids (on-device greedy
// loop included), the adapter, and the LoRA trainer's loss, step-0 gradients and 3 AdamW steps. Runs wherever Dawn
// finds an adapter: an NVIDIA GPU through Vulkan, or Mesa's lavapipe (Debian bookworm-backports mesa-vulkan-drivers)
// on a CPU-only machine. Where no adapter exists, one test checks that `--backend webgpu` fails loudly instead (no
// skip: CI counts skips as failures); POLYGLOT_REQUIRE_WEBGPU=1 makes a missing adapter a failure.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  BackendError,
  initBackend,
  LlamaLoraTrainer,
  LlamaModel,
  type LoraFactors,
  largestWeight,
  llamaConfig,
  loadAdapterTensors,
  randomWeightSource,
  readAdapter,
  SafetensorsFile,
  type WebgpuAdapterInfo,
  webgpuAdapterInfo,
} from '../src/index.js';

/** The parity tolerances (GPU float32 reductions run in another order than the CPU's). */
const TOL = { logprob: 1e-3, loss: 1e-3, grad: 1e-3 };

async function probe(): Promise<WebgpuAdapterInfo | null> {
  try {
    return await webgpuAdapterInfo();
  } catch {
    return null;
  }
}

const adapter = await probe();

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
  greedy_new_ids: number[];
}

describe('webgpu binding limit helpers', () => {
  it('largestWeight names the largest float32 upload (embedding, fused q|k|v or MLP)', () => {
    const sizes = {
      hiddenSize: 4096,
      intermediateSize: 11008,
      numHiddenLayers: 32,
      numAttentionHeads: 32,
      vocabSize: 32000,
    };
    expect(largestWeight(llamaConfig(sizes))).to.deep.equal({
      name: 'model.embed_tokens.weight / lm_head.weight',
      bytes: 32000 * 4096 * 4,
    });
    expect(largestWeight(llamaConfig({ ...sizes, vocabSize: 1000 })).name).to.equal(
      'the fused q|k|v projection',
    );
    expect(largestWeight(llamaConfig({ ...sizes, vocabSize: 1000, intermediateSize: 20000 })).bytes).to.equal(
      4096 * 20000 * 4,
    );
  });
});

if (!adapter) {
  describe('webgpu backend (no adapter on this machine)', () => {
    it('fails loudly with BACKEND_NO_ADAPTER or BACKEND_UNAVAILABLE, never a quiet fallback', async () => {
      if (process.env.POLYGLOT_REQUIRE_WEBGPU === '1') {
        throw new Error(
          'POLYGLOT_REQUIRE_WEBGPU=1 but Dawn found no WebGPU adapter (see GPU.md / the README)',
        );
      }
      console.log('      no WebGPU adapter here: the webgpu parity tests are not registered');
      const before = tf.getBackend();
      let err: unknown;
      try {
        await initBackend('webgpu');
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(BackendError);
      expect((err as BackendError).code).to.be.oneOf(['BACKEND_NO_ADAPTER', 'BACKEND_UNAVAILABLE']);
      expect(tf.getBackend()).to.equal(before);
    });
  });
} else {
  describe(`webgpu backend on ${adapter.description || adapter.device} (${adapter.software ? 'software' : 'hardware'})`, function () {
    this.timeout(600_000);
    let previous: string | undefined;

    before(async () => {
      previous = tf.getBackend();
      expect(await initBackend('webgpu')).to.equal('webgpu');
    });

    after(async () => {
      // Leave the backend the other test files found.
      if (previous && previous !== 'webgpu') await tf.setBackend(previous);
    });

    it('reports the adapter and its binding limit', () => {
      expect(adapter.maxStorageBufferBindingSize).to.be.above(0);
      expect(adapter.maxBufferSize).to.be.at.least(adapter.maxStorageBufferBindingSize);
    });

    it('refuses weights larger than one binding (BACKEND_TENSOR_TOO_LARGE) instead of computing garbage', async () => {
      const heads = 8;
      const hidden =
        2 * heads * Math.ceil((adapter.maxStorageBufferBindingSize / (4 * 32000) + 8) / (2 * heads));
      const config = llamaConfig({
        hiddenSize: hidden,
        intermediateSize: 64,
        numHiddenLayers: 1,
        numAttentionHeads: heads,
        vocabSize: 32000,
      });
      let err: unknown;
      try {
        await LlamaModel.load(randomWeightSource(config), { backend: 'webgpu' });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(BackendError);
      expect((err as BackendError).code).to.equal('BACKEND_TENSOR_TOO_LARGE');
    });

    it('matches the reference log-probs and greedy ids (base and adapter), on-device greedy included', async function () {
      const dir = sharedPath(this, 'fixtures', 'tiny-llama');
      const ref = JSON.parse(readFileSync(path.join(dir, 'reference.json'), 'utf8')) as {
        base: RefEntry[];
        adapter: RefEntry[];
        base_batched_greedy_left_padded: number[][];
      };
      const base = await LlamaModel.load(path.join(dir, 'base'), {
        backend: 'webgpu',
        adapters: { a: path.join(dir, 'adapter') },
        activeAdapter: null,
      });
      try {
        expect(base.backend).to.equal('webgpu');
        expect(base.attention).to.equal('tensor');
        expect(base.fusedKernels).to.equal(true);
        for (const [name, entries] of [
          ['base', ref.base],
          ['adapter', ref.adapter],
        ] as const) {
          base.setActiveAdapter(name === 'base' ? null : 'a');
          const scores = await base.scoreBatch(entries.map((e) => e.input_ids));
          let worst = 0;
          entries.forEach((e, i) => {
            worst = Math.max(worst, maxAbs(scores[i].tokenLogprobs, e.token_logprobs));
          });
          console.log(`      ${name}: token log-probs max |diff| ${worst.toExponential(2)}`);
          expect(worst).to.be.below(TOL.logprob);
          for (const e of entries) {
            const ids = await base.greedy([e.input_ids], e.greedy_new_ids.length);
            expect(ids[0]).to.deep.equal(e.greedy_new_ids);
          }
        }
        base.setActiveAdapter(null);
        const batched = await base.greedy(
          ref.base.map((e) => e.input_ids),
          8,
          { padId: 2 },
        );
        expect(batched).to.deep.equal(ref.base_batched_greedy_left_padded);
        // The per-step path (prefill + decodeStep, logits read every step) agrees with the on-device loop.
        const state = await base.prefill([ref.base[0].input_ids], { maxNewTokens: 4 });
        try {
          const V = base.config.vocabSize;
          const stepIds: number[] = [];
          for (let s = 0; s < 4; s++) {
            let best = 0;
            for (let i = 1; i < V; i++) if (state.logits[i] > state.logits[best]) best = i;
            stepIds.push(best);
            if (s < 3) await state.decodeStep([best]);
          }
          expect(stepIds).to.deep.equal(ref.base[0].greedy_new_ids.slice(0, 4));
        } finally {
          state.dispose();
        }
      } finally {
        base.dispose();
      }
    });

    it('fused WGSL kernels and the op-by-op path agree (log-probs, last logits, greedy ids)', async function () {
      const dir = sharedPath(this, 'fixtures', 'tiny-llama');
      const ref = JSON.parse(readFileSync(path.join(dir, 'reference.json'), 'utf8')) as { base: RefEntry[] };
      const fused = await LlamaModel.load(path.join(dir, 'base'), { backend: 'webgpu' });
      const plain = await LlamaModel.load(path.join(dir, 'base'), { backend: 'webgpu', fusedKernels: false });
      try {
        expect(plain.fusedKernels).to.equal(false);
        const seqs = ref.base.map((e) => e.input_ids);
        const a = await fused.scoreBatch(seqs);
        const b = await plain.scoreBatch(seqs);
        let worst = 0;
        a.forEach((s, i) => {
          worst = Math.max(worst, maxAbs(s.tokenLogprobs, b[i].tokenLogprobs));
        });
        expect(worst).to.be.below(1e-4);
        // Left-padded batch (masked keys, fully masked padding queries) through prefill + decode steps.
        const sa = await fused.prefill(seqs, { maxNewTokens: 3 });
        const sb = await plain.prefill(seqs, { maxNewTokens: 3 });
        try {
          expect(maxAbs(sa.logits, sb.logits)).to.be.below(1e-3);
          const next = seqs.map((_, r) => r + 5);
          expect(maxAbs(await sa.decodeStep(next), await sb.decodeStep(next))).to.be.below(1e-3);
        } finally {
          sa.dispose();
          sb.dispose();
        }
        expect(await fused.greedy(seqs, 6, { padId: 2 })).to.deep.equal(
          await plain.greedy(seqs, 6, { padId: 2 }),
        );
      } finally {
        fused.dispose();
        plain.dispose();
      }
    });

    it('matches the SFT reference: loss, step-0 gradients, and 3 AdamW steps', async function () {
      const dir = sharedPath(this, 'fixtures', 'tiny-llama');
      const ref = JSON.parse(readFileSync(path.join(dir, 'sft-reference.json'), 'utf8')) as {
        input_ids: number[][];
        labels: number[][];
        loss_before_each_step: number[];
        grad_norm_before_clip_each_step: number[];
        loss_after_all_steps: number;
      };
      const init = await readAdapter(path.join(dir, 'sft-init-adapter'));
      const tensors = await loadAdapterTensors(init);
      const scale = init.config.loraAlpha / init.config.r;
      const modules = [...tensors.keys()]
        .filter((k) => k.endsWith('.lora_A.weight'))
        .map((k) => k.replace(/^base_model\.model\./, '').replace(/\.lora_A\.weight$/, ''));
      const trainer = await LlamaLoraTrainer.load(path.join(dir, 'base'), {
        backend: 'webgpu',
        targets: modules.map((module) => ({ module, r: init.config.r, scale })),
      });
      try {
        expect(trainer.batchedAttention).to.equal(true);
        const params: LoraFactors[] = trainer.targets.map((t) => ({
          a: Float32Array.from(tensors.get(`base_model.model.${t.module}.lora_A.weight`)!),
          b: Float32Array.from(tensors.get(`base_model.model.${t.module}.lora_B.weight`)!),
        }));
        const B = ref.input_ids.length;
        const T = ref.input_ids[0].length;
        const batch = {
          batch: B,
          length: T,
          inputIds: ref.input_ids.flat(),
          labels: ref.labels.flat(),
          segments: ref.input_ids.flatMap((row, b) => row.map((_, t) => (ref.labels[b][t] === -100 ? 0 : 1))),
        };
        // AdamW (torch: decoupled decay), clipping at 0.3 over all factors, lr 1e-3, 3 steps.
        const lr = 1e-3;
        const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.05];
        const m = params.map((p) => ({ a: new Float64Array(p.a.length), b: new Float64Array(p.b.length) }));
        const v = params.map((p) => ({ a: new Float64Array(p.a.length), b: new Float64Array(p.b.length) }));
        const losses: number[] = [];
        const norms: number[] = [];
        for (let step = 1; step <= 3; step++) {
          trainer.setLora(params);
          const grads = params.map((p) => ({
            a: new Float32Array(p.a.length),
            b: new Float32Array(p.b.length),
          }));
          const r0 = await trainer.lossAndGrads(batch);
          const r = await trainer.lossAndGrads(batch, { grads, gradScale: 1 / r0.tokens });
          expect(r.lossSum).to.be.closeTo(r0.lossSum, 1e-3 * r0.tokens);
          losses.push(r.lossSum / r.tokens);
          if (step === 1) {
            const file = await SafetensorsFile.open(path.join(dir, 'sft-step0-grads.safetensors'));
            let worst = 0;
            try {
              for (const [i, t] of trainer.targets.entries()) {
                const base = `base_model.model.${t.module}`;
                worst = Math.max(
                  worst,
                  relErr(grads[i].a, await file.readFloat32(`${base}.lora_A.default.weight`)),
                  relErr(grads[i].b, await file.readFloat32(`${base}.lora_B.default.weight`)),
                );
              }
            } finally {
              await file.close();
            }
            console.log(`      step-0 gradients max rel ${worst.toExponential(2)}`);
            expect(worst).to.be.below(TOL.grad);
          }
          let sq = 0;
          for (const g of grads) for (const x of [...g.a, ...g.b]) sq += x * x;
          const norm = Math.sqrt(sq);
          norms.push(norm);
          const clip = Math.min(1, 0.3 / (norm + 1e-6));
          params.forEach((p, i) => {
            for (const k of ['a', 'b'] as const) {
              const w = p[k];
              const g = grads[i][k];
              for (let j = 0; j < w.length; j++) {
                const gj = g[j] * clip;
                m[i][k][j] = b1 * m[i][k][j] + (1 - b1) * gj;
                v[i][k][j] = b2 * v[i][k][j] + (1 - b2) * gj * gj;
                const mh = m[i][k][j] / (1 - b1 ** step);
                const vh = v[i][k][j] / (1 - b2 ** step);
                w[j] = w[j] * (1 - lr * wd) - (lr * mh) / (Math.sqrt(vh) + eps);
              }
            }
          });
        }
        trainer.setLora(params);
        const after = await trainer.lossAndGrads(batch);
        const lossErr = Math.max(
          ...losses.map((l, i) => Math.abs(l - ref.loss_before_each_step[i])),
          Math.abs(after.lossSum / after.tokens - ref.loss_after_all_steps),
        );
        const normErr = Math.max(
          ...norms.map(
            (n, i) =>
              Math.abs(n - ref.grad_norm_before_clip_each_step[i]) / ref.grad_norm_before_clip_each_step[i],
          ),
        );
        console.log(
          `      SFT losses max |diff| ${lossErr.toExponential(2)}, grad norms max rel ${normErr.toExponential(2)}`,
        );
        expect(lossErr).to.be.below(TOL.loss);
        expect(normErr).to.be.below(TOL.grad);
      } finally {
        trainer.dispose();
      }
    });
  });
}
