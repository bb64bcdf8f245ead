// Named dataset sources and their download into the cache (`$POLYGLOT_CACHE/datasets/<name>`, by default
// `~/.cache/polyglot/datasets/<name>`), on the download core of @polyglot/lid: resumable (HTTP Range),
// checksummed, validated, renamed into place; archives are extracted. Offline, the cache is used and what is
// missing is explained (what to fetch from where, and where to put it).
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  downloadFile,
  downloadModel,
  isSha256,
  KNOWN_MODELS,
  readSha256Sidecar,
  sha256File,
  writeFileAtomic,
} from '@polyglot/lid';
import { DataError } from './errors.js';
import { readJsonl } from './jsonl.js';
import { readPlacedRecords, stringField } from './records.js';
import { readSquad } from './squad.js';
import { extractZip, listZip } from './zip.js';

/** How a downloaded file is checked before it is renamed into place. */
export type DatasetFormat =
  | 'guanaco-jsonl'
  | 'oasst-trees'
  | 'squad'
  | 'alpaca-eval'
  | 'paper-xcsqa'
  | 'paper-xquad'
  | 'zip'
  | 'fasttext';

/** One file of a dataset source. */
export interface DatasetFile {
  /** Where it is served; later URLs (an older layout, a mirror) are tried when one answers HTTP 404. */
  urls: readonly string[];
  /** Path in the dataset's cache folder (decompressed name where `gunzip`). */
  path: string;
  /** Language (or variant, e.g. `en_de`) for `--lang`; absent for files of every language. */
  lang?: string;
  split?: string;
  /** sha256 of the bytes as served, where it is known. Otherwise the first download's hash is pinned. */
  sha256?: string;
  /** Served gzip-compressed. */
  gunzip?: boolean;
  /** A zip archive, extracted into the dataset folder; `provides` lists files it yields. */
  extract?: boolean;
  provides?: readonly string[];
  format: DatasetFormat;
}

/** A named dataset source. */
export interface DatasetSource {
  name: string;
  title: string;
  homepage: string;
  license: string;
  /** What the files are and how they are laid out. */
  layout: string;
  files: readonly DatasetFile[];
  /** Downloaded as a language-ID model of @polyglot/lid (into `$POLYGLOT_CACHE/lid`). */
  lidModel?: 'openlid';
}

const HF = 'https://huggingface.co/datasets';
const PAPER_RAW = 'https://raw.githubusercontent.com/ZurichNLP/multilingual-instruction-tuning/HEAD';
const XQUAD_LANGS = ['ar', 'de', 'el', 'en', 'es', 'hi', 'ro', 'ru', 'th', 'tr', 'vi', 'zh'];
const XCSR_LANGS = [
  'en',
  'zh',
  'de',
  'es',
  'fr',
  'it',
  'jap',
  'nl',
  'pl',
  'pt',
  'ru',
  'ar',
  'vi',
  'hi',
  'sw',
  'ur',
];
const ALPACA_LANGS = [
  'en',
  'bg',
  'ca',
  'da',
  'de',
  'el',
  'es',
  'fi',
  'fr',
  'hi',
  'hu',
  'is',
  'ko',
  'no',
  'ru',
  'sv',
  'vi',
  'zh',
];
const PAPER_XCSQA = ['de_de', 'en_en', 'en_vi', 'es_es', 'hi_hi', 'ru_ru', 'vi_vi', 'zh_zh'];
const PAPER_XQUAD = [
  'ar_ar',
  'de_de',
  'en_de',
  'en_el',
  'en_en',
  'en_es',
  'en_ru',
  'en_th',
  'en_tr',
  'en_zh',
  'hi_hi',
];

/**
 * The dataset sources `getDataset` knows. URLs are the public homes of the files; checksums are given only
 * where published — otherwise the sha256 of the first download is recorded (`<file>.sha256`) and every later
 * download of the file must match it.
 */
export const DATASETS: Readonly<Record<string, DatasetSource>> = {
  guanaco: {
    name: 'guanaco',
    title: 'Guanaco: the OpenAssistant best-replies conversations (timdettmers/openassistant-guanaco)',
    homepage: `${HF}/timdettmers/openassistant-guanaco`,
    license: 'Apache-2.0 (OpenAssistant)',
    layout:
      'openassistant_best_replies_train.jsonl (9,846 conversations) and openassistant_best_replies_eval.jsonl (518): JSON Lines of {"text": "### Human: …### Assistant: …"}',
    files: [
      {
        urls: [`${HF}/timdettmers/openassistant-guanaco/resolve/main/openassistant_best_replies_train.jsonl`],
        path: 'openassistant_best_replies_train.jsonl',
        split: 'train',
        format: 'guanaco-jsonl',
      },
      {
        urls: [`${HF}/timdettmers/openassistant-guanaco/resolve/main/openassistant_best_replies_eval.jsonl`],
        path: 'openassistant_best_replies_eval.jsonl',
        split: 'test',
        format: 'guanaco-jsonl',
      },
    ],
  },
  oasst1: {
    name: 'oasst1',
    title: 'OpenAssistant Conversations (oasst1) message trees',
    homepage: `${HF}/OpenAssistant/oasst1`,
    license: 'Apache-2.0',
    layout:
      '2023-04-12_oasst_ready.trees.jsonl: one message tree per line ({message_tree_id, prompt: {role, text, lang, replies: […]}}); readOasstTrees gives the best-ranked path of each',
    files: [
      {
        urls: [`${HF}/OpenAssistant/oasst1/resolve/main/2023-04-12_oasst_ready.trees.jsonl.gz`],
        path: '2023-04-12_oasst_ready.trees.jsonl',
        gunzip: true,
        format: 'oasst-trees',
      },
    ],
  },
  xquad: {
    name: 'xquad',
    title: 'XQuAD: 1,190 SQuAD v1.1 questions professionally translated into 11 languages (+ Romanian)',
    homepage: 'https://github.com/google-deepmind/xquad',
    license: 'CC BY-SA 4.0',
    layout: 'xquad.{ar,de,el,en,es,hi,ro,ru,th,tr,vi,zh}.json: SQuAD v1.1 JSON, parallel across languages',
    files: XQUAD_LANGS.map((lang) => ({
      urls: [
        `https://raw.githubusercontent.com/google-deepmind/xquad/HEAD/xquad.${lang}.json`,
        `https://raw.githubusercontent.com/deepmind/xquad/HEAD/xquad.${lang}.json`,
      ],
      path: `xquad.${lang}.json`,
      lang,
      split: 'test',
      format: 'squad' as const,
    })),
  },
  xcsqa: {
    name: 'xcsqa',
    title: 'X-CSQA (X-CSR): CommonsenseQA translated into 15 languages, 1,000 dev items each',
    homepage: 'https://inklab.usc.edu/XCSR/',
    license: 'see the X-CSR homepage (the Hugging Face dataset card lists MIT)',
    layout:
      'xcsr_datasets.zip, extracted: X-CSR_datasets/X-CSQA/{lang}/{dev,test}.jsonl (JSON Lines of {id, lang, question: {stem, choices: [{label, text}]}, answerKey}; Japanese is "jap"; test answers are hidden) and X-CODAH',
    files: [
      {
        urls: ['https://inklab.usc.edu/XCSR/xcsr_datasets.zip'],
        path: 'xcsr_datasets.zip',
        extract: true,
        provides: XCSR_LANGS.flatMap((l) => [
          `X-CSR_datasets/X-CSQA/${l}/dev.jsonl`,
          `X-CSR_datasets/X-CSQA/${l}/test.jsonl`,
        ]),
        format: 'zip',
      },
    ],
  },
  xnli: {
    name: 'xnli',
    title: 'XNLI 1.0: MultiNLI dev and test sets in 15 languages',
    homepage: 'https://github.com/facebookresearch/XNLI',
    license: 'CC BY-NC 4.0',
    layout:
      'XNLI-1.0.zip, extracted: XNLI-1.0/xnli.{dev,test}.{tsv,jsonl} (every language in one file; columns language, gold_label, sentence1, sentence2, pairID, genre, …)',
    files: [
      {
        urls: ['https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip'],
        path: 'XNLI-1.0.zip',
        extract: true,
        provides: ['XNLI-1.0/xnli.dev.tsv', 'XNLI-1.0/xnli.test.tsv'],
        format: 'zip',
      },
    ],
  },
  'alpaca-eval': {
    name: 'alpaca-eval',
    title: 'AlpacaEval: the 805 English evaluation instructions (with reference outputs)',
    homepage: `${HF}/tatsu-lab/alpaca_eval`,
    license: 'CC BY-NC 4.0 (see the dataset card)',
    layout: 'alpaca_eval.json: a JSON array of {instruction, output, generator, dataset}',
    files: [
      {
        urls: [`${HF}/tatsu-lab/alpaca_eval/resolve/main/alpaca_eval.json`],
        path: 'alpaca_eval.json',
        lang: 'en',
        format: 'alpaca-eval',
      },
    ],
  },
  'paper-alpaca-eval': {
    name: 'paper-alpaca-eval',
    title: "The paper's AlpacaEval instructions machine-translated into 17 languages (and English)",
    homepage: 'https://github.com/ZurichNLP/multilingual-instruction-tuning',
    license: 'as the paper repository and AlpacaEval',
    layout:
      'alpaca_eval_instructions_{lang}.json: JSON Lines of {"instruction": …}, 805 per language; translations keep surrounding double quotes (render with --quotes strip to drop them)',
    files: ALPACA_LANGS.map((lang) => ({
      urls: [
        `${PAPER_RAW}/data/alpaca_eval/alpaca_eval_instructions_${lang}.json`,
        `${PAPER_RAW}/data/alpaca_eval_instructions_${lang}.json`,
      ],
      path: `alpaca_eval_instructions_${lang}.json`,
      lang,
      format: 'alpaca-eval' as const,
    })),
  },
  'paper-xcsqa': {
    name: 'paper-xcsqa',
    title: "The paper's rendered X-CSQA prompt files (prompt language _ data language)",
    homepage: 'https://github.com/ZurichNLP/multilingual-instruction-tuning',
    license: 'as the paper repository and X-CSR',
    layout:
      'xcsqa_dev_{prompt}_{data}.json: JSON Lines of {instruction, answer: [letter, text], question, options}',
    files: PAPER_XCSQA.map((v) => ({
      urls: [`${PAPER_RAW}/data/xcsqa/xcsqa_dev_${v}.json`],
      path: `xcsqa_dev_${v}.json`,
      lang: v,
      format: 'paper-xcsqa' as const,
    })),
  },
  'paper-xquad': {
    name: 'paper-xquad',
    title: "The paper's rendered XQuAD prompt files (prompt language _ passage language)",
    homepage: 'https://github.com/ZurichNLP/multilingual-instruction-tuning',
    license: 'CC BY-SA 4.0 (XQuAD)',
    layout: 'xquad_dev_{prompt}_{passage}.json: JSON Lines of {instruction, answer}',
    files: PAPER_XQUAD.map((v) => ({
      urls: [`${PAPER_RAW}/data/xquad/xquad_dev_${v}.json`],
      path: `xquad_dev_${v}.json`,
      lang: v,
      format: 'paper-xquad' as const,
    })),
  },
  openlid: {
    name: 'openlid',
    title: 'OpenLID (lid201-model.bin): the language-ID model whose labels the paper tagged Guanaco with',
    homepage: KNOWN_MODELS.openlid.homepage,
    license: 'GPL-3.0 (the OpenLID model, per its repository)',
    layout: `lid201-model.bin in $POLYGLOT_CACHE/lid (labels like __label__deu_Latn); use it as --model openlid`,
    files: [
      {
        urls: [KNOWN_MODELS.openlid.url],
        path: KNOWN_MODELS.openlid.fileName,
        gunzip: true,
        format: 'fasttext',
      },
    ],
    lidModel: 'openlid',
  },
};

/** The named sources, in registry order. */
export function listDatasets(): DatasetSource[] {
  return Object.values(DATASETS);
}

/** A source by name; `unknown-dataset` lists the names. */
export function datasetSource(name: string): DatasetSource {
  const s = Object.hasOwn(DATASETS, name) ? DATASETS[name] : undefined;
  if (!s) {
    throw new DataError(
      'unknown-dataset',
      `unknown dataset ${JSON.stringify(name)}; known are ${Object.keys(DATASETS).join(', ')}`,
    );
  }
  return s;
}

/** The cache root: `$POLYGLOT_CACHE`, by default `~/.cache/polyglot`. */
export function cacheRoot(): string {
  return process.env.POLYGLOT_CACHE || path.join(os.homedir(), '.cache', 'polyglot');
}

/** The folder of a dataset in the cache: `<root>/datasets/<name>` (the OpenLID model: `<root>/lid`). */
export function datasetDir(name: string, root: string = cacheRoot()): string {
  const s = datasetSource(name);
  return s.lidModel ? path.join(root, 'lid') : path.join(root, 'datasets', s.name);
}

export interface GetDatasetOptions {
  /** Cache root (default `$POLYGLOT_CACHE`, else `~/.cache/polyglot`). */
  cacheDir?: string;
  /** Only files of these languages/variants (files without a language are always included). */
  langs?: readonly string[];
  /** Only files of these splits. */
  splits?: readonly string[];
  /** Fetch `<baseUrl>/<path in the dataset folder>` instead (a mirror laid out like the cache, or a test server). */
  baseUrl?: string;
  /** Expected sha256 of the (single) selected file, overriding the registry and the pinned hash. */
  sha256?: string;
  /** Download again even where the cache has the file. */
  force?: boolean;
  /** Use only the cache (default: true where `POLYGLOT_OFFLINE=1`); what is missing raises `offline`. */
  offline?: boolean;
  /** Re-hash cached files against their recorded sha256 (`cache-corrupt` where one differs). */
  verify?: boolean;
  fetch?: typeof fetch;
  onProgress?: (file: string, bytes: number, total: number | null) => void;
}

/** One file of a `getDataset` result. */
export interface FetchedFile {
  /** The file (for archives: the archive). */
  path: string;
  url: string;
  sha256: string;
  /** How the hash was checked: against the registry (`known`), a user's `--sha256` (`given`), the first download (`pinned`), or not (`recorded`: this download pinned it). */
  check: 'known' | 'given' | 'pinned' | 'recorded';
  cached: boolean;
  resumed: boolean;
  bytes: number;
  /** Files extracted from an archive (relative to the dataset folder), where it was extracted now. */
  extracted?: string[];
}

export interface GetDatasetResult {
  name: string;
  dir: string;
  files: FetchedFile[];
}

function selectFiles(source: DatasetSource, options: GetDatasetOptions): DatasetFile[] {
  let files = [...source.files];
  if (options.langs?.length) {
    const known = [...new Set(files.map((f) => f.lang).filter(Boolean))];
    const unknown = options.langs.filter((l) => !known.includes(l));
    if (known.length === 0) {
      throw new DataError('bad-option', `${source.name} has no per-language files; leave out --lang`);
    }
    if (unknown.length) {
      throw new DataError(
        'bad-option',
        `${source.name} has no files for ${unknown.join(', ')}; its languages are ${known.join(', ')}`,
      );
    }
    files = files.filter((f) => !f.lang || options.langs!.includes(f.lang));
  }
  if (options.splits?.length) {
    files = files.filter((f) => !f.split || options.splits!.includes(f.split));
    if (files.length === 0)
      throw new DataError('bad-option', `${source.name} has no files of split ${options.splits.join(', ')}`);
  }
  return files;
}

function offlineHint(source: DatasetSource, files: DatasetFile[], dir: string): string {
  const lines = files.map(
    (f) =>
      `${f.urls[0]} → ${path.join(dir, f.path)}${f.gunzip ? ' (gunzip it)' : ''}${f.extract ? ' (and unzip it there)' : ''}`,
  );
  return `run \`polyglot data get ${source.name}\` where there is internet (then copy ${dir}), or download ${lines.join('; ')}`;
}

/**
 * Checks that a download is the kind of file the dataset holds: structure only (every record parses and has
 * its main field), so that one odd record upstream does not reject a whole download — the readers are strict.
 */
async function validate(file: string, format: DatasetFormat): Promise<void> {
  const eachRecord = async (check: (rec: Record<string, unknown>, where: string) => void) => {
    for (const { value, where } of await readPlacedRecords(file)) check(value, where);
  };
  switch (format) {
    case 'guanaco-jsonl':
      return eachRecord((rec, where) => {
        stringField(rec, 'text', where);
      });
    case 'alpaca-eval':
    case 'paper-xcsqa':
    case 'paper-xquad':
      return eachRecord((rec, where) => {
        stringField(rec, 'instruction', where);
      });
    case 'oasst-trees':
      for await (const { value, line } of readJsonl(file)) {
        if (typeof value.prompt !== 'object' || value.prompt === null) {
          throw new DataError(
            'bad-oasst',
            `${file}:${line}: no "prompt" node (expected an oasst1 message tree)`,
          );
        }
      }
      return;
    case 'squad':
      await readSquad(file, { checkSpans: false });
      return;
    case 'zip':
      listZip(await fsp.readFile(file), file);
      return;
    case 'fasttext':
      return; // @polyglot/lid checks the fastText magic number
  }
}

async function extractionDone(marker: string, sha256: string, dir: string, provides: readonly string[]) {
  try {
    const recorded = (await fsp.readFile(marker, 'utf8')).trim().split(/\s+/)[0];
    return recorded === sha256 && provides.every((p) => existsSync(path.join(dir, p)));
  } catch {
    return false;
  }
}

/**
 * Downloads a named dataset into the cache (or finds it there) and returns its files. Each file is fetched
 * resumably and checked: against the registry's sha256 where known, a given `sha256`, or the hash pinned by
 * the first download (`<file>.sha256`; delete it to accept a changed upstream file); then its format is
 * validated (every Guanaco conversation parses, SQuAD answers sit at their offsets, …) before it is renamed
 * into place. Archives are extracted. Offline (`offline`, or `POLYGLOT_OFFLINE=1`) nothing is fetched and
 * missing files raise `offline`, saying what to download and where to put it.
 */
export async function getDataset(name: string, options: GetDatasetOptions = {}): Promise<GetDatasetResult> {
  const source = datasetSource(name);
  const root = options.cacheDir ?? cacheRoot();
  const dir = datasetDir(name, root);
  const files = selectFiles(source, options);
  const offline = options.offline ?? process.env.POLYGLOT_OFFLINE === '1';
  if (options.sha256 !== undefined) {
    if (!isSha256(options.sha256)) {
      throw new DataError(
        'bad-sha256',
        `--sha256 must be 64 hex digits, got ${JSON.stringify(options.sha256)}`,
      );
    }
    if (files.length !== 1) {
      throw new DataError(
        'bad-option',
        `--sha256 applies to one file; ${source.name} selects ${files.length} (narrow it with --lang)`,
      );
    }
  }

  if (offline) {
    const missing = files.filter(
      (f) =>
        !existsSync(path.join(dir, f.path)) || (f.provides ?? []).some((p) => !existsSync(path.join(dir, p))),
    );
    if (missing.length) {
      throw new DataError(
        'offline',
        `${source.name} is not in the cache (${dir}) and this is offline mode${
          process.env.POLYGLOT_OFFLINE === '1' ? ' (POLYGLOT_OFFLINE=1)' : ''
        }: ${offlineHint(source, missing, dir)}`,
      );
    }
  }

  if (source.lidModel) {
    const file = files[0]!;
    const dest = path.join(dir, file.path);
    if (offline) {
      const recorded = (await readSha256Sidecar(`${dest}.sha256`)) ?? '';
      const { size } = await fsp.stat(dest);
      return {
        name,
        dir,
        files: [
          {
            path: dest,
            url: file.urls[0]!,
            sha256: recorded,
            check: 'pinned',
            cached: true,
            resumed: false,
            bytes: size,
          },
        ],
      };
    }
    const r = await downloadModel(source.lidModel, {
      cacheDir: dir,
      ...(options.baseUrl
        ? {
            url: `${options.baseUrl.replace(/\/+$/, '')}/${path.posix.basename(new URL(file.urls[0]!).pathname)}`,
          }
        : {}),
      ...(options.sha256 ? { sha256: options.sha256 } : {}),
      ...(options.force ? { force: true } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.onProgress
        ? { onProgress: (b: number, t: number | null) => options.onProgress!(dest, b, t) }
        : {}),
    });
    return {
      name,
      dir,
      files: [
        {
          path: r.path,
          url: r.url,
          sha256: r.sha256,
          check: options.sha256 ? 'given' : r.cached ? 'pinned' : 'recorded',
          cached: r.cached,
          resumed: r.resumed,
          bytes: r.bytes,
        },
      ],
    };
  }

  const out: FetchedFile[] = [];
  for (const file of files) {
    const dest = path.join(dir, file.path);
    const sidecar = `${dest}.sha256`;
    const pinned = await readSha256Sidecar(sidecar);
    const expected = options.sha256 ?? file.sha256 ?? pinned ?? undefined;
    const check: FetchedFile['check'] = options.sha256
      ? 'given'
      : file.sha256
        ? 'known'
        : pinned
          ? 'pinned'
          : 'recorded';
    const urls = options.baseUrl ? [`${options.baseUrl.replace(/\/+$/, '')}/${file.path}`] : file.urls;

    let result: Awaited<ReturnType<typeof downloadFile>> | undefined;
    if (offline) {
      const { size } = await fsp.stat(dest);
      result = {
        path: dest,
        url: urls[0]!,
        sha256: pinned ?? '',
        verified: false,
        bytes: size,
        resumed: false,
        cached: true,
      };
    } else {
      for (let i = 0; i < urls.length && !result; i++) {
        const url = urls[i]!;
        try {
          result = await downloadFile({
            url,
            dest,
            label: `${source.name}/${file.path}`,
            ...(expected ? { sha256: expected } : {}),
            ...(file.gunzip ? { gunzip: true } : {}),
            verify: async (tmp) => {
              try {
                await validate(tmp, file.format);
              } catch (e) {
                throw new DataError(
                  'bad-download',
                  `${url} did not deliver a valid ${file.format} file (${(e as Error).message.replace(tmp, file.path)}); it was removed — check the URL or --base-url`,
                  { cause: e },
                );
              }
            },
            sidecarName: path.posix.basename(new URL(url).pathname),
            ...(options.force ? { force: true } : {}),
            ...(options.fetch ? { fetch: options.fetch } : {}),
            ...(options.onProgress
              ? { onProgress: (b: number, t: number | null) => options.onProgress!(dest, b, t) }
              : {}),
            makeError: (code, message, opts) => new DataError(code, message, opts),
            checksumHint:
              check === 'pinned'
                ? `the file differs from the first download, whose hash is pinned in ${sidecar}: the upstream file changed or the transfer was corrupted — delete ${sidecar} to accept the new file`
                : 'a corrupted transfer, or the file changed upstream: check the hash and pass --sha256 to accept a new one',
          });
        } catch (e) {
          const err = e as DataError;
          const notFound =
            err instanceof DataError && err.code === 'download-failed' && / HTTP 404\b/.test(err.message);
          if (notFound && i + 1 < urls.length) continue;
          if (err instanceof DataError && err.code === 'download-failed') {
            throw new DataError(
              'download-failed',
              `${err.message}. No internet here? R${offlineHint(source, [file], dir).slice(1)}`,
              { cause: e },
            );
          }
          throw e;
        }
      }
    }
    const r = result!;
    if (options.verify && r.cached && !file.gunzip && r.sha256) {
      const now = (await sha256File(dest)).sha256;
      if (now !== r.sha256) {
        throw new DataError(
          'cache-corrupt',
          `${dest}: sha256 is ${now}, but ${r.sha256} was recorded when it was downloaded; the cached file changed — run again with --force`,
        );
      }
    }
    const fetched: FetchedFile = {
      path: dest,
      url: r.url,
      sha256: r.sha256,
      check,
      cached: r.cached,
      resumed: r.resumed,
      bytes: r.bytes,
    };
    if (file.extract) {
      const marker = `${dest}.extracted`;
      const sha = r.sha256 || (await sha256File(dest)).sha256;
      if (!(await extractionDone(marker, sha, dir, file.provides ?? []))) {
        fetched.extracted = await extractZip(dest, dir);
        const missing = (file.provides ?? []).filter((p) => !existsSync(path.join(dir, p)));
        if (missing.length) {
          throw new DataError(
            'bad-download',
            `${dest}: the archive does not hold ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} (its layout changed?); extracted ${fetched.extracted.length} files into ${dir}`,
          );
        }
        await writeFileAtomic(marker, `${sha}  ${path.basename(dest)}\n`);
      }
    }
    out.push(fetched);
  }
  return { name, dir, files: out };
}

/**
 * The path of a file of a dataset in the cache (`rel` relative to the dataset folder); `not-downloaded`
 * explains how to get it where it is missing.
 */
export function datasetFile(name: string, rel: string, options: { cacheDir?: string } = {}): string {
  const source = datasetSource(name);
  const dir = datasetDir(name, options.cacheDir ?? cacheRoot());
  const file = path.join(dir, rel);
  if (!existsSync(file)) {
    const from = source.files.find((f) => f.path === rel || f.provides?.includes(rel)) ?? source.files[0]!;
    throw new DataError('not-downloaded', `${file} is missing: ${offlineHint(source, [from], dir)}`);
  }
  return file;
}
