#!/usr/bin/env node
// Runs every package's mocha suite (through turbo, one package at a time) and the repository checks, then sums
// the per-suite counts written by tools/mocha-reporter.cjs into one closing line: "N passed, N failed".
// With CI=true a skipped test is a failure (tests skip only when ../shared is missing).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = path.join(root, '.polyglot-test-results');
rmSync(resultsDir, { recursive: true, force: true });

const env = {
  ...process.env,
  POLYGLOT_TEST_RESULTS: resultsDir,
  TURBO_TELEMETRY_DISABLED: '1',
  FORCE_COLOR: '0',
};
const filters = process.argv.slice(2).flatMap((f) => ['--filter', f]);
const started = Date.now();

const turbo = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'test', '--concurrency=1', '--continue', '--output-logs=full', ...filters],
  { cwd: root, env, stdio: 'inherit' },
);
let repo = { status: 0 };
if (filters.length === 0) {
  repo = spawnSync('pnpm', ['exec', 'mocha', '--config', 'tools/repo-tests/.mocharc.json'], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
}

const packages = readdirSync(path.join(root, 'packages')).filter((d) =>
  existsSync(path.join(root, 'packages', d, 'package.json')),
);
const results = existsSync(resultsDir)
  ? readdirSync(resultsDir).map((f) => JSON.parse(readFileSync(path.join(resultsDir, f), 'utf8')))
  : [];

let passed = 0;
let failed = 0;
let skipped = 0;
console.log('\nTest summary');
for (const r of results.sort((a, b) => a.package.localeCompare(b.package))) {
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  console.log(
    `  ${r.package.padEnd(28)} ${String(r.passed).padStart(5)} passed ${String(r.failed).padStart(4)} failed ${String(r.skipped).padStart(4)} skipped`,
  );
  for (const s of r.skippedTests ?? [])
    console.log(`      skipped: ${s.title}${s.reason ? ` (${s.reason})` : ''}`);
}
// A suite that crashed before reporting counts as a failure.
if (filters.length === 0) {
  for (const p of packages) {
    const name = JSON.parse(readFileSync(path.join(root, 'packages', p, 'package.json'), 'utf8')).name;
    if (!results.some((r) => r.package === name)) {
      console.log(`  ${name}: no results (the suite crashed or did not run)`);
      failed += 1;
    }
  }
}
if ((turbo.status !== 0 || repo.status !== 0) && failed === 0) {
  console.log('  a test process exited non-zero without reporting a failed test');
  failed += 1;
}
if (process.env.CI === 'true' && skipped > 0) {
  console.log(
    `  CI: ${skipped} skipped test(s) count as failures (is ../shared missing? set POLYGLOT_SHARED)`,
  );
  failed += skipped;
}
console.log(`  time ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
