// Test support: locate ../shared (POLYGLOT_SHARED overrides) and skip with a printed reason where it is absent.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Absolute path of the shared folder (fixtures, data), or null when it is not there. */
export function sharedDir(): string | null {
  const dir = path.resolve(repoRoot, process.env.POLYGLOT_SHARED ?? '../shared');
  return existsSync(path.join(dir, 'fixtures')) ? dir : null;
}

/**
 * Path inside ../shared; inside a mocha test or hook, skips it (with the reason printed) when the shared
 * folder is missing. CI treats any skipped test as a failure.
 */
export function sharedPath(ctx: Mocha.Context, ...parts: string[]): string {
  const dir = sharedDir();
  if (!dir) {
    const reason = `skipped: ../shared not found (set POLYGLOT_SHARED); needed for ${parts.join('/')}`;
    console.log(`      ${reason}`);
    if (ctx.test) (ctx.test as unknown as { polyglotSkipReason: string }).polyglotSkipReason = reason;
    ctx.skip();
  }
  const p = path.join(dir!, ...parts);
  if (!existsSync(p)) throw new Error(`shared file missing: ${p}`);
  return p;
}
