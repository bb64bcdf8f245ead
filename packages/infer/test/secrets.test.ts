// The remote engine never lets the API key, the values of extra headers or credentials in an endpoint URL into its
// errors (message, cause, stack, JSON), `endpoint` or `stats` — also when the server echoes them back.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { RemoteEngine, RemoteError } from '../src/index.js';
import { displayUrl, redactSecrets } from '../src/redact.js';

const MARK = 'RMTSECRET42';

describe('remote engine secrets', () => {
  let server: http.Server;
  let url: string;

  before(async () => {
    // Answers every request 401, quoting the headers it got, as careless servers do.
    server = http.createServer((req, res) => {
      req.resume();
      const body = JSON.stringify({
        error: {
          message: `Incorrect API key provided: ${String(req.headers.authorization).replace(/^Bearer /, '')}; token ${String(req.headers['x-token'])}`,
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      });
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((r) => server.close(r));
  });

  it('redacts an echoed key and header values from the error, its cause and stack', async () => {
    const engine = await RemoteEngine.connect({
      endpoints: url,
      model: 'm',
      apiKey: `key-${MARK}-0123456789`,
      headers: { 'X-Token': `tok-${MARK}-abcdef` },
      retries: 0,
    });
    let error: RemoteError | undefined;
    try {
      await engine.generate([{ prompt: 'x', params: { max_tokens: 1 } }]);
    } catch (e) {
      error = e as RemoteError;
    }
    expect(error).to.be.instanceOf(RemoteError);
    expect(error!.code).to.equal('REMOTE_REJECTED');
    expect(error!.status).to.equal(401);
    expect(error!.message).to.include('Incorrect API key provided: [redacted]');
    const cause = error!.cause as Error;
    for (const text of [
      error!.message,
      String(error!.stack),
      JSON.stringify(error),
      cause.message,
      String(cause.stack),
      JSON.stringify(engine.stats),
    ]) {
      expect(text).to.not.include(MARK);
    }
    await engine.close();
  });

  it('endpoint URLs are shown without credentials or key-like query parameters', async () => {
    const withCreds = `http://user:pw-${MARK}@127.0.0.1:${new URL(url).port}/v1?api-key=${MARK}`;
    expect(displayUrl(withCreds)).to.equal(`http://127.0.0.1:${new URL(url).port}/v1?api-key=%5Bredacted%5D`);
    expect(displayUrl(`not a url ${MARK}`)).to.equal(`not a url ${MARK}`); // nothing key-like in it
    expect(redactSecrets(`x key=${MARK} Bearer abcdefghijkl sk-abcdefgh ${MARK}`, [MARK])).to.equal(
      'x key=[redacted] Bearer [redacted] sk-[redacted] [redacted]',
    );
    let error: Error | undefined;
    try {
      const engine = await RemoteEngine.connect({ endpoints: withCreds, model: 'm', retries: 0 });
      try {
        await engine.generate([{ prompt: 'x', params: { max_tokens: 1 } }]);
      } finally {
        await engine.close();
      }
    } catch (e) {
      error = e as Error;
    }
    expect(error, 'a request to a URL with credentials fails').to.be.instanceOf(Error);
    const e = error as RemoteError;
    for (const text of [e.message, String(e.stack), JSON.stringify(e), String((e.cause as Error)?.message)]) {
      expect(text).to.not.include(MARK);
    }
  });
});
