/**
 * The embedded base models of `polyglot reproduce --preset smoke|tiny`: a small Llama the project defines
 * (@polyglot/model's TINY_CONFIGS, byte-level tokenizer, nothing downloaded), pre-trained briefly with
 * @polyglot/sft's `pretrain` on English-heavy text from the repository's demo data, so that it is an
 * "English-centric base" as Llama 2 is for the paper. Built once and cached:
 *
 *     <cacheDir>/base/<preset>-<hash>/     a normal Hugging Face checkpoint directory + base.json (written last)
 *
 * where cacheDir is `cacheDir`, else `$POLYGLOT_CACHE`, else `~/.cache/polyglot`, and the hash covers the model
 * config, the corpus, the training settings and the seed: change any of them and a new base is built. A build
 * that is interrupted resumes from its last pre-training checkpoint on the next call.
 *
 * The corpus (see {@link buildPretrainCorpus}) comes from `data/demo/chat.jsonl` of the repository checkout; it is
 * found by walking up from this module's file (packages/cli/dist/ or packages/cli/src/reproduce/ → data/demo) or
 * given as `root`.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type LlamaConfig,
  llamaConfigJson,
  PolyglotError,
  TINY_CONFIGS,
  type TinyPreset,
  writeJsonAtomic,
  writeRandomLlama,
} from '@polyglot/model';
import { PRETRAIN_SUMMARY, type PretrainLogRecord, pretrain } from '@polyglot/sft';

/** The marker written last into a finished base model directory. */
export const BASE_MARKER = 'base.json';
/** Bump when the recipe changes in a way the hash does not see. */
const RECIPE_VERSION = 1;

/** Pre-training settings of each embedded preset (the model config is TINY_CONFIGS[preset]). */
export interface BasePreset {
  config: LlamaConfig;
  /** Seed of the initial weights and of the data order. */
  seed: number;
  steps: number;
  seqLen: number;
  batchSize: number;
  lr: number;
  warmup: number;
  /** Share of the corpus bytes that is English. */
  englishShare: number;
}

/**
 * smoke: ~0.13 M parameters, 120 updates of 8 × 128 tokens (≈ 20 s of one core, wasm).
 * tiny: ~0.87 M parameters, 280 updates of 4 × 256 tokens (≈ 4 min of one core, wasm).
 */
export const BASE_PRESETS: Readonly<Record<TinyPreset, BasePreset>> = {
  smoke: {
    config: TINY_CONFIGS.smoke,
    seed: 0,
    steps: 120,
    seqLen: 128,
    batchSize: 8,
    lr: 1e-2,
    warmup: 10,
    englishShare: 0.9,
  },
  tiny: {
    config: TINY_CONFIGS.tiny,
    seed: 0,
    steps: 280,
    seqLen: 256,
    batchSize: 4,
    lr: 5e-3,
    warmup: 20,
    englishShare: 0.9,
  },
};

export class BaseModelError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'BaseModelError';
  }
}

/**
 * The demo data directory (holding chat.jsonl): `root` itself or `root/data/demo` when given, else
 * `$POLYGLOT_DEMO_DATA`, else found by walking up from this module's directory to a folder with
 * `data/demo/chat.jsonl` (the package's dist/data/demo, or the repository checkout's data/demo).
 */
export function findDemoData(root?: string): string {
  if (root !== undefined) {
    const r = path.resolve(root);
    for (const dir of [r, path.join(r, 'data', 'demo')]) {
      if (existsSync(path.join(dir, 'chat.jsonl'))) return dir;
    }
    throw new BaseModelError(
      'BASE_NO_DEMO_DATA',
      `${r}: no chat.jsonl there nor in ${path.join(r, 'data', 'demo')} (give the repository root or its data/demo)`,
    );
  }
  if (process.env.POLYGLOT_DEMO_DATA) return findDemoData(process.env.POLYGLOT_DEMO_DATA);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const demo = path.join(dir, 'data', 'demo');
    if (existsSync(path.join(demo, 'chat.jsonl'))) return demo;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new BaseModelError(
    'BASE_NO_DEMO_DATA',
    'cannot find data/demo/chat.jsonl above the @polyglot/cli module (the package ships it as dist/data/demo): ' +
      'set POLYGLOT_DEMO_DATA to a copy of the demo folder, or pass --model, --data and --prompts',
  );
}

export interface PretrainCorpus {
  /** The documents, English first, then the other languages in the order of chat.jsonl. */
  texts: string[];
  /** UTF-8 bytes per language. */
  bytes: Record<string, number>;
  /** Share of the bytes per language (sums to 1). */
  shares: Record<string, number>;
  totalBytes: number;
  /** sha256 of the documents (for cache keys). */
  sha256: string;
  source: string;
}

/** The longest prefix of `text` within `maxBytes` UTF-8 bytes that ends at a space (else at a character). */
function truncateUtf8(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  let lastSpace = -1;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
    if (ch === ' ') lastSpace = end - 1;
  }
  if (end === text.length) return text;
  return lastSpace > 0 ? text.slice(0, lastSpace) : text.slice(0, end);
}

/**
 * An English-heavy pre-training corpus from the demo conversations (data/demo/chat.jsonl; the test prompts and
 * task files are never used): every English conversation, plus for each other language a budget of
 * `englishBytes × (1 − englishShare) / englishShare / languages` bytes filled with its conversations in file
 * order (the last one cut at a space). englishShare defaults to 0.9, about Llama 2's reported English share
 * (89.7%) of its pre-training data.
 */
export function buildPretrainCorpus(opts: { root?: string; englishShare?: number } = {}): PretrainCorpus {
  const share = opts.englishShare ?? 0.9;
  if (!(share > 0 && share <= 1)) {
    throw new BaseModelError('BASE_BAD_ARG', `englishShare must be in (0, 1], got ${share}`);
  }
  const demo = findDemoData(opts.root);
  const file = path.join(demo, 'chat.jsonl');
  const byLang = new Map<string, string[]>();
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let rec: { text?: unknown; lang?: unknown };
      try {
        rec = JSON.parse(line);
      } catch (e) {
        throw new BaseModelError('BASE_BAD_DATA', `${file}:${i + 1}: not JSON: ${(e as Error).message}`);
      }
      if (typeof rec.text !== 'string' || typeof rec.lang !== 'string') {
        throw new BaseModelError('BASE_BAD_DATA', `${file}:${i + 1}: needs string fields "text" and "lang"`);
      }
      const list = byLang.get(rec.lang) ?? [];
      list.push(rec.text);
      byLang.set(rec.lang, list);
    });
  const english = byLang.get('en') ?? [];
  if (english.length === 0)
    throw new BaseModelError('BASE_BAD_DATA', `${file}: no English ("en") conversations`);
  const texts = [...english];
  const bytes: Record<string, number> = { en: english.reduce((a, t) => a + Buffer.byteLength(t), 0) };
  const others = [...byLang.keys()].filter((l) => l !== 'en');
  const budget = others.length > 0 ? (bytes.en * (1 - share)) / share / others.length : 0;
  for (const lang of others) {
    let used = 0;
    for (const t of byLang.get(lang)!) {
      const left = Math.floor(budget - used);
      if (left <= 0) break;
      const whole = Buffer.byteLength(t) <= left;
      const piece = whole ? t : truncateUtf8(t, left);
      if (piece) {
        texts.push(piece);
        used += Buffer.byteLength(piece);
      }
      if (!whole) break;
    }
    bytes[lang] = used;
  }
  const totalBytes = Object.values(bytes).reduce((a, b) => a + b, 0);
  const shares: Record<string, number> = {};
  for (const [l, b] of Object.entries(bytes)) shares[l] = b / totalBytes;
  const sha256 = createHash('sha256').update(JSON.stringify(texts)).digest('hex');
  return { texts, bytes, shares, totalBytes, sha256, source: file };
}

/** `cacheDir`, else `$POLYGLOT_CACHE`, else `~/.cache/polyglot`. */
export function defaultCacheDir(cacheDir?: string): string {
  return path.resolve(
    cacheDir ?? (process.env.POLYGLOT_CACHE || path.join(os.homedir(), '.cache', 'polyglot')),
  );
}

/** What a base.json marker records. */
export interface BaseMarker {
  version: number;
  preset: TinyPreset;
  hash: string;
  config: Record<string, unknown>;
  training: Omit<BasePreset, 'config'>;
  corpus: { source: string; bytes: Record<string, number>; shares: Record<string, number>; sha256: string };
  finalLoss: number;
  pretrainSecs: number;
  parameters: number;
  created: string;
}

export interface EnsureBaseOptions {
  preset: TinyPreset;
  /** Cache root (default `$POLYGLOT_CACHE` or `~/.cache/polyglot`); models go to `<cacheDir>/base/`. */
  cacheDir?: string;
  /** Rebuild even when a finished model is cached. */
  force?: boolean;
  /** Progress events: `{ event: 'start' | 'step' | 'done', … }` (steps at most every 10 updates). */
  onProgress?: (p: unknown) => void;
  /** Repository root or its data/demo (default: found from this package's location). */
  root?: string;
  /** Override the preset's pre-training updates (tests); changes the cache key. */
  steps?: number;
}

export interface EnsureBaseResult {
  dir: string;
  cached: boolean;
  /** Seconds this call took (pre-training included when it ran). */
  secs: number;
  /** config.json of the model. */
  config: Record<string, unknown>;
  /** Mean next-token loss (nats per byte-level token) at the end of pre-training. */
  finalLoss: number;
  /** Seconds of pre-training (as recorded when it was built). */
  pretrainSecs: number;
}

/**
 * The embedded base model of `preset`: from the cache when a finished one is there, else initialised, pre-trained
 * (resuming an interrupted build) and marked finished. See the module comment.
 */
export async function ensureBaseModel(opts: EnsureBaseOptions): Promise<EnsureBaseResult> {
  const started = Date.now();
  const spec = BASE_PRESETS[opts.preset];
  if (!spec) {
    throw new BaseModelError(
      'BASE_UNKNOWN_PRESET',
      `no embedded base model "${opts.preset}"; use smoke or tiny`,
    );
  }
  const training: Omit<BasePreset, 'config'> = {
    seed: spec.seed,
    steps: opts.steps ?? spec.steps,
    seqLen: spec.seqLen,
    batchSize: spec.batchSize,
    lr: spec.lr,
    warmup: Math.min(spec.warmup, opts.steps ?? spec.steps),
    englishShare: spec.englishShare,
  };
  const corpus = buildPretrainCorpus({ root: opts.root, englishShare: spec.englishShare });
  const config = llamaConfigJson(spec.config);
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        v: RECIPE_VERSION,
        preset: opts.preset,
        config,
        training,
        corpus: corpus.sha256,
        backend: 'wasm',
      }),
    )
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(defaultCacheDir(opts.cacheDir), 'base', `${opts.preset}-${hash}`);
  const marker = path.join(dir, BASE_MARKER);
  const progress = opts.onProgress ?? (() => {});
  if (opts.force) await fsp.rm(dir, { recursive: true, force: true });
  if (existsSync(marker) && existsSync(path.join(dir, 'model.safetensors'))) {
    const m = JSON.parse(await fsp.readFile(marker, 'utf8')) as BaseMarker;
    return {
      dir,
      cached: true,
      secs: (Date.now() - started) / 1000,
      config: m.config,
      finalLoss: m.finalLoss,
      pretrainSecs: m.pretrainSecs,
    };
  }

  progress({
    event: 'start',
    preset: opts.preset,
    dir,
    steps: training.steps,
    corpusBytes: corpus.bytes,
    englishShare: corpus.shares.en,
  });
  await fsp.mkdir(dir, { recursive: true });
  const init = path.join(dir, 'init');
  const summaryFile = path.join(dir, PRETRAIN_SUMMARY);
  let finalLoss: number;
  let pretrainSecs: number;
  let parameters: number;
  if (existsSync(summaryFile)) {
    // Pre-training finished but the marker was not written (killed in between).
    const s = JSON.parse(await fsp.readFile(summaryFile, 'utf8'));
    finalLoss = s.finalLoss;
    pretrainSecs = s.secs;
    parameters = s.parameters;
  } else {
    // The initial weights (config.json is written last: its presence means the directory is complete).
    if (!existsSync(path.join(init, 'config.json'))) {
      await writeRandomLlama(init, spec.config, { seed: training.seed });
    }
    let lastReport = 0;
    const s = await pretrain(
      {
        model: init,
        texts: corpus.texts,
        out: dir,
        steps: training.steps,
        seqLen: training.seqLen,
        batchSize: training.batchSize,
        lr: training.lr,
        warmup: training.warmup,
        seed: training.seed,
        backend: 'wasm',
        saveSteps: Math.max(10, Math.round(training.steps / 6)),
      },
      {
        resume: true,
        onLog: (r: PretrainLogRecord) => {
          if (r.step - lastReport >= 10 || r.step === training.steps) {
            lastReport = r.step;
            progress({ event: 'step', step: r.step, steps: training.steps, loss: r.loss, secs: r.secs });
          }
        },
        onMessage: (text: string) => progress({ event: 'message', text }),
      },
    );
    finalLoss = s.finalLoss;
    pretrainSecs = s.secs;
    parameters = s.parameters;
  }
  await fsp.rm(init, { recursive: true, force: true });
  const m: BaseMarker = {
    version: RECIPE_VERSION,
    preset: opts.preset,
    hash,
    config,
    training,
    corpus: { source: corpus.source, bytes: corpus.bytes, shares: corpus.shares, sha256: corpus.sha256 },
    finalLoss,
    pretrainSecs,
    parameters,
    created: new Date().toISOString(),
  };
  await writeJsonAtomic(marker, m);
  const secs = (Date.now() - started) / 1000;
  progress({ event: 'done', dir, finalLoss, pretrainSecs, secs });
  return { dir, cached: false, secs, config, finalLoss, pretrainSecs };
}
