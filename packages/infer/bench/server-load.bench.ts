// The server under hostile load (the load test of test/server-load.test.ts, longer): 200 concurrent clients over
// loopback for 10 s against `OpenAIServer` on the tiny-llama fixture (wasm) in its own process, with an API key and
// tight limits (120 connections, 64 KiB bodies, 3 s for headers) so that every refusal happens: a mix of good
// requests (completions, n = 2, streamed, chat, model lists) and bad ones (bad parameters and JSON, unknown and
// path-like model names, wrong keys, bodies over the limit), plus 4 clients that stall in their headers. Recorded:
// requests by status, latency of the answered ones, and the server's memory before (after a warm-up that fills the
// batch once), at its peak and after (full GCs, 0.5 s after the load).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Figure, recordBench } from '../../../tools/bench.js';
import { sharedDir } from '../../../tools/shared.js';
import { runLoad, startLoadServer, warmUp } from '../test/helpers/load.js';

const shared = sharedDir();
if (!shared) {
  console.error('bench needs ../shared (fixtures/tiny-llama); set POLYGLOT_SHARED');
  process.exit(1);
}
const MiB = 2 ** 20;
const CLIENTS = 200;
const SECONDS = 10;
const apiKey = 'bench-load-key-0123456789';
const limits = {
  maxBodyBytes: 64 * 1024,
  maxConnections: 120,
  headersTimeoutMs: 3000,
  requestTimeoutMs: 5000,
};

/** Busy CPU seconds of the whole machine so far (/proc/stat), or null where unavailable. */
function machineBusySeconds(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
  } catch {
    return null;
  }
}

/** Waits (at most maxSeconds) until other processes leave the machine nearly idle (the 2 cores are shared). */
async function waitForIdle(maxSeconds = 120): Promise<boolean> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxSeconds * 1000) {
    const a = machineBusySeconds();
    if (a === null) return true;
    const s0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const busy = (machineBusySeconds()! - a) / ((performance.now() - s0) / 1000);
    if (busy < 0.3) return true;
  }
  return false;
}

const idle = await waitForIdle();
const server = await startLoadServer({
  model: path.join(shared, 'fixtures', 'tiny-llama', 'base'),
  limits,
  apiKey,
});
await warmUp(server.url, 'tiny', apiKey, 64);
const before = await server.mem();
await server.mark();
const r = await runLoad({
  url: server.url,
  model: 'tiny',
  clients: CLIENTS,
  durationMs: SECONDS * 1000,
  apiKey,
  maxBodyBytes: limits.maxBodyBytes,
  slowClients: 4,
});
const peak = await server.mem();
await new Promise((res) => setTimeout(res, 500));
const after = await server.mem();
const code = await server.close();
if (r.improper.count > 0 || after.status5xx > 0 || code !== 0) {
  console.error(
    JSON.stringify({ improper: r.improper, status5xx: after.status5xx, errors: after.errors, code }),
  );
  process.exit(1);
}

const refused = Object.entries(r.byStatus)
  .filter(([s]) => s !== '200')
  .map(([s, n]) => `${s}: ${n}`)
  .join(', ');
const figures: Figure[] = [
  {
    figure: `${CLIENTS} clients + 4 stalled, ${SECONDS} s: requests`,
    value: r.requests,
    unit: 'requests',
    comparison: `answered 200: ${r.byStatus['200'] ?? 0}; refused ${refused}; improper or unanswered: ${r.improper.count}`,
  },
  { figure: `${CLIENTS} clients: answered (200) per second`, value: r.okPerS, unit: 'req/s' },
  {
    figure: `${CLIENTS} clients: latency p50 (200s, queueing included)`,
    value: r.p50Ms / 1000,
    unit: 's',
    comparison: `p99 ${(r.p99Ms / 1000).toFixed(2)} s, max ${(r.maxMs / 1000).toFixed(2)} s`,
  },
  {
    figure: 'server RSS before load (after warm-up)',
    value: before.rss / MiB,
    unit: 'MiB',
    comparison: `peak ${(peak.peakRss / MiB).toFixed(1)} MiB, after ${(after.rss / MiB).toFixed(1)} MiB`,
  },
  {
    figure: 'server JS heap used before load',
    value: before.heapUsed / MiB,
    unit: 'MiB',
    comparison: `after ${(after.heapUsed / MiB).toFixed(1)} MiB (Δ ${((after.heapUsed - before.heapUsed) / MiB).toFixed(2)} MiB)`,
  },
];
recordBench({
  name: 'infer-server-load',
  title: 'OpenAI-compatible server under hostile load: 200 concurrent clients on loopback (tiny model, wasm)',
  package: '@polyglot/infer',
  figures,
  notes: [
    `Limits: ${JSON.stringify(limits)}, API key required, other limits at their defaults. Clients: one keep-alive connection each (the server closes it after a 401/413/503); a 503 is retried after 50 ms.`,
    'Requests of each good client cycle through completions (1–6 new tokens, greedy or sampled), n = 2, streamed, chat and model lists; one client in ten sends every other request bad (bad parameter, bad JSON, unknown model "../../etc/passwd", wrong key, body over the limit). Four more clients send half their headers and stall (408 after 3 s).',
    'Every answer is checked: 200 with a whole answer, or the expected 4xx / a 503 refusal with OpenAI error JSON; none unanswered, no 5xx but 503, no error logged by the server.',
    idle
      ? 'The machine was otherwise idle when the load started.'
      : 'The machine was busy with other jobs (waited 120 s for it to go quiet): latencies and rates are pessimistic.',
    `Latency p50/p99 (ms) of the answered requests by kind: ${Object.entries(r.latencyByKind)
      .map(([k, v]) => `${k} ${v.p50.toFixed(0)}/${v.p99.toFixed(0)} (${v.n})`)
      .join(
        '; ',
      )}. Requests queue for the continuous batch (64 rows at a time) in arrival order; on 2 cores the server shares the CPU with the 200 clients.`,
    `Memory of the server process (node --expose-gc, full GCs before each reading); peak = highest RSS sampled every 10 ms during the load. Requests by status: ${JSON.stringify(r.byStatus)}.`,
  ],
});
