import { request } from 'node:http';
import { expect } from 'chai';
import OpenAI from 'openai';
import { sharedPath } from '../../../tools/shared.js';
import { type GenerateParams, LocalEngine, OpenAIServer } from '../src/index.js';

const PROMPTS = [
  'Hello, my name is',
  'The quick brown fox',
  '### Human: Wie heißt die Hauptstadt von Island?### Assistant:',
  'Once upon a time',
  'Bonjour',
  'Zwei plus zwei ist',
  '1, 2, 3,',
  'Ísland er',
];

const greedy = (max: number, extra: GenerateParams = {}): GenerateParams => ({
  temperature: 0,
  max_tokens: max,
  ignore_eos: true,
  ...extra,
});

/** A raw HTTP request (for what the OpenAI client cannot send: bad JSON, oversized bodies). */
function raw(
  url: string,
  method: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            json: text ? JSON.parse(text) : null,
            headers: res.headers,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function expectOpenAIError(e: unknown, status: number, param?: string): void {
  expect(e, 'expected an API error').to.be.instanceOf(OpenAI.APIError);
  const err = e as InstanceType<typeof OpenAI.APIError>;
  expect(err.status).to.equal(status);
  const body = err.error as { message: string; type: string; param: string | null; code: string | null };
  expect(body.message).to.be.a('string').and.not.equal('');
  expect(body.type).to.be.a('string');
  expect(body).to.have.property('code');
  expect(body).to.have.property('param');
  if (param !== undefined) expect(body.param).to.equal(param);
}

describe('OpenAI-compatible server (the openai client on 127.0.0.1)', () => {
  let engine: LocalEngine;
  let server: OpenAIServer;
  let client: OpenAI;

  before(async function () {
    engine = await LocalEngine.load({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      adapter: { peft: sharedPath(this, 'fixtures', 'tiny-llama', 'adapter') },
      backend: 'wasm',
      chatTemplate: 'guanaco',
      seed: 7,
    });
    server = await OpenAIServer.start({ engine, host: '127.0.0.1', port: 0, servedModelName: 'tiny' });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  after(async () => {
    await server?.close();
    await engine?.close();
  });

  it('lists the model and its adapters (GET /v1/models)', async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).to.deep.equal(['tiny', 'peft']);
    const peft = models.data[1] as unknown as { parent: string };
    expect(peft.parent).to.equal('tiny');
  });

  it('completions: greedy output equals the engine, by name with or without the adapter', async () => {
    for (const model of ['tiny', 'peft']) {
      const adapter = model === 'tiny' ? null : 'peft';
      const res = await client.completions.create({
        model,
        prompt: PROMPTS[0],
        max_tokens: 12,
        temperature: 0,
        // vLLM's extra fields pass through the client as they are.
        ...({ ignore_eos: true, return_token_ids: true } as object),
      });
      const [want] = await engine.generate([{ prompt: PROMPTS[0], params: greedy(12), trim: false }], {
        adapter,
      });
      expect(res.object).to.equal('text_completion');
      expect(res.model).to.equal(model);
      expect(res.choices[0].text).to.equal(want.text);
      expect((res.choices[0] as unknown as { token_ids: number[] }).token_ids).to.deep.equal(want.outputIds);
      expect(res.choices[0].finish_reason).to.equal('length');
      expect(res.usage).to.deep.equal({
        prompt_tokens: want.inputIds.length,
        completion_tokens: 12,
        total_tokens: want.inputIds.length + 12,
      });
    }
    const base = await engine.generate([{ prompt: PROMPTS[0], params: greedy(12) }], { adapter: null });
    const tuned = await engine.generate([{ prompt: PROMPTS[0], params: greedy(12) }], { adapter: 'peft' });
    expect(base[0].outputIds).to.not.deep.equal(tuned[0].outputIds);
  });

  it('completions: several prompts, token-id prompts, n samples with seeds, stop strings', async () => {
    const ids = engine.tokenizer.encode(PROMPTS[1]);
    const res = await client.completions.create({
      model: 'tiny',
      prompt: [PROMPTS[0], PROMPTS[2]],
      max_tokens: 10,
      temperature: 0.9,
      seed: 11,
      n: 2,
    });
    expect(res.choices.map((c) => c.index)).to.deep.equal([0, 1, 2, 3]);
    const want = await engine.generate(
      [PROMPTS[0], PROMPTS[2]].map((prompt) => ({
        prompt,
        n: 2,
        params: { temperature: 0.9, max_tokens: 10, seed: 11 },
        trim: false,
      })),
      { adapter: null },
    );
    const texts = want.flatMap((r) => (r.choices ?? [r]).map((c) => c.text));
    expect(res.choices.map((c) => c.text)).to.deep.equal(texts);
    expect(texts[0]).to.not.equal(texts[1]); // sample k has seed 11 + k

    const byIds = await client.completions.create({
      model: 'tiny',
      prompt: ids,
      max_tokens: 6,
      temperature: 0,
    });
    const [plain] = await engine.generate(
      [{ inputIds: ids, params: { temperature: 0, max_tokens: 6 }, trim: false }],
      {
        adapter: null,
      },
    );
    expect(byIds.choices[0].text).to.equal(plain.text);

    // A stop string taken from the greedy output itself cuts it there (vLLM: not included, not stripped).
    const [long] = await engine.generate([{ prompt: PROMPTS[3], params: greedy(16), trim: false }], {
      adapter: null,
    });
    const stop = long.text.slice(8, 12);
    const cut = await client.completions.create({
      model: 'tiny',
      prompt: PROMPTS[3],
      max_tokens: 16,
      temperature: 0,
      stop: [stop],
    });
    expect(cut.choices[0].finish_reason).to.equal('stop');
    expect(cut.choices[0].text).to.equal(long.text.slice(0, long.text.indexOf(stop)));
    expect((cut.choices[0] as unknown as { stop_reason: string }).stop_reason).to.equal(stop);
  });

  it('chat completions: the chat template, greedy output equal to the engine', async () => {
    const messages = [{ role: 'user' as const, content: 'Wie heißt die Hauptstadt von Island?' }];
    const res = await client.chat.completions.create({
      model: 'peft',
      messages,
      max_tokens: 12,
      temperature: 0,
    });
    const [want] = await engine.generate(
      [{ messages, params: { temperature: 0, max_tokens: 12 }, trim: false }],
      {
        adapter: 'peft',
      },
    );
    // The guanaco template: `### Human: …### Assistant:`, encoded without BOS as vLLM's chat API does.
    expect(want.inputIds).to.deep.equal(
      engine.tokenizer.encode('### Human: Wie heißt die Hauptstadt von Island?### Assistant:', {
        addSpecialTokens: false,
      }),
    );
    expect(res.object).to.equal('chat.completion');
    expect(res.choices[0].message).to.deep.include({ role: 'assistant', content: want.text });
    expect(res.choices[0].finish_reason).to.equal(want.finishReason);
    expect(res.usage?.prompt_tokens).to.equal(want.inputIds.length);
  });

  it('streaming (SSE): the deltas add up to the non-streamed text; usage last', async () => {
    const whole = await client.completions.create({
      model: 'tiny',
      prompt: PROMPTS[4],
      max_tokens: 14,
      temperature: 0,
    });
    const stream = await client.completions.create({
      model: 'tiny',
      prompt: PROMPTS[4],
      max_tokens: 14,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
      usage = chunk.usage ?? usage;
    }
    expect(text).to.equal(whole.choices[0].text);
    expect(finish).to.equal('length');
    expect(usage?.completion_tokens).to.equal(14);

    const messages = [{ role: 'user' as const, content: 'Hallo!' }];
    const chatWhole = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 10,
      temperature: 0,
    });
    const chatStream = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 10,
      temperature: 0,
      stream: true,
    });
    let content = '';
    let role: string | undefined;
    for await (const chunk of chatStream) {
      role ??= chunk.choices[0]?.delta.role;
      content += chunk.choices[0]?.delta.content ?? '';
    }
    expect(role).to.equal('assistant');
    expect(content).to.equal(chatWhole.choices[0].message.content);
  });

  it('logprobs and echo: prompt log-probs equal the engine score; generated ones its generate', async () => {
    const prompt = PROMPTS[5];
    const res = await client.completions.create({
      model: 'tiny',
      prompt,
      max_tokens: 4,
      temperature: 0,
      echo: true,
      logprobs: 3,
    });
    const c = res.choices[0];
    // The engine applies its first adapter unless told otherwise; the served name `tiny` is the base model.
    const [score] = await engine.score([{ text: prompt }], { topLogprobs: 3, adapter: null });
    const [gen] = await engine.generate(
      [{ prompt, params: { temperature: 0, max_tokens: 4, logprobs: 3 }, trim: false }],
      {
        adapter: null,
      },
    );
    const n = score.inputIds.length;
    expect(c.text).to.equal(prompt + gen.text);
    const lp = c.logprobs!;
    expect(lp.tokens).to.have.length(n + 4);
    expect(lp.token_logprobs![0]).to.equal(null);
    expect(lp.top_logprobs![0]).to.equal(null);
    const got = lp.token_logprobs!.slice(1) as number[];
    const want = [...score.tokenLogprobs, ...gen.tokenLogprobs!];
    got.forEach((v, i) => {
      expect(Math.abs(v - want[i]), `position ${i + 1}`).to.be.below(1e-5);
    });
    // The chosen token is always among the top ones (vLLM), and the top ones are the engine's.
    lp.top_logprobs!.slice(1).forEach((d, i) => {
      const values = Object.values(d as Record<string, number>);
      expect(values).to.include(lp.token_logprobs![i + 1]);
      expect(Math.max(...values)).to.be.closeTo(
        i < n - 1 ? score.topLogprobs![i][0].logprob : gen.topLogprobs![i - n + 1][0].logprob,
        1e-5,
      );
    });
    // text_offset: each token's start in the returned text; the prompt's tokens spell the prompt.
    expect(lp.tokens!.slice(0, n).join('')).to.equal(prompt);
    expect(lp.text_offset![n]).to.equal(prompt.length);
    for (let i = 1; i < lp.text_offset!.length; i++) {
      expect(lp.text_offset![i]).to.equal(lp.text_offset![i - 1] + lp.tokens![i - 1].length);
    }

    // Scoring only (vLLM: echo with max_tokens 0).
    const only = await client.completions.create({
      model: 'tiny',
      prompt,
      max_tokens: 0,
      echo: true,
      logprobs: 0,
    });
    expect(only.choices[0].text).to.equal(prompt);
    expect(only.choices[0].logprobs!.tokens).to.have.length(n);

    // Chat logprobs: token, logprob, bytes and top_logprobs per generated token.
    const chat = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hallo' }],
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = chat.choices[0].logprobs!.content!;
    expect(content).to.have.length(5);
    expect(content.map((t) => t.token).join('')).to.equal(chat.choices[0].message.content);
    for (const t of content) {
      expect(t.top_logprobs).to.have.length(2);
      expect(t.top_logprobs[0].logprob).to.be.closeTo(t.logprob, 1e-6); // greedy: the top token
      expect(Buffer.from(t.bytes!).toString('utf8')).to.equal(t.token);
    }
  });

  it('64 concurrent requests are all answered correctly, batched together', async () => {
    const jobs = Array.from({ length: 64 }, (_, i) => ({
      prompt: PROMPTS[i % PROMPTS.length],
      max: 24 + (i % 5) * 8,
      sampled: i % 4 === 3,
      seed: 1000 + i,
    }));
    const before = engine.batchStats;
    const answers = await Promise.all(
      jobs.map((j) =>
        client.completions.create({
          model: j.seed % 2 === 0 ? 'tiny' : 'peft',
          prompt: j.prompt,
          max_tokens: j.max,
          temperature: j.sampled ? 0.8 : 0,
          top_p: j.sampled ? 0.9 : 1,
          seed: j.seed,
          ...({ ignore_eos: true, top_k: j.sampled ? 50 : -1 } as object),
        }),
      ),
    );
    const after = engine.batchStats!;
    // Requests joined the running batches between steps (each prefilled as it arrived, then merged in).
    expect(after.maxBatch).to.be.greaterThan(8);
    expect(after.regroups).to.be.greaterThan(before?.regroups ?? 0);
    expect(after.admitted - (before?.admitted ?? 0)).to.equal(64);
    // The same requests through the engine's static batches (per adapter): the same tokens — a request's output
    // depends only on itself and its seed, not on the batch it ran in.
    for (const adapter of [null, 'peft']) {
      const mine = jobs
        .map((j, i) => ({ j, i }))
        .filter(({ j }) => (j.seed % 2 === 0) === (adapter === null));
      const want = await engine.generate(
        mine.map(({ j }) => ({
          prompt: j.prompt,
          params: {
            temperature: j.sampled ? 0.8 : 0,
            top_p: j.sampled ? 0.9 : 1,
            top_k: j.sampled ? 50 : 0,
            max_tokens: j.max,
            seed: j.seed,
            ignore_eos: true,
          },
          trim: false,
        })),
        { adapter, batchSize: 32 },
      );
      mine.forEach(({ j, i }, k) => {
        expect(answers[i].choices[0].text, `request ${i}`).to.equal(want[k].text);
        expect(answers[i].usage?.completion_tokens).to.equal(j.max);
      });
    }
  });

  it('bad requests get 4xx with an OpenAI-shaped error', async () => {
    const attempts: [() => Promise<unknown>, number, string | undefined][] = [
      [() => client.completions.create({ model: 'tiny', prompt: 'x', temperature: -1 }), 400, 'temperature'],
      [() => client.completions.create({ model: 'tiny', prompt: 'x', top_p: 1.5 }), 400, 'top_p'],
      [() => client.completions.create({ model: 'tiny', prompt: 'x', n: 0 }), 400, 'n'],
      [() => client.completions.create({ model: 'tiny', prompt: 'x', n: 1000 }), 400, 'n'],
      [
        () => client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 100_000 }),
        400,
        'max_tokens',
      ],
      [() => client.completions.create({ model: 'tiny', prompt: 'x', logprobs: 50 }), 400, 'logprobs'],
      [() => client.completions.create({ model: 'tiny', prompt: '' }), 400, 'prompt'],
      [() => client.completions.create({ model: 'tiny', prompt: [99_999_999] }), 400, 'prompt'],
      [() => client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 0 }), 400, 'max_tokens'],
      [
        () => client.completions.create({ model: 'tiny', prompt: 'x'.repeat(3000), max_tokens: 500 }),
        400,
        undefined,
      ],
      [() => client.completions.create({ model: 'nope', prompt: 'x' }), 404, 'model'],
      [() => client.chat.completions.create({ model: 'tiny', messages: [] }), 400, 'messages'],
      [
        () => client.chat.completions.create({ model: 'tiny', messages: [{ role: 'system', content: 'x' }] }),
        400,
        'messages', // the guanaco template has no system turn (raise_exception)
      ],
      [
        () =>
          client.chat.completions.create({
            model: 'tiny',
            messages: [{ role: 'user', content: 'x' }],
            top_logprobs: 2,
          }),
        400,
        'top_logprobs',
      ],
    ];
    for (const [run, status, param] of attempts) {
      let error: unknown;
      try {
        await run();
      } catch (e) {
        error = e;
      }
      expectOpenAIError(error, status, param);
    }
    const badJson = await raw(`${server.url}/v1/completions`, 'POST', '{"model": "tiny", ');
    expect(badJson.status).to.equal(400);
    expect(badJson.json).to.have.nested.property('error.type', 'invalid_request_error');
    const big = await raw(`${server.url}/v1/completions`, 'POST', Buffer.alloc(5 << 20, 32));
    expect(big.status).to.equal(413);
    expect(big.json).to.have.nested.property('error.message');
    const notFound = await raw(`${server.url}/v2/whatever`, 'POST', '{}');
    expect(notFound.status).to.equal(404);
    expect(notFound.json).to.have.nested.property('error.type', 'not_found_error');
    // The server still answers after all that.
    const ok = await client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2 });
    expect(ok.choices).to.have.length(1);
  });

  it('a client that goes away mid-stream is dropped from the batch', async () => {
    const controller = new AbortController();
    const stream = await client.completions.create(
      {
        model: 'tiny',
        prompt: PROMPTS[6],
        max_tokens: 400,
        temperature: 0,
        stream: true,
        ...({ ignore_eos: true } as object),
      },
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const _ of stream) {
        if (++chunks === 3) controller.abort();
      }
    } catch {
      // the client's abort
    }
    for (let i = 0; i < 100 && engine.load.running > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(engine.load).to.deep.equal({ running: 0, waiting: 0 });
  });

  it('graceful shutdown: in-flight requests finish, then no new connections', async () => {
    const own = await OpenAIServer.start({ engine, port: 0, servedModelName: 'tiny' });
    const c = new OpenAI({ baseURL: `${own.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const inflight = c.completions.create({
      model: 'tiny',
      prompt: PROMPTS[7],
      max_tokens: 120,
      temperature: 0,
      ...({ ignore_eos: true } as object),
    });
    while (engine.load.running === 0) await new Promise((r) => setTimeout(r, 5));
    const closing = own.close();
    const res = await inflight;
    expect(res.choices[0].finish_reason).to.equal('length');
    expect(res.usage?.completion_tokens).to.equal(120);
    await closing;
    let error: unknown;
    try {
      await c.models.list();
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(OpenAI.APIConnectionError);
  });
});
