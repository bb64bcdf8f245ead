import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLoraConfig, LlamaModel, readAdapter, Tokenizer, writeAdapter } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  collate,
  formatRecord,
  LoraTrainer,
  packExamples,
  type SftError,
  TRAIN_LOG,
  type TrainLogRecord,
  train,
} from '../src/index.js';

const WORDS = [
  'red',
  'green',
  'blue',
  'cat',
  'dog',
  'sun',
  'moon',
  'tree',
  'river',
  'stone',
  'bread',
  'salt',
];

/** Synthetic examples with a learnable pattern: the assistant repeats the three words twice. */
function writeSynthetic(file: string, n: number, seed: number): void {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const w = [0, 1, 2].map(() => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
    lines.push(JSON.stringify({ text: `### Human: repeat ${w} ### Assistant: ${w} ${w}` }));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

async function expectCode(p: Promise<unknown>, code: string, text?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect((e as SftError).code, (e as Error).message).to.equal(code);
    if (text) expect((e as Error).message).to.match(text);
    return;
  }
  throw new Error(`expected error ${code}`);
}

function logLines(out: string): Record<string, number>[] {
  return readFileSync(path.join(out, TRAIN_LOG), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
}

describe('training runs (tiny-llama, wasm)', function () {
  this.timeout(300_000);
  let base: string;
  let tmp: string;
  let trainFile: string;
  let evalFile: string;

  before(function () {
    base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    tmp = mkdtempSync(path.join(os.tmpdir(), 'sft-train-'));
    trainFile = path.join(tmp, 'train.jsonl');
    evalFile = path.join(tmp, 'eval.jsonl');
    writeSynthetic(trainFile, 300, 1);
    writeSynthetic(evalFile, 40, 2);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('a short real run lowers the eval loss; log, adapter and arguments are written', async () => {
    const out = path.join(tmp, 'run');
    const summary = await train({
      model: base,
      data: trainFile,
      evalData: evalFile,
      out,
      backend: 'wasm',
      loraR: 8,
      loraAlpha: 16,
      lr: 1e-3,
      maxSteps: 30,
      batchSize: 8,
      gradAccum: 1,
      evalSteps: 15,
      saveSteps: 0,
    });
    const ev = summary.evalLoss;
    expect(ev.map((e) => e.step)).to.deep.equal([0, 15, 30]);
    console.log(`      eval loss ${ev[0].loss.toFixed(4)} → ${ev[2].loss.toFixed(4)}`);
    expect(ev[2].loss).to.be.below(ev[0].loss - 0.5);
    expect(ev[1].loss).to.be.below(ev[0].loss);
    const lines = logLines(out);
    const steps = lines.filter((l) => 'loss' in l) as unknown as TrainLogRecord[];
    expect(steps.map((l) => l.step)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const l of steps) {
      expect(l).to.include.keys('step', 'loss', 'grad_norm', 'lr', 'tokens', 'secs');
      expect(Number.isFinite(l.loss) && l.grad_norm > 0 && l.tokens > 0).to.equal(true);
    }
    // Cosine with 3% warm-up: the first update has learning rate 0, then it decays from 1e-3.
    expect(steps[0].lr).to.equal(0);
    expect(steps[1].lr).to.be.closeTo(1e-3, 1e-9);
    expect(steps[29].lr).to.be.below(steps[5].lr);
    expect(summary.peakRssMiB).to.be.greaterThan(0);
    expect(summary.tokensPerSec).to.be.greaterThan(0);
    // A PEFT adapter that the engine loads, and the arguments as JSON.
    const adapter = await readAdapter(out);
    expect(adapter.config.r).to.equal(8);
    expect(adapter.config.targetModules).to.have.members([
      'q_proj',
      'k_proj',
      'v_proj',
      'o_proj',
      'gate_proj',
      'up_proj',
      'down_proj',
    ]);
    expect(adapter.modules).to.have.length(14);
    const model = await LlamaModel.load(base, { backend: 'wasm', adapters: { sft: out } });
    try {
      const [score] = await model.scoreBatch([[1, 835, 12968, 29901]]);
      expect(Number.isFinite(score.sumLogprob)).to.equal(true);
    } finally {
      model.dispose();
    }
    const args = JSON.parse(readFileSync(path.join(out, 'training_args.json'), 'utf8'));
    expect(args).to.include({ lora_r: 8, lr: 0.001, max_steps: 30, scheduler: 'cosine', weight_decay: 0.05 });
  });

  it('stopped after a checkpoint and resumed, a run ends exactly as an uninterrupted one', async () => {
    const common = {
      model: base,
      data: evalFile, // 40 examples: 10 batches of 4, windows of 3 (the last short), 4 updates per epoch
      out: '',
      backend: 'wasm' as const,
      loraR: 4,
      loraDropout: 0.1,
      targetModules: ['q_proj', 'v_proj', 'down_proj'],
      lr: 5e-4,
      scheduler: 'linear' as const,
      warmupSteps: 2,
      maxSteps: 10,
      batchSize: 4,
      gradAccum: 3,
      sortByLength: false,
      shuffle: true,
      seed: 7,
      saveSteps: 3,
    };
    const a = path.join(tmp, 'uninterrupted');
    await train({ ...common, out: a });
    const b = path.join(tmp, 'interrupted');
    const halted = await train({ ...common, out: b }, { haltAfterStep: 5 });
    expect(halted.halted).to.equal(true);
    const resumed = await train({ ...common, out: b }, { resume: true });
    expect(resumed.resumedFrom).to.equal(path.join(b, 'checkpoints', 'checkpoint-3'));
    expect(resumed.steps).to.equal(10);
    expect(readFileSync(path.join(b, 'adapter_model.safetensors'))).to.deep.equal(
      readFileSync(path.join(a, 'adapter_model.safetensors')),
    );
    const strip = (ls: Record<string, number>[]) => ls.map(({ secs: _secs, ...rest }) => rest);
    expect(strip(logLines(b))).to.deep.equal(strip(logLines(a)));
  });

  it("--epochs: the Trainer's step count (the last short accumulation window still updates)", async () => {
    // 40 examples, batch 8: 5 batches per epoch, windows of 2 → 3 updates per epoch; 2 epochs → 6.
    const s = await train({
      model: base,
      data: evalFile,
      out: path.join(tmp, 'epochs'),
      backend: 'wasm',
      loraR: 2,
      epochs: 2,
      batchSize: 8,
      gradAccum: 2,
      saveSteps: 0,
    });
    expect(s.steps).to.equal(6);
    const lines = logLines(path.join(tmp, 'epochs')).filter((l) => 'loss' in l);
    expect(lines.map((l) => l.target_tokens)).to.have.length(6);
    // Windows of 2, 2, 1 batches per epoch: the third update of each epoch has the tokens of one batch only.
    expect(lines[2].tokens).to.be.below(lines[1].tokens);
    expect(lines.at(-1)!.epoch).to.equal(2);
  });

  it('refuses: unknown target modules, an adapter for another model, resuming with other arguments', async () => {
    await expectCode(
      train({
        model: base,
        data: evalFile,
        out: path.join(tmp, 'bad1'),
        targetModules: ['q_proj', 'lm_head'],
      }),
      'SFT_UNKNOWN_TARGET',
      /unknown target module "lm_head"/,
    );
    // An adapter with a layer this 2-layer model does not have.
    const other = path.join(tmp, 'other-adapter');
    const cfg = createLoraConfig({ r: 2, loraAlpha: 4, targetModules: ['q_proj'] });
    await writeAdapter(other, {
      config: cfg,
      tensors: {
        'base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight': {
          dtype: 'F32',
          shape: [2, 64],
          data: new Float32Array(128),
        },
        'base_model.model.model.layers.5.self_attn.q_proj.lora_B.weight': {
          dtype: 'F32',
          shape: [64, 2],
          data: new Float32Array(128),
        },
      },
    });
    await expectCode(
      train({
        model: base,
        data: evalFile,
        out: path.join(tmp, 'bad2'),
        initAdapter: other,
        backend: 'wasm',
      }),
      'ADAPTER_MODEL_MISMATCH',
      /different model/,
    );
    // An adapter whose factors have another hidden size.
    const wide = path.join(tmp, 'wide-adapter');
    await writeAdapter(wide, {
      config: cfg,
      tensors: {
        'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': {
          dtype: 'F32',
          shape: [2, 128],
          data: new Float32Array(256),
        },
        'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': {
          dtype: 'F32',
          shape: [128, 2],
          data: new Float32Array(256),
        },
      },
    });
    await expectCode(
      train({ model: base, data: evalFile, out: path.join(tmp, 'bad3'), initAdapter: wide, backend: 'wasm' }),
      'SFT_ADAPTER_MISMATCH',
      /lora_A.weight" has shape \[2, 128\] but .* needs \[2, 64\]/,
    );
    await expectCode(
      train({ model: base, data: evalFile, out: path.join(tmp, 'bad4') }, { resume: true }),
      'SFT_NO_CHECKPOINT',
    );
    // The run of the previous test: another learning rate cannot continue it; the same output needs --force.
    const b = path.join(tmp, 'interrupted');
    await expectCode(
      train({ model: base, data: evalFile, out: b, lr: 1e-3, maxSteps: 10, batchSize: 4 }, { resume: true }),
      'SFT_RESUME_MISMATCH',
      /lr was 0.0005, now 0.001/,
    );
    await expectCode(train({ model: base, data: evalFile, out: b }), 'SFT_OUT_EXISTS', /--resume/);
  });

  it('continues from an --init-adapter: the first loss is the adapter’s, not a fresh one’s', async function () {
    const out = path.join(tmp, 'from-init');
    const init = sharedPath(this, 'fixtures', 'tiny-llama', 'sft-init-adapter');
    const s = await train({
      model: base,
      data: evalFile,
      out,
      initAdapter: init,
      backend: 'wasm',
      loraDropout: 0,
      maxSteps: 1,
      batchSize: 40,
      gradAccum: 1,
      saveSteps: 0,
    });
    const fresh = await train({
      model: base,
      data: evalFile,
      out: path.join(tmp, 'fresh'),
      backend: 'wasm',
      loraR: 8,
      loraDropout: 0,
      maxSteps: 1,
      batchSize: 40,
      gradAccum: 1,
      saveSteps: 0,
    });
    expect(s.firstLoss).to.not.be.closeTo(fresh.firstLoss!, 1e-3);
    expect((await readAdapter(out)).config.r).to.equal(8);
  });
});

describe('LoraTrainer details (tiny-llama, wasm)', function () {
  this.timeout(120_000);
  let trainer: LoraTrainer;
  let tok: Tokenizer;
  before(async function () {
    const dir = sharedPath(this, 'fixtures', 'tiny-llama');
    tok = await Tokenizer.fromDir(path.join(dir, 'base'));
    trainer = await LoraTrainer.create({
      model: path.join(dir, 'base'),
      backend: 'wasm',
      initAdapter: path.join(dir, 'sft-init-adapter'),
      dropout: 0,
    });
  });
  after(() => trainer?.dispose());

  it('a packed row scores as its examples apart (no attention across examples, positions restart)', async () => {
    const texts = [
      '### Human: Hi ### Assistant: Hello.',
      '### Human: Count to three. ### Assistant: 1 2 3',
      'Short one.',
    ];
    const examples = texts.map((text) => formatRecord({ text }, { tokenizer: tok, maxLength: 64 }));
    const rows = packExamples(examples, 64);
    expect(rows).to.have.length(1);
    const packed = await trainer.evalLoss([collate(rows, 2)]);
    const apart = await trainer.evalLoss(examples.map((e) => collate([e], 2)));
    expect(packed.targetTokens).to.equal(apart.targetTokens);
    expect(Math.abs(packed.loss - apart.loss)).to.be.below(1e-5);
  });

  it('dropout is seeded: the same step draws the same masks; 0 draws none', async function () {
    const batch = collate(
      [formatRecord({ text: 'The quick brown fox.' }, { tokenizer: tok, maxLength: 32 })],
      2,
    );
    const noDrop = await trainer.lossAndGrads([batch]);
    const g0 = trainer.gradients.map((g) => Float32Array.from(g));
    const dropping = await LoraTrainer.create({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      backend: 'wasm',
      initAdapter: sharedPath(this, 'fixtures', 'tiny-llama', 'sft-init-adapter'),
      dropout: 0.3,
      seed: 3,
    });
    try {
      const a = await dropping.lossAndGrads([batch], 5);
      const ga = dropping.gradients.map((g) => Float32Array.from(g));
      const b = await dropping.lossAndGrads([batch], 5);
      expect(b.loss).to.equal(a.loss);
      for (const [i, g] of dropping.gradients.entries())
        expect(Array.from(g)).to.deep.equal(Array.from(ga[i]));
      const c = await dropping.lossAndGrads([batch], 6);
      expect(c.loss).to.not.equal(a.loss);
      expect(a.loss).to.not.equal(noDrop.loss);
      // LoRA with B ≠ 0 contributes: dropout changes the gradients too.
      expect(Array.from(ga[0])).to.not.deep.equal(Array.from(g0[0]));
    } finally {
      dropping.dispose();
    }
  });
});
