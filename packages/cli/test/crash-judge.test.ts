// Crash safety of `polyglot judge run`: SIGKILLed at random points while it judges (a scripted judge server that
// counts requests, concurrency 3), rerun each time, the output equals an uninterrupted run's, and no request was sent
// twice but those whose answer was in flight when the process died (neither in the output nor in the cache).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  checkJsonlKeys,
  checkNoPartialFiles,
  cli,
  compareTrees,
  countLines,
  runWithKills,
  tearLastLine,
} from '../../../tools/crash.js';
import { type JudgeServer, jsonAnswer, startJudgeServer } from '../../../tools/judge-server.js';

const N = 60;
const items = Array.from({ length: N }, (_, i) => ({
  source: `Task ${i}: say something useful.`,
  system: `answer ${i}`,
}));
const OUT = 'run-lall-ds42-as42-source-system.jsonl';

/** The item a judge request is about (its task text names it). */
function itemOf(body: { messages?: { content?: string }[] }): number {
  const m = /Task (\d+): say something useful/.exec(JSON.stringify(body?.messages ?? ''));
  if (!m) throw new Error('a request about no item');
  return Number(m[1]);
}

/** Judged items in an output file (complete lines only). */
function judgedItems(file: string): Set<number> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return new Set();
  }
  const done = new Set<number>();
  for (const line of text.split('\n').slice(0, -1)) {
    if (line.trim() !== '') done.add(JSON.parse(line).eval_meta.item);
  }
  return done;
}

/** Outputs without `eval_meta.cached` (an answer from the cache after a restart is the same answer). */
function withoutCached(rel: string, buf: Buffer): string | Buffer {
  if (!rel.endsWith('.jsonl') || rel === 'run.jsonl') return buf;
  return buf
    .toString('utf8')
    .split('\n')
    .map((l) => {
      if (l === '') return l;
      const r = JSON.parse(l);
      delete r.eval_meta.cached;
      return JSON.stringify(r);
    })
    .join('\n');
}

describe('crash safety: polyglot judge run', function () {
  this.timeout(300_000);
  let tmp = '';
  let server: JudgeServer;
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-crash-judge-'));
    server = await startJudgeServer(jsonAnswer(30));
  });
  after(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('killed 4 times mid-run and rerun, its output equals an uninterrupted run’s; only in-flight requests repeat', async () => {
    const args = (dir: string, cache: string) => {
      const input = path.join(dir, 'run.jsonl');
      return cli(
        'judge',
        'run',
        '--input',
        input,
        '--endpoint',
        server.url,
        '--model',
        'judge-1',
        '--cache',
        cache,
        '--concurrency',
        '3',
        '--quiet',
      );
    };
    const env = { OPENAI_API_KEY: '' };
    const whole = path.join(tmp, 'whole');
    const killed = path.join(tmp, 'killed');
    for (const d of [whole, killed]) {
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, 'run.jsonl'), items.map((x) => `${JSON.stringify(x)}\n`).join(''));
    }
    // Not spawnSync: the scripted server answers from this process's event loop.
    const r = await runWithKills({
      args: args(whole, path.join(tmp, 'whole.sqlite')),
      env,
      kills: 0,
      seed: 0,
    });
    expect(JSON.parse(r.stdout)).to.include({ total: N, judged: N, requests: N });
    const sentWhole = server.chat().length;
    expect(sentWhole).to.equal(N);

    // After each kill: what was asked by then, and what the output held.
    const atKill: { sent: number; inOutput: Set<number> }[] = [];
    const out = path.join(killed, OUT);
    let torn = 0;
    // Right after each kill: every file under a final name is complete (the output may end in a cut-off line).
    const atKillPartial: string[] = [];
    const run = await runWithKills({
      args: args(killed, path.join(tmp, 'killed.sqlite')),
      env,
      kills: 4,
      seed: 99,
      progress: () => countLines(out),
      total: N,
      maxDelayMs: 20,
      afterKill: async (k, rng) => {
        // Let this process's server take in what the killed process had already sent.
        await new Promise((resolve) => setTimeout(resolve, 100));
        atKillPartial.push(
          ...checkNoPartialFiles(killed, { allowTemps: true, appendLogs: (f) => f === OUT }),
        );
        // The first kill also leaves the temp file of a half-written final rewrite, as a kill during it does.
        if (k.attempt === 0) writeFileSync(path.join(killed, `.${OUT}.0badc0de.tmp`), '{"source": "Task 0');
        // Every other kill also leaves a cut-off last line, as a kill in the middle of an append does.
        if (k.attempt % 2 === 0) torn += tearLastLine(out, rng) > 0 ? 1 : 0;
        atKill.push({ sent: server.chat().length - sentWhole, inOutput: judgedItems(out) });
      },
    });
    console.log(`      judge run: ${run.describe()}; ${torn} torn lines`);
    expect(run.kills).to.have.length(4);
    const summary = JSON.parse(run.stdout);
    expect(summary).to.include({ total: N, done: N, judged: N });

    expect(atKillPartial).to.deep.equal([]);
    expect(checkNoPartialFiles(killed)).to.deep.equal([]);
    expect(
      checkJsonlKeys(
        out,
        (x) => String((x.eval_meta as { item: number }).item),
        items.map((_, i) => String(i)),
      ),
    ).to.deep.equal([]);
    expect(compareTrees(whole, killed, { normalize: withoutCached })).to.deep.equal([]);

    // Requests: each item once, plus repeats only of items asked before a kill and not in the output after it
    // (their answers were in flight, or answered but not yet flushed to the cache): at most the concurrency per kill.
    const requests = server.chat().slice(sentWhole);
    const counts = new Map<number, number>();
    for (const q of requests) counts.set(itemOf(q.body), (counts.get(itemOf(q.body)) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).to.deep.equal(items.map((_, i) => i));
    let explained = 0;
    for (const [k, { sent, inOutput }] of atKill.entries()) {
      const askedBefore = requests.slice(k === 0 ? 0 : atKill[k - 1]!.sent, sent).map((q) => itemOf(q.body));
      const lost = askedBefore.filter((i) => !inOutput.has(i));
      expect(lost.length, `kill ${k}: answers lost in flight`).to.be.at.most(3);
      explained += lost.length;
      // Nothing in the output at the kill is ever asked again.
      const later = requests.slice(sent).map((q) => itemOf(q.body));
      expect(
        later.filter((i) => inOutput.has(i)),
        `kill ${k}: judged items asked again`,
      ).to.deep.equal([]);
    }
    const repeats = requests.length - N;
    console.log(
      `      judge run: ${requests.length} requests for ${N} items (${repeats} repeated, ${explained} in flight at kills)`,
    );
    expect(repeats).to.be.at.most(explained);
  });
});
