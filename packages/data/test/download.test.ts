// Dataset downloads against a local HTTP server (127.0.0.1, port 0) serving files the tests write.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { lid176Path, resolveModelPath } from '@polyglot/lid';
import { expect } from 'chai';
import {
  DATASETS,
  datasetDir,
  datasetFile,
  extractZip,
  getDataset,
  listDatasets,
  readJsonlAll,
  readXnli,
  readXquad,
} from '../src/index.js';
import { makeZip, rejectsWith, tempDir } from './helpers/util.js';

interface Served {
  body: Buffer;
  status?: number;
}

const conversation = (i: number) =>
  JSON.stringify({ text: `### Human: Question ${i}?### Assistant: Answer ${i}.` });
const TRAIN = Buffer.from(`${[...Array(50).keys()].map(conversation).join('\n')}\n`);
const EVAL = Buffer.from(`${conversation(1)}\n${conversation(2)}\n`);
const SQUAD = Buffer.from(
  JSON.stringify({
    version: '1.1',
    data: [
      {
        title: 'T',
        paragraphs: [
          {
            context: 'Der Turm ist 34 Meter hoch.',
            qas: [{ id: 'q1', question: 'Wie hoch?', answers: [{ text: '34 Meter', answer_start: 13 }] }],
          },
        ],
      },
    ],
  }),
);
const TSV_HEADER = 'language\tgold_label\tsentence1\tsentence2\tpairID\tgenre';

describe('getDataset (local HTTP server)', function () {
  this.timeout(60_000);
  const files = new Map<string, Served>();
  const requests: { url: string; range: string | undefined }[] = [];
  let server: http.Server;
  let base: string;
  const savedOffline = process.env.POLYGLOT_OFFLINE;

  before(async () => {
    delete process.env.POLYGLOT_OFFLINE;
    server = http.createServer((req, res) => {
      requests.push({ url: req.url ?? '', range: req.headers.range });
      const f = files.get(req.url ?? '');
      if (!f || f.status) {
        res.writeHead(f?.status ?? 404);
        res.end('not here');
        return;
      }
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && Number(m[1]) < f.body.length) {
        const start = Number(m[1]);
        res.writeHead(206, {
          'content-length': f.body.length - start,
          'content-range': `bytes ${start}-${f.body.length - 1}/${f.body.length}`,
        });
        res.end(f.body.subarray(start));
        return;
      }
      res.writeHead(200, { 'content-length': f.body.length });
      res.end(f.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (savedOffline !== undefined) process.env.POLYGLOT_OFFLINE = savedOffline;
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    files.clear();
    requests.length = 0;
  });

  /** A fetch that serves the public URLs from the local server (path = the URL's host and path). */
  const mirror: typeof fetch = (input, init) => {
    const u = new URL(String(input));
    return fetch(`${base}/${u.host}${u.pathname}`, init);
  };

  it('downloads Guanaco, validates it, pins its sha256; a second call fetches nothing', async () => {
    const root = tempDir('dl-guanaco');
    files.set('/openassistant_best_replies_train.jsonl', { body: TRAIN });
    files.set('/openassistant_best_replies_eval.jsonl', { body: EVAL });
    const r = await getDataset('guanaco', { cacheDir: root, baseUrl: base });
    expect(r.dir).to.equal(path.join(root, 'datasets', 'guanaco'));
    expect(r.files.map((f) => [path.basename(f.path), f.check, f.cached])).to.deep.equal([
      ['openassistant_best_replies_train.jsonl', 'recorded', false],
      ['openassistant_best_replies_eval.jsonl', 'recorded', false],
    ]);
    expect(await readJsonlAll(r.files[0]!.path)).to.have.length(50);
    expect(readFileSync(`${r.files[0]!.path}.sha256`, 'utf8')).to.match(
      /^[0-9a-f]{64} {2}openassistant_best_replies_train\.jsonl\n$/,
    );
    const again = await getDataset('guanaco', { cacheDir: root, baseUrl: base });
    expect(again.files.every((f) => f.cached && f.check === 'pinned')).to.equal(true);
    expect(requests).to.have.length(2);
    // only one split
    const test = await getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'] });
    expect(test.files).to.have.length(1);
  });

  it('later downloads must match the pinned hash; deleting the pin accepts a changed file', async () => {
    const root = tempDir('dl-pin');
    files.set('/openassistant_best_replies_eval.jsonl', { body: EVAL });
    const first = await getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'] });
    const file = first.files[0]!.path;
    files.set('/openassistant_best_replies_eval.jsonl', { body: Buffer.from(`${conversation(9)}\n`) });
    const err = await rejectsWith(
      getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'], force: true }),
      'checksum-mismatch',
      first.files[0]!.sha256,
      `${file}.sha256`,
      'delete',
    );
    expect(err.message).to.include('pinned');
    expect(readFileSync(file)).to.deep.equal(EVAL);
    rmSync(`${file}.sha256`);
    const r = await getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'], force: true });
    expect(r.files[0]!.check).to.equal('recorded');
    expect(readFileSync(file, 'utf8')).to.equal(`${conversation(9)}\n`);
  });

  it('resumes an interrupted download with an HTTP Range request', async () => {
    const root = tempDir('dl-resume');
    files.set('/openassistant_best_replies_train.jsonl', { body: TRAIN });
    const dir = datasetDir('guanaco', root);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'openassistant_best_replies_train.jsonl.part'), TRAIN.subarray(0, 100));
    const r = await getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['train'] });
    expect(requests).to.deep.equal([{ url: '/openassistant_best_replies_train.jsonl', range: 'bytes=100-' }]);
    expect(r.files[0]!.resumed).to.equal(true);
    expect(readFileSync(r.files[0]!.path)).to.deep.equal(TRAIN);
  });

  it('a file that is not what the dataset holds is removed, naming the URL and the line', async () => {
    const root = tempDir('dl-bad');
    files.set('/openassistant_best_replies_eval.jsonl', { body: Buffer.from('<html>rate limited</html>\n') });
    await rejectsWith(
      getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'] }),
      'bad-download',
      `${base}/openassistant_best_replies_eval.jsonl`,
      'guanaco-jsonl',
      ':1',
    );
    const dir = datasetDir('guanaco', root);
    expect(existsSync(path.join(dir, 'openassistant_best_replies_eval.jsonl'))).to.equal(false);
    expect(existsSync(path.join(dir, 'openassistant_best_replies_eval.jsonl.part'))).to.equal(false);
    files.set('/openassistant_best_replies_eval.jsonl', {
      body: Buffer.from(`${conversation(1)}\n{"prompt": "x"}\n`),
    });
    await rejectsWith(
      getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'] }),
      'bad-download',
      'openassistant_best_replies_eval.jsonl:2',
      'no field "text"',
    );
  });

  it('tries the next public URL on HTTP 404 (XQuAD moved from deepmind to google-deepmind)', async () => {
    const root = tempDir('dl-xquad');
    expect(DATASETS.xquad!.files.find((f) => f.lang === 'de')!.urls).to.deep.equal([
      'https://raw.githubusercontent.com/google-deepmind/xquad/HEAD/xquad.de.json',
      'https://raw.githubusercontent.com/deepmind/xquad/HEAD/xquad.de.json',
    ]);
    files.set('/raw.githubusercontent.com/deepmind/xquad/HEAD/xquad.de.json', { body: SQUAD });
    const r = await getDataset('xquad', { cacheDir: root, langs: ['de'], fetch: mirror });
    expect(r.files).to.have.length(1);
    expect(r.files[0]!.url).to.equal('https://raw.githubusercontent.com/deepmind/xquad/HEAD/xquad.de.json');
    expect(requests.map((q) => q.url)).to.deep.equal([
      '/raw.githubusercontent.com/google-deepmind/xquad/HEAD/xquad.de.json',
      '/raw.githubusercontent.com/deepmind/xquad/HEAD/xquad.de.json',
    ]);
    expect((await readXquad(r.files[0]!.path))[0]!.answers[0]!.text).to.equal('34 Meter');
    await rejectsWith(
      getDataset('xquad', { cacheDir: root, langs: ['xx'] }),
      'bad-option',
      'no files for xx',
      'ar, de, el',
    );
  });

  it('downloads and extracts an archive (XNLI), once', async () => {
    const root = tempDir('dl-xnli');
    const row = (l: string, label: string) => `${l}\t${label}\tPrämisse\tHypothese\t1\tfiction`;
    const zip = makeZip([
      { name: 'XNLI-1.0/', data: '', store: true },
      {
        name: 'XNLI-1.0/xnli.dev.tsv',
        data: `${TSV_HEADER}\n${row('de', 'neutral')}\n${row('bg', 'entailment')}\n`,
      },
      { name: 'XNLI-1.0/xnli.test.tsv', data: `${TSV_HEADER}\n${row('de', 'contradiction')}\n`, store: true },
      { name: '__MACOSX/XNLI-1.0/._xnli.dev.tsv', data: 'junk' },
    ]);
    files.set('/dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip', { body: zip });
    const r = await getDataset('xnli', { cacheDir: root, fetch: mirror });
    expect(r.files[0]!.extracted).to.deep.equal(['XNLI-1.0/xnli.dev.tsv', 'XNLI-1.0/xnli.test.tsv']);
    expect(existsSync(path.join(r.dir, '__MACOSX'))).to.equal(false);
    const dev = await readXnli(datasetFile('xnli', 'XNLI-1.0/xnli.dev.tsv', { cacheDir: root }));
    expect(dev.map((x) => [x.language, x.label])).to.deep.equal([
      ['de', 'neutral'],
      ['bg', 'entailment'],
    ]);
    const again = await getDataset('xnli', { cacheDir: root, fetch: mirror });
    expect(again.files[0]!.extracted).to.equal(undefined);
    expect(requests).to.have.length(1);
  });

  it('offline: explains what to download and where to put it; uses the cache when it is there', async () => {
    const root = tempDir('dl-offline');
    const err = await rejectsWith(
      getDataset('xquad', { cacheDir: root, langs: ['de', 'hi'], offline: true }),
      'offline',
    );
    const dir = datasetDir('xquad', root);
    expect(err.message).to.include(
      `https://raw.githubusercontent.com/google-deepmind/xquad/HEAD/xquad.de.json → ${path.join(dir, 'xquad.de.json')}`,
    );
    expect(err.message).to.include('xquad.hi.json');
    expect(err.message).to.include('polyglot data get xquad');
    await rejectsWith(
      () => datasetFile('xquad', 'xquad.de.json', { cacheDir: root }),
      'not-downloaded',
      'polyglot data get xquad',
    );
    process.env.POLYGLOT_OFFLINE = '1';
    try {
      await rejectsWith(
        getDataset('xnli', { cacheDir: root }),
        'offline',
        'POLYGLOT_OFFLINE=1',
        'XNLI-1.0.zip',
        'unzip',
      );
      files.set('/xquad.de.json', { body: SQUAD });
      const online = await getDataset('xquad', {
        cacheDir: root,
        langs: ['de'],
        baseUrl: base,
        offline: false,
      });
      expect(online.files[0]!.cached).to.equal(false);
      const cached = await getDataset('xquad', { cacheDir: root, langs: ['de'] });
      expect(cached.files[0]).to.include({ cached: true, sha256: online.files[0]!.sha256 });
      expect(requests).to.have.length(1);
    } finally {
      delete process.env.POLYGLOT_OFFLINE;
    }
  });

  it('a failed download says how to get the file without internet here', async () => {
    const root = tempDir('dl-fail');
    const err = await rejectsWith(
      getDataset('alpaca-eval', { cacheDir: root, baseUrl: 'http://127.0.0.1:1' }),
      'download-failed',
      'No internet here?',
    );
    expect(err.message).to.include(
      `https://huggingface.co/datasets/tatsu-lab/alpaca_eval/resolve/main/alpaca_eval.json → ${path.join(root, 'datasets', 'alpaca-eval', 'alpaca_eval.json')}`,
    );
  });

  it('--verify re-hashes the cache; bad options are refused', async () => {
    const root = tempDir('dl-verify');
    files.set('/openassistant_best_replies_eval.jsonl', { body: EVAL });
    const r = await getDataset('guanaco', { cacheDir: root, baseUrl: base, splits: ['test'] });
    expect(
      (await getDataset('guanaco', { cacheDir: root, splits: ['test'], verify: true })).files[0]!.cached,
    ).to.equal(true);
    writeFileSync(r.files[0]!.path, `${conversation(3)}\n`);
    await rejectsWith(
      getDataset('guanaco', { cacheDir: root, splits: ['test'], verify: true }),
      'cache-corrupt',
      '--force',
    );
    await rejectsWith(getDataset('nope'), 'unknown-dataset', 'guanaco, oasst1, xquad');
    await rejectsWith(
      getDataset('guanaco', { cacheDir: root, sha256: 'ab'.repeat(32) }),
      'bad-option',
      'one file',
    );
    await rejectsWith(
      getDataset('guanaco', { cacheDir: root, sha256: 'xyz', splits: ['test'] }),
      'bad-sha256',
    );
    await rejectsWith(
      getDataset('guanaco', { cacheDir: root, langs: ['de'] }),
      'bad-option',
      'no per-language files',
    );
  });

  it('OpenLID goes to the lid model cache, where `--model openlid` finds it', async () => {
    const root = tempDir('dl-openlid');
    const model = readFileSync(lid176Path());
    files.set('/lid201-model.bin.gz', { body: gzipSync(model) });
    const r = await getDataset('openlid', { cacheDir: root, baseUrl: base });
    expect(r.files[0]!.path).to.equal(path.join(root, 'lid', 'lid201-model.bin'));
    expect(resolveModelPath('openlid', { cacheDir: path.join(root, 'lid') })).to.equal(r.files[0]!.path);
    expect(readFileSync(r.files[0]!.path)).to.deep.equal(model);
  });

  it('the registry names public sources with their layout', () => {
    const names = listDatasets().map((d) => d.name);
    expect(names).to.include.members([
      'guanaco',
      'xquad',
      'xcsqa',
      'xnli',
      'alpaca-eval',
      'paper-alpaca-eval',
      'openlid',
    ]);
    for (const d of listDatasets()) {
      expect(d.homepage, d.name).to.match(/^https:\/\//);
      expect(d.layout.length, d.name).to.be.greaterThan(20);
      for (const f of d.files) for (const u of f.urls) expect(u, d.name).to.match(/^https:\/\//);
    }
    expect(DATASETS['paper-alpaca-eval']!.files).to.have.length(18);
    expect(DATASETS.xcsqa!.files[0]!.provides).to.include('X-CSR_datasets/X-CSQA/en/dev.jsonl');
  });
});

describe('zip extraction', () => {
  it('refuses paths outside the folder and damaged entries', async () => {
    const dir = tempDir('zip');
    const evil = path.join(dir, 'evil.zip');
    writeFileSync(evil, makeZip([{ name: '../outside.txt', data: 'x' }]));
    await rejectsWith(extractZip(evil, path.join(dir, 'out')), 'unsafe-zip', '../outside.txt');
    const good = makeZip([{ name: 'a/b.txt', data: 'hello hello hello' }]);
    const broken = Buffer.from(good);
    broken[40] = broken[40]! ^ 0xff; // inside the deflated data
    writeFileSync(path.join(dir, 'broken.zip'), broken);
    await rejectsWith(extractZip(path.join(dir, 'broken.zip'), path.join(dir, 'out')), 'bad-zip');
    writeFileSync(path.join(dir, 'not.zip'), 'plain text');
    await rejectsWith(
      extractZip(path.join(dir, 'not.zip'), path.join(dir, 'out')),
      'bad-zip',
      'no end-of-central-directory',
    );
    writeFileSync(path.join(dir, 'good.zip'), good);
    expect(await extractZip(path.join(dir, 'good.zip'), path.join(dir, 'out'))).to.deep.equal(['a/b.txt']);
    expect(readFileSync(path.join(dir, 'out', 'a', 'b.txt'), 'utf8')).to.equal('hello hello hello');
  });
});
