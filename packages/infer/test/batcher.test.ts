import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { type GenerateRequest, LocalEngine, RequestError } from '../src/index.js';

const PROMPTS = [
  'Hello, my name is',
  'The quick brown fox jumps over',
  'Ísland er',
  'Zwei plus zwei ist',
  '1, 2, 3,',
];

describe('LocalEngine.submit: continuous batching', () => {
  let engine: LocalEngine;

  before(async function () {
    engine = await LocalEngine.load({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      adapter: { peft: sharedPath(this, 'fixtures', 'tiny-llama', 'adapter') },
      backend: 'wasm',
      maxNumSeqs: 6,
      chatTemplate: 'guanaco',
    });
  });

  after(async () => {
    await engine?.close();
  });

  it('requests joining and leaving between steps get exactly what generate gives them', async () => {
    const reqs: GenerateRequest[] = Array.from({ length: 14 }, (_, i) => ({
      prompt: PROMPTS[i % PROMPTS.length],
      params:
        i % 3 === 0
          ? { temperature: 0, max_tokens: 5 + 3 * i, ignore_eos: true }
          : {
              temperature: 0.8,
              top_k: 50,
              top_p: 0.9,
              frequency_penalty: 0.2,
              max_tokens: 4 + 2 * i,
              seed: 100 + i,
            },
      n: i === 4 ? 3 : 1,
    }));
    const before = engine.batchStats;
    // Submitted at different times: some while others are half way.
    const pending: Promise<unknown>[] = [];
    for (const [i, r] of reqs.entries()) {
      pending.push(engine.submit(r, { adapter: i % 2 === 0 ? null : 'peft' }));
      if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 15));
    }
    const got = (await Promise.all(pending)) as Awaited<ReturnType<LocalEngine['submit']>>[];
    const stats = engine.batchStats!;
    expect(stats.maxBatch).to.be.at.most(6); // maxNumSeqs
    expect(stats.maxBatch).to.be.at.least(3);
    expect(stats.regroups).to.be.greaterThan(before?.regroups ?? 0);
    for (const adapter of [null, 'peft']) {
      const mine = reqs.map((r, i) => ({ r, i })).filter(({ i }) => (i % 2 === 0) === (adapter === null));
      const want = await engine.generate(
        mine.map(({ r }) => r),
        { adapter, batchSize: 3 },
      );
      mine.forEach(({ i }, k) => {
        expect(got[i].outputIds, `request ${i}`).to.deep.equal(want[k].outputIds);
        expect(got[i].text).to.equal(want[k].text);
        expect(got[i].choices?.map((c) => c.outputIds)).to.deep.equal(
          want[k].choices?.map((c) => c.outputIds),
        );
      });
    }
    expect(got[4].choices).to.have.length(3);
    expect(got[4].choices!.map((c) => c.seed)).to.deep.equal([104, 105, 106]);
  });

  it('streams tokens, takes conversations, and drops aborted requests', async () => {
    const pieces: string[] = [];
    const streamed = await engine.submit(
      {
        messages: [{ role: 'user', content: 'Hallo!' }],
        params: { temperature: 0, max_tokens: 9 },
        trim: false,
      },
      { adapter: null, onToken: (_, e) => pieces.push(e.text) },
    );
    expect(pieces).to.have.length(streamed.outputIds.length);
    expect(pieces.join('')).to.equal(streamed.text.slice(0, pieces.join('').length));
    expect(streamed.inputIds).to.deep.equal(
      engine.tokenizer.encode('### Human: Hallo!### Assistant:', { addSpecialTokens: false }),
    );

    const controller = new AbortController();
    const long = engine.submit(
      { prompt: PROMPTS[0], params: { temperature: 0, max_tokens: 300, ignore_eos: true } },
      {
        signal: controller.signal,
        onToken: (_, e) => e.token >= 0 && setImmediate(() => controller.abort()),
      },
    );
    const short = engine.submit({ prompt: PROMPTS[1], params: { temperature: 0, max_tokens: 20 } });
    let error: unknown;
    try {
      await long;
    } catch (e) {
      error = e;
    }
    expect((error as { code: string }).code).to.equal('REQUEST_ABORTED');
    expect((await short).outputIds.length).to.be.at.most(20);
    expect(engine.load).to.deep.equal({ running: 0, waiting: 0 });
  });

  it('bad requests are refused before they queue', async () => {
    for (const [req, code] of [
      [{ prompt: '' }, 'EMPTY_PROMPT'],
      [{ prompt: 'x', params: { temperature: -1 } }, 'INFER_BAD_PARAM'],
      [{ prompt: 'x', n: 0 }, 'INFER_BAD_PARAM'],
      [{ prompt: 'x', params: { max_tokens: 100_000 } }, 'PROMPT_TOO_LONG'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'TEMPLATE_RAISED'],
    ] as [GenerateRequest, string][]) {
      let error: unknown;
      try {
        await engine.submit(req);
      } catch (e) {
        error = e;
      }
      expect(error, code).to.be.instanceOf(RequestError);
      expect((error as RequestError).code).to.equal(code);
    }
    let unknown: unknown;
    try {
      await engine.submit({ prompt: 'x' }, { adapter: 'nope' });
    } catch (e) {
      unknown = e;
    }
    expect(isPolyglotError(unknown)).to.equal(true);
    expect((unknown as { code: string }).code).to.equal('ADAPTER_UNKNOWN');
  });
});
