// The judge client never lets the API key or the values of extra headers (which may carry credentials, e.g. a
// gateway token) into its error messages or its cache, even when the endpoint echoes them back.
import { expect } from 'chai';
import { type JudgeServer, startJudgeServer } from '../../../tools/judge-server.js';
import { JudgeCache, JudgeClient, type JudgeRequestError, redact, safeUrl } from '../src/index.js';

describe('judge client secrets', () => {
  let server: JudgeServer;
  before(async () => {
    server = await startJudgeServer(() => ({ content: '{"score": 3}' }));
  });
  after(async () => {
    await server?.close();
  });

  it('redacts the key and header values an endpoint echoes; keeps neither in the cache', async () => {
    const key = 'sk-judge-HDRSECRET-key-0123456789';
    const token = 'gw-HDRSECRET-token-abcdef';
    const cache = JudgeCache.open(':memory:');
    const client = new JudgeClient({
      baseURL: server.url,
      model: 'judge-1',
      apiKey: key,
      headers: { 'X-Gateway-Token': token },
      cache,
      retry: { maxRetries: 0 },
    });
    try {
      const ok = await client.complete([{ role: 'user', content: 'hi' }]);
      expect(ok.content).to.equal('{"score": 3}');
      expect(server.requests.at(-1)!.headers['x-gateway-token']).to.equal(token);
      server.setScript((req) => ({
        status: 403,
        body: {
          error: {
            message: `refused: key ${String(req.headers.authorization)} with token ${String(req.headers['x-gateway-token'])}`,
            type: 'invalid_request_error',
          },
        },
      }));
      let error: JudgeRequestError | undefined;
      try {
        await client.complete([{ role: 'user', content: 'again' }]);
      } catch (e) {
        error = e as JudgeRequestError;
      }
      expect(error?.code).to.equal('auth');
      expect(error?.message).to.include('[redacted]');
      for (const text of [error?.message, String(error?.stack), JSON.stringify(error)]) {
        expect(text).to.not.include('HDRSECRET');
      }
      cache.flush();
      const stored = cache.get(ok.key);
      expect(stored?.content).to.equal('{"score": 3}');
      expect(JSON.stringify(stored)).to.not.include('HDRSECRET');
    } finally {
      client.close();
      cache.close();
    }
  });

  it('redact and safeUrl: URL credentials, key parameters, bearer tokens, sk- keys', () => {
    expect(redact('GET https://bob:pw-HDRSECRET@api.example.com/v1 failed')).to.equal(
      'GET https://api.example.com/v1 failed',
    );
    expect(redact('Bearer abcdefghijkl, sk-proj-abcdefgh, ?api-key=HDRSECRET&x=1', ['HDRSECRET'])).to.equal(
      'Bearer [redacted], sk-[redacted], ?api-key=[redacted]&x=1',
    );
    expect(safeUrl('https://bob:pw@host.example/v1?key=HDRSECRET&model=m')).to.equal(
      'https://host.example/v1?key=%5Bredacted%5D&model=m',
    );
  });
});
