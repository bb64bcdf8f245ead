import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { type JudgeServer, jsonAnswer, scoreFor, startJudgeServer } from '../../../tools/judge-server.js';
import {
  JudgeCache,
  JudgeClient,
  type JudgeClientOptions,
  JudgeError,
  judgeFile,
  judgePairwise,
  outputName,
  sampleIndices,
  summarize,
} from '../src/index.js';

const FAST_RETRY = { maxRetries: 3, baseDelayMs: 5, maxDelayMs: 20 };
const jsonl = (rows: unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

function items(n: number, tag = 'm') {
  return Array.from({ length: n }, (_, i) => ({
    source: `Task number ${i}: explain something.`,
    system: `${tag} answers task ${i}`,
    secs: 0.1,
  }));
}

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('judgeFile', () => {
  let server: JudgeServer;
  let tmp: string;
  let cache: JudgeCache;
  const clients: JudgeClient[] = [];
  const client = (opts: Partial<JudgeClientOptions> = {}) => {
    const c = new JudgeClient({ baseURL: server.url, model: 'judge-1', retry: FAST_RETRY, cache, ...opts });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    server = await startJudgeServer();
    tmp = mkdtempSync(path.join(tmpdir(), 'judge-run-'));
    cache = JudgeCache.open(path.join(tmp, 'cache.sqlite'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    cache.close();
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('judges a sample of items and writes the paper-style output in sample order', async () => {
    const input = path.join(tmp, 'alpaca_eval_instructions_de-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8.jsonl');
    writeFileSync(input, jsonl(items(20)));
    const r = await judgeFile({ input, client: client(), limit: 8, concurrency: 3 });
    expect(path.basename(r.output)).to.equal(
      'alpaca_eval_instructions_de-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8-l8-ds42-as42-source-system.jsonl',
    );
    expect(r).to.deep.include({
      total: 8,
      done: 8,
      judged: 8,
      unparseable: 0,
      failed: 0,
      requests: 8,
      cacheHits: 0,
    });
    const rows = readLines(r.output);
    expect(rows.map((x) => x.eval_meta.item)).to.deep.equal(sampleIndices(20, 8, 42));
    for (const row of rows) {
      const i = row.eval_meta.item;
      expect(row.source).to.equal(`Task number ${i}: explain something.`);
      expect(row.secs).to.equal(0.1);
      expect(row.eval_reasoning).to.equal('ok');
      expect(row.eval_meta).to.include({
        judge: 'judge-1',
        model: 'judge-1',
        fingerprint: 'fp_test',
        completion_tokens: 20,
        cached: false,
        via: 'json',
        rubric: 'helpfulness',
        seed: 42,
        temperature: 0,
        json_mode: true,
      });
    }
    // the score is the one the server gave for exactly these messages
    const sent = server.chat().map((q) => scoreFor(q.body));
    expect(rows.map((x) => x.eval_score).sort()).to.deep.equal(sent.sort());
    expect(r.mean).to.be.closeTo(sent.reduce((a, b) => a + b, 0) / 8, 1e-12);
    expect(server.chat()[0]!.body).to.deep.include({ temperature: 0, seed: 42, max_tokens: 512 });
  });

  it('records unparseable answers and refused requests with counts, and leaves them out of the mean', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(6)));
    server.setScript((req) => {
      const user: string = req.body.messages[1].content;
      const i = Number(/Task number (\d+)/.exec(user)![1]);
      if (i === 0) return { content: 'I would rate this response highly.' };
      if (i === 1) return { content: '{"reasoning": "too good", "score": 9}' };
      if (i === 2)
        return {
          status: 400,
          body: { error: { message: 'context too long', type: 'invalid_request_error' } },
        };
      if (i === 3) return { content: 'Reasoning: fine.\n```json\n{"reasoning": "fine", "score": 5}\n```' };
      return { content: `{"reasoning": "r", "score": ${i === 4 ? 2 : 4}}` };
    });
    const r = await judgeFile({ input, client: client() });
    expect(r).to.deep.include({ total: 6, judged: 3, unparseable: 2, failed: 1 });
    expect(r.mean).to.be.closeTo((5 + 2 + 4) / 3, 1e-12);
    const byItem = new Map(readLines(r.output).map((x) => [x.eval_meta.item, x]));
    expect(byItem.get(0).eval_score).to.equal(null);
    expect(byItem.get(0).eval_meta.unparseable).to.match(/no score found/);
    expect(byItem.get(0).eval_meta.raw).to.equal('I would rate this response highly.');
    expect(byItem.get(1).eval_meta.unparseable).to.match(/outside the range 1-6/);
    expect(byItem.get(2).eval_meta).to.include({ status: 400 });
    expect(byItem.get(2).eval_meta.error).to.include('context too long');
    expect(byItem.get(3).eval_meta.via).to.equal('fenced-json');
    // a rerun keeps the failed item; --retry-failed asks again
    server.setScript(jsonAnswer());
    const again = await judgeFile({ input, client: client() });
    expect(again.requests).to.equal(0);
    const retried = await judgeFile({ input, client: client(), retryFailed: true });
    expect(retried).to.deep.include({ requests: 1, failed: 0, judged: 4 });
    expect(readLines(retried.output)).to.have.length(6);
  });

  it('reruns with zero requests: the output is complete, and without it every answer comes from the cache', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(12)));
    const first = await judgeFile({ input, client: client(), limit: 10 });
    expect(server.chat()).to.have.length(10);
    const again = await judgeFile({ input, client: client(), limit: 10 });
    expect(again).to.deep.include({ requests: 0, resumed: 10, judged: 10 });
    const before = readLines(first.output);
    rmSync(first.output);
    const fromCache = await judgeFile({ input, client: client(), limit: 10 });
    expect(fromCache).to.deep.include({ requests: 0, cacheHits: 10, judged: 10 });
    expect(server.chat()).to.have.length(10);
    const after = readLines(fromCache.output);
    expect(after.map((x) => x.eval_score)).to.deep.equal(before.map((x) => x.eval_score));
    expect(after.every((x) => x.eval_meta.cached === true)).to.equal(true);
  });

  it('resumes an interrupted output: a cut-off last line is repaired, nothing is judged twice', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(10)));
    const full = await judgeFile({ input, client: client(), apiSeed: 7 });
    const lines = readFileSync(full.output, 'utf8').split('\n').filter(Boolean);
    // as a killed run leaves it: 4 items in completion order and half a line
    writeFileSync(full.output, `${lines.slice(0, 4).join('\n')}\n${lines[4]!.slice(0, 30)}`);
    cache.close();
    rmSync(path.join(tmp, 'cache.sqlite'));
    cache = JudgeCache.open(path.join(tmp, 'cache.sqlite'));
    const notices: string[] = [];
    const before = server.chat().length;
    const r = await judgeFile({ input, client: client(), apiSeed: 7, onNotice: (m) => notices.push(m) });
    expect(server.chat().length - before).to.equal(6);
    expect(r).to.deep.include({ resumed: 4, done: 10, judged: 10 });
    expect(notices.join('\n')).to.match(/cut off an unfinished last line/);
    const rows = readLines(r.output);
    expect(rows.map((x) => x.eval_meta.item)).to.deep.equal(sampleIndices(10, undefined, 42));
    expect(path.basename(r.output)).to.match(/-lall-ds42-as7-source-system\.jsonl$/);
  });

  it('refuses to resume an output judged with other settings', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(3)));
    await judgeFile({ input, client: client() });
    const e = await rejects(judgeFile({ input, client: client({ model: 'judge-2' }) }));
    expect(e).to.be.instanceOf(JudgeError);
    expect((e as JudgeError).message).to.match(/judged with other settings/);
  });

  it('samples the same items from every model file of the same length (seeded)', async () => {
    for (const m of ['mono', 'multi-2']) {
      mkdirSync(path.join(tmp, m));
      writeFileSync(path.join(tmp, m, 'alpaca_eval_instructions_is.jsonl'), jsonl(items(30, m)));
    }
    const ids = [];
    for (const m of ['mono', 'multi-2']) {
      const r = await judgeFile({
        input: path.join(tmp, m, 'alpaca_eval_instructions_is.jsonl'),
        client: client(),
        limit: 7,
        dataSeed: 3,
      });
      ids.push(readLines(r.output).map((x) => x.eval_meta.item));
    }
    expect(ids[0]).to.deep.equal(ids[1]);
    expect(ids[0]).to.deep.equal(sampleIndices(30, 7, 3));
    expect(new Set(ids[0]).size).to.equal(7);
  });

  it('checks the input fields and names the line', async () => {
    const input = path.join(tmp, 'bad.jsonl');
    writeFileSync(
      input,
      jsonl([
        { source: 'a', system: 'b' },
        { prompt: 'x', system: 'y' },
      ]),
    );
    const e = (await rejects(judgeFile({ input, client: client() }))) as JudgeError;
    expect(e.message).to.equal(
      `${input}:2: no "source" field (the task); name the field with --instruction-key`,
    );
    const other = path.join(tmp, 'prompts.jsonl');
    writeFileSync(
      other,
      jsonl([
        { prompt: 'a', system: 'b' },
        { prompt: 'x', system: 'y' },
      ]),
    );
    const r = await judgeFile({
      input: other,
      client: client(),
      instructionKey: 'prompt',
      limit: 1,
      dataSeed: 1,
    });
    expect(path.basename(r.output)).to.equal('prompts-l1-ds1-as42-prompt-system.jsonl');
  });

  it('stops cleanly at --max-cost, keeps what was judged, and goes on with a larger budget', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(10)));
    server.setScript(() => ({
      content: '{"score": 3}',
      usage: { prompt_tokens: 100, completion_tokens: 10 },
    }));
    const prices = { 'judge-1': { input: 10, output: 10 } };
    // each answer costs $0.0011; the worst case of one request (≈ 1,100 bytes + 512 tokens at $10/1M) ≈ $0.017
    const r = await judgeFile({ input, client: client({ prices, maxCost: 0.02 }), concurrency: 4 });
    expect(r.stopped).to.equal('budget');
    expect(r.done).to.be.within(1, 9);
    expect(r.cost.run).to.be.at.most(0.02);
    expect(readLines(r.output)).to.have.length(r.done);
    const rest = await judgeFile({ input, client: client({ prices, maxCost: 1 }), concurrency: 4 });
    expect(rest).to.deep.include({ stopped: null, done: 10, resumed: r.done });
    expect(rest.cost.output).to.be.closeTo(10 * 0.0011, 1e-9);
    expect(server.chat()).to.have.length(10);
  });

  it('stops on a fatal error after writing the items in flight, and resumes', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(12)));
    server.setScript((req) => (req.n > 4 ? { status: 401 } : { content: '{"score": 6}' }));
    const e = (await rejects(judgeFile({ input, client: client(), concurrency: 2 }))) as JudgeError;
    expect(e.code).to.equal('auth');
    const out = path.join(tmp, outputName(input));
    expect(readLines(out)).to.have.length(4);
    server.setScript(jsonAnswer());
    const r = await judgeFile({ input, client: client(), concurrency: 2 });
    expect(r).to.deep.include({ resumed: 4, done: 12 });
  });

  it('judges pairs in both orders and reports position bias', async () => {
    const dirA = path.join(tmp, 'model-a');
    const dirB = path.join(tmp, 'model-b');
    mkdirSync(dirA);
    mkdirSync(dirB);
    const a = items(6, 'short').map((x) => ({ ...x, system: 'short' }));
    const b = items(6, 'long').map((x) => ({ ...x, system: 'a much longer and more detailed answer' }));
    writeFileSync(path.join(dirA, 'chat_de.jsonl'), jsonl(a));
    writeFileSync(path.join(dirB, 'chat_de.jsonl'), jsonl(b));
    const inputs = { inputA: path.join(dirA, 'chat_de.jsonl'), inputB: path.join(dirB, 'chat_de.jsonl') };
    // an unbiased judge that prefers the longer response wherever it is shown
    server.setScript((req) => {
      const user: string = req.body.messages[1].content;
      const first = /\[Response A\]\n(.*)\n/.exec(user)![1]!;
      return {
        content: JSON.stringify({ reasoning: 'longer', winner: first.startsWith('a much') ? 'A' : 'B' }),
      };
    });
    const fair = await judgePairwise({ ...inputs, client: client() });
    expect(path.basename(fair.output)).to.equal('chat_de-lall-ds42-as42-source-system-vs-model-b.jsonl');
    expect(fair.labels).to.deep.equal(['model-a', 'model-b']);
    expect(fair.wins).to.deep.equal({ a: 0, b: 6, tie: 0 });
    expect(fair.consistent).to.equal(6);
    expect(fair.firstPositionRate).to.equal(0.5);
    expect(fair.winRateA).to.equal(0);
    // both orders were asked: A first, then B first
    const firsts = server.chat().map((q) => /\[Response A\]\n(.*)\n/.exec(q.body.messages[1].content)![1]);
    expect(firsts.filter((f) => f === 'short')).to.have.length(6);
    expect(firsts.filter((f) => f !== 'short')).to.have.length(6);
    const row = readLines(fair.output)[0];
    expect(row).to.include({ response_a: 'short', eval_winner: 'b', eval_consistent: true });
    expect(row.eval_verdicts).to.deep.equal({ ab: 'B', ba: 'A' });
    expect(row).to.not.have.property('system');
    // a judge that always picks the first position: every item inconsistent → tie
    server.setScript(() => ({ content: '{"reasoning": "first is best", "winner": "A"}' }));
    const biased = await judgePairwise({
      ...inputs,
      client: client({ model: 'judge-biased' }),
      outputDir: path.join(tmp, 'biased'),
    });
    expect(biased.wins).to.deep.equal({ a: 0, b: 0, tie: 6 });
    expect(biased.consistent).to.equal(0);
    expect(biased.firstPositionRate).to.equal(1);
    expect(biased.winRateA).to.equal(0.5);
  });

  it('rejects comparisons of files that do not hold the same tasks', async () => {
    writeFileSync(path.join(tmp, 'a.jsonl'), jsonl(items(3)));
    writeFileSync(path.join(tmp, 'b.jsonl'), jsonl(items(4)));
    const e = (await rejects(
      judgePairwise({
        inputA: path.join(tmp, 'a.jsonl'),
        inputB: path.join(tmp, 'b.jsonl'),
        client: client(),
      }),
    )) as JudgeError;
    expect(e.code).to.equal('not-parallel');
  });

  it('runs through the Batch API: writes, submits, polls, ingests into the cache; then zero direct requests', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(9)));
    const prices = { 'judge-1': { input: 10, output: 20 } };
    const stateFile = path.join(tmp, 'run.batch.json');
    const notices: string[] = [];
    const r = await judgeFile({
      input,
      client: client({ prices }),
      batch: { stateFile, pollIntervalMs: 10 },
      onNotice: (m) => notices.push(m),
    });
    expect(r.batch).to.deep.include({ submitted: 1, answered: 9, unanswered: 0 });
    expect(r).to.deep.include({ judged: 9, cacheHits: 9 });
    const paths = server.requests.map((q) => `${q.method} ${q.path.replace(/batch_\d+|file-\d+/, 'ID')}`);
    expect(paths.filter((p) => p === 'POST /v1/chat/completions')).to.have.length(9); // all inside the batch
    expect(paths).to.include('POST /v1/files');
    expect(paths).to.include('POST /v1/batches');
    expect(paths).to.include('GET /v1/files/ID/content');
    const upload = server.requests.find((q) => q.path === '/v1/files')!;
    expect(upload.body).to.deep.equal({ purpose: 'batch', lines: 9 });
    const rows = readLines(r.output);
    expect(rows.every((x) => x.eval_meta.batch === true)).to.equal(true);
    // batch answers cost half
    const one = rows[0].eval_meta;
    expect(one.cost).to.be.closeTo(
      ((one.prompt_tokens * 10 + one.completion_tokens * 20) / 1e6) * 0.5,
      1e-12,
    );
    expect(existsSync(stateFile)).to.equal(false);
    expect(notices.join('\n')).to.match(/submitted batch batch_\d+ \(9 requests/);
  });

  it('a batch still running is recorded; the rerun polls it instead of submitting again', async () => {
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(4)));
    const stateFile = path.join(tmp, 'run.batch.json');
    server.batchPolls = 1000;
    const e = (await rejects(
      judgeFile({ input, client: client(), batch: { stateFile, pollIntervalMs: 5, maxWaitMs: 30 } }),
    )) as JudgeError;
    expect(e.code).to.equal('batch-pending');
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).batches).to.have.length(1);
    server.batchPolls = 0;
    const r = await judgeFile({ input, client: client(), batch: { stateFile, pollIntervalMs: 5 } });
    expect(r.batch).to.deep.include({ submitted: 0, resumed: 1, answered: 4 });
    expect(server.requests.filter((q) => q.path === '/v1/batches')).to.have.length(1);
    expect(r.judged).to.equal(4);
  });
});

describe('summarize', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'judge-sum-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const judged = (scores: (number | null)[], extra: Record<string, unknown> = {}) =>
    scores.map((s, i) => ({
      source: `t${i}`,
      system: 'r',
      eval_score: s,
      eval_reasoning: s === null ? null : 'x',
      eval_meta: { item: i, cost: 0.001, ...(s === null ? { unparseable: 'no score found' } : {}), ...extra },
    }));

  it('aggregates per model and language: mean over seeds, bootstrap CI, counts, cost', () => {
    const name = (lang: string, seed: number) =>
      `alpaca_eval_instructions_${lang}-none-guanaco_prompt-s${seed}-k50-p0.9-t0.8-b8-l300-ds42-as42-source-system.jsonl`;
    mkdirSync(path.join(tmp, 'mono'));
    mkdirSync(path.join(tmp, 'multi'));
    writeFileSync(path.join(tmp, 'mono', name('de', 0)), jsonl(judged([2, 4, null])));
    writeFileSync(path.join(tmp, 'mono', name('de', 42)), jsonl(judged([5, 5])));
    writeFileSync(path.join(tmp, 'mono', name('is', 0)), jsonl(judged([1, 1, 1])));
    writeFileSync(path.join(tmp, 'multi', name('de', 0)), jsonl(judged([6, 6, 6, 3])));
    writeFileSync(path.join(tmp, 'multi', 'not-judged.jsonl'), jsonl([{ source: 'x', system: 'y' }]));
    const s = summarize(tmp, { resamples: 500, seed: 1 });
    expect(s.rows.map((r) => [r.model, r.language])).to.deep.equal([
      ['mono', 'de'],
      ['mono', 'is'],
      ['multi', 'de'],
    ]);
    const de = s.rows[0]!;
    expect(de).to.deep.include({ files: 2, n: 4, unparseable: 1, failed: 0 });
    expect(de.seeds).to.deep.equal(['0', '42']);
    expect(de.seedMeans).to.deep.equal([3, 5]);
    expect(de.mean).to.equal(4);
    expect(de.ci![0]).to.be.within(3, 4);
    expect(de.ci![1]).to.be.within(4, 5);
    expect(de.cost).to.be.closeTo(0.005, 1e-12);
    expect(s.rows[1]!.ci).to.deep.equal([1, 1]);
    expect(s.models).to.deep.equal([
      { model: 'mono', languages: 2, mean: 2.5 },
      { model: 'multi', languages: 1, mean: 5.25 },
    ]);
    // deterministic for a seed
    expect(summarize(tmp, { resamples: 500, seed: 1 })).to.deep.equal(s);
  });
});
