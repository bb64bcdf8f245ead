// `polyglot reproduce` wall time on this machine, from a cold cache (the base model pre-trained) and warm (every
// stage cached), for the presets the issue sets targets for: smoke < 2 min (CI), tiny < 15 min (the README's main
// command). Each stage's own time comes from reproduce.json. POLYGLOT_BENCH_PRESETS=smoke skips tiny (≈ 10 min).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Figure, fmt, recordBench } from '../../../tools/bench.js';
import { repoRoot } from '../../../tools/shared.js';

const presets = (process.env.POLYGLOT_BENCH_PRESETS ?? 'smoke,tiny').split(',').filter(Boolean);
const TARGET_S: Record<string, number> = { smoke: 120, tiny: 900 };
const bin = path.join(repoRoot, 'packages', 'cli', 'dist', 'index.js');
const figures: Figure[] = [];
const notes: string[] = [];

for (const preset of presets) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `reproduce-bench-${preset}-`));
  try {
    const out = path.join(tmp, 'out');
    const env = { ...process.env, POLYGLOT_CACHE: path.join(tmp, 'cache'), OPENAI_API_KEY: '' };
    const runOnce = () => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [bin, 'reproduce', '--preset', preset, '--out', out, '--quiet'], {
        env,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      if (r.status !== 0) throw new Error(`reproduce --preset ${preset} failed: ${r.stderr.slice(-2000)}`);
      return (performance.now() - t0) / 1000;
    };
    const cold = runOnce();
    const state = JSON.parse(readFileSync(path.join(out, 'reproduce.json'), 'utf8')) as {
      stages: Record<string, { workSecs: number }>;
    };
    const warm = runOnce();
    const target = TARGET_S[preset]!;
    figures.push({
      figure: `${preset}: cold cache (base model pre-trained), wall`,
      value: cold,
      unit: 's',
      comparison: `target < ${target} s (${fmt(cold / target)}× of it)`,
    });
    figures.push({ figure: `${preset}: rerun, every stage cached, wall`, value: warm, unit: 's' });
    const per = Object.entries(state.stages)
      .map(([k, v]) => `${k} ${v.workSecs.toFixed(1)} s`)
      .join(', ');
    notes.push(`${preset} stages (cold run): ${per}`);
    console.log(`${preset}: cold ${cold.toFixed(1)} s, warm ${warm.toFixed(1)} s; ${per}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

recordBench({
  name: 'cli-reproduce',
  title: '`polyglot reproduce` end to end (wasm, one thread)',
  package: '@polyglot/cli',
  figures,
  notes,
});
