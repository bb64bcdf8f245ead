// The SFT reference recipe of ../shared/fixtures/README.md (PEFT + transformers, torch CPU float32): from
// sft-init-adapter/, one batch of the 4 texts, AdamW(lr 1e-3, wd 0.05), clip 0.3, constant lr, 3 steps. Our batch,
// loss, step-0 gradients, losses, grad norms and the adapter after the steps must match, on cpu and on wasm.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAdapterTensors, readAdapter, SafetensorsFile, Tokenizer } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { type Batch, collate, formatRecord, LoraTrainer } from '../src/index.js';

interface SftReference {
  texts: string[];
  input_ids: number[][];
  attention_mask: number[][];
  labels: number[][];
  loss_before_each_step: number[];
  grad_norm_before_clip_each_step: number[];
  loss_after_all_steps: number;
  trainable_parameter_names: string[];
}

/** Tolerances of the fixtures' README. */
const TOL = { loss: 1e-4, grad: 1e-3, adapter: 1e-3 };

/** max |a − b| / max |b| over a tensor (relative to the tensor's scale). */
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

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`SFT reference recipe (${backend})`, function () {
    this.timeout(240_000);
    let dir: string;
    let ref: SftReference;
    let batch: Batch;
    let trainer: LoraTrainer;
    let tmp: string;

    before(async function () {
      dir = sharedPath(this, 'fixtures', 'tiny-llama');
      ref = JSON.parse(readFileSync(path.join(dir, 'sft-reference.json'), 'utf8')) as SftReference;
      const tokenizer = await Tokenizer.fromDir(path.join(dir, 'base'));
      const examples = ref.texts.map((text) => formatRecord({ text }, { tokenizer, maxLength: 1024 }));
      batch = collate(examples, tokenizer.eosId!);
      trainer = await LoraTrainer.create({
        model: path.join(dir, 'base'),
        backend,
        initAdapter: path.join(dir, 'sft-init-adapter'),
        dropout: 0,
        optimizer: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05 },
      });
      tmp = mkdtempSync(path.join(os.tmpdir(), 'sft-ref-'));
    });

    after(() => {
      trainer?.dispose();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('builds the reference batch: ids, right padding with EOS, labels -100 on padding', () => {
      expect(batch.batch).to.equal(4);
      expect(batch.length).to.equal(ref.input_ids[0].length);
      expect(Array.from(batch.inputIds)).to.deep.equal(ref.input_ids.flat());
      expect(Array.from(batch.attentionMask)).to.deep.equal(ref.attention_mask.flat());
      // Position 0's label is never used (nothing predicts the first token); the shifted labels are equal.
      ref.labels.forEach((row, b) => {
        const ours = Array.from(batch.labels.subarray(b * batch.length + 1, (b + 1) * batch.length));
        expect(ours).to.deep.equal(row.slice(1));
      });
    });

    it('matches the batch loss and the step-0 gradient of every LoRA tensor', async () => {
      expect(trainer.parameterNames).to.have.members(ref.trainable_parameter_names);
      const { loss } = await trainer.lossAndGrads([batch]);
      const lossErr = Math.abs(loss - ref.loss_before_each_step[0]);
      const file = await SafetensorsFile.open(path.join(dir, 'sft-step0-grads.safetensors'));
      let worst = 0;
      try {
        const grads = trainer.gradients;
        for (const [i, name] of trainer.parameterNames.entries()) {
          worst = Math.max(worst, relErr(grads[i], await file.readFloat32(name)));
        }
      } finally {
        await file.close();
      }
      console.log(
        `      ${backend}: |loss − ref| ${lossErr.toExponential(2)}, step-0 grads max rel ${worst.toExponential(2)}`,
      );
      expect(lossErr).to.be.below(TOL.loss);
      expect(worst).to.be.below(TOL.grad);
    });

    it('matches 3 AdamW steps: losses, grad norms, the loss after and the adapter', async () => {
      const losses: number[] = [];
      const norms: number[] = [];
      for (let s = 0; s < 3; s++) {
        const r = await trainer.step([batch], 1e-3, 0.3);
        losses.push(r.loss);
        norms.push(r.gradNorm);
      }
      const after = await trainer.evalLoss([batch]);
      const lossErr = Math.max(
        ...losses.map((l, i) => Math.abs(l - ref.loss_before_each_step[i])),
        Math.abs(after.loss - ref.loss_after_all_steps),
      );
      const normErr = Math.max(
        ...norms.map(
          (n, i) =>
            Math.abs(n - ref.grad_norm_before_clip_each_step[i]) / ref.grad_norm_before_clip_each_step[i],
        ),
      );
      await trainer.saveAdapter(tmp);
      const ours = await readAdapter(tmp);
      const theirs = await readAdapter(path.join(dir, 'sft-after-steps-adapter'));
      const a = await loadAdapterTensors(ours);
      const b = await loadAdapterTensors(theirs);
      expect([...a.keys()].sort()).to.deep.equal([...b.keys()].sort());
      let worst = 0;
      for (const [k, v] of b) worst = Math.max(worst, relErr(a.get(k)!, v));
      console.log(
        `      ${backend}: losses max |err| ${lossErr.toExponential(2)}, grad norms max rel ${normErr.toExponential(2)}, ` +
          `adapter after 3 steps max rel ${worst.toExponential(2)}`,
      );
      expect(lossErr).to.be.below(TOL.loss);
      expect(normErr).to.be.below(TOL.grad);
      expect(worst).to.be.below(TOL.adapter);
      expect(ours.config.r).to.equal(8);
      expect(ours.config.loraAlpha).to.equal(16);
    });
  });
}
