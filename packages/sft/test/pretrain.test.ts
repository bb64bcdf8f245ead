import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Checkpoint,
  LlamaModel,
  llamaConfig,
  Tokenizer,
  validateLlamaCheckpoint,
  writeRandomLlama,
} from '@polyglot/model';
import { expect } from 'chai';
import {
  PRETRAIN_LOG,
  PRETRAIN_SUMMARY,
  type PretrainLogRecord,
  pretrain,
  pretrainLoss,
  pretrainLr,
  tokenStream,
  WindowSampler,
} from '../src/index.js';

/** A small English-heavy corpus with learnable structure. */
const TEXTS = [
  ...Array.from(
    { length: 12 },
    (_, i) =>
      `### Human: What is ${i} plus ${i}?### Assistant: ${i} plus ${i} is ${2 * i}. The answer is ${2 * i}.`,
  ),
  '### Human: Как дела?### Assistant: Хорошо, спасибо.',
  '### Human: 你好吗？### Assistant: 我很好，谢谢。',
];

/** Byte-level models small enough for unit tests: one MHA untied, one GQA tied. */
const CONFIGS = {
  mha: llamaConfig({
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    vocabSize: 259,
    maxPositionEmbeddings: 128,
  }),
  gqa: llamaConfig({
    hiddenSize: 32,
    intermediateSize: 48,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    vocabSize: 259,
    maxPositionEmbeddings: 128,
    tieWordEmbeddings: true,
  }),
};

const readLog = (dir: string): PretrainLogRecord[] =>
  readFileSync(path.join(dir, PRETRAIN_LOG), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('pretrain (full-parameter causal LM)', () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-pretrain-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('windows: a seeded offset and order per epoch, the same for the same seed', () => {
    const a = new WindowSampler(1000, 32, 5);
    const b = new WindowSampler(1000, 32, 5);
    expect(a.starts(0, 100)).to.deep.equal(b.starts(0, 100));
    // Any slice equals the same slice of a longer walk (what resume relies on).
    expect(a.starts(37, 20).starts).to.deep.equal(b.starts(0, 57).starts.slice(37));
    for (const s of a.starts(0, 200).starts) {
      expect(s).to.be.within(0, 1000 - 33);
    }
    expect(new WindowSampler(1000, 32, 6).starts(0, 10)).to.not.deep.equal(a.starts(0, 10));
    expect(() => new WindowSampler(50, 32, 0)).to.throw(/too few/);
  });

  it('learning rate: linear warm-up then cosine to minLrRatio × lr', () => {
    const o = { steps: 100, lr: 1e-3, warmup: 10, minLrRatio: 0.1 };
    expect(pretrainLr(0, o)).to.be.closeTo(1e-4, 1e-12);
    expect(pretrainLr(9, o)).to.be.closeTo(1e-3, 1e-12);
    expect(pretrainLr(10, o)).to.be.closeTo(1e-3, 1e-12);
    expect(pretrainLr(100, o)).to.be.closeTo(1e-4, 1e-12);
  });

  it('lowers the loss on a tiny corpus and writes a checkpoint directory that loads', async () => {
    const init = path.join(tmp, 'init-mha');
    await writeRandomLlama(init, CONFIGS.mha, { seed: 1 });
    const out = path.join(tmp, 'trained-mha');
    const summary = await pretrain({
      model: init,
      texts: TEXTS,
      out,
      steps: 40,
      seqLen: 32,
      batchSize: 4,
      lr: 1e-2,
      warmup: 4,
      seed: 0,
      backend: 'wasm',
    });
    const log = readLog(out);
    expect(log.map((r) => r.step)).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    const first = (log[0].loss + log[1].loss) / 2;
    const last = (log[38].loss + log[39].loss) / 2;
    expect(first).to.be.closeTo(Math.log(259), 0.3);
    expect(last).to.be.below(first - 2);
    expect(summary.finalLoss).to.be.below(first - 2);
    expect(existsSync(path.join(out, PRETRAIN_SUMMARY))).to.equal(true);
    expect(existsSync(path.join(out, 'checkpoints'))).to.equal(false);
    const ckpt = await Checkpoint.open(out);
    validateLlamaCheckpoint(ckpt);
    await ckpt.close();
    const tok = await Tokenizer.fromDir(out);
    expect(tok.chatTemplates.default).to.be.a('string');
    // A finished run is not overwritten by accident.
    try {
      await pretrain({ model: init, texts: TEXTS, out, steps: 2, seqLen: 32, batchSize: 2 });
      expect.fail('expected PRETRAIN_OUT_EXISTS');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('PRETRAIN_OUT_EXISTS');
    }
  });

  for (const kind of ['mha', 'gqa'] as const) {
    it(`its forward pass gives the loss that LlamaModel's log-probs give (${kind})`, async () => {
      const init = path.join(tmp, `init-parity-${kind}`);
      await writeRandomLlama(init, CONFIGS[kind], { seed: 2, std: 0.2 });
      const out = path.join(tmp, `parity-${kind}`);
      await pretrain({
        model: init,
        texts: TEXTS,
        out,
        steps: 6,
        seqLen: 24,
        batchSize: 2,
        lr: 5e-3,
        backend: 'wasm',
      });
      const tok = await Tokenizer.fromDir(out);
      const stream = tokenStream(tok, TEXTS);
      const windows = [0, 40, 97].map((s) => [...stream.subarray(s, s + 25)]);
      const ours = await pretrainLoss(out, windows, { backend: 'wasm' });
      const model = await LlamaModel.load(out, { backend: 'wasm' });
      try {
        let nll = 0;
        let n = 0;
        for (const w of windows) {
          const s = await model.scoreTokens(w);
          for (const lp of s.tokenLogprobs) {
            nll -= lp;
            n++;
          }
        }
        expect(n).to.equal(3 * 24);
        expect(Math.abs(ours - nll / n)).to.be.below(1e-4);
        expect(ours).to.be.below(Math.log(259) + 2);
      } finally {
        model.dispose();
      }
    });
  }

  it('a run halted after a checkpoint resumes and ends with the same weights bit for bit', async () => {
    const init = path.join(tmp, 'init-resume');
    await writeRandomLlama(init, CONFIGS.gqa, { seed: 3 });
    const args = {
      model: init,
      texts: TEXTS,
      steps: 10,
      seqLen: 32,
      batchSize: 3,
      lr: 5e-3,
      warmup: 2,
      seed: 9,
      saveSteps: 4,
      backend: 'wasm' as const,
    };
    const straight = path.join(tmp, 'straight');
    await pretrain({ ...args, out: straight });

    const resumed = path.join(tmp, 'resumed');
    const halted = await pretrain({ ...args, out: resumed }, { haltAfterStep: 6 });
    expect(halted.halted).to.equal(true);
    expect(existsSync(path.join(resumed, PRETRAIN_SUMMARY))).to.equal(false);
    // The checkpoint after update 4 is a complete model directory.
    const ck = path.join(resumed, 'checkpoints', 'checkpoint-4');
    const c = await Checkpoint.open(ck);
    validateLlamaCheckpoint(c);
    await c.close();
    const m = await LlamaModel.load(ck, { backend: 'wasm' });
    expect((await m.scoreTokens([1, 50, 60, 70])).tokenLogprobs).to.have.length(3);
    m.dispose();
    expect(readLog(resumed).map((r) => r.step)).to.deep.equal([1, 2, 3, 4, 5, 6]);

    const done = await pretrain({ ...args, out: resumed });
    expect(done.resumedFrom).to.equal(4);
    expect(done.stepsThisRun).to.equal(6);
    const a = readFileSync(path.join(straight, 'model.safetensors'));
    const b = readFileSync(path.join(resumed, 'model.safetensors'));
    expect(a.equals(b)).to.equal(true);
    const strip = (rs: PretrainLogRecord[]) => rs.map(({ secs: _s, ...r }) => r);
    expect(strip(readLog(resumed))).to.deep.equal(strip(readLog(straight)));
  });

  it('refuses to resume a checkpoint made with other arguments', async () => {
    const init = path.join(tmp, 'init-mismatch');
    await writeRandomLlama(init, CONFIGS.mha, { seed: 4 });
    const out = path.join(tmp, 'mismatch');
    const args = { model: init, texts: TEXTS, out, steps: 6, seqLen: 16, batchSize: 2, saveSteps: 2 };
    await pretrain(args, { haltAfterStep: 3 });
    try {
      await pretrain({ ...args, lr: 1e-4 });
      expect.fail('expected PRETRAIN_RESUME_MISMATCH');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('PRETRAIN_RESUME_MISMATCH');
    }
    const s = await pretrain({ ...args, lr: 1e-4 }, { force: true });
    expect(s.resumedFrom).to.equal(null);
  });
});
