// Property-based tests (fast-check) of the request bodies the server parses: whatever a client sends to
// /v1/completions or /v1/chat/completions — well-formed requests, fields of any type and value, any JSON, raw bytes —
// is either handled (200 with a whole answer) or refused with a 4xx and OpenAI's error JSON; never a 5xx, a hang,
// a crash or a broken connection. The cases run are counted in the test output.
import { request } from 'node:http';
import { expect } from 'chai';
import fc from 'fast-check';
import { sharedPath } from '../../../tools/shared.js';
import { LocalEngine, OpenAIServer } from '../src/index.js';

/** A client that waits this long for an answer counts the request as a hang. */
const HANG_MS = 30_000;

interface Answer {
  status: number;
  text: string;
  contentType: string;
}

function post(url: string, body: string | Uint8Array, contentType = 'application/json'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'Content-Type': contentType }, timeout: HANG_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            contentType: String(res.headers['content-type'] ?? ''),
          }),
        );
      },
    );
    req.on('timeout', () => {
      req.destroy();
      reject(new Error(`no answer within ${HANG_MS} ms (hang)`));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Throws (with the case) unless `a` is a proper answer: 200 with a whole answer, or 4xx with OpenAI's error JSON. */
function expectProper(a: Answer, what: string): void {
  const where = `${what} → ${a.status} ${a.text.slice(0, 300)}`;
  if (a.status === 200) {
    if (a.contentType.startsWith('text/event-stream')) {
      expect(a.text.trimEnd().endsWith('data: [DONE]'), where).to.equal(true);
      // A stream is only begun once the request is known to be good: no error event inside it.
      expect(a.text, where).to.not.match(/^data: \{"error"/m);
    } else {
      const v = JSON.parse(a.text);
      expect(v.choices, where).to.be.an('array').that.is.not.empty;
    }
    return;
  }
  expect(a.status, where).to.be.within(400, 499);
  const e = JSON.parse(a.text).error;
  expect(e, where).to.be.an('object');
  expect(e.message, where).to.be.a('string').and.not.equal('');
  expect(e.type, where).to.be.a('string');
  expect(e, where).to.have.property('param');
  expect(e, where).to.have.property('code');
  expect(e.message, where).to.not.match(/internal error/);
}

// --- arbitraries --------------------------------------------------------------------------------------------------

/** Any value a JSON body can hold, small. */
const anyJson = fc.jsonValue({ maxDepth: 2, depthSize: 'small' });
/** Often the right type and a sensible value, sometimes an edge, sometimes anything. */
const num = (lo: number, hi: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: lo, max: hi }) },
    { weight: 2, arbitrary: fc.double({ min: lo - 1, max: hi + 1, noNaN: true }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, 0.5, 1e-300),
    },
    { weight: 1, arbitrary: anyJson },
  );
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', ' ', '\u0000', '\ud800', '### Human:', '{{ 7*7 }}', '{% for %}'),
  },
);
const model = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('tiny', 'peft') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '../tiny',
      '../../etc/passwd',
      '/etc/passwd',
      'tiny/../peft',
      '..',
      '.',
      '',
      '%2e%2e%2fpeft',
      'C:\\Windows\\win.ini',
      'file:///etc/passwd',
      'peft\u0000',
    ),
  },
  { weight: 1, arbitrary: text },
  { weight: 1, arbitrary: anyJson },
);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });
/** Present one time in five (a key whose value is undefined is left out of the JSON). */
const rare = <T>(a: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
const goodText = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 });
const goodIds = fc.array(fc.integer({ min: 0, max: 31_999 }), { minLength: 1, maxLength: 10 });

/** Sampling fields with values in range. */
const goodSampling = {
  max_tokens: rare(fc.integer({ min: 1, max: 6 })),
  temperature: rare(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true }))),
  top_p: rare(fc.double({ min: 0.01, max: 1, noNaN: true })),
  top_k: rare(fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: 50 }))),
  min_p: rare(fc.double({ min: 0, max: 1, noNaN: true })),
  n: rare(fc.integer({ min: 1, max: 4 })),
  seed: rare(fc.integer({ min: 0, max: 2 ** 40 })),
  stop: rare(fc.oneof(goodText, fc.array(goodText, { maxLength: 3 }))),
  stop_token_ids: rare(fc.array(fc.integer({ min: 0, max: 31_999 }), { maxLength: 3 })),
  frequency_penalty: rare(fc.double({ min: -2, max: 2, noNaN: true })),
  presence_penalty: rare(fc.double({ min: -2, max: 2, noNaN: true })),
  repetition_penalty: rare(fc.double({ min: 0.5, max: 2, noNaN: true })),
  min_tokens: rare(fc.integer({ min: 0, max: 3 })),
  ignore_eos: rare(fc.boolean()),
  stream: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.boolean() }),
  stream_options: rare(fc.record({ include_usage: fc.boolean() })),
  return_token_ids: rare(fc.boolean()),
};
const goodCompletions = fc.record({
  model: fc.constantFrom('tiny', 'peft'),
  prompt: fc.oneof(
    goodText,
    goodIds,
    fc.array(goodText, { minLength: 1, maxLength: 3 }),
    fc.array(goodIds, { minLength: 1, maxLength: 2 }),
  ),
  echo: rare(fc.boolean()),
  logprobs: rare(fc.integer({ min: 0, max: 5 })),
  return_tokens_as_token_ids: rare(fc.boolean()),
  ...goodSampling,
});
const goodChat = fc.record({
  model: fc.constantFrom('tiny', 'peft'),
  messages: fc.array(
    fc.record({
      role: fc.constantFrom('user', 'assistant'),
      content: fc.oneof(
        { weight: 4, arbitrary: goodText },
        {
          weight: 1,
          arbitrary: fc.array(fc.record({ type: fc.constant('text'), text: goodText }), { maxLength: 2 }),
        },
      ),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  max_completion_tokens: rare(fc.integer({ min: 1, max: 6 })),
  logprobs: rare(fc.boolean()),
  add_generation_prompt: rare(fc.boolean()),
  ...goodSampling,
});

/** Any value for any of the fields a body may have. */
const noisySampling = {
  max_tokens: opt(num(-2, 6)),
  temperature: opt(num(-1, 3)),
  top_p: opt(num(-1, 2)),
  top_k: opt(num(-2, 100)),
  min_p: opt(num(-1, 2)),
  n: opt(num(-1, 4)),
  seed: opt(num(-5, 2 ** 40)),
  stop: opt(fc.oneof(text, fc.array(text, { maxLength: 5 }), anyJson)),
  stop_token_ids: opt(fc.oneof(fc.array(fc.integer({ min: -2, max: 40_000 }), { maxLength: 4 }), anyJson)),
  frequency_penalty: opt(num(-3, 3)),
  presence_penalty: opt(num(-3, 3)),
  repetition_penalty: opt(num(-1, 3)),
  min_tokens: opt(num(-1, 8)),
  ignore_eos: opt(fc.oneof(fc.boolean(), anyJson)),
  stream: opt(fc.oneof({ weight: 3, arbitrary: fc.boolean() }, { weight: 1, arbitrary: anyJson })),
  stream_options: opt(fc.oneof(fc.record({ include_usage: fc.oneof(fc.boolean(), anyJson) }), anyJson)),
  logit_bias: opt(fc.oneof(fc.constant({}), anyJson)),
  best_of: opt(num(0, 3)),
  return_token_ids: opt(fc.oneof(fc.boolean(), anyJson)),
  user: opt(text),
};
const tokenIds = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 31_999 }) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 32_000, 2 ** 53, 0.5) },
  ),
  { maxLength: 12 },
);
const noisyCompletions = fc.record(
  {
    model,
    prompt: fc.oneof(
      { weight: 4, arbitrary: text },
      { weight: 2, arbitrary: fc.array(text, { maxLength: 5 }) },
      { weight: 2, arbitrary: tokenIds },
      { weight: 1, arbitrary: fc.array(tokenIds, { maxLength: 3 }) },
      { weight: 1, arbitrary: anyJson },
    ),
    echo: opt(fc.oneof(fc.boolean(), anyJson)),
    logprobs: opt(num(-1, 6)),
    suffix: opt(fc.oneof(text, anyJson)),
    return_tokens_as_token_ids: opt(fc.oneof(fc.boolean(), anyJson)),
    ...noisySampling,
  },
  { requiredKeys: [] },
);
const message = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        role: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('user', 'assistant', 'system') },
          { weight: 1, arbitrary: text },
          { weight: 1, arbitrary: anyJson },
        ),
        content: fc.oneof(
          { weight: 4, arbitrary: text },
          {
            weight: 1,
            arbitrary: fc.array(
              fc.record({ type: fc.constantFrom('text', 'image_url'), text: fc.oneof(text, anyJson) }),
              {
                maxLength: 3,
              },
            ),
          },
          { weight: 1, arbitrary: anyJson },
        ),
        name: opt(text),
      },
      { requiredKeys: ['role'] },
    ),
  },
  { weight: 1, arbitrary: anyJson },
);
const noisyChat = fc.record(
  {
    model,
    messages: fc.oneof(
      { weight: 6, arbitrary: fc.array(message, { minLength: 1, maxLength: 4 }) },
      { weight: 1, arbitrary: anyJson },
    ),
    max_completion_tokens: opt(num(-1, 6)),
    logprobs: opt(fc.oneof(fc.boolean(), anyJson)),
    top_logprobs: opt(num(-1, 6)),
    tools: opt(fc.oneof(fc.constant([]), anyJson)),
    response_format: opt(fc.oneof(fc.record({ type: fc.constantFrom('text', 'json_object') }), anyJson)),
    chat_template: opt(fc.oneof(text, anyJson)),
    chat_template_kwargs: opt(anyJson),
    add_generation_prompt: opt(fc.oneof(fc.boolean(), anyJson)),
    add_special_tokens: opt(fc.oneof(fc.boolean(), anyJson)),
    ...noisySampling,
  },
  { requiredKeys: [] },
);

/** A good body with one or two of its fields (or new ones) set to anything. */
function mutated(good: fc.Arbitrary<Record<string, unknown>>, fields: string[]) {
  return fc
    .tuple(
      good,
      fc.dictionary(
        fc.oneof(fc.constantFrom(...fields), fc.string({ maxLength: 8 })),
        fc.oneof(anyJson, text, num(-3, 8)),
        {
          minKeys: 1,
          maxKeys: 2,
        },
      ),
    )
    .map(([b, m]) => ({ ...b, ...m }));
}
const FIELDS = [
  ...Object.keys(noisySampling),
  'model',
  'prompt',
  'echo',
  'logprobs',
  'messages',
  'top_logprobs',
  'suffix',
];
/** Good requests (served), good ones with a field or two set to anything, and bodies of anything. */
const completionsBody = fc.oneof(
  { weight: 3, arbitrary: goodCompletions },
  { weight: 3, arbitrary: mutated(goodCompletions, FIELDS) },
  { weight: 2, arbitrary: noisyCompletions },
);
const chatBody = fc.oneof(
  { weight: 3, arbitrary: goodChat },
  { weight: 3, arbitrary: mutated(goodChat, FIELDS) },
  { weight: 2, arbitrary: noisyChat },
);

describe('server request bodies under fuzzing (fast-check, the tiny model)', () => {
  let engine: LocalEngine;
  let server: OpenAIServer;
  const counts: Record<string, number> = {};
  const statuses: Record<string, number> = {};

  before(async function () {
    engine = await LocalEngine.load({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      adapter: { peft: sharedPath(this, 'fixtures', 'tiny-llama', 'adapter') },
      backend: 'wasm',
      chatTemplate: 'guanaco',
      seed: 3,
    });
    // Small limits keep the valid requests cheap (a few tokens each).
    server = await OpenAIServer.start({
      engine,
      port: 0,
      servedModelName: 'tiny',
      limits: {
        maxTokens: 6,
        maxN: 4,
        maxPrompts: 5,
        maxLogprobs: 5,
        maxPromptChars: 2000,
        maxBodyBytes: 64 * 1024,
      },
    });
  });

  after(async () => {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(
      `      fuzz: ${total} cases ran (${Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}); answers by status ${JSON.stringify(statuses)}`,
    );
    await server?.close();
    await engine?.close();
  });

  const check = async (name: string, path: string, body: string | Uint8Array, contentType?: string) => {
    counts[name] = (counts[name] ?? 0) + 1;
    const a = await post(`${server.url}${path}`, body, contentType);
    statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    expectProper(a, `${name} ${typeof body === 'string' ? body.slice(0, 400) : `<${body.length} bytes>`}`);
  };

  it('/v1/completions: any mix of fields and values', async () => {
    await fc.assert(
      fc.asyncProperty(completionsBody, (b) => check('completions', '/v1/completions', JSON.stringify(b))),
      { numRuns: 300, seed: 13 },
    );
  });

  it('/v1/chat/completions: any mix of fields and values', async () => {
    await fc.assert(
      fc.asyncProperty(chatBody, (b) => check('chat', '/v1/chat/completions', JSON.stringify(b))),
      { numRuns: 300, seed: 14 },
    );
  });

  it('any JSON value as the body of either endpoint', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/completions', '/v1/chat/completions'),
        fc.jsonValue({ maxDepth: 3 }),
        (path, v) => check('json', path, JSON.stringify(v)),
      ),
      { numRuns: 200, seed: 15 },
    );
  });

  it('raw bytes and broken JSON as the body, any content type', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/completions', '/v1/chat/completions'),
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.string({ unit: 'binary', maxLength: 200 }),
          completionsBody.map((b) => JSON.stringify(b).slice(0, -1)), // cut short
          fc.constantFrom('', 'null', '[]', '"x"', '{"model":"tiny","prompt":"x"}garbage', '\ufeff{}'),
        ),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
        (path, body, type) => check('raw', path, body, type),
      ),
      { numRuns: 200, seed: 16 },
    );
    // The server still answers a good request after all of that.
    await check(
      'completions',
      '/v1/completions',
      JSON.stringify({ model: 'tiny', prompt: 'Hallo', max_tokens: 2 }),
    );
    expect(engine.load).to.deep.equal({ running: 0, waiting: 0 });
  });
});
