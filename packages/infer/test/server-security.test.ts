// What the server enforces against untrusted network clients: loopback by default, the API key (constant-time,
// never logged or echoed), request limits, slow clients, the connection cap, malformed HTTP, and model/adapter
// names that never reach the filesystem.
import { request } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import OpenAI from 'openai';
import { sharedPath } from '../../../tools/shared.js';
import { ApiKeyCheck, defaultLimits, LocalEngine, OpenAIServer, resolveLimits } from '../src/index.js';

interface Answer {
  status: number;
  json: { error?: { message: string; type: string; param: string | null; code: string | null } } & Record<
    string,
    unknown
  >;
  headers: Record<string, unknown>;
}

function http(
  url: string,
  method: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {}, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `parts` to a raw socket (each after the previous one is flushed) and resolves with all it reads until close. */
function rawSocket(url: string, parts: string[]): Promise<{ status: number; body: string; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect(Number(u.port), u.hostname, () => {
      for (const p of parts) socket.write(p);
    });
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, body: text.slice(text.indexOf('\r\n\r\n') + 4), text });
    });
  });
}

function expectError(a: Answer, status: number, code?: string): void {
  expect(a.status, JSON.stringify(a.json)).to.equal(status);
  expect(a.json.error?.message).to.be.a('string').and.not.equal('');
  expect(a.json.error?.type).to.be.a('string');
  expect(a.json.error).to.have.property('param');
  if (code !== undefined) expect(a.json.error?.code).to.equal(code);
}

describe('server security: auth, limits, slow clients, names', () => {
  let engine: LocalEngine;
  let modelDir: string;
  let adapterDir: string;
  const servers: OpenAIServer[] = [];
  const start = async (opts: Partial<Parameters<typeof OpenAIServer.start>[0]> = {}) => {
    const s = await OpenAIServer.start({ engine, port: 0, servedModelName: 'tiny', ...opts });
    servers.push(s);
    return s;
  };

  before(async function () {
    modelDir = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    adapterDir = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    engine = await LocalEngine.load({
      model: modelDir,
      adapter: { peft: adapterDir },
      backend: 'wasm',
      chatTemplate: 'guanaco',
      seed: 5,
    });
  });

  after(async () => {
    for (const s of servers) await s.close({ timeoutMs: 2000 });
    await engine?.close();
  });

  it('listens on 127.0.0.1 unless told otherwise', async () => {
    const s = await start();
    expect(new URL(s.url).hostname).to.equal('127.0.0.1');
  });

  it('--api-key: /v1 needs the bearer key (401 otherwise, the key never echoed or logged); /health stays open', async () => {
    const key = 'sk-serve-TOPSECRET-0123456789';
    const logs: string[] = [];
    const s = await start({ apiKey: key, log: (r) => logs.push(JSON.stringify(r)) });
    const body = JSON.stringify({ model: 'tiny', prompt: 'Hallo', max_tokens: 2 });
    expectError(await http(`${s.url}/v1/completions`, 'POST', body), 401, 'invalid_api_key');
    const wrong = await http(`${s.url}/v1/completions`, 'POST', body, { Authorization: `Bearer ${key}x` });
    expectError(wrong, 401, 'invalid_api_key');
    expect(JSON.stringify(wrong.json)).to.not.include('TOPSECRET');
    expectError(await http(`${s.url}/v1/models`, 'GET', undefined, { Authorization: key }), 401);
    expectError(await http(`${s.url}/v1/models`, 'GET', undefined, { Authorization: `Basic ${key}` }), 401);
    expectError(await http(`${s.url}/nowhere`, 'GET'), 401); // nothing but /health without the key
    expect((await http(`${s.url}/health`, 'GET')).status).to.equal(200);
    const ok = await http(`${s.url}/v1/completions`, 'POST', body, { Authorization: `Bearer ${key}` });
    expect(ok.status).to.equal(200);
    // The openai client sends it as it should.
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: key, maxRetries: 0 });
    expect((await client.models.list()).data[0].id).to.equal('tiny');
    const stranger = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'guess', maxRetries: 0 });
    let error: unknown;
    try {
      await stranger.models.list();
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(OpenAI.AuthenticationError);
    expect(logs.join('\n')).to.not.include('TOPSECRET');
    expect(logs.join('\n')).to.include('"status":401');
  });

  it('the key check: exact match only, case-insensitive scheme, no white space in keys', () => {
    const check = new ApiKeyCheck('abc-123');
    expect(check.matches('Bearer abc-123')).to.equal(true);
    expect(check.matches('bearer abc-123')).to.equal(true);
    expect(check.matches(['Bearer abc-123'])).to.equal(true);
    for (const h of [
      'Bearer abc-1234',
      'Bearer abc-12',
      'Bearer ',
      'abc-123',
      'Bearer abc-123 x',
      '',
      undefined,
    ]) {
      expect(check.matches(h), String(h)).to.equal(false);
    }
    expect(() => new ApiKeyCheck('')).to.throw(/non-empty/);
    expect(() => new ApiKeyCheck('a b')).to.throw(/white space/);
    expect(JSON.stringify(check)).to.not.include('abc-123');
  });

  it('limits: n, max_tokens, prompt characters (before tokenizing), stop strings, prompts, body size', async () => {
    const s = await start({
      limits: { maxN: 2, maxTokens: 8, maxPromptChars: 100, maxStop: 2, maxPrompts: 2, maxBodyBytes: 2048 },
    });
    const post = (body: unknown) => http(`${s.url}/v1/completions`, 'POST', JSON.stringify(body));
    const chat = (body: unknown) => http(`${s.url}/v1/chat/completions`, 'POST', JSON.stringify(body));
    const base = { model: 'tiny', prompt: 'Hallo', max_tokens: 2 };
    expectError(await post({ ...base, n: 3 }), 400);
    expect((await post({ ...base, n: 2 })).status).to.equal(200);
    expectError(await post({ ...base, max_tokens: 9 }), 400);
    expectError(await post({ ...base, prompt: 'x'.repeat(101) }), 400, 'prompt_too_long');
    expectError(await post({ ...base, prompt: ['x'.repeat(60), 'y'.repeat(60)] }), 400, 'prompt_too_long');
    expect((await post({ ...base, prompt: 'x'.repeat(100) })).status).to.equal(200);
    expectError(
      await chat({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(101) }], max_tokens: 2 }),
      400,
      'prompt_too_long',
    );
    expectError(await post({ ...base, stop: ['a', 'b', 'c'] }), 400);
    expectError(await post({ ...base, stop_token_ids: [1, 2, 3] }), 400);
    expectError(await post({ ...base, prompt: ['a', 'b', 'c'] }), 400);
    expectError(await post({ ...base, logprobs: 21 }), 400);
    // Over the body limit, declared or not (chunked): 413, and the connection is closed.
    const big = await http(`${s.url}/v1/completions`, 'POST', Buffer.alloc(4096, 32));
    expectError(big, 413, 'body_too_large');
    expect(big.headers.connection).to.equal('close');
    const chunked = await rawSocket(s.url, [
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      `1000\r\n${' '.repeat(4096)}\r\n`,
      '0\r\n\r\n',
    ]);
    expect(chunked.status).to.equal(413);
    expect(JSON.parse(chunked.body.replace(/^[0-9a-f]+\r\n/, '').split('\r\n')[0]).error.code).to.equal(
      'body_too_large',
    );
  });

  it('the limits are checked: positive integers, known names, headers timeout within the request timeout', () => {
    expect(resolveLimits({}, 512)).to.deep.equal(defaultLimits(512));
    expect(defaultLimits(4096)).to.include({ maxPromptChars: 65_536, maxTokens: 4096, maxConnections: 512 });
    expect(resolveLimits({ requestTimeoutMs: 2000 }, 512).headersTimeoutMs).to.equal(2000);
    expect(() => resolveLimits({ maxN: 0 }, 512)).to.throw(/maxN must be a positive integer/);
    expect(() => resolveLimits({ maxN: 1.5 }, 512)).to.throw(/positive integer/);
    expect(() => resolveLimits({ nope: 1 } as never, 512)).to.throw(/unknown server limit "nope"/);
    expect(() => resolveLimits({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 }, 512)).to.throw(
      /must not exceed requestTimeoutMs/,
    );
  });

  it('slow clients time out with 408 (headers, then body); malformed HTTP is 400; huge headers 431', async () => {
    const s = await start({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
    const slowHeaders = await rawSocket(s.url, ['POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ']);
    expect(slowHeaders.status).to.equal(408);
    expect(JSON.parse(slowHeaders.body).error.code).to.equal('request_timeout');
    const slowBody = await rawSocket(s.url, [
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":',
    ]);
    expect(slowBody.status).to.equal(408);
    const garbage = await rawSocket(s.url, ['GARBAGE\r\n\r\n']);
    expect(garbage.status).to.equal(400);
    expect(JSON.parse(garbage.body).error.type).to.equal('invalid_request_error');
    const huge = await rawSocket(s.url, [
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    ]);
    expect(huge.status).to.equal(431);
    // Still serving.
    expect((await http(`${s.url}/health`, 'GET')).status).to.equal(200);
  });

  it('connections beyond maxConnections get 503 too_many_connections and are closed', async () => {
    const s = await start({ limits: { maxConnections: 2 } });
    const u = new URL(s.url);
    const open = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<net.Socket>((resolve) => {
            const c = net.connect(Number(u.port), u.hostname, () => resolve(c));
          }),
      ),
    );
    try {
      const third = await rawSocket(s.url, ['GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n']);
      expect(third.status).to.equal(503);
      expect(third.text).to.match(/Retry-After: 1/i);
      expect(JSON.parse(third.body).error.code).to.equal('too_many_connections');
    } finally {
      for (const c of open) c.destroy();
    }
    for (let i = 0; i < 100 && (await http(`${s.url}/health`, 'GET')).status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await http(`${s.url}/v1/models`, 'GET')).status).to.equal(200);
  });

  it('model and adapter names never reach the filesystem: only served names, anything else 404', async () => {
    const s = await start();
    const names = [
      '../base',
      '../../../../etc/passwd',
      '/etc/passwd',
      modelDir,
      adapterDir,
      path.relative(process.cwd(), adapterDir),
      'peft/../peft',
      './peft',
      '..',
      '.',
      'tiny/',
      'tiny\u0000',
      '%2e%2e%2fpeft',
      'file:///etc/passwd',
      'C:\\Windows\\win.ini',
    ];
    for (const model of names) {
      const a = await http(
        `${s.url}/v1/completions`,
        'POST',
        JSON.stringify({ model, prompt: 'x', max_tokens: 1 }),
      );
      expectError(a, 404, 'model_not_found');
      expect(a.json.error?.message).to.include('served: tiny, peft');
    }
    const c = await http(
      `${s.url}/v1/chat/completions`,
      'POST',
      JSON.stringify({ model: '../peft', messages: [{ role: 'user', content: 'x' }] }),
    );
    expectError(c, 404, 'model_not_found');
    // Path-like request targets are routes, never files.
    for (const target of [
      '/../../etc/passwd',
      '/v1/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '//etc/passwd',
    ]) {
      const a = await http(`${s.url}${target}`, 'GET');
      expect(a.status, target).to.be.oneOf([404, 405]);
    }
  });

  it('a chat_template in a request is refused unless the server trusts request templates', async () => {
    const template = "{% for m in messages %}<{{ m['content'] }}>{% endfor %}";
    const body = JSON.stringify({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hallo' }],
      max_tokens: 2,
      chat_template: template,
      return_token_ids: true,
    });
    const refused = await http(`${(await start()).url}/v1/chat/completions`, 'POST', body);
    expectError(refused, 400);
    expect(refused.json.error?.param).to.equal('chat_template');
    const trusted = await start({ trustRequestChatTemplate: true });
    const ok = await http(`${trusted.url}/v1/chat/completions`, 'POST', body);
    expect(ok.status).to.equal(200);
    expect(ok.json.prompt_token_ids).to.deep.equal(
      engine.tokenizer.encode('<Hallo>', { addSpecialTokens: false }),
    );
  });
});
