// Test support: crash-safety harness. Runs a real command (usually the built CLI), SIGKILLs it at seeded-random
// points while it works, restarts it (resume), repeats, then lets it finish; plus checks of what it leaves on disk.
//
// API
// ---
// runWithKills(opts: KillRunOptions): Promise<KillRunResult>
//   Spawns `cmd args` (cmd default: node; `cli(...)` builds `[packages/cli/dist/index.js, ...]`), and for each of
//   `kills` attempts picks a kill point with a PRNG seeded by `seed`:
//   - with `progress` (a function returning a number that grows as work is done, e.g. `countLines(file)`) and
//     `total` (its value at the end): the k-th kill lands once progress, re-read every `pollMs` (default 5 ms),
//     has grown during that attempt and reached a target drawn in the k-th of `kills` equal slices of
//     [0, total - 1]; then it waits a further random `minDelayMs..maxDelayMs` (default 0..0) and SIGKILLs. So kills
//     land mid-work, spread over the run, never before the process has done anything.
//   - without `progress`: SIGKILL after a random `minDelayMs..maxDelayMs` (default 300..3000) from the spawn.
//   After each kill `afterKill(kill)` runs (e.g. {@link tearLastLine} to leave a cut-off last line as a kill
//   mid-append does), then the command is restarted with `resumeArgs` (default `args`). The last attempt runs to its
//   end; it must exit 0 (else the promise rejects with its stderr). An attempt that ends by itself before its kill
//   rejects unless `allowEarlyExit` (then the result has fewer kills). Every attempt has `attemptTimeoutMs`
//   (default 120 s). The result lists every kill (`attempt`, `progress` at the kill, `target`, `baseline`: progress
//   on disk when that attempt started, `ms` since its spawn, `pid` of the process killed), `attempts`, the final
//   attempt's stdout/stderr, every attempt's stderr (`stderrs`), and `describe()`: a one-line account for test
//   output (`3 kills at progress 4/30 (attempt 0 started at 0, 812 ms), …`).
//   `kills: 0` just runs the command once, asynchronously (for an uninterrupted baseline whose server, e.g.
//   tools/judge-server.ts, answers from the test's own event loop, where spawnSync would block it).
//
// Checks of output trees (all synchronous; they return problems as strings, an empty list when all is well):
//   compareTrees(a, b, { ignore?, normalize? }) — files present in one tree only, and files whose contents differ
//     (after `normalize(rel, buffer)`, which may return a string/Buffer; e.g. drop timings from JSON lines).
//   checkJsonlKeys(file, keyOf, expected?) — duplicated keys, and with `expected` the missing and unexpected ones.
//   checkNoPartialFiles(dir, { allowTemps?, appendLogs? }) — every *.json parses (or is complete JSON lines); every
//     *.jsonl line parses and the file ends with a newline (nothing cut off under a final name); every
//     *.safetensors is as long as its header says; no temp file or folder (`*.tmp`, `*.tmp.old`, `*.partial`,
//     `*.part`) anywhere, hidden or not (a killed writer's leftovers; the commands clean them up when they resume).
//     Right after a kill (in `afterKill`), `allowTemps: true` and `appendLogs: (rel) => …` (append logs, which may
//     end in a cut-off line until the resume repairs them) check that every file under a final name is complete.
//   listFiles(dir) — relative paths of every file under dir, sorted (hidden ones included).
// Helpers: countLines(...files) (complete lines, i.e. newlines, summed; missing files count 0), cli(...args),
//   tearLastLine(file, rng) (appends a prefix of the file's last line without its newline), mulberry32(seed).
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { repoRoot } from './shared.js';

/** The built CLI. */
export const cliBin = path.join(repoRoot, 'packages', 'cli', 'dist', 'index.js');

/** `[cliBin, ...args]`: the arguments of `node` that run `polyglot ...args`. */
export function cli(...args: string[]): string[] {
  return [cliBin, ...args];
}

/** A small seeded PRNG (uniform in [0, 1)). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Complete lines (newline characters) in the files, summed; a missing file counts 0. */
export function countLines(...files: string[]): number {
  let n = 0;
  const buf = Buffer.alloc(1 << 16);
  for (const f of files) {
    let fd: number;
    try {
      fd = openSync(f, 'r');
    } catch {
      continue;
    }
    try {
      for (;;) {
        const got = readSync(fd, buf, 0, buf.length, null);
        if (got <= 0) break;
        for (let i = 0; i < got; i++) if (buf[i] === 0x0a) n++;
      }
    } finally {
      closeSync(fd);
    }
  }
  return n;
}

export interface KillRecord {
  /** 0-based attempt that was killed. */
  attempt: number;
  /** Progress when the SIGKILL was sent (null without a progress function). */
  progress: number | null;
  /** The progress the kill waited for (null without a progress function). */
  target: number | null;
  /** Progress on disk when the attempt started. */
  baseline: number | null;
  /** Milliseconds from the attempt's spawn to the kill. */
  ms: number;
  /** The process killed (no longer running: its id may name temp files it left). */
  pid: number;
}

export interface KillRunOptions {
  /** Default: node (process.execPath). */
  cmd?: string;
  args: string[];
  /** Arguments of the restarts (default `args`). */
  resumeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILLs to make before the run may finish. */
  kills: number;
  seed: number;
  /** A measure of the work done so far (lines written, …). */
  progress?: () => number;
  /** Its value once the whole run is done (needed with `progress`). */
  total?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  pollMs?: number;
  attemptTimeoutMs?: number;
  /** Allow an attempt to finish by itself before its kill (default false: rejects). */
  allowEarlyExit?: boolean;
  /** Runs after each kill, before the restart. */
  afterKill?: (kill: KillRecord, rng: () => number) => void | Promise<void>;
}

export interface KillRunResult {
  kills: KillRecord[];
  /** Attempts started (kills + 1 unless one finished early). */
  attempts: number;
  stdout: string;
  stderr: string;
  /** Stderr of every attempt, in order. */
  stderrs: string[];
  /** `3 kills at progress 4/30, 13/30, 22/30` (or `… at 812 ms, …` without progress). */
  describe(): string;
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(opts: KillRunOptions, args: string[]): { child: ChildProcess; ended: Promise<Ended> } {
  const child = spawn(opts.cmd ?? process.execPath, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
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
  const ended = new Promise<Ended>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, ended };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** See the module comment. */
export async function runWithKills(opts: KillRunOptions): Promise<KillRunResult> {
  const rng = mulberry32(opts.seed);
  const pollMs = opts.pollMs ?? 5;
  const timeoutMs = opts.attemptTimeoutMs ?? 120_000;
  if (opts.progress && !(opts.total !== undefined && opts.total >= 2)) {
    throw new Error('runWithKills: `total` (≥ 2) is needed with `progress`');
  }
  const minDelay = opts.minDelayMs ?? (opts.progress ? 0 : 300);
  const maxDelay = Math.max(minDelay, opts.maxDelayMs ?? (opts.progress ? 0 : 3000));
  const delay = () => minDelay + Math.floor(rng() * (maxDelay - minDelay + 1));
  const kills: KillRecord[] = [];
  const stderrs: string[] = [];
  let attempt = 0;
  for (; attempt < opts.kills; attempt++) {
    const args = attempt === 0 ? opts.args : (opts.resumeArgs ?? opts.args);
    let target: number | null = null;
    if (opts.progress) {
      const slice = (opts.total! - 1) / opts.kills;
      target = Math.max(1, Math.floor(slice * attempt + rng() * slice));
    }
    const wait = delay();
    const baseline = opts.progress ? opts.progress() : null;
    const t0 = performance.now();
    const { child, ended } = start(opts, args);
    let exited = false;
    void ended.then(
      () => {
        exited = true;
      },
      () => {
        exited = true;
      },
    );
    let killed: KillRecord | null = null;
    // Wait for the kill point (or for the process to end by itself).
    for (;;) {
      if (exited) break;
      if (performance.now() - t0 > timeoutMs) {
        child.kill('SIGKILL');
        await ended;
        throw new Error(`runWithKills: attempt ${attempt} did not reach its kill point in ${timeoutMs} ms`);
      }
      if (opts.progress) {
        const p = opts.progress();
        if (p > baseline! && p >= target!) {
          if (wait > 0) await sleep(wait);
          if (exited) break;
          child.kill('SIGKILL');
          killed = {
            attempt,
            progress: p,
            target,
            baseline,
            ms: Math.round(performance.now() - t0),
            pid: child.pid!,
          };
          break;
        }
      } else if (performance.now() - t0 >= wait) {
        child.kill('SIGKILL');
        killed = {
          attempt,
          progress: null,
          target: null,
          baseline: null,
          ms: Math.round(performance.now() - t0),
          pid: child.pid!,
        };
        break;
      }
      await sleep(pollMs);
    }
    const end = await ended;
    stderrs.push(end.stderr);
    if (killed && end.signal === 'SIGKILL') {
      kills.push(killed);
      await opts.afterKill?.(killed, rng);
      continue;
    }
    // It ended by itself.
    if (end.code !== 0) {
      throw new Error(
        `runWithKills: attempt ${attempt} exited with ${end.code ?? end.signal}: ${end.stderr.slice(-3000)}`,
      );
    }
    if (!opts.allowEarlyExit) {
      throw new Error(
        `runWithKills: attempt ${attempt} finished before its kill (target progress ${target}, after ${kills.length} kills); ` +
          'give the run more work or lower the targets',
      );
    }
    return result(kills, attempt + 1, end, stderrs, opts.total);
  }
  const { child, ended } = start(opts, attempt === 0 ? opts.args : (opts.resumeArgs ?? opts.args));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const end = await ended.finally(() => clearTimeout(timer));
  stderrs.push(end.stderr);
  if (end.code !== 0) {
    throw new Error(
      `runWithKills: the final attempt exited with ${end.code ?? end.signal} after ${kills.length} kills: ${end.stderr.slice(-3000)}`,
    );
  }
  return result(kills, attempt + 1, end, stderrs, opts.total);
}

function result(
  kills: KillRecord[],
  attempts: number,
  end: Ended,
  stderrs: string[],
  total: number | undefined,
): KillRunResult {
  return {
    kills,
    attempts,
    stdout: end.stdout,
    stderr: end.stderr,
    stderrs,
    describe: () =>
      `${kills.length} kill${kills.length === 1 ? '' : 's'} at ` +
      (kills.length === 0
        ? '–'
        : kills
            .map((k) =>
              k.progress === null
                ? `${k.ms} ms`
                : `progress ${k.progress}/${total} (attempt ${k.attempt} started at ${k.baseline}, ${k.ms} ms)`,
            )
            .join(', ')),
  };
}

/**
 * Leaves the file as a kill in the middle of an append does: a prefix (at least one byte, not all) of its last
 * complete line is appended without a newline. Returns the bytes appended (0 when the file has no line).
 */
export function tearLastLine(file: string, rng: () => number = Math.random): number {
  if (!existsSync(file)) return 0;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const last = lines.at(-1);
  if (!last || last.length < 2) return 0;
  const cut = last.slice(0, 1 + Math.floor(rng() * (last.length - 1)));
  writeFileSync(file, cut, { flag: 'a' });
  return Buffer.byteLength(cut);
}

/** Relative paths of every file under `dir` (hidden ones included), sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  if (existsSync(dir)) walk('');
  return out.sort();
}

export interface CompareOptions {
  /** Files to leave out of the comparison (relative paths, `/` separated). */
  ignore?: (rel: string) => boolean;
  /** What of a file to compare (default its bytes). */
  normalize?: (rel: string, content: Buffer) => string | Buffer;
}

/** Differences between two trees: files in one only, files whose (normalised) contents differ. */
export function compareTrees(a: string, b: string, opts: CompareOptions = {}): string[] {
  const ignore = opts.ignore ?? (() => false);
  const fa = listFiles(a).filter((f) => !ignore(f));
  const fb = listFiles(b).filter((f) => !ignore(f));
  const problems: string[] = [];
  const sb = new Set(fb);
  const sa = new Set(fa);
  for (const f of fa) if (!sb.has(f)) problems.push(`${f}: only in ${a}`);
  for (const f of fb) if (!sa.has(f)) problems.push(`${f}: only in ${b}`);
  for (const f of fa) {
    if (!sb.has(f)) continue;
    const norm = (dir: string) => {
      const buf = readFileSync(path.join(dir, f));
      const v = opts.normalize ? opts.normalize(f, buf) : buf;
      return typeof v === 'string' ? Buffer.from(v) : v;
    };
    const x = norm(a);
    const y = norm(b);
    if (!x.equals(y)) {
      let i = 0;
      while (i < x.length && i < y.length && x[i] === y[i]) i++;
      const around = (buf: Buffer) =>
        JSON.stringify(buf.subarray(Math.max(0, i - 40), i + 40).toString('utf8'));
      problems.push(`${f}: differs at byte ${i}: ${around(x)} vs ${around(y)}`);
    }
  }
  return problems;
}

/**
 * Parses JSON lines (every line must be complete JSON; a missing final newline is a problem). With `tail`, an
 * unterminated last line is left out instead: what an append log may show between a kill and its repair.
 */
export function readJsonlStrict(file: string, tail = false): Record<string, unknown>[] {
  let text = readFileSync(file, 'utf8');
  if (text !== '' && !text.endsWith('\n')) {
    if (!tail) throw new Error(`${file}: the last line has no newline (cut off)`);
    text = text.slice(0, text.lastIndexOf('\n') + 1);
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch (e) {
        throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
      }
    });
}

/** Duplicated keys in a JSONL file; with `expected`, also the keys missing and those not expected. */
export function checkJsonlKeys(
  file: string,
  keyOf: (record: Record<string, unknown>) => string,
  expected?: readonly string[],
): string[] {
  const problems: string[] = [];
  let rows: Record<string, unknown>[];
  try {
    rows = readJsonlStrict(file);
  } catch (e) {
    return [(e as Error).message];
  }
  const seen = new Map<string, number>();
  rows.forEach((r, i) => {
    const k = keyOf(r);
    if (seen.has(k)) problems.push(`${file}:${i + 1}: key ${k} duplicates line ${seen.get(k)! + 1}`);
    else seen.set(k, i);
  });
  if (expected) {
    const want = new Set(expected);
    for (const k of want) if (!seen.has(k)) problems.push(`${file}: key ${k} missing`);
    for (const k of seen.keys()) if (!want.has(k)) problems.push(`${file}: key ${k} not expected`);
  }
  return problems;
}

/** Why a safetensors file is not complete (its size is not 8 + header + the end of its last tensor), or null. */
function safetensorsProblem(file: string): string | null {
  const size = statSync(file).size;
  if (size < 8) return 'shorter than a safetensors header';
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    readSync(fd, head, 0, 8, 0);
    const n = Number(head.readBigUInt64LE(0));
    if (8 + n > size) return `header of ${n} bytes cut off`;
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    let header: Record<string, { data_offsets?: [number, number] }>;
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch {
      return 'unparseable header';
    }
    let end = 0;
    for (const [k, v] of Object.entries(header)) {
      if (k !== '__metadata__' && v.data_offsets) end = Math.max(end, v.data_offsets[1]);
    }
    return 8 + n + end === size ? null : `${size} bytes, expected ${8 + n + end}`;
  } finally {
    closeSync(fd);
  }
}

export interface PartialFileOptions {
  /**
   * Do not report temp files: right after a kill they may be there (hidden, under names no reader takes for the
   * output); the resumed command is to remove them.
   */
  allowTemps?: boolean;
  /** JSON Lines files (relative paths) that may end in a cut-off line: append logs before a resume repairs them. */
  appendLogs?: (rel: string) => boolean;
}

const TEMP = /(\.tmp|\.tmp\.old|\.partial|\.part)$/;

/**
 * What a killed writer may have left visible: unparseable *.json, *.jsonl with a bad or cut-off line, temp files
 * (`*.tmp`, `*.tmp.old`, `*.partial`, `*.part`, hidden or not; temp folders too). Empty when the tree is clean.
 */
export function checkNoPartialFiles(dir: string, opts: PartialFileOptions = {}): string[] {
  const problems: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const abs = path.join(dir, r);
      if (TEMP.test(e.name)) {
        if (!opts.allowTemps)
          problems.push(`${r}: a temp ${e.isDirectory() ? 'folder' : 'file'} left behind`);
        continue;
      }
      if (e.isDirectory()) {
        walk(r);
        continue;
      }
      if (r.endsWith('.jsonl')) {
        try {
          if (opts.appendLogs?.(r)) readJsonlStrict(abs, true);
          else readJsonlStrict(abs);
        } catch (err) {
          problems.push(`${r}: ${(err as Error).message}`);
        }
      } else if (r.endsWith('.json')) {
        const text = readFileSync(abs, 'utf8');
        try {
          JSON.parse(text);
        } catch {
          // A .json of JSON lines (pandas lines=True) is complete when every line is.
          try {
            readJsonlStrict(abs);
          } catch (err) {
            problems.push(`${r}: not complete JSON (${(err as Error).message})`);
          }
        }
      } else if (r.endsWith('.safetensors')) {
        const why = safetensorsProblem(abs);
        if (why) problems.push(`${r}: ${why}`);
      }
    }
  };
  if (existsSync(dir)) walk('');
  return problems;
}
