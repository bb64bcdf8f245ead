// downloadModel against a local HTTP server on 127.0.0.1 serving files the test writes: fresh, cached, resumed
// (HTTP Range), gzip-compressed, and the failures (checksum mismatch, HTTP errors, not a model).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import {
  cachedModelPath,
  defaultCacheDir,
  downloadFile,
  downloadModel,
  KNOWN_MODELS,
  LidError,
  LidModel,
  lid176Path,
  resolveModelPath,
} from '../src/index.js';
import { tempDir } from './helpers/reference.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function rejects(p: Promise<unknown>, code: string, ...mentions: string[]): Promise<LidError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected LidError ${code}`).to.be.instanceOf(LidError);
  const err = caught as LidError;
  expect(err.code, err.message).to.equal(code);
  for (const m of mentions) expect(err.message).to.include(m);
  return err;
}

interface Served {
  body: Buffer;
  /** Answer Range requests with 206 (default) or ignore them (200). */
  ranges?: boolean;
  status?: number;
}

describe('downloadModel (local HTTP server)', function () {
  this.timeout(60_000);
  // a real (small) fastText model, so that the downloaded file can be loaded afterwards
  const model = readFileSync(lid176Path());
  const files = new Map<string, Served>();
  const requests: { url: string; range: string | undefined }[] = [];
  let server: http.Server;
  let baseUrl: string;

  before(async () => {
    server = http.createServer((req, res) => {
      requests.push({ url: req.url ?? '', range: req.headers.range });
      const f = files.get(req.url ?? '');
      if (!f || f.status) {
        res.writeHead(f?.status ?? 404, { 'content-type': 'text/plain' });
        res.end('not here');
        return;
      }
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && f.ranges !== false) {
        const start = Number(m[1]);
        if (start >= f.body.length) {
          res.writeHead(416, { 'content-range': `bytes */${f.body.length}` });
          res.end();
          return;
        }
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
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    files.clear();
    requests.length = 0;
  });

  it('downloads, verifies and caches a model; a second call fetches nothing', async () => {
    const cacheDir = tempDir('dl');
    files.set('/model.bin', { body: model });
    expect(() => resolveModelPath('glotlid', { cacheDir })).to.throw(
      LidError,
      /polyglot lid download glotlid/,
    );
    const progress: number[] = [];
    const r = await downloadModel('glotlid', {
      cacheDir,
      baseUrl,
      sha256: sha(model),
      onProgress: (b) => progress.push(b),
    });
    expect(r).to.include({
      path: cachedModelPath('glotlid', cacheDir),
      verified: true,
      resumed: false,
      cached: false,
    });
    expect(r.sha256).to.equal(sha(model));
    expect(r.bytes).to.equal(model.length);
    expect(progress.at(-1)).to.equal(model.length);
    expect(readFileSync(r.path).equals(model)).to.equal(true);
    expect(readFileSync(`${r.path}.sha256`, 'utf8')).to.equal(`${sha(model)}  model.bin\n`);
    expect(existsSync(`${r.path}.part`)).to.equal(false);
    expect(requests).to.deep.equal([{ url: '/model.bin', range: undefined }]);
    // the cached model resolves by name and loads
    expect(resolveModelPath('glotlid', { cacheDir })).to.equal(r.path);
    const lid = await LidModel.load('glotlid', { cacheDir });
    expect(lid.identify('Das ist ein deutscher Satz.').lang).to.equal('de');

    const again = await downloadModel('glotlid', { cacheDir, baseUrl, sha256: sha(model) });
    expect(again).to.include({ cached: true, path: r.path, sha256: sha(model) });
    expect(requests).to.have.length(1);
  });

  it('resumes an interrupted download with an HTTP Range request', async () => {
    const cacheDir = tempDir('dl-resume');
    files.set('/model.bin', { body: model });
    const part = `${cachedModelPath('glotlid', cacheDir)}.part`;
    writeFileSync(part, model.subarray(0, 300_000));
    const r = await downloadModel('glotlid', { cacheDir, baseUrl, sha256: sha(model) });
    expect(requests).to.deep.equal([{ url: '/model.bin', range: 'bytes=300000-' }]);
    expect(r).to.include({ resumed: true, verified: true, bytes: model.length });
    expect(readFileSync(r.path).equals(model)).to.equal(true);
    expect(existsSync(part)).to.equal(false);
  });

  it('a complete part (416) is verified as it is; a server that ignores Range restarts from 0', async () => {
    const cacheDir = tempDir('dl-416');
    files.set('/model.bin', { body: model });
    const part = `${cachedModelPath('glotlid', cacheDir)}.part`;
    writeFileSync(part, model);
    const r = await downloadModel('glotlid', { cacheDir, baseUrl, sha256: sha(model) });
    expect(r.resumed).to.equal(true);
    expect(readFileSync(r.path).equals(model)).to.equal(true);

    const cacheDir2 = tempDir('dl-norange');
    files.set('/model.bin', { body: model, ranges: false });
    writeFileSync(
      `${cachedModelPath('glotlid', cacheDir2)}.part`,
      Buffer.from('garbage that must not survive'),
    );
    const r2 = await downloadModel('glotlid', { cacheDir: cacheDir2, baseUrl, sha256: sha(model) });
    expect(r2.resumed).to.equal(false);
    expect(readFileSync(r2.path).equals(model)).to.equal(true);
  });

  it('a checksum mismatch removes the download and names both hashes', async () => {
    const cacheDir = tempDir('dl-bad');
    files.set('/model.bin', { body: model });
    const wrong = 'ab'.repeat(32);
    const err = await rejects(
      downloadModel('glotlid', { cacheDir, baseUrl, sha256: wrong }),
      'checksum-mismatch',
      wrong,
      sha(model),
    );
    expect(err.message).to.include('--sha256');
    expect(existsSync(cachedModelPath('glotlid', cacheDir))).to.equal(false);
    expect(existsSync(`${cachedModelPath('glotlid', cacheDir)}.part`)).to.equal(false);
    // a resumed download is verified over the whole file, including the part fetched earlier
    writeFileSync(`${cachedModelPath('glotlid', cacheDir)}.part`, Buffer.alloc(1000, 7));
    await rejects(downloadModel('glotlid', { cacheDir, baseUrl, sha256: sha(model) }), 'checksum-mismatch');
  });

  it('OpenLID is served gzipped: verified as served, decompressed into place', async () => {
    const cacheDir = tempDir('dl-gz');
    const gz = gzipSync(model);
    files.set('/lid201-model.bin.gz', { body: gz });
    const r = await downloadModel('openlid', { cacheDir, baseUrl, sha256: sha(gz) });
    expect(r.path).to.equal(path.join(cacheDir, 'lid201-model.bin'));
    expect(r.sha256).to.equal(sha(gz));
    expect(readFileSync(r.path).equals(model)).to.equal(true);
    expect(existsSync(`${r.path}.gz.part`)).to.equal(false);
    // without a known hash: computed, recorded, reported as not verified
    const r2 = await downloadModel('openlid', { cacheDir: tempDir('dl-gz2'), baseUrl });
    expect(r2).to.include({ verified: false, sha256: sha(gz) });
  });

  it('HTTP errors, non-model files, bad options', async () => {
    const cacheDir = tempDir('dl-err');
    await rejects(
      downloadModel('glotlid', { cacheDir, baseUrl }),
      'download-failed',
      'HTTP 404',
      `${baseUrl}/model.bin`,
    );
    files.set('/model.bin', { body: Buffer.from('<html>rate limited</html>') });
    await rejects(downloadModel('glotlid', { cacheDir, baseUrl }), 'not-a-fasttext-model', 'check the URL');
    expect(existsSync(cachedModelPath('glotlid', cacheDir))).to.equal(false);
    files.set('/lid201-model.bin.gz', { body: Buffer.from('not gzip at all') });
    await rejects(downloadModel('openlid', { cacheDir, baseUrl }), 'download-failed', 'gzip');
    await rejects(downloadModel('glotlid', { cacheDir, baseUrl, sha256: 'xyz' }), 'bad-sha256');
    await rejects(downloadModel('lid999', { cacheDir }), 'unknown-model', 'openlid, glotlid');
    await rejects(
      downloadModel('glotlid', { cacheDir, url: 'http://127.0.0.1:1/model.bin' }),
      'download-failed',
    );
  });

  it('downloadFile: the shared core raises the caller’s errors and removes what verify rejects', async () => {
    class MyError extends Error {
      constructor(
        readonly code: string,
        message: string,
      ) {
        super(message);
      }
    }
    const dir = tempDir('dl-core');
    files.set('/data.txt', { body: Buffer.from('hello') });
    const dest = path.join(dir, 'sub', 'data.txt');
    const makeError = (code: string, message: string) => new MyError(code, message);
    const r = await downloadFile({ url: `${baseUrl}/data.txt`, dest, makeError });
    expect(r).to.include({ path: dest, cached: false, verified: false, bytes: 5 });
    expect(readFileSync(dest, 'utf8')).to.equal('hello');
    expect(readFileSync(`${dest}.sha256`, 'utf8')).to.equal(`${sha(Buffer.from('hello'))}  data.txt\n`);
    let caught: unknown;
    try {
      await downloadFile({ url: `${baseUrl}/missing.txt`, dest: path.join(dir, 'm.txt'), makeError });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(MyError);
    expect((caught as MyError).code).to.equal('download-failed');
    const other = path.join(dir, 'v.txt');
    caught = undefined;
    try {
      await downloadFile({
        url: `${baseUrl}/data.txt`,
        dest: other,
        verify: async () => {
          throw new MyError('bad', 'not what I wanted');
        },
      });
    } catch (e) {
      caught = e;
    }
    expect((caught as MyError).code).to.equal('bad');
    expect(existsSync(other)).to.equal(false);
    expect(existsSync(`${other}.part`)).to.equal(false);
  });

  it('knows the public URLs and the default cache folder', () => {
    expect(KNOWN_MODELS.openlid.url).to.equal('https://data.statmt.org/lid/lid201-model.bin.gz');
    expect(KNOWN_MODELS.glotlid.url).to.match(/^https:\/\/huggingface\.co\/cis-lmu\/glotlid\//);
    const saved = process.env.POLYGLOT_CACHE;
    try {
      process.env.POLYGLOT_CACHE = '/tmp/pgc';
      expect(defaultCacheDir()).to.equal(path.join('/tmp/pgc', 'lid'));
    } finally {
      if (saved === undefined) delete process.env.POLYGLOT_CACHE;
      else process.env.POLYGLOT_CACHE = saved;
    }
  });
});
