// The load test of `OpenAIServer` (test/server-load.test.ts) and its bench (bench/server-load.bench.ts): N concurrent
// clients over loopback for a bounded time against a server in its own process (helpers/load-server.ts), a mix of
// good and bad requests and a few clients too slow to finish their headers. Every request must be answered with a
// proper status (a 200 with a whole answer, or a 4xx/503 with OpenAI's error JSON); the server's memory is measured
// before (after a warm-up that fills the batch once), at its peak and after.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerLimits } from '../../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  peakRss: number;
  peakConnections: number;
  engineLoad: { running: number; waiting: number };
  status5xx: number;
  errors: string[];
}

export interface LoadServer {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  mark(): Promise<void>;
  mem(): Promise<Mem>;
  /** Closes the server; resolves with the exit code. */
  close(): Promise<number | null>;
}

/** Starts helpers/load-server.ts in a child process (`node --expose-gc`). */
export function startLoadServer(config: {
  model: string;
  limits?: Partial<ServerLimits>;
  apiKey?: string;
  maxNumSeqs?: number;
}): Promise<LoadServer> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', path.join(here, 'load-server.ts'), JSON.stringify(config)],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, POLYGLOT_LOAD_API_KEY: config.apiKey ?? '' },
    },
  );
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const waiting: ((v: Record<string, unknown>) => void)[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`load server exited (${code}) before listening: ${err}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.event === 'listening') {
        const ask = <T>(cmd: string) =>
          new Promise<T>((res) => {
            waiting.push(res as (v: Record<string, unknown>) => void);
            child.stdin!.write(`${cmd}\n`);
          });
        resolve({
          url: msg.url as string,
          child,
          stderr: () => err,
          mark: async () => {
            await ask('mark');
          },
          mem: () => ask<Mem>('mem'),
          close: async () => {
            child.stdin!.write('close\n');
            return exited;
          },
        });
      } else waiting.shift()?.(msg);
    });
  });
}

export interface Answer {
  /** HTTP status; 0: no answer (connection error or the client's own timeout). */
  status: number;
  ms: number;
  /** Why the answer is not a proper one (null: it is). */
  improper: string | null;
  kind: string;
  /** When it was sent (ms since the load began), by which client, its how-manieth request. */
  at?: number;
  client?: number;
  k?: number;
}

/** What a request of one kind sends, and what answers are proper for it. */
interface Kind {
  name: string;
  path: string;
  body: () => string;
  headers?: Record<string, string>;
  stream?: boolean;
  /** Statuses that are proper for this request (503 always is: a refusal under load). */
  ok: number[];
}

const PROMPTS = ['Hello, my name is', 'Bonjour', 'Wie heißt die Hauptstadt von Island?', '1, 2, 3,'];

function kinds(model: string, apiKey: string | undefined, maxBodyBytes: number): Kind[] {
  const auth: Record<string, string> = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  let r = 0;
  const next = () => r++;
  const completion = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      model,
      prompt: PROMPTS[next() % PROMPTS.length],
      max_tokens: 1 + (r % 6),
      temperature: r % 2 === 0 ? 0 : 0.8,
      seed: r,
      ignore_eos: true,
      ...extra,
    });
  return [
    { name: 'completion', path: '/v1/completions', body: () => completion(), headers: auth, ok: [200] },
    {
      name: 'completion n=2',
      path: '/v1/completions',
      body: () => completion({ n: 2 }),
      headers: auth,
      ok: [200],
    },
    {
      name: 'completion stream',
      path: '/v1/completions',
      body: () => completion({ stream: true }),
      headers: auth,
      stream: true,
      ok: [200],
    },
    {
      name: 'chat',
      path: '/v1/chat/completions',
      body: () =>
        JSON.stringify({
          model,
          messages: [{ role: 'user', content: PROMPTS[next() % PROMPTS.length] }],
          max_tokens: 1 + (r % 5),
          temperature: 0,
        }),
      headers: auth,
      ok: [200],
    },
    { name: 'models', path: '/v1/models', body: () => '', headers: auth, ok: [200] },
    {
      name: 'bad parameter',
      path: '/v1/completions',
      body: () => JSON.stringify({ model, prompt: 'x', temperature: -1 }),
      headers: auth,
      ok: [400],
    },
    { name: 'bad JSON', path: '/v1/completions', body: () => '{"model": ', headers: auth, ok: [400] },
    {
      name: 'unknown model',
      path: '/v1/completions',
      body: () => JSON.stringify({ model: '../../etc/passwd', prompt: 'x' }),
      headers: auth,
      ok: [404],
    },
    {
      name: 'wrong key',
      path: '/v1/completions',
      body: () => completion(),
      headers: { Authorization: 'Bearer not-the-key' },
      ok: apiKey ? [401] : [200],
    },
    {
      name: 'body too large',
      path: '/v1/completions',
      body: () => JSON.stringify({ model, prompt: 'x'.repeat(maxBodyBytes + 10) }),
      headers: auth,
      ok: [413],
    },
  ];
}

/** One request on `agent`; never rejects. */
function send(url: string, agent: http.Agent, kind: Kind, timeoutMs: number): Promise<Answer> {
  const t0 = performance.now();
  const body = kind.body();
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, improper: string | null) => {
      if (done) return;
      done = true;
      resolve({ status, ms: performance.now() - t0, improper, kind: kind.name });
    };
    const req = http.request(
      `${url}${kind.path}`,
      {
        method: kind.path === '/v1/models' ? 'GET' : 'POST',
        agent,
        headers: { 'Content-Type': 'application/json', ...kind.headers },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => finish(res.statusCode ?? 0, 'the answer was cut off'));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          finish(status, judge(kind, status, text));
        });
      },
    );
    req.on('timeout', () => {
      req.destroy();
      finish(0, `no answer within ${timeoutMs} ms (hang)`);
    });
    req.on('error', (e) => finish(0, `connection error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.end(body);
  });
}

/** Null when `text` is a proper answer of `status` to a request of `kind`, else what is wrong. */
function judge(kind: Kind, status: number, text: string): string | null {
  if (!kind.ok.includes(status) && status !== 503) return `unexpected status ${status} for ${kind.name}`;
  if (status === 200) {
    if (kind.stream) return text.trimEnd().endsWith('data: [DONE]') ? null : 'stream without [DONE]';
    try {
      const v = JSON.parse(text);
      return Array.isArray(v.choices) || Array.isArray(v.data) ? null : '200 without choices';
    } catch {
      return '200 with a body that is not JSON';
    }
  }
  try {
    const e = JSON.parse(text).error;
    return typeof e?.message === 'string' && typeof e.type === 'string' && 'code' in e && 'param' in e
      ? null
      : `${status} without OpenAI's error JSON`;
  } catch {
    return `${status} with a body that is not JSON`;
  }
}

/** A client that opens a connection, sends half a request line and headers, and then nothing. */
function slowClient(url: string, timeoutMs: number): Promise<Answer> {
  const u = new URL(url);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let text = '';
    let done = false;
    const finish = (status: number, improper: string | null) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ status, ms: performance.now() - t0, improper, kind: 'slow headers' });
    };
    const socket = net.connect(Number(u.port), u.hostname, () => {
      socket.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ');
    });
    socket.setTimeout(timeoutMs, () => finish(0, `not cut off within ${timeoutMs} ms`));
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('error', () => finish(0, 'connection error'));
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const status = m ? Number(m[1]) : 0;
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      let shaped = false;
      try {
        shaped = typeof JSON.parse(body).error?.message === 'string';
      } catch {}
      finish(
        status,
        status === 408 && shaped ? null : `slow client got ${JSON.stringify(text.slice(0, 80))}`,
      );
    });
  });
}

export interface LoadReport {
  answers?: Answer[];
  clients: number;
  slowClients: number;
  durationMs: number;
  requests: number;
  byStatus: Record<string, number>;
  byKind: Record<string, Record<string, number>>;
  improper: { count: number; examples: string[] };
  /** Latency of the requests answered 200 (ms). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** p50 / p99 latency (ms) of the requests answered 200, by kind. */
  latencyByKind: Record<string, { p50: number; p99: number; n: number }>;
  /** Requests answered 200 per second. */
  okPerS: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * `clients` clients (one keep-alive connection each, as far as the server lets them keep it) send requests one
 * after another for `durationMs`, cycling through the kinds above (most of them good ones); `slowClients` more open a
 * connection and stall in the headers. Then every request still in flight is waited for (each at most
 * `requestTimeoutMs`, counted as a hang beyond).
 */
export async function runLoad(opts: {
  url: string;
  model: string;
  clients: number;
  durationMs: number;
  apiKey?: string;
  maxBodyBytes: number;
  slowClients?: number;
  requestTimeoutMs?: number;
}): Promise<LoadReport> {
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;
  const all = kinds(opts.model, opts.apiKey, opts.maxBodyBytes);
  // Of every 20 requests: 12 completions, 2 with n = 2, 2 streamed, 2 chat; then a models list and one bad one.
  const plan = [0, 0, 3, 0, 1, 0, 2, 0, 0, 3, 0, 1, 0, 2, 0, 0, 0, 4, 0, 5];
  const bad = [5, 6, 7, 8, 9];
  const answers: Answer[] = [];
  const deadline = performance.now() + opts.durationMs;
  const t0 = performance.now();
  let counter = 0;
  let badCounter = 0;
  const slow = Array.from({ length: opts.slowClients ?? 0 }, () => slowClient(opts.url, timeoutMs));
  await Promise.all(
    Array.from({ length: opts.clients }, async (_, c) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let k = 0; performance.now() < deadline; k++) {
          const i = counter++;
          // one client in ten sends a bad request every other time, starting with one (each kind of bad one in turn)
          const kind =
            c % 10 === 9 && k % 2 === 0 ? all[bad[badCounter++ % bad.length]] : all[plan[i % plan.length]];
          const at = performance.now() - t0;
          const a = await send(opts.url, agent, kind, timeoutMs);
          answers.push({ ...a, at, client: c, k });
          if (a.status === 503) await new Promise((r) => setTimeout(r, 50)); // Retry-After, shortened
        }
      } finally {
        agent.destroy();
      }
    }),
  );
  answers.push(...(await Promise.all(slow)));
  const durationMs = performance.now() - t0;
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, Record<string, number>> = {};
  for (const a of answers) {
    byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    byKind[a.kind] ??= {};
    byKind[a.kind][a.status] = (byKind[a.kind][a.status] ?? 0) + 1;
  }
  const improper = answers.filter((a) => a.improper !== null);
  const okMs = answers
    .filter((a) => a.status === 200)
    .map((a) => a.ms)
    .sort((a, b) => a - b);
  const latencyByKind: LoadReport['latencyByKind'] = {};
  for (const kind of new Set(answers.map((a) => a.kind))) {
    const ms = answers
      .filter((a) => a.kind === kind && a.status === 200)
      .map((a) => a.ms)
      .sort((a, b) => a - b);
    if (ms.length > 0)
      latencyByKind[kind] = { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), n: ms.length };
  }
  return {
    clients: opts.clients,
    slowClients: opts.slowClients ?? 0,
    durationMs,
    requests: answers.length,
    byStatus,
    byKind,
    improper: {
      count: improper.length,
      examples: [...new Set(improper.map((a) => `${a.kind}: ${a.improper}`))].slice(0, 10),
    },
    p50Ms: quantile(okMs, 0.5),
    p99Ms: quantile(okMs, 0.99),
    maxMs: okMs.at(-1) ?? 0,
    latencyByKind,
    answers,
    okPerS: (okMs.length / durationMs) * 1000,
  };
}

/** Fills the server's batch once (JIT, wasm memory at its working size) before the baseline is measured. */
export async function warmUp(
  url: string,
  model: string,
  apiKey: string | undefined,
  rows: number,
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true });
  const k = kinds(model, apiKey, 1 << 20);
  try {
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all(
        Array.from({ length: rows }, (_, i) => send(url, agent, k[i % 4], 60_000)),
      );
      const wrong = got.find((a) => a.status !== 200);
      if (wrong) throw new Error(`warm-up: ${wrong.kind} got ${wrong.status}: ${wrong.improper}`);
    }
  } finally {
    agent.destroy();
  }
}
