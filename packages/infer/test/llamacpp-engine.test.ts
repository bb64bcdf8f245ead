// The llamacpp engine (node-llama-cpp 3.21.1, CPU) on GGUF exports of the tiny-llama fixture: log-probs and greedy
// ids against transformers' reference and our local engine, per dtype; sampling, seeds, stop strings, log-probs,
// loglikelihood, adapters, batching; and llama.cpp's own tokenizer against the fixture's ids.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportGguf, isPolyglotError, TINY_CONFIGS, Tokenizer, writeRandomLlama } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  type GenerateParams,
  importNodeLlamaCpp,
  LlamaCppEngine,
  LocalEngine,
  openEngine,
  parseEngineSpec,
} from '../src/index.js';

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
  greedy_new_ids: number[];
}
interface Reference {
  prompts: string[];
  base: RefEntry[];
  adapter: RefEntry[];
  merged: RefEntry[];
  base_batched_greedy_left_padded: number[][];
}

/**
 * Tolerances on token log-probs vs transformers (float32 reference), per GGUF weight type: max and mean |diff|.
 * Q8_0 rounds weights to 8 bits per block of 32 and llama.cpp also quantizes the activations to Q8_0 for its
 * matmuls, so it moves log-probs by a few 1e-2 at most on this random model.
 */
const TOL = { f32: [1e-3, 1e-4], f16: [5e-3, 1e-3], q8_0: [1e-1, 2e-2] } as const;
// One llama.cpp thread: the test machine is shared, and llama.cpp's threads spin while waiting for each other.
const THREADS = 1;

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).to.equal(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

describe('llamacpp engine (node-llama-cpp, CPU)', function () {
  this.timeout(300_000);
  let tmp: string;
  let base: string;
  let ref: Reference;
  const engines: Record<string, LlamaCppEngine> = {};
  let local: LocalEngine;

  before(async function () {
    base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    ref = JSON.parse(readFileSync(sharedPath(this, 'fixtures', 'tiny-llama', 'reference.json'), 'utf8'));
    tmp = mkdtempSync(path.join(tmpdir(), 'llamacpp-'));
    for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
      const file = path.join(tmp, `tiny-${dtype}.gguf`);
      await exportGguf(base, file, { dtype });
      engines[dtype] = await LlamaCppEngine.load({ model: file, threads: THREADS, seed: 1 });
    }
    local = await LocalEngine.load({ model: base, backend: 'cpu', seed: 1 });
  });
  after(async () => {
    for (const e of Object.values(engines)) await e.close();
    await local?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
    it(`${dtype}: token log-probs match transformers (max |diff| < ${TOL[dtype][0]}, mean < ${TOL[dtype][1]})`, async () => {
      const scores = await engines[dtype].score(ref.base.map((c) => ({ inputIds: c.input_ids })));
      let worst = 0;
      let sum = 0;
      let n = 0;
      scores.forEach((s, i) => {
        worst = Math.max(worst, maxDiff(s.tokenLogprobs, ref.base[i].token_logprobs));
        s.tokenLogprobs.forEach((v, j) => {
          sum += Math.abs(v - ref.base[i].token_logprobs[j]);
          n++;
        });
      });
      console.log(
        `      ${dtype}: token log-probs vs transformers: max |diff| ${worst.toExponential(2)}, mean ${(sum / n).toExponential(2)}`,
      );
      expect(worst).to.be.below(TOL[dtype][0]);
      expect(sum / n).to.be.below(TOL[dtype][1]);
    });
  }

  it('mixed-length prompts in one llama.cpp batch each read their own logits (node-llama-cpp race worked around)', async () => {
    // Without applyOutputOrderBeforeSampling about one such batch in three read another sequence's rows here.
    for (let round = 0; round < 4; round++) {
      const scores = await engines.f32.score(
        ref.base.map((c) => ({ inputIds: c.input_ids })),
        { batchSize: 5 },
      );
      scores.forEach((s, i) => {
        expect(
          maxDiff(s.tokenLogprobs, ref.base[i].token_logprobs),
          `round ${round}, prompt ${i}`,
        ).to.be.below(1e-3);
      });
    }
  });

  it('f32 and f16: greedy ids equal transformers (each prompt alone and all in one batch); q8_0 reported', async () => {
    const req = (c: RefEntry, n: number) => ({
      inputIds: c.input_ids,
      params: { temperature: 0, max_tokens: n, ignore_eos: true },
    });
    for (const dtype of ['f32', 'f16'] as const) {
      const alone: number[][] = [];
      for (const c of ref.base) alone.push((await engines[dtype].generate([req(c, 12)]))[0].outputIds);
      expect(alone, dtype).to.deep.equal(ref.base.map((c) => c.greedy_new_ids));
      const batched = await engines[dtype].generate(
        ref.base.map((c) => req(c, 8)),
        { batchSize: 5 },
      );
      expect(
        batched.map((r) => r.outputIds),
        dtype,
      ).to.deep.equal(ref.base_batched_greedy_left_padded);
    }
    const q8 = await engines.q8_0.generate(ref.base.map((c) => req(c, 12)));
    let same = 0;
    q8.forEach((r, i) => {
      r.outputIds.forEach((t, j) => {
        if (t === ref.base[i].greedy_new_ids[j]) same++;
      });
    });
    console.log(`      q8_0: greedy ids equal to transformers: ${same}/60`);
  });

  it('the BF16 and FP16 fixture checkpoints: f32 export of BF16 equals transformers; f16 export of FP16 the local engine', async function () {
    const bf16 = sharedPath(this, 'fixtures', 'tiny-llama', 'base-bf16');
    const fp16 = sharedPath(this, 'fixtures', 'tiny-llama', 'base-fp16');
    const want = (ref as unknown as { base_bf16_weights: RefEntry[] }).base_bf16_weights;
    const fileBf16 = path.join(tmp, 'bf16-as-f32.gguf');
    await exportGguf(bf16, fileBf16, { dtype: 'f32', tokenizer: base });
    const e = await LlamaCppEngine.load({ model: fileBf16, threads: THREADS });
    try {
      const scores = await e.score(want.map((c) => ({ inputIds: c.input_ids })));
      let worst = 0;
      scores.forEach((s, i) => {
        worst = Math.max(worst, maxDiff(s.tokenLogprobs, want[i].token_logprobs));
      });
      console.log(`      BF16 checkpoint as f32 GGUF: max |diff| vs transformers ${worst.toExponential(2)}`);
      expect(worst).to.be.below(1e-3);
      const g = await e.generate(
        want.map((c) => ({
          inputIds: c.input_ids,
          params: { temperature: 0, max_tokens: c.greedy_new_ids.length, ignore_eos: true },
        })),
      );
      expect(g.map((r) => r.outputIds)).to.deep.equal(want.map((c) => c.greedy_new_ids));
    } finally {
      await e.close();
    }
    const fileFp16 = path.join(tmp, 'fp16-as-f16.gguf'); // lossless: the weights are F16 already
    await exportGguf(fp16, fileFp16, { dtype: 'f16', tokenizer: base });
    const e16 = await LlamaCppEngine.load({ model: fileFp16, threads: THREADS });
    const l16 = await LocalEngine.load({ model: fp16, tokenizer: base, backend: 'cpu' });
    try {
      const a = await e16.score(ref.base.map((c) => ({ inputIds: c.input_ids })));
      const b = await l16.score(ref.base.map((c) => ({ inputIds: c.input_ids })));
      let worst = 0;
      a.forEach((s, i) => {
        worst = Math.max(worst, maxDiff(s.tokenLogprobs, b[i].tokenLogprobs));
      });
      console.log(
        `      FP16 checkpoint as f16 GGUF: max |diff| vs the local engine ${worst.toExponential(2)}`,
      );
      expect(worst).to.be.below(TOL.f16[0]);
    } finally {
      await e16.close();
      await l16.close();
    }
  });

  it('samples as the local engine: same seeds, same tokens; log-probs and top log-probs within 1e-3', async () => {
    const params: GenerateParams = {
      temperature: 0.8,
      top_k: 50,
      top_p: 0.9,
      frequency_penalty: 0.2,
      max_tokens: 12,
      seed: 11,
      logprobs: 3,
      ignore_eos: true,
    };
    const reqs = ref.prompts.map((prompt) => ({ prompt, params }));
    const ours = await engines.f32.generate(reqs);
    const theirs = await local.generate(reqs);
    let worst = 0;
    ours.forEach((r, i) => {
      expect(r.inputIds).to.deep.equal(theirs[i].inputIds);
      expect(r.outputIds).to.deep.equal(theirs[i].outputIds);
      expect(r.text).to.equal(theirs[i].text);
      expect(r.seed).to.equal(11);
      worst = Math.max(worst, maxDiff(r.tokenLogprobs!, theirs[i].tokenLogprobs!));
      r.topLogprobs!.forEach((top, j) => {
        expect(top.map((t) => t.token)).to.deep.equal(theirs[i].topLogprobs![j].map((t) => t.token));
      });
    });
    expect(worst).to.be.below(1e-3);
    // Without logprobs (the top-k path: llama.cpp returns only the top K' tokens) the draws are the same.
    const { logprobs: _, ...noLogprobs } = params;
    const fast = await engines.f32.generate(ref.prompts.map((prompt) => ({ prompt, params: noLogprobs })));
    expect(fast.map((r) => r.outputIds)).to.deep.equal(ours.map((r) => r.outputIds));
    // n samples: seeds seed + k; no seed: drawn from the engine's generator
    const many = await engines.f32.generate([
      { prompt: ref.prompts[0], n: 3, params: { ...noLogprobs, seed: 5 } },
    ]);
    expect(many[0].choices!.map((c) => c.seed)).to.deep.equal([5, 6, 7]);
    const again = await engines.f32.generate([
      { prompt: ref.prompts[0], params: { ...noLogprobs, seed: 6 } },
    ]);
    expect(again[0].outputIds).to.deep.equal(many[0].choices![1].outputIds);
    const top0 = await engines.f32.generate([
      { prompt: ref.prompts[1], params: { temperature: 0.7, top_p: 0.95, max_tokens: 6, seed: 3 } },
    ]);
    const top0Local = await local.generate([
      { prompt: ref.prompts[1], params: { temperature: 0.7, top_p: 0.95, max_tokens: 6, seed: 3 } },
    ]);
    expect(top0[0].outputIds).to.deep.equal(top0Local[0].outputIds);
  });

  it('repetition_penalty (applied by llama.cpp to the raw logits) decodes as the local engine', async () => {
    const params: GenerateParams = {
      temperature: 0,
      repetition_penalty: 1.5,
      max_tokens: 10,
      ignore_eos: true,
    };
    const reqs = ref.prompts.slice(0, 3).map((prompt) => ({ prompt, params }));
    const ours = await engines.f32.generate(reqs);
    const theirs = await local.generate(reqs);
    expect(ours.map((r) => r.outputIds)).to.deep.equal(theirs.map((r) => r.outputIds));
    const plain = await engines.f32.generate(
      reqs.map((r) => ({ ...r, params: { ...params, repetition_penalty: 1 } })),
    );
    expect(plain.map((r) => r.outputIds)).to.not.deep.equal(ours.map((r) => r.outputIds));
  });

  it('stop strings, stop tokens, min_tokens and EOS end generation as in the local engine', async () => {
    const greedy = (
      await engines.f32.generate([{ prompt: ref.prompts[0], params: { temperature: 0, max_tokens: 12 } }])
    )[0];
    const tok = engines.f32.tokenizer;
    const full = tok.decode(greedy.outputIds);
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
    const cases: GenerateParams[] = [
      { temperature: 0, max_tokens: 12, stop: [stop] },
      { temperature: 0, max_tokens: 12, stop_token_ids: [greedy.outputIds[3]] },
      { temperature: 0, max_tokens: 12, min_tokens: 4, stop_token_ids: [greedy.outputIds[1]] },
      { temperature: 0, max_tokens: 0 },
    ];
    for (const params of cases) {
      const [a] = await engines.f32.generate([{ prompt: ref.prompts[0], params }]);
      const [b] = await local.generate([{ prompt: ref.prompts[0], params }]);
      expect(
        { ids: a.outputIds, text: a.text, finish: a.finishReason, reason: a.stopReason },
        JSON.stringify(params),
      ).to.deep.equal({ ids: b.outputIds, text: b.text, finish: b.finishReason, reason: b.stopReason });
    }
    const [cut] = await engines.f32.generate([{ prompt: ref.prompts[0], params: cases[0] }]);
    expect(cut.finishReason).to.equal('stop');
    expect(cut.stopReason).to.equal(stop);
  });

  it('loglikelihood and score with top log-probs equal the local engine within 1e-3', async () => {
    const reqs = [
      { context: 'The capital of France is', continuation: ' Paris' },
      { context: 'Question: what is 2+2? Answer:', continuation: ' four, of course' },
      { context: '', continuation: 'Hello world' },
      { contextIds: [1, 450], continuationIds: [7483, 310] },
    ];
    const a = await engines.f32.loglikelihood(reqs);
    const b = await local.loglikelihood(reqs);
    a.forEach((r, i) => {
      expect(Math.abs(r.logprob - b[i].logprob)).to.be.below(1e-3);
      expect(r.tokens).to.equal(b[i].tokens);
      expect(r.isGreedy).to.equal(b[i].isGreedy);
    });
    // a greedy continuation is recognised as greedy
    const c = ref.base[0];
    const [g] = await engines.f32.loglikelihood([
      { contextIds: c.input_ids, continuationIds: c.greedy_new_ids.slice(0, 4) },
    ]);
    expect(g.isGreedy).to.equal(true);
    const [s] = await engines.f32.score([{ text: ref.prompts[2] }], { topLogprobs: 3 });
    const [t] = await local.score([{ text: ref.prompts[2] }], { topLogprobs: 3 });
    expect(s.inputIds).to.deep.equal(t.inputIds);
    expect(maxDiff(s.tokenLogprobs, t.tokenLogprobs)).to.be.below(1e-3);
    expect(s.topLogprobs!.map((p) => p.map((x) => x.token))).to.deep.equal(
      t.topLogprobs!.map((p) => p.map((x) => x.token)),
    );
  });

  it('renders chat messages with the tokenizer carried in the GGUF', async () => {
    const messages = [{ role: 'user', content: 'Hi there' }];
    const chat = 'guanaco';
    const e = await LlamaCppEngine.load({
      model: path.join(tmp, 'tiny-f32.gguf'),
      threads: THREADS,
      chatTemplate: chat,
      batchSize: 2,
    });
    try {
      const l = await LocalEngine.load({ model: base, backend: 'cpu', chatTemplate: chat });
      try {
        const params = { temperature: 0, max_tokens: 5 };
        const [a] = await e.generate([{ messages, params }]);
        const [b] = await l.generate([{ messages, params }]);
        expect(a.inputIds).to.deep.equal(b.inputIds);
        expect(a.outputIds).to.deep.equal(b.outputIds);
      } finally {
        await l.close();
      }
    } finally {
      await e.close();
    }
  });

  it('applies a PEFT adapter: as a llama.cpp LoRA adapter, and merged into the weights (within 1e-3)', async function () {
    const adapter = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const cacheDir = path.join(tmp, 'cache');
    for (const mergeAdapter of [false, true]) {
      const e = await LlamaCppEngine.load({
        model: base,
        dtype: 'f32',
        adapter,
        mergeAdapter,
        cacheDir,
        threads: THREADS,
      });
      try {
        expect(e.info.adapter).to.equal('adapter');
        const want = mergeAdapter ? ref.merged : ref.adapter;
        const scores = await e.score(want.map((c) => ({ inputIds: c.input_ids })));
        let worst = 0;
        scores.forEach((s, i) => {
          worst = Math.max(worst, maxDiff(s.tokenLogprobs, want[i].token_logprobs));
        });
        console.log(
          `      adapter ${mergeAdapter ? 'merged' : 'as llama.cpp LoRA'}: max |diff| ${worst.toExponential(2)}`,
        );
        expect(worst).to.be.below(1e-3);
        const [g] = await e.generate([
          { inputIds: want[0].input_ids, params: { temperature: 0, max_tokens: 6, ignore_eos: true } },
        ]);
        expect(g.outputIds).to.deep.equal(want[0].greedy_new_ids.slice(0, 6));
        if (!mergeAdapter) {
          // the base model is one option away (its own llama.cpp context)
          const [b] = await e.score([{ inputIds: ref.base[0].input_ids }], { adapter: null });
          expect(maxDiff(b.tokenLogprobs, ref.base[0].token_logprobs)).to.be.below(1e-3);
        } else {
          await expectRejects(e.score([{ inputIds: [1, 2] }], { adapter: 'other' }), 'ADAPTER_UNKNOWN');
        }
      } finally {
        await e.close();
      }
    }
  });

  it('opens llamacpp:DIR by exporting it once into the cache, and names bad specs', async () => {
    const cacheDir = path.join(tmp, 'cache2');
    expect(parseEngineSpec('llamacpp:m.gguf')).to.deep.equal({ kind: 'llamacpp', path: 'm.gguf' });
    expect(parseEngineSpec('llamacpp:dir?dtype=q8_0')).to.deep.equal({
      kind: 'llamacpp',
      path: 'dir',
      dtype: 'q8_0',
    });
    expect(() => parseEngineSpec('llamacpp:dir?dtype=q4')).to.throw(/dtype must be one of/);
    expect(() => parseEngineSpec('llamacpp:')).to.throw(/GGUF file or a model directory/);
    const e1 = await openEngine(`llamacpp:${base}?dtype=f32`, { llamacpp: { cacheDir, threads: THREADS } });
    const file = (e1 as LlamaCppEngine).ggufFile;
    expect(file.startsWith(path.join(cacheDir, 'gguf'))).to.equal(true);
    const mtime = statSync(file).mtimeMs;
    await e1.close();
    const e2 = (await openEngine(`llamacpp:${base}?dtype=f32`, {
      llamacpp: { cacheDir, threads: THREADS },
    })) as LlamaCppEngine;
    expect(e2.ggufFile).to.equal(file);
    expect(statSync(file).mtimeMs).to.equal(mtime);
    expect(e2.info.kind).to.equal('llamacpp');
    expect(e2.info.backend).to.equal('llamacpp-cpu');
    await e2.close();
    await expectRejects(e2.score([{ inputIds: [1, 2] }]), 'ENGINE_CLOSED');
  });

  it('rejects bad requests with the local engine’s errors', async () => {
    const e = engines.f32;
    await expectRejects(e.generate([{ inputIds: [1, 99999] }]), 'TOKEN_OUT_OF_RANGE');
    await expectRejects(e.generate([{ prompt: 'x', params: { max_tokens: 600 } }]), 'PROMPT_TOO_LONG');
    await expectRejects(e.generate([{ prompt: 'x', params: { temperature: -1 } }]), 'INFER_BAD_PARAM');
    await expectRejects(e.generate([{ prompt: '' }]), 'EMPTY_PROMPT');
    await expectRejects(e.score([{ inputIds: [1] }], { topLogprobs: -1 }), 'INFER_BAD_PARAM');
  });
});

describe('llamacpp engine: llama.cpp loads our GGUF tokenizers', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'llamacpp-tok-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('Llama-2 (GGUF "llama" with scores): llama.cpp tokenizes the fixture cases to the reference ids', async function () {
    const cases = (
      JSON.parse(
        readFileSync(sharedPath(this, 'fixtures', 'llama2-tokenizer', 'reference.json'), 'utf8'),
      ) as {
        cases: { text: string; ids: number[]; sentencepiece_ids: number[] }[];
      }
    ).cases;
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const file = path.join(tmp, 'tiny.gguf');
    await exportGguf(base, file, { dtype: 'f16' });
    const { getLlama } = await importNodeLlamaCpp();
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    try {
      // including the cases where tokenizer.json and SentencePiece differ (runs of several spaces)
      const differ = cases.filter(
        (c) => JSON.stringify(c.ids) !== JSON.stringify(c.sentencepiece_ids),
      ).length;
      for (const c of cases)
        expect([1, ...model.tokenize(c.text)], JSON.stringify(c.text)).to.deep.equal(c.ids);
      console.log(
        `      llama.cpp tokenizer: ${cases.length}/${cases.length} cases equal tokenizer.json's ids (${differ} differ from SentencePiece's)`,
      );
    } finally {
      await model.dispose();
      await llama.dispose();
    }
  });

  it('byte-level BPE (GGUF "gpt2", no merges): llama.cpp ids, log-probs and greedy ids equal ours', async () => {
    const dir = path.join(tmp, 'bytelevel');
    mkdirSync(dir);
    // the byte-level model `polyglot reproduce` pre-trains (tiny.ts): 259 tokens, no merges
    await writeRandomLlama(dir, TINY_CONFIGS.smoke, { seed: 3, std: 0.08 });
    const file = path.join(tmp, 'bl.gguf');
    await exportGguf(dir, file, { dtype: 'f32' });
    const tok = await Tokenizer.fromDir(dir);
    const texts = ['Hello world', 'Grüße, 世界! 🙂', '  two  spaces\nnewline\ttab', "it's 2024"];
    const { getLlama } = await importNodeLlamaCpp();
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    try {
      for (const t of texts) expect([1, ...model.tokenize(t)], t).to.deep.equal(tok.encode(t));
      expect(model.detokenize(tok.encode(texts[1], { addSpecialTokens: false }))).to.equal(texts[1]);
    } finally {
      await model.dispose();
      await llama.dispose();
    }
    const e = await LlamaCppEngine.load({ model: file, threads: THREADS });
    const l = await LocalEngine.load({ model: dir, backend: 'cpu' });
    try {
      const [a] = await e.score([{ text: texts[1] }]);
      const [b] = await l.score([{ text: texts[1] }]);
      expect(maxDiff(a.tokenLogprobs, b.tokenLogprobs)).to.be.below(1e-3);
      const params = { temperature: 0, max_tokens: 8, ignore_eos: true };
      const [g] = await e.generate([{ prompt: texts[0], params }]);
      const [h] = await l.generate([{ prompt: texts[0], params }]);
      expect(g.outputIds).to.deep.equal(h.outputIds);
      expect(g.text).to.equal(h.text);
    } finally {
      await e.close();
      await l.close();
    }
  });
});

async function expectRejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isPolyglotError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    return;
  }
  expect.fail(`resolved; expected ${code}`);
}
