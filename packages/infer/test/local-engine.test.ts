import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  type GenerateParams,
  type GenerateRequest,
  type GenerateResult,
  LocalEngine,
  pyStrip,
  RequestError,
} from '../src/index.js';

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
  sum_logprob: number;
  greedy_new_ids: number[];
}

interface Reference {
  prompts: string[];
  base: RefEntry[];
  adapter: RefEntry[];
}

const TOL = 1e-4;

function tiny(ctx: Mocha.Context, ...parts: string[]): string {
  return sharedPath(ctx, 'fixtures', 'tiny-llama', ...parts);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const greedy = (extra: GenerateParams = {}): GenerateParams => ({
  temperature: 0,
  max_tokens: 12,
  ignore_eos: true,
  ...extra,
});

async function expectError(
  run: () => Promise<unknown>,
  code: string,
  ...fragments: string[]
): Promise<Error & { code: string }> {
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

/** The most occurrences of one token in a list. */
function maxRepeat(ids: number[]): number {
  const counts = new Map<number, number>();
  for (const t of ids) counts.set(t, (counts.get(t) ?? 0) + 1);
  return Math.max(...counts.values());
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`LocalEngine on ${backend}: reference values and batch independence`, () => {
    let ref: Reference;
    let engine: LocalEngine;

    before(async function () {
      ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as Reference;
      engine = await LocalEngine.load({ model: tiny(this, 'base'), backend, seed: 7 });
    });

    after(async () => {
      await engine?.close();
    });

    it('records its backend', () => {
      expect(engine.info).to.deep.include({ kind: 'local', backend, adapter: null });
      expect(engine.backend).to.equal(backend);
    });

    it('score() of ids and of text (BOS added) equals the reference token log-probs', async () => {
      for (const batchSize of [8, 2]) {
        const byIds = await engine.score(
          ref.base.map((e) => ({ inputIds: e.input_ids })),
          { batchSize },
        );
        const byText = await engine.score(ref.prompts.map((text) => ({ text })));
        ref.base.forEach((e, i) => {
          for (const s of [byIds[i], byText[i]]) {
            expect(s.inputIds).to.deep.equal(e.input_ids);
            expect(maxAbsDiff(s.tokenLogprobs, e.token_logprobs), `prompt ${i}`).to.be.below(TOL);
            expect(s.sumLogprob).to.be.closeTo(e.sum_logprob, 1e-3);
          }
        });
      }
    });

    it('greedy generate() equals greedy_new_ids in one batch of 5 and in batches of 2', async () => {
      for (const batchSize of [5, 2]) {
        const seen: number[] = [];
        const out = await engine.generate(
          ref.prompts.map((prompt) => ({ prompt, params: greedy() })),
          { batchSize, onResult: (i) => seen.push(i) },
        );
        expect(out.map((r) => r.outputIds)).to.deep.equal(ref.base.map((e) => e.greedy_new_ids));
        expect(out.map((r) => r.finishReason)).to.deep.equal(ref.base.map(() => 'length'));
        expect(seen.sort()).to.deep.equal([0, 1, 2, 3, 4]);
        out.forEach((r, i) => {
          expect(r.inputIds).to.deep.equal(ref.base[i].input_ids);
          expect(r.stopReason).to.equal(null);
          const full = engine.tokenizer.decode([...r.inputIds, ...r.outputIds], { skipSpecialTokens: true });
          const prompt = engine.tokenizer.decode(r.inputIds, { skipSpecialTokens: true });
          expect(r.text).to.equal(pyStrip(full.slice(prompt.length)));
        });
      }
    });

    it('a seeded sampled request gives the same ids in batches of 1, 3 and 5, whoever shares them', async () => {
      const target: GenerateRequest = {
        prompt: ref.prompts[2],
        params: { temperature: 0.9, top_p: 0.95, top_k: 200, max_tokens: 16, ignore_eos: true, seed: 1234 },
      };
      const others: GenerateRequest[] = [
        { prompt: ref.prompts[0], params: { temperature: 1.2, max_tokens: 5, seed: 1 } },
        { prompt: ref.prompts[1], params: { temperature: 0.7, max_tokens: 16, ignore_eos: true } },
        { inputIds: ref.base[3].input_ids, params: greedy({ max_tokens: 3 }) },
        { prompt: ref.prompts[4], params: { temperature: 1, top_k: 5, max_tokens: 20, seed: 99 } },
      ];
      const alone = (await engine.generate([target], { batchSize: 1 }))[0];
      expect(alone.outputIds).to.have.length(16);
      expect(alone.seed).to.equal(1234);
      const runs: { reqs: GenerateRequest[]; at: number; batchSize: number }[] = [
        { reqs: [others[0], target, others[1]], at: 1, batchSize: 3 },
        { reqs: [others[2], others[3], target], at: 2, batchSize: 3 },
        { reqs: [...others.slice(0, 2), target, ...others.slice(2)], at: 2, batchSize: 5 },
        { reqs: [target, ...others], at: 0, batchSize: 5 },
        { reqs: [...others, target], at: 4, batchSize: 1 },
      ];
      for (const run of runs) {
        const out = await engine.generate(run.reqs, { batchSize: run.batchSize });
        expect(out[run.at].outputIds, `batch size ${run.batchSize}, position ${run.at}`).to.deep.equal(
          alone.outputIds,
        );
        expect(out[run.at].text).to.equal(alone.text);
      }
      // Another seed samples something else.
      const other = await engine.generate([{ ...target, params: { ...target.params, seed: 1235 } }]);
      expect(other[0].outputIds).to.not.deep.equal(alone.outputIds);
    });

    it('requests without a seed draw one from the engine seed, in request order, whatever the batch size', async function () {
      const reqs: GenerateRequest[] = ref.prompts.map((prompt) => ({
        prompt,
        params: { temperature: 1, max_tokens: 8, ignore_eos: true },
      }));
      const a = await LocalEngine.load({ model: tiny(this, 'base'), backend, seed: 42 });
      const b = await LocalEngine.load({ model: tiny(this, 'base'), backend, seed: 42 });
      try {
        const ra = await a.generate(reqs, { batchSize: 5 });
        const rb = await b.generate(reqs, { batchSize: 2 });
        expect(rb.map((r) => r.outputIds)).to.deep.equal(ra.map((r) => r.outputIds));
        expect(rb.map((r) => r.seed)).to.deep.equal(ra.map((r) => r.seed));
        expect(new Set(ra.map((r) => r.seed)).size).to.equal(5);
        // The seed recorded with a result reproduces it on its own.
        const again = await a.generate([{ ...reqs[3], params: { ...reqs[3].params, seed: ra[3].seed } }]);
        expect(again[0].outputIds).to.deep.equal(ra[3].outputIds);
        // The engine's stream moves on: the next call draws new seeds.
        const next = await a.generate(reqs.slice(0, 1));
        expect(next[0].seed).to.not.equal(ra[0].seed);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}

describe('LocalEngine: stop strings, stop tokens, lengths, penalties, log-probs (wasm)', () => {
  let ref: Reference;
  let engine: LocalEngine;
  /** Greedy output of prompt 0, untrimmed. */
  let full: GenerateResult;

  before(async function () {
    ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as Reference;
    engine = await LocalEngine.load({ model: tiny(this, 'base'), backend: 'wasm' });
    full = (await engine.generate([{ prompt: ref.prompts[0], params: greedy(), trim: false }]))[0];
    expect(full.outputIds).to.deep.equal(ref.base[0].greedy_new_ids);
  });

  after(async () => {
    await engine?.close();
  });

  it('a stop string ends the output: cut before it, then stripped (trim: false keeps vLLM text)', async () => {
    const text = full.text; // ' quit rings Berufbeeldothèque …'
    const at = text.indexOf('Beruf');
    expect(at, text).to.be.above(2);
    const [cut, raw, none, two] = await engine.generate([
      { prompt: ref.prompts[0], params: greedy({ stop: ['Beruf'] }) },
      { prompt: ref.prompts[0], params: greedy({ stop: 'Beruf' }), trim: false },
      { prompt: ref.prompts[0], params: greedy({ stop: ['no such text'] }) },
      // The earliest occurrence wins, whatever the order of the list.
      { prompt: ref.prompts[0], params: greedy({ stop: ['Licencia', 'rings'] }) },
    ]);
    expect(cut.finishReason).to.equal('stop');
    expect(cut.stopReason).to.equal('Beruf');
    expect(raw.text).to.equal(text.slice(0, at));
    expect(cut.text).to.equal(pyStrip(text.slice(0, at)));
    expect(cut.text).to.not.equal(raw.text); // the trailing space went
    // Generation stopped at the token that completed the stop string.
    const n = cut.outputIds.length;
    expect(n).to.be.below(12);
    expect(cut.outputIds).to.deep.equal(full.outputIds.slice(0, n));
    const decoded = (k: number) =>
      engine.tokenizer
        .decode([...full.inputIds, ...full.outputIds.slice(0, k)], { skipSpecialTokens: true })
        .slice(engine.tokenizer.decode(full.inputIds, { skipSpecialTokens: true }).length);
    expect(decoded(n)).to.include('Beruf');
    expect(decoded(n - 1)).to.not.include('Beruf');
    expect(none.finishReason).to.equal('length');
    expect(none.text).to.equal(pyStrip(text));
    expect(two.stopReason).to.equal('rings');
    expect(two.text).to.equal(pyStrip(text.slice(0, text.indexOf('rings'))));
  });

  it('max_tokens ends with finish_reason length; max_tokens 0 generates nothing', async () => {
    const [five, zero] = await engine.generate([
      { prompt: ref.prompts[1], params: greedy({ max_tokens: 5 }) },
      { prompt: ref.prompts[1], params: greedy({ max_tokens: 0 }) },
    ]);
    expect(five.outputIds).to.deep.equal(ref.base[1].greedy_new_ids.slice(0, 5));
    expect(five.finishReason).to.equal('length');
    expect(zero).to.deep.include({ outputIds: [], text: '', finishReason: 'length' });
  });

  it('a stop token ends the output after it (kept in the ids, not in the text); min_tokens masks it', async () => {
    const g = ref.base[0].greedy_new_ids;
    const stopId = g[2];
    expect(g.slice(0, 2)).to.not.include(stopId);
    const [stopped, late] = await engine.generate([
      { prompt: ref.prompts[0], params: greedy({ stop_token_ids: [stopId] }) },
      { prompt: ref.prompts[0], params: greedy({ stop_token_ids: [stopId], min_tokens: 5 }) },
    ]);
    expect(stopped.outputIds).to.deep.equal(g.slice(0, 3));
    expect(stopped.finishReason).to.equal('stop');
    expect(stopped.stopReason).to.equal(stopId);
    const twoTokens = engine.tokenizer
      .decode([...stopped.inputIds, ...g.slice(0, 2)], { skipSpecialTokens: true })
      .slice(engine.tokenizer.decode(stopped.inputIds, { skipSpecialTokens: true }).length);
    expect(stopped.text).to.equal(pyStrip(twoTokens));
    // min_tokens 5: the stop token cannot be drawn among the first 5 tokens, so the third token changes.
    expect(late.outputIds.slice(0, 2)).to.deep.equal(g.slice(0, 2));
    expect(late.outputIds[2]).to.not.equal(stopId);
    expect(late.outputIds.slice(0, 5)).to.not.include(stopId);
    expect(late.outputIds.length).to.be.at.least(5);
  });

  it('min_tokens: stop strings in the text of the first min_tokens tokens do not stop (vLLM)', async () => {
    const stop = 'rings'; // completed by the second greedy token
    const [early, late] = await engine.generate([
      { prompt: ref.prompts[0], params: greedy({ stop: [stop] }) },
      { prompt: ref.prompts[0], params: greedy({ stop: [stop], min_tokens: 4 }) },
    ]);
    expect(early.outputIds).to.have.length(2);
    expect(early.finishReason).to.equal('stop');
    expect(late.finishReason).to.equal('length');
    expect(late.outputIds).to.deep.equal(full.outputIds);
    expect(late.text).to.include(stop);
  });

  it('penalties move greedy outputs the way vLLM documents', async () => {
    // Prompt 3's greedy output repeats one token 9 times in 12.
    const base = ref.base[3].greedy_new_ids;
    expect(maxRepeat(base)).to.equal(9);
    const prompt = ref.prompts[3];
    const [rep, freq, pres, negFreq] = await engine.generate([
      { prompt, params: greedy({ repetition_penalty: 1e6 }) },
      { prompt, params: greedy({ frequency_penalty: 2 }) },
      { prompt, params: greedy({ presence_penalty: 2 }) },
      { prompt: ref.prompts[0], params: greedy({ frequency_penalty: -2 }) },
    ]);
    // Repetition penalty (prompt and output tokens): no token of the prompt, none repeated.
    expect(new Set(rep.outputIds).size).to.equal(12);
    expect(rep.outputIds.filter((t) => ref.base[3].input_ids.includes(t))).to.deep.equal([]);
    // Frequency and presence penalties only see the output: the first token is the greedy one.
    for (const r of [freq, pres]) {
      expect(r.outputIds[0]).to.equal(base[0]);
      expect(maxRepeat(r.outputIds)).to.be.below(maxRepeat(base));
    }
    // A negative frequency penalty rewards repeating (prompt 0's greedy output repeats nothing).
    expect(maxRepeat(ref.base[0].greedy_new_ids)).to.equal(1);
    expect(maxRepeat(negFreq.outputIds)).to.be.above(1);
  });

  it('logprobs: raw log-probabilities of the sampled tokens (as score() gives them) and the top n', async () => {
    const [g, s] = await engine.generate([
      { prompt: ref.prompts[4], params: greedy({ logprobs: 3 }) },
      {
        prompt: ref.prompts[4],
        params: { temperature: 1.5, max_tokens: 10, ignore_eos: true, seed: 3, logprobs: 0 },
      },
    ]);
    expect(g.topLogprobs).to.have.length(12);
    g.topLogprobs!.forEach((top, k) => {
      expect(top).to.have.length(3);
      expect(top[0].token).to.equal(g.outputIds[k]);
      expect(top[0].logprob).to.equal(g.tokenLogprobs![k]);
    });
    expect(s.topLogprobs).to.equal(undefined);
    for (const r of [g, s]) {
      const [scored] = await engine.score([{ inputIds: [...r.inputIds, ...r.outputIds] }]);
      const tail = scored.tokenLogprobs.slice(-r.outputIds.length);
      expect(maxAbsDiff(r.tokenLogprobs!, tail)).to.be.below(TOL);
    }
  });

  it('a finished row rides along masked: a long prompt next to a long generation stays within max positions', async () => {
    const long = Array.from({ length: 500 }, (_, i) => ref.base[i % 5].input_ids[i % 20]);
    long[0] = 1;
    const reqs: GenerateRequest[] = [
      { inputIds: long, params: greedy({ max_tokens: 12 }) },
      { prompt: ref.prompts[1], params: greedy({ max_tokens: 40 }) },
    ];
    const together = await engine.generate(reqs);
    const alone = await engine.generate([reqs[0]]);
    expect(together[0].outputIds).to.deep.equal(alone[0].outputIds);
    expect(together[1].outputIds).to.have.length(40);
    expect(together[1].outputIds.slice(0, 12)).to.deep.equal(ref.base[1].greedy_new_ids);
  });

  it('bad requests are typed errors naming the request; nothing runs', async () => {
    let ran = 0;
    const onResult = () => {
      ran++;
    };
    const ok = { prompt: ref.prompts[0], params: greedy() };
    const cases: [GenerateRequest, string, ...string[]][] = [
      [{ prompt: '' }, 'EMPTY_PROMPT', 'request 1', 'empty'],
      [{ inputIds: [] }, 'EMPTY_PROMPT', 'request 1'],
      [{ inputIds: new Array(513).fill(5) }, 'PROMPT_TOO_LONG', '513 tokens', '512'],
      [{ inputIds: new Array(500).fill(5), params: { max_tokens: 16 } }, 'PROMPT_TOO_LONG', 'at most 12'],
      [{ inputIds: [1, 32000] }, 'TOKEN_OUT_OF_RANGE', 'inputIds[1] = 32000'],
      [{ inputIds: [1, -1] }, 'TOKEN_OUT_OF_RANGE'],
      [{ prompt: 'a', inputIds: [1] }, 'INFER_BAD_REQUEST', 'exactly one'],
      [{}, 'INFER_BAD_REQUEST', 'exactly one'],
      [{ prompt: 'a', params: { top_p: 2 } }, 'INFER_BAD_PARAM', 'request 1', 'top_p'],
      [{ prompt: 'a', params: { temperature: -1 } }, 'INFER_BAD_PARAM', 'temperature'],
      [{ prompt: 'a', params: { max_tokens: 4, min_tokens: 5 } }, 'INFER_BAD_PARAM', 'min_tokens'],
      [{ prompt: 'a', params: { best_of: 2 } as GenerateParams }, 'INFER_BAD_PARAM', 'best_of'],
      [{ prompt: 'a', params: { stop_token_ids: [40000] } }, 'INFER_BAD_PARAM', 'stop_token_ids'],
      [{ prompt: 'a', params: { stop: [''] } }, 'INFER_BAD_PARAM', 'stop'],
    ];
    for (const [bad, code, ...fragments] of cases) {
      const err = await expectError(() => engine.generate([ok, bad], { onResult }), code, ...fragments);
      expect(err).to.be.instanceOf(RequestError);
      expect((err as RequestError).request).to.equal(1);
    }
    expect(ran, 'no request ran').to.equal(0);
    await expectError(() => engine.generate([ok], { batchSize: 0 }), 'INFER_BAD_PARAM', 'batchSize');
    await expectError(() => engine.score([{ text: '' }]), 'EMPTY_PROMPT', 'request 0');
    await expectError(() => engine.score([{ inputIds: new Array(513).fill(5) }]), 'PROMPT_TOO_LONG', '512');
  });
});

describe('LocalEngine: loglikelihood (lm-evaluation-harness)', () => {
  let ref: Reference;
  let engine: LocalEngine;

  before(async function () {
    ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as Reference;
    engine = await LocalEngine.load({ model: tiny(this, 'base'), backend: 'wasm' });
  });

  after(async () => {
    await engine?.close();
  });

  it('the greedy continuation is greedy; a prompt suffix sums the reference log-probs', async () => {
    const reqs = ref.base.flatMap((e) => [
      { contextIds: e.input_ids, continuationIds: e.greedy_new_ids },
      { contextIds: e.input_ids.slice(0, 7), continuationIds: e.input_ids.slice(7) },
    ]);
    for (const batchSize of [8, 3]) {
      const out = await engine.loglikelihood(reqs, { batchSize });
      ref.base.forEach((e, i) => {
        const greedyOut = out[2 * i];
        const suffix = out[2 * i + 1];
        expect(greedyOut.isGreedy, `prompt ${i}`).to.equal(true);
        expect(greedyOut.tokens).to.equal(12);
        expect(greedyOut.logprob).to.be.below(0);
        expect(suffix.tokens).to.equal(e.input_ids.length - 7);
        const expected = e.token_logprobs.slice(6).reduce((a, b) => a + b, 0);
        expect(suffix.logprob).to.be.closeTo(expected, TOL * suffix.tokens);
        expect(suffix.isGreedy).to.equal(false); // the random fixture model never predicts its prompts
      });
    }
    // A greedy continuation whose last token is changed is not greedy.
    const e = ref.base[1];
    const changed = [...e.greedy_new_ids.slice(0, 11), (e.greedy_new_ids[11] + 1) % 32000];
    const [notGreedy] = await engine.loglikelihood([{ contextIds: e.input_ids, continuationIds: changed }]);
    expect(notGreedy.isGreedy).to.equal(false);
  });

  it('text pairs: trailing whitespace of the context moves to the continuation (_encode_pair)', async () => {
    const prompt = ref.prompts[0];
    const split = prompt.indexOf('### Assistant:') + '### Assistant:'.length;
    const context = `${prompt.slice(0, split)} `; // trailing space
    const continuation = prompt.slice(split + 1); // 'The capital of Iceland is Reykjavík.'
    const ctxIds = engine.tokenizer.encode(context.trimEnd());
    const ids = ref.base[0].input_ids;
    expect(ids.slice(0, ctxIds.length)).to.deep.equal(ctxIds);
    const [r, empty, noCont] = await engine.loglikelihood([
      { context, continuation },
      { context: '', continuation: prompt },
      { context: prompt, continuation: '' },
    ]);
    expect(r.tokens).to.equal(ids.length - ctxIds.length);
    const expected = ref.base[0].token_logprobs.slice(ctxIds.length - 1).reduce((a, b) => a + b, 0);
    expect(r.logprob).to.be.closeTo(expected, TOL * r.tokens);
    // An empty context: BOS, then the continuation — the whole prompt's log-likelihood.
    expect(empty.tokens).to.equal(ids.length - 1);
    expect(empty.logprob).to.be.closeTo(ref.base[0].sum_logprob, 1e-3);
    expect(noCont).to.deep.equal({ logprob: 0, isGreedy: true, tokens: 0 });
    // Without special tokens (lm-eval's default for Llama): no BOS, so other values.
    const [plain] = await engine.loglikelihood([{ context, continuation }], { addSpecialTokens: false });
    expect(plain.tokens).to.equal(r.tokens);
    expect(Math.abs(plain.logprob - r.logprob)).to.be.above(1e-3);
  });

  it('bad pairs are typed errors', async () => {
    await expectError(
      () =>
        engine.loglikelihood([
          { context: 'a', continuation: 'b' },
          { context: 'a', contextIds: [1] },
        ]),
      'INFER_BAD_REQUEST',
      'request 1',
    );
    await expectError(
      () => engine.loglikelihood([{ contextIds: [1], continuationIds: [99999] }]),
      'TOKEN_OUT_OF_RANGE',
      'continuationIds',
    );
    await expectError(
      () => engine.loglikelihood([{ contextIds: [1], continuationIds: new Array(512).fill(5) }]),
      'PROMPT_TOO_LONG',
    );
  });
});

describe('LocalEngine: adapters and model directories', () => {
  it('with the PEFT adapter, score() and greedy generate() equal the adapter reference', async function () {
    const ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as Reference;
    for (const backend of ['cpu', 'wasm'] as const) {
      const engine = await LocalEngine.load({
        model: tiny(this, 'base'),
        adapter: tiny(this, 'adapter'),
        backend,
      });
      try {
        expect(engine.info.adapter).to.equal('adapter');
        const scores = await engine.score(ref.adapter.map((e) => ({ inputIds: e.input_ids })));
        ref.adapter.forEach((e, i) => {
          expect(maxAbsDiff(scores[i].tokenLogprobs, e.token_logprobs), `${backend} prompt ${i}`).to.be.below(
            TOL,
          );
        });
        const out = await engine.generate(ref.prompts.map((prompt) => ({ prompt, params: greedy() })));
        expect(out.map((r) => r.outputIds)).to.deep.equal(ref.adapter.map((e) => e.greedy_new_ids));
      } finally {
        await engine.close();
      }
    }
  });

  it('EOS ids come from config.json, generation_config.json and the tokenizer; ignore_eos keeps going', async function () {
    const ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as Reference;
    const base = tiny(this, 'base');
    // A model directory (outside the repository) whose generation_config.json names prompt 0's third greedy token
    // as a second EOS; the other files are links to the fixture.
    const dir = mkdtempSync(path.join(tmpdir(), 'polyglot-eos-'));
    try {
      for (const f of readdirSync(base)) {
        if (f !== 'generation_config.json') symlinkSync(path.join(base, f), path.join(dir, f));
      }
      const g = ref.base[0].greedy_new_ids;
      writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, g[2]] }));
      const engine = await LocalEngine.load({ model: dir, backend: 'wasm' });
      try {
        expect([...engine.eosTokenIds].sort()).to.deep.equal([2, g[2]].sort());
        const [eos, ignored, late] = await engine.generate([
          { prompt: ref.prompts[0], params: { temperature: 0, max_tokens: 12 } },
          { prompt: ref.prompts[0], params: greedy() },
          { prompt: ref.prompts[0], params: { temperature: 0, max_tokens: 12, min_tokens: 3 } },
        ]);
        expect(eos.outputIds).to.deep.equal(g.slice(0, 3));
        expect(eos.finishReason).to.equal('stop');
        expect(eos.stopReason).to.equal(null);
        expect(ignored.outputIds).to.deep.equal(g);
        expect(ignored.finishReason).to.equal('length');
        expect(late.outputIds[2]).to.not.equal(g[2]);
      } finally {
        await engine.close();
      }
      writeFileSync(path.join(dir, 'generation_config.json'), '{"eos_token_id": "two"}');
      await expectError(
        () => LocalEngine.load({ model: dir, backend: 'wasm' }),
        'GENERATION_CONFIG_INVALID',
        'generation_config.json',
      );
      mkdirSync(path.join(dir, 'empty'));
      await expectError(
        () => LocalEngine.load({ model: path.join(dir, 'empty'), backend: 'wasm' }),
        'TOKENIZER_FILE_MISSING',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a closed engine refuses work', async function () {
    const engine = await LocalEngine.load({ model: tiny(this, 'base'), backend: 'wasm' });
    await engine.close();
    await engine.close();
    await expectError(() => engine.score([{ inputIds: [1, 2] }]), 'ENGINE_CLOSED');
  });
});
