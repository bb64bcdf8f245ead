// Benchmark support: every bench writes bench/results/<name>.json through recordBench(); scripts/bench.mjs turns
// all result files into the table of BENCHMARKS.md.
import { execSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './shared.js';

export interface Figure {
  /** what was measured, e.g. "decode b1 (wasm)" */
  figure: string;
  value: number;
  unit: string;
  /** the figure it is compared with, e.g. "PyTorch 1.13 OpenBLAS: 54.6 tok/s (1.05×)" */
  comparison?: string;
}

export interface BenchResult {
  name: string;
  title: string;
  package: string;
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string };
  figures: Figure[];
  notes?: string[];
}

export function machineInfo(): BenchResult['machine'] {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** Peak resident set size of this process so far, in MiB (Linux: VmHWM). */
export function peakRssMiB(): number {
  try {
    const status = execSync(`grep VmHWM /proc/${process.pid}/status`, { encoding: 'utf8' });
    return Number(status.match(/(\d+)/)![1]) / 1024;
  } catch {
    return process.memoryUsage().rss / 2 ** 20;
  }
}

export function recordBench(r: Omit<BenchResult, 'date' | 'machine'>): BenchResult {
  const result: BenchResult = { ...r, date: new Date().toISOString(), machine: machineInfo() };
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${r.name}.json`);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  console.log(`\n${r.title}`);
  for (const f of r.figures) {
    console.log(
      `  ${f.figure.padEnd(44)} ${fmt(f.value).padStart(12)} ${f.unit}${f.comparison ? `   ${f.comparison}` : ''}`,
    );
  }
  return result;
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toLocaleString('en-US') : a >= 10 ? v.toFixed(1) : v.toFixed(3);
}

/** Median wall time in seconds of `reps` runs of fn (after one warm-up run). */
export async function timeIt(fn: () => unknown | Promise<unknown>, reps = 3): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
