import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { argmax, DecodeState, isPolyglotError, LlamaModel } from '../src/index.js';

const PROMPTS = [
  [1, 15043, 29892, 590, 1024, 338],
  [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366],
  [1, 3532, 29871],
  [1, 306, 763, 304, 1708, 29889, 1724],
];
const STEPS = 10;

/** The last-position logits of `prompt` decoded greedily alone, one row per step (prefill first). */
async function solo(model: LlamaModel, prompt: number[]): Promise<Float32Array[]> {
  const V = model.config.vocabSize;
  const state = await model.prefill([prompt], { maxNewTokens: STEPS });
  const out = [state.logits.slice()];
  try {
    for (let s = 1; s < STEPS; s++) {
      await state.decodeStep([argmax(state.logits, 0, V)]);
      out.push(state.logits.slice());
    }
  } finally {
    state.dispose();
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const attention of ['host', 'tensor'] as const) {
  describe(`DecodeState.combine (continuous batching), ${attention} attention`, () => {
    let model: LlamaModel;
    let reference: Float32Array[][];

    before(async function () {
      model = await LlamaModel.load(sharedPath(this, 'fixtures', 'tiny-llama', 'base'), {
        backend: 'wasm',
        attention,
      });
      reference = [];
      for (const p of PROMPTS) reference.push(await solo(model, p));
    });

    after(() => model?.dispose());

    it('rows dropped and added between steps decode as they do alone', async () => {
      const V = model.config.vocabSize;
      // Each live sequence: its prompt index and how many logits rows it has seen.
      type Live = { p: number; step: number };
      const check = (state: DecodeState, live: Live[]) => {
        live.forEach((r, b) => {
          const got = state.logits.subarray(b * V, (b + 1) * V);
          // A padded prefill's matmuls differ from a solo run's by a few ulps.
          expect(maxAbsDiff(got, reference[r.p][r.step]), `prompt ${r.p} step ${r.step}`).to.be.below(1e-5);
        });
      };
      const step = async (state: DecodeState, live: Live[]) => {
        const next = live.map((_, b) => argmax(state.logits, b * V, (b + 1) * V));
        await state.decodeStep(next);
        for (const r of live) r.step++;
        check(state, live);
      };

      let state = await model.prefill([PROMPTS[0], PROMPTS[1]], { maxNewTokens: 4 });
      let live: Live[] = [
        { p: 0, step: 0 },
        { p: 1, step: 0 },
      ];
      check(state, live);
      await step(state, live);
      await step(state, live);
      const before = state.cache.length;

      // Drop prompt 1 (the longer, left-most row) and add prompts 2 and 3, prefilled as their own batch.
      const fresh = await model.prefill([PROMPTS[2], PROMPTS[3]], { maxNewTokens: 4 });
      state = DecodeState.combine([{ state, rows: [0] }, { state: fresh }]);
      expect(fresh.cache.isDisposed).to.equal(true);
      live = [live[0], { p: 2, step: 0 }, { p: 3, step: 0 }];
      expect(state.batch).to.equal(3);
      // Prompt 0's padding in the first batch is gone: the result is as long as its longest row needs.
      expect(state.cache.length).to.equal(Math.max(PROMPTS[0].length + 2, PROMPTS[3].length));
      expect(state.cache.length).to.be.below(before);
      check(state, live);
      for (let s = 0; s < 3; s++) await step(state, live);

      // Reorder and drop again (one part, no newcomers), then decode to the end.
      state = DecodeState.combine([{ state, rows: [2, 0] }]);
      live = [live[2], live[0]];
      check(state, live);
      while (live.every((r) => r.step + 1 < STEPS)) await step(state, live);
      state.dispose();
    });

    it('combining is exact: rows decode as they would have in their own batches', async () => {
      const V = model.config.vocabSize;
      const greedy = (s: DecodeState) =>
        Array.from({ length: s.batch }, (_, b) => argmax(s.logits, b * V, (b + 1) * V));
      // Separately: two batches stepped on their own.
      const x = await model.prefill([PROMPTS[0], PROMPTS[1]]);
      await x.decodeStep(greedy(x));
      await x.decodeStep(greedy(x));
      const y = await model.prefill([PROMPTS[2], PROMPTS[3]]);
      // Combined: the same batches, row 1 of the first dropped, joined after two steps.
      const cx = await model.prefill([PROMPTS[0], PROMPTS[1]]);
      await cx.decodeStep(greedy(cx));
      await cx.decodeStep(greedy(cx));
      const cy = await model.prefill([PROMPTS[2], PROMPTS[3]]);
      const c = DecodeState.combine([{ state: cx, rows: [0] }, { state: cy }]);
      for (let s = 0; s < 4; s++) {
        const nx = greedy(x);
        const ny = greedy(y);
        const nc = greedy(c);
        expect(nc).to.deep.equal([nx[0], ...ny]);
        await x.decodeStep(nx);
        await y.decodeStep(ny);
        await c.decodeStep(nc);
        const want = [x.logits.subarray(0, V), y.logits.subarray(0, V), y.logits.subarray(V, 2 * V)];
        want.forEach((w, b) => {
          const diff = maxAbsDiff(c.logits.subarray(b * V, (b + 1) * V), w);
          // Host attention reads each row's own valid slots only (padding adds exact zeros): bitwise equal.
          if (attention === 'host') expect(diff, `row ${b} step ${s}`).to.equal(0);
          else expect(diff, `row ${b} step ${s}`).to.be.below(1e-5);
        });
      }
      for (const s of [x, y, c]) s.dispose();
    });

    it('can leave the logits behind (callers that sampled from them already)', async () => {
      const a = await model.prefill([PROMPTS[0], PROMPTS[1]]);
      const c = DecodeState.combine([{ state: a, rows: [1] }], { logits: false });
      expect(c.logits.length).to.equal(0);
      expect(c.batch).to.equal(1);
      await c.decodeStep([42]);
      expect(c.logits.length).to.equal(model.config.vocabSize);
      c.dispose();
    });

    it('refuses empty selections and rows outside the batch', async () => {
      const a = await model.prefill([PROMPTS[0]]);
      const codes: string[] = [];
      for (const parts of [[], [{ state: a, rows: [] }], [{ state: a, rows: [1] }]]) {
        try {
          DecodeState.combine(parts);
        } catch (e) {
          expect(isPolyglotError(e)).to.equal(true);
          codes.push((e as { code: string }).code);
        }
      }
      expect(codes).to.deep.equal(['EMPTY_BATCH', 'EMPTY_BATCH', 'BATCH_MISMATCH']);
      expect(a.cache.isDisposed).to.equal(false);
      a.dispose();
    });
  });
}
