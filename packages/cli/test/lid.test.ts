import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lid176Path } from '@polyglot/lid';
import { expect } from 'chai';
import { inProcess as polyglot } from './helpers/cli.js';

const jsonLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('polyglot lid', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-cli-lid-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const DE = 'Hier sind einige Tipps, wie Sie Ihre Zeit besser einteilen können.';
  const EN = 'A refrigerator works by moving heat from the inside to the outside.';
  const BG = 'Ето няколко съвета как да управлявате времето си по-добре.';

  it('predict --text and --input .txt print one JSON line per text', async () => {
    const r = await polyglot('lid', 'predict', '--text', DE);
    expect(r.code, r.stderr).to.equal(0);
    const [p] = jsonLines(r.stdout);
    expect(p).to.include({ lang: 'de', script: 'Latn' });
    expect(p.labels).to.deep.equal(['__label__de']);
    expect(p.probs[0]).to.be.greaterThan(0.9);

    const txt = path.join(dir, 'lines.txt');
    writeFileSync(txt, `${DE}\n${BG}\n\n${EN}\n`);
    const r2 = await polyglot('lid', 'predict', '--input', txt, '-k', '2', '--threshold', '0.001');
    expect(r2.code, r2.stderr).to.equal(0);
    const rows = jsonLines(r2.stdout);
    expect(rows.map((x) => x.lang)).to.deep.equal(['de', 'bg', 'en', 'en']);
    expect(rows[1].labels).to.have.length(2);
    const all = await polyglot('lid', 'predict', '--text', DE, '-k', 'all');
    expect(jsonLines(all.stdout)[0].labels.length).to.be.greaterThan(2);
  });

  it('predict --input .jsonl --field, and --output', async () => {
    const file = path.join(dir, 'q.jsonl');
    writeFileSync(file, `${JSON.stringify({ q: BG })}\n${JSON.stringify({ q: EN })}\n`);
    const out = path.join(dir, 'pred.jsonl');
    const r = await polyglot('lid', 'predict', '--input', file, '--field', 'q', '--output', out);
    expect(r.code, r.stderr).to.equal(0);
    expect(jsonLines(readFileSync(out, 'utf8')).map((x) => x.lang)).to.deep.equal(['bg', 'en']);
    const bad = await polyglot('lid', 'predict', '--input', file, '--field', 'text');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include(`${file}:1`);
  });

  it('fidelity prints per-file results and the mean over seeds, and writes the .eval CSV', async () => {
    const runFile = (seed: number, records: object[]) => {
      const f = path.join(dir, `alpaca_eval_instructions_de-none-guanaco_prompt-s${seed}.jsonl`);
      writeFileSync(f, `${records.map((x) => JSON.stringify(x)).join('\n')}\n`);
      return f;
    };
    const q = 'Wie kann ich meine Zeit besser einteilen?';
    const a = runFile(0, [
      { source: q, system: DE },
      { source: q, system: EN },
    ]);
    const b = runFile(42, [
      { source: q, system: DE },
      { source: q, system: DE },
    ]);
    const evalOut = path.join(dir, 'a.eval');
    const one = await polyglot('lid', 'fidelity', '--input', a, '--eval-out', evalOut);
    expect(one.code, one.stderr).to.equal(0);
    expect(jsonLines(one.stdout)[0]).to.include({ n: 2, lang_match: 0.5, tgt_lang: 0.5, lang: 'deu_Latn' });
    expect(readFileSync(evalOut, 'utf8')).to.equal(
      `lang_match,tgt_lang,ppl,ppl_model,n,file\n0.5,0.5,,,2,${a}\n`,
    );

    const two = await polyglot('lid', 'fidelity', '--input', a, b, '--eval');
    expect(two.code, two.stderr).to.equal(0);
    const lines = jsonLines(two.stdout);
    expect(lines).to.have.length(3);
    expect(lines[2].summary.lang_match.mean).to.equal(0.75);
    expect(lines[2].summary.files).to.equal(2);
    expect(readFileSync(b.replace(/\.jsonl$/, '.eval'), 'utf8')).to.include('1.0,1.0,,,2,');
  });

  it('unknown languages and missing models are one-line errors (exit 1)', async () => {
    const f = path.join(dir, 'run.jsonl');
    writeFileSync(f, `${JSON.stringify({ source: DE, system: DE })}\n`);
    const r = await polyglot('lid', 'fidelity', '--input', f, '--lang', 'xx');
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^polyglot: error: unknown language "xx"/);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    const m = await polyglot('lid', 'predict', '--text', 'x', '--model', 'openlid', '--cache-dir', dir);
    expect(m.code).to.equal(1);
    expect(m.stderr).to.include('polyglot lid download openlid');
    const u = await polyglot('lid', 'predict', '--text', 'x', '-k', '0');
    expect(u.code).to.equal(2);
  });

  it('tag adds <key>_lang fields', async () => {
    const f = path.join(dir, 'tag.jsonl');
    writeFileSync(f, `${JSON.stringify({ source: DE, system: BG })}\n`);
    const r = await polyglot('lid', 'tag', '--input', f, '--keys', 'source,system');
    expect(r.code, r.stderr).to.equal(0);
    expect(jsonLines(r.stdout)[0]).to.include({ source_lang: 'de', system_lang: 'bg' });
  });

  it('download fetches from a URL into the cache and verifies the hash', async () => {
    const body = readFileSync(lid176Path());
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.bin`;
      const sha = createHash('sha256').update(body).digest('hex');
      const cache = path.join(dir, 'cache');
      const r = await polyglot(
        'lid',
        'download',
        'glotlid',
        '--url',
        url,
        '--cache-dir',
        cache,
        '--sha256',
        sha,
      );
      expect(r.code, r.stderr).to.equal(0);
      expect(jsonLines(r.stdout)[0]).to.include({ verified: true, sha256: sha });
      const p = await polyglot('lid', 'predict', '--text', DE, '--model', 'glotlid', '--cache-dir', cache);
      expect(jsonLines(p.stdout)[0].lang).to.equal('de');
      const bad = await polyglot(
        'lid',
        'download',
        'glotlid',
        '--url',
        url,
        '--cache-dir',
        path.join(dir, 'c2'),
        '--sha256',
        '0'.repeat(64),
      );
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.include('sha256');
      const unknown = await polyglot('lid', 'download', 'lid999');
      expect(unknown.code).to.equal(2);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
