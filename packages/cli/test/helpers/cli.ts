// Running the CLI in tests: in this process through `run` (fast; the same code path as the binary), or as the
// built binary in a child process, the way a user runs it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/index.js';

/** The built CLI (`pnpm -F @polyglot/cli build`). */
export const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/index.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `polyglot ...args` in this process, its output captured. */
export async function inProcess(...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

/** `polyglot ...args` as the built binary in a child process (blocks until it exits). */
export function spawnCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
