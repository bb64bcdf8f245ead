import { expect } from 'chai';
import { type JudgeServer, jsonAnswer, startJudgeServer } from '../../../tools/judge-server.js';
import {
  backoffMs,
  type ChatMessage,
  classifyFailure,
  DEFAULT_RETRY,
  JudgeCache,
  JudgeClient,
  type JudgeClientOptions,
  JudgeError,
  JudgeRequestError,
  retryAfterMs,
  TokenBucket,
} from '../src/index.js';

const FAST_RETRY = { maxRetries: 4, baseDelayMs: 5, maxDelayMs: 20 };
const msgs = (text: string): ChatMessage[] => [
  { role: 'system', content: 'Reply with JSON {"reasoning", "score"}' },
  { role: 'user', content: text },
];

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('retry policy', () => {
  it('backs off exponentially with jitter, capped', () => {
    const p = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(0, p, () => 0)).to.equal(50);
    expect(backoffMs(0, p, () => 1)).to.equal(100);
    expect(backoffMs(3, p, () => 0.5)).to.equal(600);
    expect(backoffMs(10, p, () => 1)).to.equal(1000);
  });

  it('reads Retry-After in seconds, as an HTTP date, and retry-after-ms', () => {
    expect(retryAfterMs({ 'Retry-After': '2' })).to.equal(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '150' }))).to.equal(150);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }, now)).to.equal(3000);
    expect(retryAfterMs({ 'retry-after': 'soon' })).to.equal(undefined);
    expect(retryAfterMs({})).to.equal(undefined);
  });

  it('classifies failures', () => {
    expect(classifyFailure(undefined)).to.equal('retry');
    for (const s of [408, 409, 429, 500, 502, 503]) expect(classifyFailure(s), String(s)).to.equal('retry');
    expect(classifyFailure(429, 'insufficient_quota')).to.equal('fatal');
    for (const s of [401, 403, 404]) expect(classifyFailure(s)).to.equal('fatal');
    for (const s of [400, 413, 422]) expect(classifyFailure(s)).to.equal('item');
  });
});

describe('TokenBucket', () => {
  it('spreads requests at the rate', async () => {
    const bucket = new TokenBucket(1200); // 20 per second, one second's worth at once
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 30 }, () => bucket.take(1)));
    const secs = (performance.now() - t0) / 1000;
    // 20 at once, the other 10 at 20/s
    expect(secs).to.be.within(0.4, 1.5);
  });
});

describe('JudgeClient against a scripted server', () => {
  let server: JudgeServer;
  const clients: JudgeClient[] = [];
  const client = (opts: Partial<JudgeClientOptions> = {}) => {
    const c = new JudgeClient({ baseURL: server.url, model: 'judge-1', retry: FAST_RETRY, ...opts });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    server = await startJudgeServer();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.close();
  });

  it('sends the model, messages, parameters and JSON mode, and returns content, usage and fingerprint', async () => {
    const c = client();
    const r = await c.complete(msgs('task 1'), { temperature: 0, seed: 42, max_tokens: 64 });
    expect(r.cached).to.equal(false);
    expect(r.attempts).to.equal(1);
    expect(JSON.parse(r.content!)).to.have.property('score');
    expect(r.fingerprint).to.equal('fp_test');
    expect(r.usage!.completion_tokens).to.equal(20);
    const sent = server.chat()[0]!.body;
    expect(sent).to.deep.include({ model: 'judge-1', temperature: 0, seed: 42, max_tokens: 64 });
    expect(sent.response_format).to.deep.equal({ type: 'json_object' });
    expect(sent.messages).to.deep.equal(msgs('task 1'));
  });

  it('answers the same request from the cache without a request, across clients sharing the cache', async () => {
    const cache = JudgeCache.open(':memory:');
    const a = client({ cache });
    const first = await a.complete(msgs('x'), { seed: 1 });
    const b = client({ cache });
    const again = await b.complete(msgs('x'), { seed: 1 });
    expect(again.cached).to.equal(true);
    expect(again.content).to.equal(first.content);
    expect(server.chat()).to.have.length(1);
    await b.complete(msgs('x'), { seed: 2 }); // another parameter, another key
    expect(server.chat()).to.have.length(2);
    cache.close();
  });

  it('drops JSON mode for the run when the server refuses it (auto), and finds answers cached either way', async () => {
    server.setScript((req) =>
      req.body.response_format
        ? {
            status: 400,
            body: {
              error: {
                message: 'only response_format { type: "text" } is supported',
                type: 'invalid_request_error',
                param: 'response_format',
              },
            },
          }
        : { content: '{"score": 4}' },
    );
    const events: string[] = [];
    const cache = JudgeCache.open(':memory:');
    const c = client({ cache, onEvent: (e) => events.push(e.type) });
    const r = await c.complete(msgs('a'));
    expect(r.jsonMode).to.equal(false);
    expect(c.jsonMode).to.equal('off');
    expect(events).to.deep.equal(['json-mode-off']);
    await c.complete(msgs('b'));
    expect(server.chat().map((q) => q.body.response_format !== undefined)).to.deep.equal([
      true,
      false,
      false,
    ]);
    // a new client in auto mode finds the answer stored without JSON mode: no request
    const again = client({ cache });
    expect((await again.complete(msgs('a'))).cached).to.equal(true);
    expect(server.chat()).to.have.length(3);
    // jsonMode 'on' does not fall back
    const strict = client({ jsonMode: 'on' });
    const e = await rejects(strict.complete(msgs('c')));
    expect(e).to.be.instanceOf(JudgeRequestError);
    expect((e as JudgeRequestError).kind).to.equal('item');
    cache.close();
  });

  it('drops JSON mode once when several requests in flight are refused at the same time', async () => {
    server.setScript((req) =>
      req.body.response_format
        ? {
            status: 400,
            delayMs: 20,
            body: { error: { message: 'response_format is not supported', type: 'invalid_request_error' } },
          }
        : { content: '{"score": 4}' },
    );
    const events: string[] = [];
    const c = client({ onEvent: (e) => events.push(e.type) });
    const all = await Promise.all([1, 2, 3, 4].map((i) => c.complete(msgs(`t${i}`))));
    expect(all.every((r) => r.jsonMode === false && r.content === '{"score": 4}')).to.equal(true);
    expect(events).to.deep.equal(['json-mode-off']);
    expect(server.chat()).to.have.length(8);
  });

  it('retries 500s and dropped connections with back-off, then succeeds', async () => {
    server.setScript((req) =>
      req.n === 1 ? { status: 500 } : req.n === 2 ? { destroy: true } : { content: '{"score": 2}' },
    );
    const events: { type: string; status?: number | null }[] = [];
    const c = client({ onEvent: (e) => events.push(e) });
    const r = await c.complete(msgs('t'));
    expect(r.attempts).to.equal(3);
    expect(events.map((e) => e.type)).to.deep.equal(['retry', 'retry']);
    expect(events[0]!.status).to.equal(500);
    expect(events[1]!.status).to.equal(null);
    expect(c.stats).to.deep.include({ requests: 3, retries: 2 });
  });

  it('honours Retry-After on 429 and holds back the other requests meanwhile', async () => {
    server.setScript((req) =>
      req.n === 1
        ? {
            status: 429,
            headers: { 'retry-after': '0.4' },
            body: { error: { message: 'slow down', type: 'requests' } },
          }
        : { content: '{"score": 5}' },
    );
    const c = client({ random: () => 0 });
    const t0 = performance.now();
    const first = c.complete(msgs('first'));
    await new Promise((r) => setTimeout(r, 50));
    const second = c.complete(msgs('second'));
    await Promise.all([first, second]);
    const reqs = server.chat();
    expect(reqs).to.have.length(3);
    // the retry and the other request both waited for the Retry-After window
    expect(reqs[1]!.at - reqs[0]!.at).to.be.at.least(380);
    expect(reqs[2]!.at - reqs[0]!.at).to.be.at.least(380);
    expect(performance.now() - t0).to.be.below(3000);
  });

  it('keeps to the requests-per-minute and tokens-per-minute limits', async () => {
    const timed = async (opts: Partial<JudgeClientOptions>, n: number) => {
      const c = client(opts);
      const from = server.chat().length;
      await Promise.all(
        Array.from({ length: n }, (_, i) => c.complete(msgs(`rate ${i}`), { max_tokens: 100 })),
      );
      const reqs = server.chat().slice(from);
      return (reqs[reqs.length - 1]!.at - reqs[0]!.at) / 1000;
    };
    // 1,200 rpm = 20/s with a one-second bucket: 20 at once, then 20/s
    expect(await timed({ rpm: 1200 }, 26)).to.be.within(0.25, 2);
    // each request is estimated at ≈ 19 prompt + 100 output tokens and then charged the 200 it really used:
    // 1,000 tokens a second let 8 go at once, then one every 0.2 s or so
    server.setScript(() => ({
      content: '{"score": 1}',
      usage: { prompt_tokens: 100, completion_tokens: 100 },
    }));
    expect(await timed({ tpm: 60_000 }, 12)).to.be.within(0.6, 3);
  });

  it('times out slow answers and retries them', async () => {
    server.setScript((req) =>
      req.n === 1 ? { delayMs: 1500, content: '{"score": 1}' } : { content: '{"score": 3}' },
    );
    const c = client({ timeoutMs: 200 });
    const t0 = performance.now();
    const r = await c.complete(msgs('slow'));
    expect(JSON.parse(r.content!).score).to.equal(3);
    expect(r.attempts).to.equal(2);
    expect(performance.now() - t0).to.be.below(1400);
  });

  it('gives up after the retries, with a message that says what to do', async () => {
    server.setScript(() => ({ status: 503 }));
    const c = client({ retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    const e = (await rejects(c.complete(msgs('t')))) as JudgeRequestError;
    expect(e).to.be.instanceOf(JudgeRequestError);
    expect(e.isPolyglotError).to.equal(true);
    expect(e.kind).to.equal('fatal');
    expect(e.message).to.match(/gave up after 3 attempts: 503/);
    expect(e.message).to.include('rerun to resume');
    expect(server.chat()).to.have.length(3);
  });

  it('never puts the API key into errors or the cache', async () => {
    const key = 'sk-test-SECRET0123456789abcdef';
    server.setScript(() => ({
      status: 401,
      body: {
        error: {
          message: `Incorrect API key provided: ${key}.`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      },
    }));
    const c = client({ apiKey: key });
    const e = (await rejects(c.complete(msgs('t')))) as JudgeRequestError;
    expect(e.code).to.equal('auth');
    expect(e.kind).to.equal('fatal');
    expect(e.message).to.not.include('SECRET0123456789');
    expect(e.message).to.include('--api-key-env');
    expect(JSON.stringify(e)).to.not.include('SECRET');
    expect(String(e.stack)).to.not.include('SECRET');
    expect(server.chat()[0]!.headers.authorization).to.equal(`Bearer ${key}`);
    server.setScript(jsonAnswer());
    await c.complete(msgs('ok'));
    const cache = (c as unknown as { cache: JudgeCache }).cache;
    expect(cache.count()).to.equal(1);
  });

  it('talks to Azure-style endpoints (deployment path, api-version, api-key header)', async () => {
    const c = client({
      baseURL: `http://127.0.0.1:${server.port}`,
      azureApiVersion: '2024-10-21',
      apiKey: 'az-key',
    });
    await c.complete(msgs('azure'));
    const req = server.chat()[0]!;
    expect(req.path).to.equal('/openai/deployments/judge-1/chat/completions?api-version=2024-10-21');
    expect(req.headers['api-key']).to.equal('az-key');
  });

  it('counts tokens and cost from the returned usage and the price table', async () => {
    server.setScript(() => ({
      content: '{"score": 1}',
      usage: { prompt_tokens: 1000, completion_tokens: 100 },
    }));
    const c = client({ prices: { 'judge-1': { input: 1, output: 2 } } });
    const r = await c.complete(msgs('a'));
    expect(r.cost).to.be.closeTo((1000 * 1 + 100 * 2) / 1e6, 1e-12);
    await c.complete(msgs('b'));
    expect(c.stats.spent).to.be.closeTo(0.0024, 1e-12);
    expect(c.stats).to.deep.include({ promptTokens: 2000, completionTokens: 200, unpriced: 0 });
    const cached = await c.complete(msgs('a'));
    expect(cached.cost).to.be.closeTo(0.0012, 1e-12); // what the answer cost, though nothing was spent now
    expect(c.stats.spent).to.be.closeTo(0.0024, 1e-12);
    const unknown = client({ model: 'mystery' });
    expect((await unknown.complete(msgs('a'))).cost).to.equal(null);
    expect(unknown.stats.unpriced).to.equal(1);
  });

  it('stops before a request that could overrun --max-cost, and refuses a budget without a price', async () => {
    server.setScript(() => ({
      content: '{"score": 1}',
      usage: { prompt_tokens: 10, completion_tokens: 10 },
    }));
    // worst case of one request: (72 prompt tokens at most + 100 output tokens) at $1000/1M = $0.172; each
    // answer really costs $0.02, so the third would only fit the worst case in a budget of $0.212
    const c = client({ prices: { 'judge-1': { input: 1000, output: 1000 } }, maxCost: 0.2 });
    await c.complete(msgs('a'), { max_tokens: 100 });
    await c.complete(msgs('b'), { max_tokens: 100 });
    const e = (await rejects(c.complete(msgs('c'), { max_tokens: 100 }))) as JudgeError;
    expect(e.code).to.equal('budget');
    expect(c.stats.spent).to.be.closeTo(0.04, 1e-12);
    expect(server.chat()).to.have.length(2);
    expect(() => client({ model: 'mystery', maxCost: 1 })).to.throw(JudgeError, /--prices/);
  });

  it('refuses bad endpoints clearly', () => {
    expect(() => new JudgeClient({ baseURL: 'not a url', model: 'm' })).to.throw(JudgeError, /not a URL/);
    expect(() => new JudgeClient({ baseURL: server.url, model: '' })).to.throw(JudgeError, /model/);
  });
});
