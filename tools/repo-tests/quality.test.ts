// The whole tree passes the linter/formatter and the type checker (tests included: tsx does not type-check).
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { repoRoot } from '../shared.js';

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', FORCE_COLOR: '0' },
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('code quality', () => {
  it('biome check (lint + format) is clean', () => {
    const r = run('pnpm', ['exec', 'biome', 'check', '.']);
    expect(r.status, r.out.slice(-4000)).to.equal(0);
  });

  it('every package type-checks (tsc --noEmit, sources and tests)', () => {
    const r = run('pnpm', ['exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only']);
    expect(r.status, r.out.slice(-4000)).to.equal(0);
  });
});
