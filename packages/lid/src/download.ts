// Downloading the large LID models (OpenLID, GlotLID) into the cache: resumable (HTTP Range), verified
// (sha256, and the fastText magic number), decompressed where served gzipped, and renamed into place atomically.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { LidError } from './errors.js';
import { FASTTEXT_MAGIC } from './fasttext/model.js';
import { tempPathFor, writeFileAtomic } from './fsutil.js';

export type DownloadableModel = 'openlid' | 'glotlid';

/** A model `downloadModel` knows how to fetch. */
export interface KnownModel {
  name: DownloadableModel;
  title: string;
  /** Public URL of the file as served. */
  url: string;
  /** The served file is gzip-compressed (it is decompressed after verification). */
  gzip: boolean;
  /** Name of the model file in the cache. */
  fileName: string;
  /**
   * sha256 of the file as served (compressed where `gzip`), where we know it. Unknown hashes are computed,
   * recorded next to the file and printed; pass `sha256` to pin one.
   */
  sha256?: string;
  /** Size in bytes as served, where known. */
  size?: number;
  labels: string;
  homepage: string;
}

export const KNOWN_MODELS: Readonly<Record<DownloadableModel, KnownModel>> = {
  openlid: {
    name: 'openlid',
    title: 'OpenLID (lid201-model.bin, 201 languages; the model the paper used)',
    url: 'https://data.statmt.org/lid/lid201-model.bin.gz',
    gzip: true,
    fileName: 'lid201-model.bin',
    labels: 'FLORES-200 style labels (__label__deu_Latn)',
    homepage: 'https://github.com/laurieburchell/open-lid-dataset',
  },
  glotlid: {
    name: 'glotlid',
    title: 'GlotLID (model.bin of cis-lmu/glotlid, 1,600+ languages)',
    url: 'https://huggingface.co/cis-lmu/glotlid/resolve/main/model.bin',
    gzip: false,
    fileName: 'glotlid-model.bin',
    labels: 'ISO 639-3 + script labels (__label__cmn_Hani)',
    homepage: 'https://github.com/cisnlp/GlotLID',
  },
};

/** `$POLYGLOT_CACHE/lid`, by default `~/.cache/polyglot/lid`. */
export function defaultCacheDir(): string {
  const root = process.env.POLYGLOT_CACHE || path.join(os.homedir(), '.cache', 'polyglot');
  return path.join(root, 'lid');
}

export function knownModel(name: string): KnownModel {
  const entry = (KNOWN_MODELS as Record<string, KnownModel>)[name];
  if (!entry) {
    throw new LidError(
      'unknown-model',
      `unknown model ${JSON.stringify(name)}; downloadable models are ${Object.keys(KNOWN_MODELS).join(', ')} (lid176 ships with the package)`,
    );
  }
  return entry;
}

/** Where `downloadModel(name)` puts the model file. */
export function cachedModelPath(name: DownloadableModel, cacheDir: string = defaultCacheDir()): string {
  return path.join(cacheDir, knownModel(name).fileName);
}

export interface DownloadOptions {
  /** Folder for the model files (default {@link defaultCacheDir}). */
  cacheDir?: string;
  /** Fetch `<baseUrl>/<file name of the public URL>` instead (a mirror, or a test server). */
  baseUrl?: string;
  /** Fetch this URL instead. */
  url?: string;
  /** Expected sha256 (hex) of the file as served; overrides the registry's. */
  sha256?: string;
  /** Download again even if the model is in the cache. */
  force?: boolean;
  /** Called as bytes arrive: bytes so far (including a resumed part) and the total where known. */
  onProgress?: (bytes: number, total: number | null) => void;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

export interface DownloadResult {
  name: DownloadableModel;
  /** The model file. */
  path: string;
  url: string;
  /** sha256 of the file as served. */
  sha256: string;
  /** True when the hash was checked against an expected value. */
  verified: boolean;
  /** Bytes of the file as served. */
  bytes: number;
  /** True when an interrupted download was continued. */
  resumed: boolean;
  /** True when the model was already in the cache and nothing was fetched. */
  cached: boolean;
}

const SHA_RE = /^[0-9a-f]{64}$/;

/** True for 64 lower- or upper-case hex digits (a sha256 as `sha256sum` prints it). */
export function isSha256(text: string): boolean {
  return SHA_RE.test(text.toLowerCase());
}

async function hashFile(file: string): Promise<{ hash: ReturnType<typeof createHash>; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash, bytes };
}

/** sha256 (hex) and size of a file, streamed. */
export async function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  const { hash, bytes } = await hashFile(file);
  return { sha256: hash.digest('hex'), bytes };
}

/** The hash recorded in a `sha256sum`-style sidecar (`<hex>  <name>`), or null when absent or unreadable. */
export async function readSha256Sidecar(file: string): Promise<string | null> {
  try {
    const text = await fsp.readFile(file, 'utf8');
    const h = text.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
    return SHA_RE.test(h) ? h : null;
  } catch {
    return null;
  }
}

/** Makes the typed error of the calling package (`@polyglot/lid` raises `LidError`s by default). */
export type DownloadErrorFactory = (code: string, message: string, options?: { cause?: unknown }) => Error;

const lidError: DownloadErrorFactory = (code, message, options) => new LidError(code, message, options);

/** What {@link downloadFile} fetches, where it puts it and how it checks it. */
export interface DownloadFileOptions {
  /** URL to fetch. */
  url: string;
  /** The final file. Its folder is created. */
  dest: string;
  /** Names the download in messages (default: the file name of `dest`). */
  label?: string;
  /** Expected sha256 (hex) of the bytes as served (compressed where `gunzip`). */
  sha256?: string;
  /** Expected size in bytes as served. */
  size?: number;
  /** The server sends gzip: verify the bytes as served, then decompress into `dest`. */
  gunzip?: boolean;
  /** Checks the finished file (decompressed where `gunzip`) before it is renamed into place; throw to reject. */
  verify?: (file: string) => Promise<void>;
  /** Name written after the hash in the `<dest>.sha256` sidecar (default: the URL's file name). */
  sidecarName?: string;
  /** Download again even if `dest` exists. */
  force?: boolean;
  /** Called as bytes arrive: bytes so far (including a resumed part) and the total where known. */
  onProgress?: (bytes: number, total: number | null) => void;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** The error class to raise (default `LidError`); codes: `bad-sha256`, `download-failed`, `checksum-mismatch`, `size-mismatch`. */
  makeError?: DownloadErrorFactory;
  /** What to tell the user when a checksum differs (default: pass --sha256 to accept a new one). */
  checksumHint?: string;
}

export interface DownloadFileResult {
  /** The file. */
  path: string;
  url: string;
  /** sha256 of the bytes as served ('' for a cached file without a recorded hash). */
  sha256: string;
  /** True when the hash was checked against an expected value. */
  verified: boolean;
  /** Bytes as served (for a cached file: its size on disk). */
  bytes: number;
  /** True when an interrupted download was continued. */
  resumed: boolean;
  /** True when the file was already there and nothing was fetched. */
  cached: boolean;
}

/**
 * Downloads one file: the shared core of model and dataset downloads. The bytes go to `<dest>.part`
 * (`<dest>.gz.part` where `gunzip`) and an interrupted download resumes from there with an HTTP Range request;
 * the whole file is then checked (size and sha256 where expected values are given, `verify` always),
 * decompressed where served gzipped, and renamed into place, so `dest` is never half-written. The sha256 of
 * the bytes as served is recorded in `<dest>.sha256` (`sha256sum` format). An existing `dest` is kept (`cached`)
 * unless `force`, or an expected hash differs from the recorded one.
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadFileResult> {
  const makeError = options.makeError ?? lidError;
  const { url, dest } = options;
  const label = options.label ?? path.basename(dest);
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && !SHA_RE.test(expected)) {
    throw makeError('bad-sha256', `--sha256 must be 64 hex digits, got ${JSON.stringify(options.sha256)}`);
  }
  const sidecar = `${dest}.sha256`;
  const doFetch = options.fetch ?? fetch;

  if (existsSync(dest) && !options.force) {
    const recorded = await readSha256Sidecar(sidecar);
    if (!expected || recorded === expected) {
      const stat = await fsp.stat(dest);
      return {
        path: dest,
        url,
        sha256: recorded ?? '',
        verified: expected !== undefined,
        bytes: stat.size,
        resumed: false,
        cached: true,
      };
    }
  }

  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const part = `${dest}${options.gunzip ? '.gz' : ''}.part`;
  let start = 0;
  try {
    start = (await fsp.stat(part)).size;
  } catch {
    start = 0;
  }

  const fail = (why: string, cause?: unknown) =>
    makeError(
      'download-failed',
      `downloading ${label} from ${url} failed: ${why}${existsSync(part) ? `; the partial download ${part} is kept — run the command again to resume` : ''}`,
      { cause },
    );

  let response: Response;
  try {
    response = await doFetch(url, {
      headers: start > 0 ? { Range: `bytes=${start}-` } : {},
      redirect: 'follow',
    });
  } catch (e) {
    throw fail((e as Error).message, e);
  }

  let resumed = false;
  let total: number | null = null;
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  if (response.status === 206 && start > 0) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== start) {
      await response.body?.cancel();
      await fsp.rm(part, { force: true });
      throw fail(
        `the server answered the resume request with range ${response.headers.get('content-range')}; the partial download was removed, run again to restart`,
      );
    }
    resumed = true;
    total = range[3] === '*' ? null : Number(range[3]);
  } else if (response.status === 416 && start > 0) {
    // the part is already complete (or longer than the file): verify it as it is
    await response.body?.cancel();
    resumed = true;
  } else if (response.status === 200) {
    start = 0; // the server ignored the Range header: start over
    total = Number.isFinite(length) ? length : null;
  } else {
    await response.body?.cancel();
    throw fail(`HTTP ${response.status} ${response.statusText}`);
  }

  const { hash, bytes: have } = start > 0 ? await hashFile(part) : { hash: createHash('sha256'), bytes: 0 };
  let bytes = have;
  if (response.status !== 416) {
    const out = createWriteStream(part, { flags: start > 0 ? 'a' : 'w' });
    try {
      if (!response.body) throw new Error('empty response body');
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        bytes += chunk.length;
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        options.onProgress?.(bytes, total);
      }
      await new Promise<void>((resolve, reject) =>
        out.end((e?: Error | null) => (e ? reject(e) : resolve())),
      );
    } catch (e) {
      out.destroy();
      throw fail((e as Error).message, e);
    }
  }
  const sha256 = hash.digest('hex');

  if (total !== null && bytes !== total) {
    throw fail(`got ${bytes} of ${total} bytes`);
  }
  if (options.size !== undefined && bytes !== options.size) {
    await fsp.rm(part, { force: true });
    throw makeError(
      'size-mismatch',
      `${label}: downloaded ${bytes} bytes, expected ${options.size}; the download was removed — try again`,
    );
  }
  if (expected && sha256 !== expected) {
    await fsp.rm(part, { force: true });
    throw makeError(
      'checksum-mismatch',
      `${label}: sha256 of the download from ${url} is ${sha256}, expected ${expected}; the download was removed ` +
        `(${options.checksumHint ?? 'a corrupted transfer, or the file changed upstream: check the hash and pass --sha256 to accept a new one'})`,
    );
  }

  const finish = async (file: string) => {
    if (!options.verify) return;
    try {
      await options.verify(file);
    } catch (e) {
      await fsp.rm(file, { force: true });
      throw e;
    }
  };
  if (options.gunzip) {
    const tmp = tempPathFor(dest);
    try {
      await pipeline(createReadStream(part), createGunzip(), createWriteStream(tmp));
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      await fsp.rm(part, { force: true });
      throw makeError(
        'download-failed',
        `${label}: the download from ${url} is not valid gzip (${(e as Error).message}); it was removed — try again`,
        { cause: e },
      );
    }
    await finish(tmp);
    await fsp.rename(tmp, dest);
    await fsp.rm(part, { force: true });
  } else {
    await finish(part);
    await fsp.rename(part, dest);
  }
  const served = options.sidecarName ?? path.posix.basename(new URL(url).pathname);
  await writeFileAtomic(sidecar, `${sha256}  ${served}\n`);
  return { path: dest, url, sha256, verified: expected !== undefined, bytes, resumed, cached: false };
}

async function checkMagic(file: string, url: string): Promise<void> {
  const fh = await fsp.open(file, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (head.readInt32LE(0) !== FASTTEXT_MAGIC) {
    throw new LidError(
      'not-a-fasttext-model',
      `${url} did not deliver a fastText model (no fastText magic number at the start); the file was removed — check the URL`,
    );
  }
}

/**
 * Downloads a known model into the cache and returns its path, with {@link downloadFile}: resumable (HTTP
 * Range), verified (sha256 where an expected hash is known, size where known, the fastText magic number
 * always), decompressed where served gzipped, renamed into place. The hash of what was served is recorded in
 * `<file>.sha256`. Errors: `unknown-model`, `bad-sha256`, `download-failed`, `checksum-mismatch`,
 * `size-mismatch`, `not-a-fasttext-model`.
 */
export async function downloadModel(name: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const entry = knownModel(name);
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const served = path.posix.basename(new URL(entry.url).pathname);
  const url =
    options.url ?? (options.baseUrl ? `${options.baseUrl.replace(/\/+$/, '')}/${served}` : entry.url);
  const expected = options.sha256 ?? entry.sha256;
  const r = await downloadFile({
    url,
    dest: path.join(cacheDir, entry.fileName),
    label: entry.name,
    ...(expected !== undefined ? { sha256: expected } : {}),
    ...(entry.size !== undefined && !options.url && !options.baseUrl ? { size: entry.size } : {}),
    gunzip: entry.gzip,
    verify: (file) => checkMagic(file, url),
    sidecarName: served,
    ...(options.force !== undefined ? { force: options.force } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  return { name: entry.name, ...r };
}
