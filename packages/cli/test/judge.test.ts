import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleIndices } from '@polyglot/judge';
import { expect } from 'chai';
import { type JudgeServer, jsonAnswer, startJudgeServer } from '../../../tools/judge-server.js';
import { sharedPath } from '../../../tools/shared.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js');

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built binary without blocking this process (the scripted server answers from this event loop). */
function polyglot(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; done: Promise<Result>; stdout: () => string } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, OPENAI_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<Result>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, stdout: () => stdout };
}

const jsonl = (rows: unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
const items = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    source: `Task ${i}: say something useful.`,
    system: `answer ${i}`,
  }));
const RUN_FILE = 'alpaca_eval_instructions_de-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8.jsonl';

describe('polyglot judge', () => {
  let server: JudgeServer;
  let tmp: string;

  beforeEach(async () => {
    server = await startJudgeServer();
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-judge-'));
  });
  afterEach(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const base = () => [
    '--endpoint',
    server.url,
    '--model',
    'judge-1',
    '--cache',
    path.join(tmp, 'cache.sqlite'),
  ];

  it('run judges a sample and prints a summary line; summarize aggregates; a rerun sends nothing', async () => {
    mkdirSync(path.join(tmp, 'mono'));
    const input = path.join(tmp, 'mono', RUN_FILE);
    writeFileSync(input, jsonl(items(30)));
    const r = await polyglot(['judge', 'run', '--input', input, '--limit', '12', ...base()]).done;
    expect(r.code, r.stderr).to.equal(0);
    const line = JSON.parse(r.stdout);
    expect(line).to.include({ total: 12, judged: 12, unparseable: 0, requests: 12, cache_hits: 0 });
    expect(path.basename(line.output)).to.equal(
      RUN_FILE.replace('.jsonl', '-l12-ds42-as42-source-system.jsonl'),
    );
    expect(readLines(line.output).map((x) => x.eval_meta.item)).to.deep.equal(sampleIndices(30, 12, 42));
    // not a TTY: progress as JSON lines on stderr
    expect(r.stderr).to.include('"progress":"judge');

    const again = await polyglot(['judge', 'run', '--input', input, '--limit', '12', ...base()]).done;
    expect(JSON.parse(again.stdout)).to.include({ requests: 0, resumed: 12 });
    expect(server.chat()).to.have.length(12);

    const s = await polyglot(['judge', 'summarize', tmp]).done;
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/\| mono \| de \| 1 \| 12 \| 0 \| 0 \| \d\.\d{3} \| \d\.\d{3}–\d\.\d{3} \|/);
    const js = JSON.parse((await polyglot(['judge', 'summarize', tmp, '--json']).done).stdout);
    expect(js.rows[0]).to.include({ model: 'mono', language: 'de', n: 12 });
    expect(js.rows[0].mean).to.be.closeTo(line.mean, 1e-12);
  });

  it('survives a kill mid-run: the rerun resumes with no item lost or judged twice', async function () {
    this.timeout(120_000);
    server.setScript(jsonAnswer(25));
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(80)));
    const out = path.join(tmp, 'run-lall-ds42-as42-source-system.jsonl');
    const first = polyglot(['judge', 'run', '--input', input, '--concurrency', '4', ...base()]);
    const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').length - 1 : 0);
    const t0 = Date.now();
    while (lines() < 12 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 10));
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).to.equal('SIGKILL');
    const before = lines();
    expect(before).to.be.within(12, 79);
    const sentBefore = server.chat().length;

    const second = await polyglot(['judge', 'run', '--input', input, '--concurrency', '4', ...base()]).done;
    expect(second.code, second.stderr).to.equal(0);
    const summary = JSON.parse(second.stdout);
    expect(summary).to.include({ total: 80, done: 80, judged: 80 });
    expect(summary.resumed).to.be.at.least(before - 1); // a cut-off last line is judged again
    const rows = readLines(out);
    const ids = rows.map((x) => x.eval_meta.item);
    expect(ids).to.deep.equal(sampleIndices(80, undefined, 42)); // every item once, in sample order
    // only the items whose answer was lost in flight were asked again: at most the concurrency
    expect(server.chat().length).to.be.at.most(80 + 4);
    expect(server.chat().length - sentBefore).to.equal(80 - summary.resumed - summary.cache_hits);
  });

  it('never writes the API key to outputs, caches, logs or error messages', async () => {
    const secret = 'sk-proj-TOPSECRET0123456789abcdefXYZ';
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(3)));
    const keyFile = path.join(tmp, 'key.txt');
    writeFileSync(keyFile, `${secret}\n`);
    const ok = await polyglot(['judge', 'run', '--input', input, ...base(), '--api-key-file', keyFile]).done;
    expect(ok.code, ok.stderr).to.equal(0);
    expect(server.chat()[0]!.headers.authorization).to.equal(`Bearer ${secret}`);
    // the server rejects the key and echoes it, as OpenAI does
    server.setScript(() => ({
      status: 401,
      body: { error: { message: `Incorrect API key provided: ${secret}`, type: 'invalid_request_error' } },
    }));
    rmSync(path.join(tmp, 'run-lall-ds42-as42-source-system.jsonl'));
    const bad = await polyglot(
      [
        'judge',
        'run',
        '--input',
        input,
        '--endpoint',
        server.url,
        '--model',
        'other',
        '--cache',
        path.join(tmp, 'cache.sqlite'),
        '--api-key-env',
        'MY_KEY',
      ],
      { MY_KEY: secret },
    ).done;
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^polyglot: error: judge endpoint .* 401 .*--api-key-env/m);
    for (const text of [ok.stdout, ok.stderr, bad.stdout, bad.stderr])
      expect(text).to.not.include('TOPSECRET');
    for (const f of readdirSync(tmp)) {
      if (f === 'key.txt') continue;
      expect(readFileSync(path.join(tmp, f)).toString('latin1'), f).to.not.include('TOPSECRET');
    }
    const unset = await polyglot([
      'judge',
      'run',
      '--input',
      input,
      ...base(),
      '--api-key-env',
      'NOT_SET_ANYWHERE',
    ]).done;
    expect(unset.code).to.equal(2);
    expect(unset.stderr).to.include('--api-key-env NOT_SET_ANYWHERE: that environment variable is not set');
  });

  it('stops cleanly at --max-cost with a clear message and exit code 1', async () => {
    server.setScript(() => ({
      content: '{"score": 4}',
      usage: { prompt_tokens: 300, completion_tokens: 20 },
    }));
    const input = path.join(tmp, 'run.jsonl');
    writeFileSync(input, jsonl(items(20)));
    const prices = path.join(tmp, 'prices.json');
    writeFileSync(prices, JSON.stringify({ 'judge-1': { input: 1, output: 2 } }));
    // each answer $0.00034; a request's worst case ≈ $0.0025
    const r = await polyglot([
      'judge',
      'run',
      '--input',
      input,
      ...base(),
      '--prices',
      prices,
      '--max-cost',
      '0.004',
      '--concurrency',
      '2',
    ]).done;
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/polyglot: error: stopped at --max-cost \$0\.004: \d+ of 20 items judged/);
    const line = JSON.parse(r.stdout);
    expect(line.stopped).to.equal('budget');
    expect(line.cost_usd.run).to.be.at.most(0.004);
    expect(line.done).to.be.within(1, 19);
  });

  it('compare judges both orders and reports position bias', async () => {
    for (const m of ['a', 'b']) mkdirSync(path.join(tmp, m));
    writeFileSync(path.join(tmp, 'a', 'chat_is.jsonl'), jsonl(items(5)));
    writeFileSync(
      path.join(tmp, 'b', 'chat_is.jsonl'),
      jsonl(items(5).map((x) => ({ ...x, system: 'other' }))),
    );
    server.setScript(() => ({ content: '{"reasoning": "the first", "winner": "A"}' }));
    const r = await polyglot([
      'judge',
      'compare',
      '--input',
      path.join(tmp, 'a', 'chat_is.jsonl'),
      '--against',
      path.join(tmp, 'b', 'chat_is.jsonl'),
      ...base(),
    ]).done;
    expect(r.code, r.stderr).to.equal(0);
    const line = JSON.parse(r.stdout);
    expect(line).to.deep.include({
      labels: ['a', 'b'],
      wins: { a: 0, b: 0, tie: 5 },
      consistent: 0,
      first_position_rate: 1,
    });
    expect(server.chat()).to.have.length(10);
    const s = await polyglot(['judge', 'summarize', tmp]).done;
    expect(s.stdout).to.include(
      '| chat_is-lall-ds42-as42-source-system-vs-b.jsonl | a | b | 5 | 0 | 0 | 5 | 0.500 |',
    );
  });

  it('judges through our own `polyglot infer serve`: its gibberish is recorded as unparseable, with counts', async function () {
    this.timeout(120_000);
    const model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const serve = polyglot([
      'infer',
      'serve',
      '--model',
      model,
      '--port',
      '0',
      '--backend',
      'cpu',
      '--chat-template',
      'chatml',
      '--quiet',
    ]);
    try {
      let url: string | undefined;
      const t0 = Date.now();
      while (!url && serve.child.exitCode === null && Date.now() - t0 < 60_000) {
        await new Promise((r) => setTimeout(r, 50));
        url = /listening on (http:\/\/\S+)/.exec(serve.stdout())?.[1];
      }
      expect(url, 'infer serve did not start').to.be.a('string');
      const input = path.join(tmp, 'run.jsonl');
      writeFileSync(input, jsonl(items(3)));
      const args = [
        'judge',
        'run',
        '--input',
        input,
        '--endpoint',
        `${url}/v1`,
        '--model',
        'base',
        '--max-tokens',
        '12',
      ];
      const r = await polyglot([...args, '--cache', path.join(tmp, 'cache.sqlite')]).done;
      expect(r.code, r.stderr).to.equal(0);
      const line = JSON.parse(r.stdout);
      expect(line).to.include({ total: 3, judged: 0, unparseable: 3, failed: 0, mean: null });
      expect(r.stderr).to.include('refused JSON mode'); // our server serves text only: auto mode went on without it
      for (const row of readLines(line.output)) {
        expect(row.eval_score).to.equal(null);
        expect(row.eval_meta.unparseable).to.be.a('string');
        expect(row.eval_meta.raw).to.be.a('string');
        expect(row.eval_meta.completion_tokens).to.be.within(1, 12);
      }
      const s = await polyglot(['judge', 'summarize', tmp, '--json']).done;
      expect(JSON.parse(s.stdout).rows[0]).to.include({ n: 0, unparseable: 3, mean: null });
    } finally {
      serve.child.kill('SIGTERM');
      await serve.done;
    }
  });
});
