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

const ROUNDS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Both servers up at once; every round runs every load in rotating order, so that the other jobs of a shared machine
// weigh on all of them alike, and ratios are taken within a round.
const cont = await serverWith(64);
const serial = await serverWith(1);
await load(cont.engine, cont.server, 4, 2); // warm-up: JIT, backend, connections
await load(serial.engine, serial.server, 4, 1);
type Job = { key: string; run: () => Promise<Load> };
const jobs: Job[] = [
  ...CONCURRENCY.map((c) => ({ key: `c${c}`, run: () => load(cont.engine, cont.server, c, perClient(c)) })),
  { key: 'serial32', run: () => load(serial.engine, serial.server, 32, perClient(32)) },
];
const runs = new Map<string, Load[]>(jobs.map((j) => [j.key, []]));
const gains = new Map<string, number[]>(jobs.map((j) => [j.key, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = jobs.map((_, i) => jobs[(i + round) % jobs.length]);
  const got = new Map<string, Load>();
  for (const j of order) {
    const r = await j.run();
    got.set(j.key, r);
    runs.get(j.key)!.push(r);
    console.log(
      `  round ${round + 1} ${j.key.padEnd(8)} ${fmt(r.reqPerS)} req/s, ${fmt(r.tokPerS)} tok/s, p50 ${fmt(r.p50)} s, p99 ${fmt(r.p99)} s, mean batch ${fmt(r.meanBatch)}`,
    );
  }
  for (const j of jobs) gains.get(j.key)!.push(got.get(j.key)!.tokPerS / got.get('c1')!.tokPerS);
}
for (const s of [cont, serial]) {
  await s.server.close();
  await s.engine.close();
}

const med = (key: string, f: (l: Load) => number) => median(runs.get(key)!.map(f));
const figures: Figure[] = [];
for (const c of CONCURRENCY) {
  const key = `c${c}`;
  const who = `${c} client${c > 1 ? 's' : ''}`;
  const gain = median(gains.get(key)!);
  const vsSerial =
    c === 32
      ? `; same load, one sequence at a time (maxNumSeqs 1): ${fmt(med('serial32', (l) => l.tokPerS))} tok/s (continuous batching ${fmt(median(gains.get(key)!.map((g, i) => g / gains.get('serial32')![i])))}× within rounds)`
      : '';
  figures.push(
    {
      figure: `${who}: generated tokens/s`,
      value: med(key, (l) => l.tokPerS),
      unit: 'tok/s',
      comparison: `mean batch ${fmt(med(key, (l) => l.meanBatch))} rows per decode step${c === 1 ? '' : `; ${fmt(gain)}× the 1-client tokens/s (median of per-round ratios)`}${vsSerial}`,
    },
    { figure: `${who}: requests/s`, value: med(key, (l) => l.reqPerS), unit: 'req/s' },
    {
      figure: `${who}: latency p50`,
      value: med(key, (l) => l.p50),
      unit: 's',
      comparison: `p99 ${fmt(med(key, (l) => l.p99))} s; ${runs.get(key)![0].requests} requests per round`,
    },
  );
}
recordBench({
  name: 'infer-server',
  title: 'OpenAI-compatible server under load, continuous batching (tiny fixture, wasm)',
  package: '@polyglot/infer',
  figures,
  notes: [
    `Medians of ${ROUNDS} rounds; each round runs every load once, in rotating order (the 2-core machine is shared with other jobs, so single runs vary by ±30%); gains are ratios within a round.`,
    `Each request: /v1/completions, one of ${PROMPTS.length} guanaco prompts (12–30 tokens), greedy, exactly ${NEW_TOKENS} new tokens (ignore_eos); the openai client (keep-alive) over 127.0.0.1, in the server's process; about 128 requests per load (at least 4 per client). Clients send their next request as soon as the previous one is answered; latency is per request, queueing included.`,
    'Continuous batching: a request is prefilled on arrival and joins the running batch at the next step boundary; finished rows leave it (DecodeState.combine copies the KV rows). Mean batch = rows decoded per decode step.',
    'The tiny model is bound by its LM head (64 × 32,000 per token) and by per-token work in JavaScript (sampling, detokenizing, HTTP), so the gain from batching is modest here; for real models the forward pass dominates and batching gains more.',
  ],
});
