import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  activeBackend,
  argmax,
  BackendError,
  Checkpoint,
  initBackend,
  isPolyglotError,
  LlamaModel,
  llamaConfig,
  loadAdapterTensors,
  mergeLoraInto,
  RopeTable,
  randomWeightSource,
  readAdapter,
  ropeInvFreq,
  SafetensorsFile,
  type WeightSource,
  webgpuAdapterInfo,
} from '../src/index.js';

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
  sum_logprob: number;
  last_logits_top5_ids: number[];
  last_logits_top5_values: number[];
  last_logits_first16: number[];
  greedy_new_ids: number[];
}

interface Reference {
  prompts: string[];
  base: RefEntry[];
  adapter: RefEntry[];
  merged: RefEntry[];
  base_bf16_weights: RefEntry[];
  base_batched_greedy_left_padded: number[][];
}

const TOL = 1e-4;
const PAD = 2;

function tiny(ctx: Mocha.Context, ...parts: string[]): string {
  return sharedPath(ctx, 'fixtures', 'tiny-llama', ...parts);
}

function readReference(ctx: Mocha.Context): Reference {
  return JSON.parse(readFileSync(tiny(ctx, 'reference.json'), 'utf8')) as Reference;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function leftPad(rows: number[][]): { ids: number[][]; mask: number[][] } {
  const T = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...new Array<number>(T - r.length).fill(PAD), ...r]),
    mask: rows.map((r) => Array.from({ length: T }, (_, t) => (t >= T - r.length ? 1 : 0))),
  };
}

function topK(values: Float32Array, k: number): number[] {
  return Array.from(values.keys())
    .sort((a, b) => values[b] - values[a])
    .slice(0, k);
}

/** Token log-probs (right-padded batch), last logits (left-padded batch) and greedy ids against the reference. */
async function checkEntries(model: LlamaModel, entries: RefEntry[]): Promise<void> {
  const scores = await model.scoreBatch(entries.map((e) => e.input_ids));
  entries.forEach((e, i) => {
    expect(scores[i].tokenLogprobs).to.have.length(e.token_logprobs.length);
    expect(
      maxAbsDiff(scores[i].tokenLogprobs, e.token_logprobs),
      `token log-probs of prompt ${i}`,
    ).to.be.below(TOL);
    expect(scores[i].sumLogprob).to.be.closeTo(e.sum_logprob, 1e-3);
  });
  const { ids, mask } = leftPad(entries.map((e) => e.input_ids));
  const last = await model.forward(ids, mask, { positions: 'last' });
  expect([last.batch, last.length, last.vocab]).to.deep.equal([entries.length, 1, model.config.vocabSize]);
  entries.forEach((e, i) => {
    const row = last.data.subarray(i * last.vocab, (i + 1) * last.vocab);
    expect(maxAbsDiff(row.subarray(0, 16), e.last_logits_first16), `last logits of prompt ${i}`).to.be.below(
      TOL,
    );
    expect(topK(row, 5)).to.deep.equal(e.last_logits_top5_ids);
    expect(
      maxAbsDiff(
        e.last_logits_top5_ids.map((id) => row[id]),
        e.last_logits_top5_values,
      ),
    ).to.be.below(TOL);
  });
  const greedy = await model.greedy(
    entries.map((e) => e.input_ids),
    entries[0].greedy_new_ids.length,
    { leftPad: false },
  );
  expect(greedy).to.deep.equal(entries.map((e) => e.greedy_new_ids));
}

async function expectCode(
  run: () => Promise<unknown> | unknown,
  code: string,
  ...fragments: string[]
): Promise<Error> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error, `expected an error ${code}`).to.be.instanceOf(Error);
  expect(isPolyglotError(error), String(error)).to.equal(true);
  const err = error as Error & { code: string };
  expect(err.code, err.message).to.equal(code);
  for (const f of fragments) expect(err.message).to.include(f);
  return err;
}

/** The base checkpoint with some tensors replaced (the 14 that PEFT's merge_and_unload changed). */
async function withOverrides(ckpt: Checkpoint, file: SafetensorsFile): Promise<WeightSource> {
  const replaced = new Set(file.names());
  return {
    config: ckpt.config,
    dir: `${ckpt.dir} + ${file.path}`,
    tensorNames: () => ckpt.tensorNames(),
    tensorInfo: (name) =>
      replaced.has(name) ? { shape: [...file.info(name).shape] } : ckpt.tensorInfo(name),
    readFloat32: (name) => (replaced.has(name) ? file.readFloat32(name) : ckpt.readFloat32(name)),
  };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Llama runtime on ${backend}`, () => {
    let ref: Reference;
    let base: LlamaModel;

    before(async function () {
      ref = readReference(this);
      base = await LlamaModel.load(tiny(this, 'base'), { backend });
    });

    after(() => {
      base?.dispose();
    });

    it('loads on the requested backend', () => {
      expect(base.backend).to.equal(backend);
      expect(base.attention).to.equal(backend === 'wasm' ? 'host' : 'tensor');
      expect(activeBackend()).to.equal(backend);
    });

    it('base: token log-probs, last logits and greedy ids match transformers', async () => {
      await checkEntries(base, ref.base);
      const one = await base.scoreTokens(ref.base[2].input_ids);
      expect(maxAbsDiff(one.tokenLogprobs, ref.base[2].token_logprobs)).to.be.below(TOL);
    });

    it('the five prompts as one left-padded batch (pad id 2) give base_batched_greedy_left_padded', async () => {
      const prompts = ref.base.map((e) => e.input_ids);
      const batched = await base.greedy(prompts, 8, { padId: PAD });
      expect(batched).to.deep.equal(ref.base_batched_greedy_left_padded);
      expect(batched).to.deep.equal(ref.base.map((e) => e.greedy_new_ids.slice(0, 8)));
    });

    it('applies LoRA adapters un-merged and switches between them and the base', async function () {
      const model = await LlamaModel.load(tiny(this, 'base'), {
        backend,
        adapters: { peft: tiny(this, 'adapter'), sft: tiny(this, 'sft-after-steps-adapter') },
      });
      const merged = await LlamaModel.load(tiny(this, 'base'), {
        backend,
        adapters: { sft: tiny(this, 'sft-after-steps-adapter') },
        mergeAdapter: true,
      });
      try {
        expect(model.adapterNames).to.deep.equal(['peft', 'sft']);
        expect(model.activeAdapter).to.equal('peft');
        await checkEntries(model, ref.adapter);
        const ids = ref.base[0].input_ids;
        model.setActiveAdapter(null);
        expect(
          maxAbsDiff((await model.scoreTokens(ids)).tokenLogprobs, ref.base[0].token_logprobs),
        ).to.be.below(TOL);
        // The second adapter, un-merged, agrees with the same adapter merged into the weights.
        model.setActiveAdapter('sft');
        const sft = (await model.scoreTokens(ids)).tokenLogprobs;
        expect(maxAbsDiff(sft, (await merged.scoreTokens(ids)).tokenLogprobs)).to.be.below(TOL);
        expect(maxAbsDiff(sft, ref.adapter[0].token_logprobs)).to.be.above(1e-3);
        model.setActiveAdapter('peft');
        const on = await model.scoreTokens(ref.adapter[1].input_ids);
        expect(maxAbsDiff(on.tokenLogprobs, ref.adapter[1].token_logprobs)).to.be.below(TOL);
      } finally {
        model.dispose();
        merged.dispose();
      }
    });

    it('merges the adapter in memory (W + scale·BA) and matches the PEFT-merged model', async function () {
      const model = await LlamaModel.load(tiny(this, 'base'), {
        backend,
        adapters: { peft: tiny(this, 'adapter') },
        mergeAdapter: true,
      });
      try {
        expect(model.adapterNames).to.deep.equal([]);
        expect(model.mergedAdapters).to.deep.equal(['peft']);
        await checkEntries(model, ref.merged);
      } finally {
        model.dispose();
      }
    });

    it('base weights with the 14 tensors PEFT merged give the merged reference', async function () {
      const ckpt = await Checkpoint.open(tiny(this, 'base'));
      const changed = await SafetensorsFile.open(tiny(this, 'merged-by-peft', 'changed-tensors.safetensors'));
      try {
        expect(changed.names()).to.have.length(14);
        const model = await LlamaModel.load(await withOverrides(ckpt, changed), { backend });
        try {
          await checkEntries(model, ref.merged);
        } finally {
          model.dispose();
        }
      } finally {
        await changed.close();
        await ckpt.close();
      }
    });

    it('BF16 weights (upcast, computed in float32) match base_bf16_weights', async function () {
      const model = await LlamaModel.load(tiny(this, 'base-bf16'), { backend });
      try {
        await checkEntries(model, ref.base_bf16_weights);
      } finally {
        model.dispose();
      }
    });

    it('loads the FP16 checkpoint (close to the float32 weights, not identical)', async function () {
      const model = await LlamaModel.load(tiny(this, 'base-fp16'), { backend });
      try {
        const [s] = await model.scoreBatch([ref.base[0].input_ids]);
        const diff = maxAbsDiff(s.tokenLogprobs, ref.base[0].token_logprobs);
        expect(diff).to.be.below(0.02);
        expect(diff).to.be.above(0);
      } finally {
        model.dispose();
      }
    });

    it('forward with a cache continues a prompt chunk by chunk (left-padded rows)', async () => {
      const entries = [ref.base[1], ref.base[3]];
      const { ids, mask } = leftPad(entries.map((e) => e.input_ids));
      const T = ids[0].length;
      const cuts = [0, 9, T - 10, T - 1, T]; // chunks of 9, ≥ 8 and 1 tokens: both kernel paths of the host cache
      const cache = base.createCache(entries.length, 4);
      try {
        let last: Float32Array = new Float32Array(0);
        for (let i = 0; i + 1 < cuts.length; i++) {
          const cut = (rows: number[][]) => rows.map((r) => r.slice(cuts[i], cuts[i + 1]));
          const out = await base.forward(cut(ids), cut(mask), { cache, positions: 'last' });
          last = out.data;
        }
        expect(cache.length).to.equal(T);
        entries.forEach((e, i) => {
          const row = last.subarray(i * base.config.vocabSize, (i + 1) * base.config.vocabSize);
          expect(maxAbsDiff(row.subarray(0, 16), e.last_logits_first16)).to.be.below(TOL);
        });
      } finally {
        cache.dispose();
      }
    });

    it('prefill/decodeStep: no tensor leak per step, the cache grows past its capacity, ids stay exact', async () => {
      const before = tf.memory().numTensors;
      const e = ref.base[1];
      const state = await base.prefill([e.input_ids], { maxNewTokens: 1 });
      const afterPrefill = tf.memory().numTensors;
      const ids: number[] = [];
      const V = base.config.vocabSize;
      expect(state.logits).to.have.length(V);
      for (let step = 0; step < e.greedy_new_ids.length; step++) {
        const next = argmax(state.logits, 0, V);
        ids.push(next);
        const logits = await state.decodeStep([next]);
        expect(logits).to.have.length(V);
        expect(tf.memory().numTensors, `tensors after step ${step}`).to.equal(afterPrefill);
      }
      expect(ids).to.deep.equal(e.greedy_new_ids);
      state.dispose();
      expect(tf.memory().numTensors).to.equal(before);
      await base.scoreBatch(ref.base.slice(0, 2).map((x) => x.input_ids));
      await base.greedy([e.input_ids, ref.base[3].input_ids], 3);
      expect(tf.memory().numTensors).to.equal(before);
    });

    it('scoreBatch { greedy: true } flags the tokens that are the argmax (reference top-1 per position)', async function () {
      const raw = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as {
        base: { input_ids: number[]; top5_ids_per_position: number[][] }[];
      };
      const seqs = raw.base.map((e) => e.input_ids);
      const scores = await base.scoreBatch(seqs, { greedy: true });
      scores.forEach((s, i) => {
        const expected = seqs[i].slice(1).map((id, t) => raw.base[i].top5_ids_per_position[t][0] === id);
        expect(s.greedy, `prompt ${i}`).to.deep.equal(expected);
        expect(maxAbsDiff(s.tokenLogprobs, ref.base[i].token_logprobs)).to.be.below(TOL);
      });
      // (The random fixture model never predicts a prompt token as its top-1.) A prompt followed by its greedy
      // continuation: every continuation token is the argmax.
      const e = ref.base[4];
      const whole = await base.scoreTokens([...e.input_ids, ...e.greedy_new_ids], { greedy: true });
      expect(whole.greedy!.slice(e.input_ids.length - 1)).to.deep.equal(e.greedy_new_ids.map(() => true));
      expect((await base.scoreTokens([1], { greedy: true })).greedy).to.deep.equal([]);
      expect((await base.scoreTokens(e.input_ids)).greedy).to.equal(undefined);
    });

    it('decodeStep { active }: inactive rows are masked padding and do not advance their position', async () => {
      const V = base.config.vocabSize;
      const short = ref.base[3]; // 20 tokens
      const long = ref.base[1]; // 45 tokens
      // Alone, the long prompt generates its greedy ids.
      const state = await base.prefill([long.input_ids, short.input_ids], { maxNewTokens: 4 });
      try {
        const ids: number[] = [];
        for (let step = 0; step < 12; step++) {
          const next = argmax(state.logits, 0, V);
          ids.push(next);
          // Row 1 stopped after its prefill: it rides along as masked padding.
          await state.decodeStep([next, PAD], { active: [true, false] });
        }
        expect(ids).to.deep.equal(long.greedy_new_ids);
        expect(state.cache.nextPos[1]).to.equal(short.input_ids.length);
        expect(state.cache.nextPos[0]).to.equal(long.input_ids.length + 12);
        await expectCode(() => state.decodeStep([1, 1], { active: [true] }), 'BATCH_MISMATCH');
      } finally {
        state.dispose();
      }
      // A row near max_position_embeddings can stay inactive for more steps than positions are left.
      const maxPos = base.config.maxPositionEmbeddings;
      const near = new Array<number>(maxPos).fill(29871);
      const st = await base.prefill([[1, 15043], near], { maxNewTokens: 3 });
      try {
        for (let step = 0; step < 3; step++) await st.decodeStep([29871, PAD], { active: [true, false] });
        expect(st.cache.nextPos).to.deep.equal([5, maxPos]);
        await expectCode(() => st.decodeStep([29871, PAD]), 'PROMPT_TOO_LONG');
      } finally {
        st.dispose();
      }
    });

    it('a disposed model frees all its tensors', async function () {
      const before = tf.memory().numTensors;
      const model = await LlamaModel.load(tiny(this, 'base'), {
        backend,
        adapters: { peft: tiny(this, 'adapter') },
      });
      expect(tf.memory().numTensors).to.be.above(before);
      model.dispose();
      expect(tf.memory().numTensors).to.equal(before);
      await expectCode(() => model.scoreTokens([1, 2]), 'MODEL_DISPOSED');
    });
  });
}

describe('Llama runtime: the other attention implementation on each backend', () => {
  it('tensor-op attention on wasm matches the reference (log-probs, batched greedy)', async function () {
    const ref = readReference(this);
    const model = await LlamaModel.load(tiny(this, 'base'), { backend: 'wasm', attention: 'tensor' });
    try {
      const scores = await model.scoreBatch(ref.base.map((e) => e.input_ids));
      for (const [i, s] of scores.entries()) {
        expect(maxAbsDiff(s.tokenLogprobs, ref.base[i].token_logprobs)).to.be.below(TOL);
      }
      const batched = await model.greedy(
        ref.base.map((e) => e.input_ids),
        8,
        { padId: PAD },
      );
      expect(batched).to.deep.equal(ref.base_batched_greedy_left_padded);
    } finally {
      model.dispose();
    }
  });

  it('host attention on cpu matches the reference', async function () {
    const ref = readReference(this);
    const model = await LlamaModel.load(tiny(this, 'base'), { backend: 'cpu', attention: 'host' });
    try {
      const entries = [ref.base[3], ref.base[4]];
      const scores = await model.scoreBatch(entries.map((e) => e.input_ids));
      for (const [i, s] of scores.entries()) {
        expect(maxAbsDiff(s.tokenLogprobs, entries[i].token_logprobs)).to.be.below(TOL);
      }
      const greedy = await model.greedy(
        entries.map((e) => e.input_ids),
        4,
        { padId: PAD },
      );
      expect(greedy).to.deep.equal(entries.map((e) => e.greedy_new_ids.slice(0, 4)));
    } finally {
      model.dispose();
    }
  });
});

describe('Llama runtime: LoRA merge arithmetic', () => {
  it('mergeLoraInto reproduces the weights PEFT merged (1e-5 relative)', async function () {
    const ckpt = await Checkpoint.open(tiny(this, 'base'));
    const changed = await SafetensorsFile.open(tiny(this, 'merged-by-peft', 'changed-tensors.safetensors'));
    try {
      const adapter = await readAdapter(tiny(this, 'adapter'));
      const factors = await loadAdapterTensors(adapter);
      for (const m of adapter.modules) {
        const w = await ckpt.readFloat32(m.baseWeight);
        const [out, inDim] = ckpt.tensorInfo(m.baseWeight).shape;
        mergeLoraInto(w, [out, inDim], factors.get(m.aKey)!, factors.get(m.bKey)!, m.scale);
        const want = await changed.readFloat32(m.baseWeight);
        let worst = 0;
        for (let i = 0; i < w.length; i++)
          worst = Math.max(worst, Math.abs(w[i] - want[i]) / (Math.abs(want[i]) + 1e-3));
        expect(worst, m.baseWeight).to.be.below(1e-5);
      }
      expect(adapter.modules).to.have.length(14);
    } finally {
      await changed.close();
      await ckpt.close();
    }
  });
});

describe('Llama runtime: rotary embeddings', () => {
  it('inverse frequencies are 1/theta^(2i/d) in float32', () => {
    const inv = ropeInvFreq({ dim: 16, theta: 10000, scaling: null });
    expect(inv).to.have.length(8);
    for (let i = 0; i < 8; i++) expect(inv[i]).to.equal(Math.fround(1 / Math.fround(10000 ** (i / 8))));
    const table = new RopeTable({ dim: 16, theta: 10000, scaling: null });
    expect(table.cos(0)[3]).to.equal(1);
    expect(table.sin(5)[0]).to.equal(Math.fround(Math.sin(5)));
    const linear = ropeInvFreq({ dim: 16, theta: 10000, scaling: { type: 'linear', factor: 4 } });
    expect(linear[1]).to.equal(Math.fround(inv[1] / 4));
  });

  it('llama3 scaling keeps high frequencies, divides low ones by the factor, smooths between', () => {
    const dim = 128;
    const plain = ropeInvFreq({ dim, theta: 500000, scaling: null });
    const scaled = ropeInvFreq({
      dim,
      theta: 500000,
      scaling: {
        type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const wavelen = (i: number) => (2 * Math.PI) / plain[i];
    let high = 0;
    let low = 0;
    let mid = 0;
    for (let i = 0; i < dim / 2; i++) {
      if (wavelen(i) < 8192 / 4) {
        expect(scaled[i]).to.equal(plain[i]);
        high++;
      } else if (wavelen(i) > 8192) {
        expect(scaled[i]).to.be.closeTo(plain[i] / 8, plain[i] * 1e-6);
        low++;
      } else {
        expect(scaled[i])
          .to.be.below(plain[i])
          .and.above(plain[i] / 8);
        mid++;
      }
    }
    expect(high > 0 && low > 0 && mid > 0).to.equal(true);
  });

  it('unknown rope scaling types are a typed error, at load before anything is uploaded', async () => {
    await expectCode(
      () => ropeInvFreq({ dim: 16, theta: 1e4, scaling: { type: 'yarn', factor: 4 } }),
      'UNSUPPORTED_ROPE_SCALING',
      'yarn',
    );
    await initBackend('wasm');
    const config = {
      ...llamaConfig({
        hiddenSize: 16,
        intermediateSize: 32,
        numHiddenLayers: 1,
        numAttentionHeads: 2,
        vocabSize: 64,
      }),
      ropeScaling: { type: 'dynamic', factor: 2 },
    };
    const before = tf.memory().numTensors;
    await expectCode(
      () => LlamaModel.load(randomWeightSource(config)),
      'UNSUPPORTED_ROPE_SCALING',
      'dynamic',
    );
    expect(tf.memory().numTensors).to.equal(before);
  });
});

describe('Llama runtime: errors', () => {
  let ref: Reference;
  let base: LlamaModel;

  before(async function () {
    ref = readReference(this);
    base = await LlamaModel.load(tiny(this, 'base'), { backend: 'wasm' });
  });

  after(() => {
    base?.dispose();
  });

  function source(ckpt: Checkpoint, change: Partial<WeightSource>): WeightSource {
    return {
      config: ckpt.config,
      dir: ckpt.dir,
      tensorNames: () => ckpt.tensorNames(),
      tensorInfo: (n) => ckpt.tensorInfo(n),
      readFloat32: (n) => ckpt.readFloat32(n),
      ...change,
    };
  }

  it('config/weights shape mismatch names the tensor, expected and found shapes', async function () {
    const ckpt = await Checkpoint.open(tiny(this, 'base'));
    try {
      const config = { ...ckpt.config, intermediateSize: 128 };
      await expectCode(
        () => LlamaModel.load(source(ckpt, { config }), { backend: 'wasm' }),
        'CHECKPOINT_SHAPE_MISMATCH',
        'model.layers.0.mlp.gate_proj.weight',
        '[176, 64]',
        '[128, 64]',
      );
    } finally {
      await ckpt.close();
    }
  });

  it('a missing tensor is named', async function () {
    const ckpt = await Checkpoint.open(tiny(this, 'base'));
    try {
      const gone = 'model.layers.1.mlp.up_proj.weight';
      await expectCode(
        () =>
          LlamaModel.load(source(ckpt, { tensorNames: () => ckpt.tensorNames().filter((n) => n !== gone) })),
        'CHECKPOINT_MISSING_TENSOR',
        gone,
      );
    } finally {
      await ckpt.close();
    }
  });

  it('an adapter for a different model: target module missing, or factor shapes that do not fit', async function () {
    const oneLayer = randomWeightSource(
      llamaConfig({
        hiddenSize: 64,
        intermediateSize: 176,
        numHiddenLayers: 1,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        vocabSize: 512,
      }),
    );
    await expectCode(
      () => LlamaModel.load(oneLayer, { backend: 'wasm', adapters: { peft: tiny(this, 'adapter') } }),
      'ADAPTER_MODEL_MISMATCH',
      'model.layers.1.',
    );
    const narrow = randomWeightSource(
      llamaConfig({
        hiddenSize: 32,
        intermediateSize: 176,
        numHiddenLayers: 2,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        vocabSize: 512,
      }),
    );
    await expectCode(
      () => LlamaModel.load(narrow, { backend: 'wasm', adapters: { peft: tiny(this, 'adapter') } }),
      'ADAPTER_SHAPE_MISMATCH',
      'model.layers.0.',
      'different model',
    );
  });

  it('empty prompts, too-long prompts, decoding past max positions and bad token ids are typed errors', async () => {
    await expectCode(() => base.scoreTokens([]), 'EMPTY_PROMPT');
    await expectCode(() => base.greedy([[1, 835], []], 2), 'EMPTY_PROMPT', 'sequence 1');
    const max = base.config.maxPositionEmbeddings;
    const long = Array.from({ length: max + 1 }, (_, i) => 3 + (i % 100));
    await expectCode(() => base.scoreTokens(long), 'PROMPT_TOO_LONG', String(max));
    await expectCode(() => base.prefill([long]), 'PROMPT_TOO_LONG');
    const state = await base.prefill([long.slice(0, max - 1)]);
    try {
      await state.decodeStep([5]); // position max-1: the last one
      await expectCode(() => state.decodeStep([5]), 'PROMPT_TOO_LONG', String(max));
      await expectCode(() => state.decodeStep([5, 6]), 'BATCH_MISMATCH');
    } finally {
      state.dispose();
    }
    await expectCode(() => base.scoreTokens([1, base.config.vocabSize]), 'TOKEN_OUT_OF_RANGE');
    await expectCode(() => base.greedy([[1, -1]], 1), 'TOKEN_OUT_OF_RANGE');
    // The model still works after the rejected calls.
    const s = await base.scoreTokens(ref.base[4].input_ids);
    expect(maxAbsDiff(s.tokenLogprobs, ref.base[4].token_logprobs)).to.be.below(TOL);
  });

  it('adapter names are checked', async function () {
    await expectCode(() => base.setActiveAdapter('nope'), 'ADAPTER_UNKNOWN', 'nope');
    await expectCode(
      () =>
        LlamaModel.load(tiny(this, 'base'), {
          backend: 'wasm',
          adapters: { a: tiny(this, 'adapter'), b: tiny(this, 'sft-init-adapter') },
          mergeAdapter: true,
        }),
      'ADAPTER_MERGE',
    );
    await expectCode(
      () =>
        LlamaModel.load(tiny(this, 'base'), { adapters: { a: tiny(this, 'adapter') }, activeAdapter: 'b' }),
      'ADAPTER_UNKNOWN',
    );
  });

  it('backends that are not installed fail loudly and leave the active backend alone', async () => {
    expect(await initBackend('wasm')).to.equal('wasm');
    // Where Dawn finds an adapter (a GPU, or Mesa's lavapipe), webgpu starts: test/webgpu.test.ts covers it.
    if ((await webgpuAdapterInfo().catch(() => null)) === null) {
      const webgpu = await expectCode(() => initBackend('webgpu'), 'BACKEND_UNAVAILABLE', 'webgpu');
      expect(webgpu).to.be.instanceOf(BackendError);
    }
    await expectCode(() => initBackend('tensorflow'), 'BACKEND_UNAVAILABLE', '@tensorflow/tfjs-node');
    await expectCode(() => initBackend('metal' as never), 'BACKEND_UNKNOWN');
    expect(activeBackend()).to.equal('wasm');
    expect(await initBackend('auto')).to.equal('wasm');
  });
});
