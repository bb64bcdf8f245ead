// A server under test in its own process (so that its memory is measured alone), for the load test and its bench:
//   node --expose-gc --import tsx load-server.ts '<json: { model, limits?, maxNumSeqs? }>'
// with the API key, if any, in $POLYGLOT_LOAD_API_KEY. Prints one JSON line {"event":"listening","url":…} on stdout,
// then answers commands read from stdin, one per line, each with one JSON line:
//   mark  → {"event":"marked"}                     (starts a new peak-RSS window)
//   mem   → {"event":"mem", rss, heapUsed, external, arrayBuffers, peakRss, peakConnections, engineLoad, status5xx,
//           errors} (after full garbage collections; bytes; peaks: the highest sampled every 10 ms since `mark`)
//   close → {"event":"closed"} and exit 0 once the server and the engine are closed.
import { createInterface } from 'node:readline';
import { LocalEngine, OpenAIServer, type ServerLimits } from '../../src/index.js';

interface Config {
  model: string;
  limits?: Partial<ServerLimits>;
  maxNumSeqs?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const engine = await LocalEngine.load({
  model: config.model,
  backend: 'wasm',
  chatTemplate: 'guanaco',
  seed: 1,
  maxNumSeqs: config.maxNumSeqs ?? 64,
});
let status5xx = 0;
const errors: string[] = [];
const server = await OpenAIServer.start({
  engine,
  port: 0,
  servedModelName: 'tiny',
  limits: config.limits,
  apiKey: process.env.POLYGLOT_LOAD_API_KEY || undefined,
  log: (r) => {
    // 503 is a refusal (overloaded, too many connections); anything else ≥ 500 is a bug.
    if (typeof r.status === 'number' && r.status >= 500 && r.status !== 503) status5xx++;
    if (r.event === 'error' && errors.length < 20) errors.push(String(r.error));
  },
});

let peakRss = process.memoryUsage.rss();
let peakConnections = 0;
setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  peakConnections = Math.max(peakConnections, server.connections);
}, 10).unref();

const say = (value: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 20));
  }
}

say({ event: 'listening', url: server.url });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = line.trim();
  if (cmd === 'mark') {
    peakRss = process.memoryUsage.rss();
    peakConnections = server.connections;
    say({ event: 'marked' });
  } else if (cmd === 'mem') {
    await collect();
    const m = process.memoryUsage();
    say({
      event: 'mem',
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      peakRss: Math.max(peakRss, m.rss),
      peakConnections,
      engineLoad: engine.load,
      status5xx,
      errors,
    });
  } else if (cmd === 'close') {
    await server.close({ timeoutMs: 5000 });
    await engine.close();
    say({ event: 'closed' });
    process.exit(0);
  }
}
