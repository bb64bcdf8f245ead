// What the numbered examples share: flag parsing with --help from the script's header, the work folder they
// chain through, the base model (a flag, or the CLI's small self-pretrained one), model names, timing and errors.
// Only the packages' public APIs are used here too.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isPolyglotError } from '@polyglot/lid';

/** The repository root (the examples' paths such as data/demo are relative to it). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Default work folder, shared by all examples: each reads what the previous one wrote there. */
export const DEFAULT_WORK = path.join(REPO_ROOT, '.polyglot-examples');

/** A repository path (data/demo/…), absolute. */
export function repoPath(...parts: string[]): string {
  return path.join(REPO_ROOT, ...parts);
}

/** A user error: printed as one line `<script>: error: …`, exit 1 (no stack trace). */
export class ExampleError extends Error {}

type Options = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;
type Values<O extends Options> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean'
    ? boolean
    : O[K]['multiple'] extends true
      ? string[]
      : string;
} & { work?: string };

/**
 * Parses the flags of an example (node:util parseArgs, strict; every example also takes `--work DIR` and `--help`).
 * `--help` prints the header comment of the script (`file`: its import.meta.url) and exits 0; a bad flag prints
 * the error and the header, exit 2.
 */
export function flags<O extends Options>(file: string, options: O): Values<O> {
  const all: ParseArgsConfig['options'] = {
    ...options,
    work: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ options: all, strict: true, allowPositionals: false }).values;
  } catch (e) {
    console.error(`${path.basename(fileURLToPath(file))}: ${(e as Error).message}\n\n${header(file)}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(header(file));
    process.exit(0);
  }
  return values as Values<O>;
}

/** The leading `//` comment of a script, without the slashes. */
export function header(file: string): string {
  const lines = readFileSync(fileURLToPath(file), 'utf8').split('\n');
  const out: string[] = [];
  for (const l of lines) {
    if (!l.startsWith('//')) break;
    out.push(l.replace(/^\/\/ ?/, ''));
  }
  return out.join('\n');
}

/** The work folder (`--work`, default `.polyglot-examples/` at the repository root), created. */
export async function workDir(work: string | undefined): Promise<string> {
  const dir = path.resolve(work ?? DEFAULT_WORK);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The folders of the pipeline inside the work folder. */
export function layout(work: string) {
  return {
    mixes: path.join(work, 'mixes'),
    /** runs/<Model>/: adapter/, chat run files + .eval, judge outputs, <task>/results.json; runs/run.json */
    runs: path.join(work, 'runs'),
    /** models/<Model>/: merged full models */
    models: path.join(work, 'models'),
    prompts: path.join(work, 'prompts'),
    report: path.join(work, 'report'),
    judgeCache: path.join(work, 'judge-cache.sqlite'),
  };
}

/** `mono` → `Mono`, `multi-2` → `Multi-2`, `loo-de` → `Loo-de`, `all` → `Multi-Guanaco` (the paper's names). */
export function modelNameOfMix(mix: string): string {
  if (mix === 'all') return 'Multi-Guanaco';
  return mix.charAt(0).toUpperCase() + mix.slice(1);
}

/** A comma-separated flag value as a list (empty items dropped). */
export function list(value: string | undefined, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A flag value as a number, or an ExampleError naming the flag. */
export function num(value: string | undefined, name: string, fallback: number): number;
export function num(value: string | undefined, name: string, fallback?: undefined): number | undefined;
export function num(value: string | undefined, name: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new ExampleError(`--${name}: ${JSON.stringify(value)} is not a number`);
  return n;
}

/** The sub-folders of `dir`, sorted; [] when `dir` is absent. */
export function subfolders(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => statSync(path.join(dir, n)).isDirectory())
    .sort();
}

/** Sub-folders of `dir` holding a file `marker` (e.g. models with config.json), sorted. */
export function foldersWith(dir: string, marker: string): string[] {
  return subfolders(dir).filter((n) => existsSync(path.join(dir, n, marker)));
}

/**
 * The base model: `--model DIR` as given, else @polyglot/cli's `ensureBaseModel({ preset })` (a small byte-level
 * Llama pretrained on the demo data the first time, then cached; `--base-cache DIR` for its cache folder).
 */
export async function baseModel(opts: {
  model?: string;
  preset?: string;
  baseCache?: string;
}): Promise<string> {
  if (opts.model) {
    const dir = path.resolve(opts.model);
    if (!existsSync(path.join(dir, 'config.json'))) {
      throw new ExampleError(
        `--model ${opts.model}: no config.json there (expected a Hugging Face model folder)`,
      );
    }
    return dir;
  }
  const preset = opts.preset ?? 'smoke';
  if (preset !== 'smoke' && preset !== 'tiny') {
    throw new ExampleError(`--preset ${preset}: expected smoke or tiny`);
  }
  // Loaded on demand: the CLI pulls in every package, which the examples that need no model do without.
  const { ensureBaseModel } = await import('@polyglot/cli');
  let last = 0;
  const r = await ensureBaseModel({
    preset,
    ...(opts.baseCache ? { cacheDir: path.resolve(opts.baseCache) } : {}),
    onProgress: () => {
      const now = Date.now();
      if (now - last > 10_000) {
        last = now;
        console.log(`  … pretraining the ${preset} base model`);
      }
    },
  });
  console.log(
    `base model (${preset} preset): ${r.dir} ` +
      `(${r.cached ? 'cached' : `pretrained in ${r.secs.toFixed(1)} s, final loss ${r.finalLoss.toFixed(3)}`})`,
  );
  return r.dir;
}

/** The base-model flags every example that loads a model accepts. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  preset: { type: 'string' },
  'base-cache': { type: 'string' },
  backend: { type: 'string' },
} as const;

/** The tensor backend flag: default wasm (fast and deterministic on CPUs; `auto` may pick a GPU backend). */
export function backendOf(value: string | undefined): 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu' {
  const b = value ?? 'wasm';
  if (!['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'].includes(b)) {
    throw new ExampleError(`--backend ${b}: expected auto, tensorflow, webgpu, wasm or cpu`);
  }
  return b as 'wasm';
}

/** Reads a JSON file, or `fallback` when it is absent. */
export async function readJson<T>(file: string, fallback: T): Promise<T> {
  if (!existsSync(file)) return fallback;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (e) {
    throw new ExampleError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Writes JSON atomically (temp file + rename). */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

/** A path for printing: relative to the working folder when inside it. */
export function show(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/**
 * Runs an example's main function: prints its total time; a user error (ours or any polyglot package's typed
 * error) is one line on stderr and exit 1, anything else (a bug) the stack trace and exit 70.
 */
export function main(file: string, fn: () => Promise<void>): void {
  const name = path.basename(fileURLToPath(file));
  const t0 = performance.now();
  fn().then(
    () => {
      console.log(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    },
    (e: unknown) => {
      const err = e as Error;
      if (e instanceof ExampleError || isPolyglotError(e)) {
        console.error(`${name}: error: ${err.message}`);
        process.exitCode = 1;
      } else {
        console.error(`${name}: internal error:`, e);
        process.exitCode = 70;
      }
    },
  );
}
