import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  LocalEngine,
  normalizeBaseUrl,
  OpenAIServer,
  RemoteEngine,
  RemoteError,
  retryAfterMs,
  samplingParams,
  wireParams,
} from '../src/index.js';

type Json = Record<string, unknown>;

/** What the fault-injecting server does with one request: answer (status, body, headers) or hang. */
type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

/** A loopback stand-in for a flaky OpenAI-compatible server; `script` decides each reply. */
class FlakyServer {
  readonly requests: { at: number; path: string; body: Json }[] = [];
  private server!: http.Server;
  url = '';
  constructor(private readonly script: (n: number, path: string, body: Json) => Reply) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json) : {};
        this.requests.push({ at: performance.now(), path: req.url ?? '', body });
        const reply = this.script(this.requests.length, req.url ?? '', body);
        if (reply === 'hang') return; // never answers: the client's timeout fires
        const text = JSON.stringify(reply.body ?? {});
        res.writeHead(reply.status, { 'Content-Type': 'application/json', ...reply.headers });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A minimal successful completion. */
const completion = (text: string, extra: Json = {}, promptTokens = 1): Reply => ({
  status: 200,
  body: {
    id: 'cmpl-1',
    object: 'text_completion',
    created: 0,
    model: 'm',
    choices: [{ index: 0, text, logprobs: null, finish_reason: 'length', ...extra }],
    usage: { prompt_tokens: promptTokens, completion_tokens: 1, total_tokens: promptTokens + 1 },
  },
});

const error = (status: number, message: string, headers: Record<string, string> = {}): Reply => ({
  status,
  body: { error: { message, type: 'server_error', param: null, code: null } },
  headers,
});

async function failure(run: () => Promise<unknown>): Promise<RemoteError> {
  try {
    await run();
  } catch (e) {
    expect(isPolyglotError(e), String(e)).to.equal(true);
    expect(e).to.be.instanceOf(RemoteError);
    return e as RemoteError;
  }
  throw new Error('expected a RemoteError');
}

const fast = { initialMs: 40, maxMs: 1000, factor: 2 };

describe('RemoteEngine against our own server (a stand-in for vLLM)', () => {
  let local: LocalEngine;
  let server: OpenAIServer;
  let remote: RemoteEngine;

  before(async function () {
    local = await LocalEngine.load({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      adapter: { peft: sharedPath(this, 'fixtures', 'tiny-llama', 'adapter') },
      backend: 'wasm',
      chatTemplate: 'guanaco',
    });
    server = await OpenAIServer.start({ engine: local, port: 0, servedModelName: 'tiny' });
    remote = await RemoteEngine.connect({ endpoints: server.url, tokenIds: true, seed: 5 });
  });

  after(async () => {
    await remote?.close();
    await server?.close();
    await local?.close();
  });

  it('finds the served model and generates what the local engine does (completions and chat)', async () => {
    expect(remote.info).to.deep.equal({ kind: 'openai', model: 'tiny', backend: null, adapter: null });
    const reqs = [
      { prompt: 'Hello, my name is', params: { temperature: 0, max_tokens: 10, ignore_eos: true } },
      {
        prompt: 'Bonjour',
        params: { temperature: 0.8, top_p: 0.9, top_k: 50, frequency_penalty: 0.2, max_tokens: 12, seed: 3 },
      },
      { messages: [{ role: 'user', content: 'Hallo!' }], params: { temperature: 0, max_tokens: 8 } },
    ];
    const order: number[] = [];
    const got = await remote.generate(reqs, { onResult: (i) => order.push(i) });
    const want = await local.generate(reqs, { adapter: null });
    expect(order.sort()).to.deep.equal([0, 1, 2]);
    got.forEach((r, i) => {
      expect(r.text, `request ${i}`).to.equal(want[i].text);
      expect(r.finishReason).to.equal(want[i].finishReason);
      expect(r.outputIds).to.deep.equal(want[i].outputIds); // tokenIds: vLLM's return_token_ids
    });
    expect(got[0].inputIds).to.deep.equal(want[0].inputIds);
    // The adapter by name, n samples, logprobs.
    const [tuned] = await remote.generate(
      [{ prompt: 'Hello', n: 3, params: { temperature: 1, max_tokens: 5, seed: 9, logprobs: 2 } }],
      {
        adapter: 'peft',
      },
    );
    const [ref] = await local.generate(
      [{ prompt: 'Hello', n: 3, params: { temperature: 1, max_tokens: 5, seed: 9, logprobs: 2 } }],
      {
        adapter: 'peft',
      },
    );
    expect(tuned.choices!.map((c) => c.text)).to.deep.equal(ref.choices!.map((c) => c.text));
    tuned.tokenLogprobs!.forEach((lp, i) => {
      expect(lp).to.be.closeTo(ref.tokenLogprobs![i], 1e-5);
    });
    expect(tuned.topLogprobs![0]).to.have.length(2);
    expect(tuned.topLogprobs![0][0].logprob).to.be.closeTo(ref.topLogprobs![0][0].logprob, 1e-5);
  });

  it('scores and computes log-likelihoods through echo + logprobs', async () => {
    const texts = [{ text: 'The quick brown fox' }, { inputIds: [1, 450, 4996, 17354] }];
    const got = await remote.score(texts, { topLogprobs: 2 });
    const want = await local.score(texts, { adapter: null, topLogprobs: 2 });
    got.forEach((r, i) => {
      expect(r.inputIds).to.deep.equal(want[i].inputIds);
      expect(r.tokenLogprobs).to.have.length(want[i].tokenLogprobs.length);
      r.tokenLogprobs.forEach((lp, k) => {
        expect(lp).to.be.closeTo(want[i].tokenLogprobs[k], 1e-5);
      });
      expect(r.topLogprobs![0][0].token).to.equal(want[i].topLogprobs![0][0].token);
    });
    const pairs = [
      { context: 'Question: Wie heißt die Hauptstadt von Island? Answer:', continuation: ' Reykjavík' },
      { context: 'Zwei plus zwei ist ', continuation: 'vier' }, // trailing space moves to the continuation
      { contextIds: [1, 450, 4996], continuationIds: [17354, 1701] },
    ];
    const ll = await remote.loglikelihood(pairs);
    const llWant = await local.loglikelihood(pairs, { adapter: null });
    ll.forEach((r, i) => {
      expect(r.tokens, `pair ${i}`).to.equal(llWant[i].tokens);
      expect(r.logprob).to.be.closeTo(llWant[i].logprob, 1e-4);
      expect(r.isGreedy).to.equal(llWant[i].isGreedy);
    });
  });

  it('spreads requests over several endpoints', async () => {
    const second = await OpenAIServer.start({ engine: local, port: 0, servedModelName: 'tiny' });
    try {
      const fleet = await RemoteEngine.connect({ endpoints: [server.url, second.url], concurrency: 2 });
      const reqs = Array.from({ length: 12 }, (_, i) => ({
        prompt: `Item ${i}`,
        params: { temperature: 0, max_tokens: 8 },
      }));
      const got = await fleet.generate(reqs);
      const want = await local.generate(reqs, { adapter: null });
      expect(got.map((r) => r.text)).to.deep.equal(want.map((r) => r.text));
      const served = fleet.stats.map((s) => s.served);
      expect(served.reduce((a, b) => a + b, 0)).to.equal(12 + 1); // and GET /v1/models at connect
      expect(Math.min(...served)).to.be.at.least(4);
    } finally {
      await second.close();
    }
  });
});

describe('RemoteEngine retries, back-off and errors (a fault-injecting loopback server)', () => {
  const servers: FlakyServer[] = [];
  const start = async (script: (n: number, path: string, body: Json) => Reply) => {
    const s = await new FlakyServer(script).start();
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('parses base URLs and Retry-After headers', () => {
    expect(normalizeBaseUrl('http://gpu1:8000')).to.equal('http://gpu1:8000/v1');
    expect(normalizeBaseUrl('https://api.openai.com/v1/')).to.equal('https://api.openai.com/v1');
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).to.equal(2000);
    expect(retryAfterMs(new Headers({ 'retry-after': '0.25' }))).to.equal(250);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '120', 'retry-after': '9' }))).to.equal(120);
    const at = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Wed, 21 Oct 2026 07:28:03 GMT' }), at)).to.equal(3000);
    expect(retryAfterMs(new Headers({}))).to.equal(null);
    // vLLM's extra sampling fields go out only when set.
    expect(wireParams(samplingParams({ max_tokens: 5 }))).to.deep.equal({
      max_tokens: 5,
      temperature: 1,
      top_p: 1,
    });
    expect(wireParams(samplingParams({ top_k: 50, repetition_penalty: 1.1, ignore_eos: true }))).to.include({
      top_k: 50,
      repetition_penalty: 1.1,
      ignore_eos: true,
    });
  });

  it('429 with Retry-After: waits as long as the server says, then succeeds', async () => {
    const s = await start((n) =>
      n === 1 ? error(429, 'slow down', { 'Retry-After': '0.3' }) : completion('ok'),
    );
    const sleeps: number[] = [];
    const engine = await RemoteEngine.connect({
      endpoints: s.url,
      model: 'm',
      backoff: fast,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((r) => setTimeout(r, ms));
      },
    });
    const t0 = performance.now();
    const [r] = await engine.generate([{ prompt: 'x', params: { max_tokens: 1 } }]);
    expect(r.text).to.equal('ok');
    expect(s.requests).to.have.length(2);
    expect(sleeps).to.deep.equal([300]);
    expect(s.requests[1].at - s.requests[0].at).to.be.at.least(290);
    expect(performance.now() - t0).to.be.at.least(290);
  });

  it('500s: exponential back-off with full jitter, then success; when retries run out, REMOTE_FAILED', async () => {
    const s = await start((n) => (n <= 3 ? error(500, 'boom') : completion('fine')));
    const sleeps: number[] = [];
    const draws = [1, 0.5, 1];
    const engine = await RemoteEngine.connect({
      endpoints: s.url,
      model: 'm',
      backoff: { initialMs: 100, maxMs: 250, factor: 2 },
      random: () => draws.shift() ?? 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const [r] = await engine.generate([{ prompt: 'x' }]);
    expect(r.text).to.equal('fine');
    // attempt k waits random · min(maxMs, initialMs · 2^(k-1)): 1·100, 0.5·200, 1·min(250, 400).
    expect(sleeps).to.deep.equal([100, 100, 250]);

    const always = await start(() => error(503, 'overloaded'));
    const give = await RemoteEngine.connect({
      endpoints: always.url,
      model: 'm',
      retries: 2,
      backoff: fast,
      random: () => 0,
    });
    const err = await failure(() => give.generate([{ prompt: 'x' }]));
    expect(err.code).to.equal('REMOTE_FAILED');
    expect(err.status).to.equal(503);
    expect(err.attempts).to.equal(3);
    expect(err.message).to.include(always.url).and.include('3 attempts').and.include('overloaded');
    expect(always.requests).to.have.length(3);
  });

  it('timeouts count as failures and are retried; a 4xx is not retried', async () => {
    const s = await start((n) => (n === 1 ? 'hang' : completion('late')));
    const engine = await RemoteEngine.connect({
      endpoints: s.url,
      model: 'm',
      timeoutMs: 200,
      backoff: fast,
    });
    const [r] = await engine.generate([{ prompt: 'x' }]);
    expect(r.text).to.equal('late');
    expect(s.requests).to.have.length(2);

    const hang = await start(() => 'hang');
    const never = await RemoteEngine.connect({
      endpoints: hang.url,
      model: 'm',
      timeoutMs: 100,
      retries: 1,
      backoff: fast,
    });
    const timedOut = await failure(() => never.generate([{ prompt: 'x' }]));
    expect(timedOut.code).to.equal('REMOTE_FAILED');
    expect(timedOut.status).to.equal(null);
    expect(timedOut.message).to.include('timed out');

    const bad = await start(() => error(400, 'top_k is not a valid field'));
    const strict = await RemoteEngine.connect({ endpoints: bad.url, model: 'm', backoff: fast });
    const refused = await failure(() => strict.generate([{ prompt: 'x', params: { top_k: 5 } }]));
    expect(refused.code).to.equal('REMOTE_REJECTED');
    expect(refused.status).to.equal(400);
    expect(refused.message).to.include('top_k is not a valid field');
    expect(bad.requests).to.have.length(1);
    expect(bad.requests[0].body).to.include({ top_k: 5 });
  });

  it('a failing server is retried elsewhere; a dead one is held back', async () => {
    const broken = await start(() => error(500, 'broken'));
    const good = await start(() => completion('from the good one'));
    // A port that was just free: nothing listens there (connection refused).
    const gone = await new FlakyServer(() => completion('x')).start();
    await gone.close();
    const engine = await RemoteEngine.connect({
      endpoints: [broken.url, good.url, gone.url],
      model: 'm',
      backoff: { initialMs: 2000, maxMs: 2000, factor: 2 },
      sleep: async () => {
        throw new Error('should not wait: another endpoint was free');
      },
    });
    const rs = await engine.generate(Array.from({ length: 10 }, () => ({ prompt: 'x' })));
    expect(rs.every((r) => r.text === 'from the good one')).to.equal(true);
    const [b, g, dead] = engine.stats;
    expect(g.served).to.equal(10);
    expect(b.failed).to.be.at.least(1);
    expect(b.served + dead.served).to.equal(0);
    // The refused endpoint is blocked for a back-off after its failure: tried at most once per request at first.
    expect(dead.failed).to.be.at.most(10);
  });

  it('scoring: max_tokens 0 falls back to 1; a chat-only API gives REMOTE_UNSUPPORTED', async () => {
    const logprobs = {
      tokens: ['', 'Hi', ' there', '!'],
      token_logprobs: [null, -1.5, -0.5, -2],
      top_logprobs: [null, { Hi: -1.5, Ho: -1 }, { ' there': -0.5 }, { '!': -2, '.': -0.1 }],
      text_offset: [0, 0, 2, 8],
    };
    const s = await start((_, __, body) =>
      body.max_tokens === 0
        ? error(400, 'max_tokens must be at least 1')
        : completion('Hi there!', { logprobs }, 3),
    );
    const engine = await RemoteEngine.connect({ endpoints: s.url, model: 'm', backoff: fast });
    const [score] = await engine.score([{ text: 'Hi there' }]);
    // Three prompt tokens (usage.prompt_tokens); the fourth is the one new token, ignored.
    expect(score.tokens).to.deep.equal(['', 'Hi', ' there']);
    expect(score.tokenLogprobs).to.deep.equal([-1.5, -0.5]);
    const [byIds] = await engine.score([{ inputIds: [1, 2, 3] }]);
    expect(byIds.tokenLogprobs).to.deep.equal([-1.5, -0.5]);
    expect(s.requests.map((r) => r.body.max_tokens)).to.deep.equal([0, 1, 1]);
    expect(s.requests[1].body).to.include({ echo: true, logprobs: 1, temperature: 0 });
    const [ll] = await engine.loglikelihood([{ context: 'Hi', continuation: ' there' }]);
    expect(ll.tokens).to.equal(1); // of the prompt's tokens, ' there' (offset 2) starts at the context's end
    expect(ll.logprob).to.equal(-0.5);
    expect(ll.isGreedy).to.equal(true);
    const [ids] = await engine.loglikelihood([{ contextIds: [1], continuationIds: [2, 3] }]);
    expect(ids).to.deep.equal({ logprob: -2, tokens: 2, isGreedy: false }); // 'Ho' beats 'Hi'

    const chatOnly = await start((_, path) =>
      path.endsWith('/completions') && !path.includes('chat')
        ? error(404, 'This is a chat model')
        : completion('x'),
    );
    const openai = await RemoteEngine.connect({ endpoints: chatOnly.url, model: 'gpt', backoff: fast });
    const err = await failure(() => openai.score([{ text: 'Hi' }]));
    expect(err.code).to.equal('REMOTE_UNSUPPORTED');
    expect(err.message).to.include('echo + logprobs');
    const noLogprobs = await start(() => completion('x'));
    const plain = await RemoteEngine.connect({ endpoints: noLogprobs.url, model: 'm', backoff: fast });
    expect((await failure(() => plain.loglikelihood([{ context: 'a', continuation: 'b' }]))).code).to.equal(
      'REMOTE_UNSUPPORTED',
    );
  });
});
