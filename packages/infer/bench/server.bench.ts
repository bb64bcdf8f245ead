// The OpenAI-compatible server under load: 1, 8 and 32 concurrent clients (the `openai` client, keep-alive, over
// loopback) each sending /v1/completions requests one after another to `polyglot infer serve`'s server on the
// tiny-llama fixture (wasm). Every request decodes exactly NEW_TOKENS tokens (greedy, ignore_eos), so tokens/s
// compares like with like. Reported: requests/s, generated tokens/s, p50/p99 latency per concurrency, and the mean
// rows per decode step of the continuous batch. The same 32-client load against a server whose batch holds one
// sequence (maxNumSeqs 1: requests served one at a time) shows what the batching itself brings.
import path from 'node:path';
import OpenAI from 'openai';
import { type Figure, fmt, recordBench } from '../../../tools/bench.js';
import { sharedDir } from '../../../tools/shared.js';
import { LocalEngine, OpenAIServer } from '../src/index.js';

const shared = sharedDir();
if (!shared) {
  console.error('bench needs ../shared (fixtures/tiny-llama); set POLYGLOT_SHARED');
  process.exit(1);
}
const MODEL = path.join(shared, 'fixtures', 'tiny-llama', 'base');
const NEW_TOKENS = 64;
const PROMPTS = [
  '### Human: Wie heißt die Hauptstadt von Island?### Assistant:',
  '### Human: Name three colours.### Assistant:',
  '### Human: Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?### Assistant:',
  '### Human: Explique la photosynthèse en deux phrases.### Assistant:',
];
const CONCURRENCY = [1, 8, 32];
/** Requests per client: the same total work (about 128 requests) at each concurrency, at least 4 per client. */
const perClient = (c: number) => Math.max(4, Math.ceil(128 / c));

interface Load {
  clients: number;
  requests: number;
  secs: number;
  reqPerS: number;
  tokPerS: number;
  p50: number;
  p99: number;
  meanBatch: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function load(engine: LocalEngine, server: OpenAIServer, clients: number, each: number): Promise<Load> {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'bench', maxRetries: 0 });
  const before = engine.batchStats ?? { steps: 0, tokens: 0 };
  const latencies: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let k = 0; k < each; k++) {
        const start = performance.now();
        const res = await client.completions.create({
          model: server.servedModelName,
          prompt: PROMPTS[(c + k) % PROMPTS.length],
          max_tokens: NEW_TOKENS,
          temperature: 0,
          ...({ ignore_eos: true } as object),
        });
        latencies.push((performance.now() - start) / 1000);
        tokens += res.usage?.completion_tokens ?? 0;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const after = engine.batchStats!;
  latencies.sort((a, b) => a - b);
  if (tokens !== clients * each * NEW_TOKENS)
    throw new Error(`expected ${clients * each * NEW_TOKENS} tokens, got ${tokens}`);
  return {
    clients,
    requests: clients * each,
    secs,
    reqPerS: (clients * each) / secs,
    tokPerS: tokens / secs,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    meanBatch: (after.tokens - before.tokens) / Math.max(1, after.steps - before.steps),
  };
}

async function serverWith(maxNumSeqs: number): Promise<{ engine: LocalEngine; server: OpenAIServer }> {
  const engine = await LocalEngine.load({ model: MODEL, backend: 'wasm', maxNumSeqs });
  const server = await OpenAIServer.start({ engine, port: 0, servedModelName: 'tiny' });
  return { engine, server };
}

const { engine, server } = await serverWith(64);
await load(engine, server, 4, 2); // warm-up: JIT, backend, connections
const results: Load[] = [];
for (const c of CONCURRENCY) {
  const r = await load(engine, server, c, perClient(c));
  results.push(r);
  console.log(
    `  ${String(c).padStart(2)} clients: ${fmt(r.reqPerS)} req/s, ${fmt(r.tokPerS)} tok/s, p50 ${fmt(r.p50)} s, p99 ${fmt(r.p99)} s, mean batch ${fmt(r.meanBatch)}`,
  );
}
await server.close();
await engine.close();

const serial = await serverWith(1);
await load(serial.engine, serial.server, 4, 1);
const one = await load(serial.engine, serial.server, 32, perClient(32));
console.log(`  32 clients, batch of 1: ${fmt(one.reqPerS)} req/s, ${fmt(one.tokPerS)} tok/s`);
await serial.server.close();
await serial.engine.close();

const base = results[0];
const figures: Figure[] = [];
for (const r of results) {
  const vs = r === base ? '' : `; ${fmt(r.tokPerS / base.tokPerS)}× the 1-client tokens/s`;
  figures.push(
    {
      figure: `${r.clients} client${r.clients > 1 ? 's' : ''}: generated tokens/s`,
      value: r.tokPerS,
      unit: 'tok/s',
      comparison: `mean batch ${fmt(r.meanBatch)} rows per decode step${vs}${r.clients === 32 ? `; one sequence at a time (maxNumSeqs 1): ${fmt(one.tokPerS)} tok/s (${fmt(r.tokPerS / one.tokPerS)}×)` : ''}`,
    },
    { figure: `${r.clients} client${r.clients > 1 ? 's' : ''}: requests/s`, value: r.reqPerS, unit: 'req/s' },
    {
      figure: `${r.clients} client${r.clients > 1 ? 's' : ''}: latency p50 / p99`,
      value: r.p50,
      unit: 's (p50)',
      comparison: `p99 ${fmt(r.p99)} s; ${r.requests} requests`,
    },
  );
}
recordBench({
  name: 'infer-server',
  title: 'OpenAI-compatible server under load, continuous batching (tiny fixture, wasm)',
  package: '@polyglot/infer',
  figures,
  notes: [
    `Each request: /v1/completions, one of ${PROMPTS.length} guanaco prompts (12–30 tokens), greedy, exactly ${NEW_TOKENS} new tokens (ignore_eos); the openai client (keep-alive) over 127.0.0.1; about 128 requests per concurrency (at least 4 per client).`,
    'Clients send their next request as soon as the previous one is answered; latency is per request, queueing included.',
    'Continuous batching: a request is prefilled on arrival and joins the running batch at the next step; finished rows leave it (DecodeState.combine copies the KV rows). Mean batch = rows decoded per decode step.',
    'The tiny model is bound by its LM head (64 × 32,000 per token), whose GEMM gains most from batching; on the 2-core VM the figures vary by ±20% between runs.',
  ],
});
