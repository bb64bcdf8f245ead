import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { canonicalJson, JudgeCache, JudgeError, requestKey } from '../src/index.js';

const writer = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'cache-writer.ts');

function child(...args: string[]) {
  const p = spawn(process.execPath, ['--import', 'tsx', writer, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => {
    out += d;
  });
  p.stderr.on('data', (d) => {
    err += d;
  });
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    p.on('close', (code) => resolve({ code, out, err })),
  );
  return { p, done, output: () => out };
}

const answer = (content: string) => ({
  content,
  model: 'judge-1-0613',
  fingerprint: 'fp',
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  finish_reason: 'stop',
  created_at: '2025-01-01T00:00:00.000Z',
});

describe('request keys', () => {
  it('hash the canonical body: key order does not matter, every parameter does', () => {
    const a = { model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 0, seed: 42 };
    const b = { seed: 42, temperature: 0, messages: [{ content: 'x', role: 'user' }], model: 'm' };
    expect(canonicalJson(a)).to.equal(canonicalJson(b));
    expect(requestKey(a)).to.equal(requestKey(b));
    expect(requestKey(a)).to.match(/^[0-9a-f]{64}$/);
    expect(requestKey({ ...a, seed: 43 })).to.not.equal(requestKey(a));
    expect(requestKey({ ...a, model: 'n' })).to.not.equal(requestKey(a));
    expect(requestKey(a, 'endpoint-2')).to.not.equal(requestKey(a));
  });
});

describe('JudgeCache (SQLite)', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'judge-cache-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('stores and finds answers across reopenings; the first answer for a key wins', () => {
    const file = path.join(tmp, 'sub', 'cache.sqlite');
    const c = JudgeCache.open(file);
    expect(c.get('k')).to.equal(undefined);
    expect(c.put('k', { model: 'm' }, answer('first'))).to.equal(true);
    expect(c.put('k', { model: 'm' }, answer('second'))).to.equal(false);
    c.close();
    const again = JudgeCache.open(file);
    expect(again.get('k')).to.deep.equal(answer('first'));
    expect(again.count()).to.equal(1);
    again.close();
  });

  it('takes concurrent writers from two processes without losing a row', async function () {
    this.timeout(60_000);
    const file = path.join(tmp, 'cache.sqlite');
    // overlapping key ranges: 0..599 and 400..999
    const a = child(file, '0', '600');
    const b = child(file, '400', '600');
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.err).to.equal(0);
    expect(rb.code, rb.err).to.equal(0);
    const c = JudgeCache.open(file);
    expect(c.count()).to.equal(1000);
    expect(c.get('k999')!.content).to.equal('{"score": 4}');
    c.close();
  });

  it('is intact after a writer is killed mid-write', async function () {
    this.timeout(60_000);
    const file = path.join(tmp, 'cache.sqlite');
    const w = child(file, '0', '0', 'forever');
    while (!w.output().includes('writing')) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    w.p.kill('SIGKILL');
    await w.done;
    const db = new Database(file);
    expect(db.pragma('integrity_check', { simple: true })).to.equal('ok');
    db.close();
    const c = JudgeCache.open(file);
    const n = c.count();
    expect(n).to.be.greaterThan(50);
    // every stored row is complete
    for (let i = 0; i < n; i++) expect(c.get(`k${i}`), `k${i}`).to.have.property('content');
    c.close();
  });

  it('refuses a file that is not SQLite, saying what to do', () => {
    const file = path.join(tmp, 'junk.sqlite');
    writeFileSync(
      file,
      'this is not a database, just text that is long enough to look like a header '.repeat(10),
    );
    expect(() => JudgeCache.open(file)).to.throw(JudgeError, /cannot open it as SQLite.*--cache/);
  });
});
