import http from 'node:http';
import https from 'node:https';

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * A `fetch` for the `openai` client on `node:http` / `node:https` with keep-alive agents: requests with a text
 * body (every chat completion) skip the WHATWG-streams machinery of Node's built-in fetch, which costs several
 * times the CPU per request; anything else (file uploads) goes to the built-in fetch. The response is buffered
 * whole (judge answers are small) and handed back as a standard `Response`.
 */
export const nodeFetch: typeof fetch = (input, init) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : undefined;
  const body = init?.body;
  if (url === undefined || (body !== undefined && body !== null && typeof body !== 'string')) {
    return fetch(input, init);
  }
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return fetch(input, init);
  const signal = init?.signal ?? undefined;
  return new Promise<Response>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => {
      headers[k] = v;
    });
    if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.request(
      u,
      {
        method: init?.method ?? 'GET',
        headers,
        agent: u.protocol === 'https:' ? httpsAgent : httpAgent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        });
        res.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (Array.isArray(v)) for (const x of v) h.append(k, x);
            else if (v !== undefined) h.set(k, v);
          }
          const status = res.statusCode ?? 500;
          resolve(
            new Response(NULL_BODY.has(status) ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage ?? '',
              headers: h,
            }),
          );
        });
      },
    );
    const onAbort = () => {
      req.destroy(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(signal?.aborted ? abortError(signal) : e);
    });
    if (typeof body === 'string') req.end(body);
    else req.end();
  });
};
