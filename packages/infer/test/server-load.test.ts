import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { type LoadServer, runLoad, startLoadServer, warmUp } from './helpers/load.js';

const MiB = 2 ** 20;
const fmtMiB = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

// 200 concurrent clients on loopback against the real tiny model for a bounded time (4 s of sending), with tight
// limits so that every kind of refusal happens: 120 connections (clients beyond get 503; beyond 240 Node would drop them), 64 KiB bodies,
// 3 s to send headers (4 clients stall in theirs: 408), an API key (some requests carry a wrong one: 401). The
// figures go to the test output; bench/server-load.bench.ts records the same load in bench/results.
describe('OpenAI-compatible server under load (200 concurrent clients, own process)', () => {
  let server: LoadServer | undefined;

  after(async () => {
    if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
  });

  it('answers every request or refuses it with a proper status; no crash; memory back to baseline', async function () {
    const model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const apiKey = 'load-test-key-0123456789';
    const limits = {
      maxBodyBytes: 64 * 1024,
      maxConnections: 120,
      headersTimeoutMs: 3000,
      requestTimeoutMs: 5000,
    };
    server = await startLoadServer({ model, limits, apiKey });
    await warmUp(server.url, 'tiny', apiKey, 64);
    const before = await server.mem();
    await server.mark();
    const report = await runLoad({
      url: server.url,
      model: 'tiny',
      clients: 200,
      durationMs: 4000,
      apiKey,
      maxBodyBytes: limits.maxBodyBytes,
      slowClients: 4,
    });
    const peak = await server.mem();
    await new Promise((r) => setTimeout(r, 500));
    const after = await server.mem();

    console.log(
      `      ${report.requests} requests in ${(report.durationMs / 1000).toFixed(1)} s by status ${JSON.stringify(report.byStatus)}; ` +
        `200s: p50 ${report.p50Ms.toFixed(0)} ms, p99 ${report.p99Ms.toFixed(0)} ms, ${report.okPerS.toFixed(1)}/s`,
    );
    console.log(
      `      server RSS before ${fmtMiB(before.rss)}, peak ${fmtMiB(peak.peakRss)}, after ${fmtMiB(after.rss)}; ` +
        `heap used before ${fmtMiB(before.heapUsed)}, after ${fmtMiB(after.heapUsed)}; ${peak.peakConnections} connections at most`,
    );

    expect(report.improper.examples, 'improper answers').to.deep.equal([]);
    expect(report.improper.count).to.equal(0);
    // Every kind of answer happened: served, and refused for each reason.
    for (const status of ['200', '400', '401', '404', '408', '413']) {
      expect(report.byStatus[status] ?? 0, `answers with status ${status}`).to.be.greaterThan(0);
    }
    // Connections over the limit (the 4 stalled ones aside, which get their 408) were refused with 503. (How many
    // were open at once depends on how fast the machine lets the clients connect.)
    if (peak.peakConnections > limits.maxConnections + 4) {
      expect(report.byStatus['503'] ?? 0, 'answers with status 503').to.be.greaterThan(0);
    }
    expect(report.byStatus['0'] ?? 0, 'requests without an answer').to.equal(0);
    expect(report.byStatus['408']).to.equal(4);
    // No 5xx but the 503 refusals, no error logged, nothing left in the batch.
    expect(after.status5xx).to.equal(0);
    expect(after.errors).to.deep.equal([]);
    expect(after.engineLoad).to.deep.equal({ running: 0, waiting: 0 });
    // Memory back to baseline (after full GCs): the JS heap within 8 MiB, the RSS within 64 MiB.
    expect(after.heapUsed - before.heapUsed).to.be.below(8 * MiB);
    expect(after.rss - before.rss).to.be.below(64 * MiB);
    // And it still serves, then stops cleanly.
    const again = await runLoad({
      url: server.url,
      model: 'tiny',
      clients: 1,
      durationMs: 1,
      apiKey,
      maxBodyBytes: limits.maxBodyBytes,
    });
    expect(again.byStatus).to.deep.equal({ 200: 1 });
    expect(await server.close(), server.stderr()).to.equal(0);
  });
});
