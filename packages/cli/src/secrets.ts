// API keys for the CLI: from a file the user names (--…-api-key-file FILE, first line) or from the environment;
// a key given on the command line itself is accepted where a flag already took one, with a warning (it shows in
// `ps` and the shell history). Keys are never printed, logged or written to files.
import { readFileSync } from 'node:fs';
import { safeUrl } from '@polyglot/judge';
import { UsageError } from './errors.js';

/** The key in `file`: its first line, trimmed. A missing, unreadable or empty file is a usage error. */
export function readKeyFile(flag: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const key = text.split(/\r?\n/)[0]!.trim();
  if (key === '') throw new UsageError(`${flag} ${file}: the first line is empty; put the key there`);
  return key;
}

/**
 * The key from, in order: `--<flag>-file FILE`, `--<flag> KEY` (warned about), the environment variable `env`.
 * Giving both the file and the key is a usage error. Undefined when none is set.
 */
export function resolveKey(opts: {
  flag: string;
  value?: string;
  file?: string;
  env: string;
  warn: (message: string) => void;
}): string | undefined {
  if (opts.value !== undefined && opts.file !== undefined) {
    throw new UsageError(`give ${opts.flag} or ${opts.flag}-file, not both`);
  }
  if (opts.file !== undefined) return readKeyFile(`${opts.flag}-file`, opts.file);
  if (opts.value !== undefined) {
    if (opts.value.trim() === '') throw new UsageError(`${opts.flag}: the key is empty`);
    opts.warn(
      `a key on the command line shows in the process list and the shell history; prefer ${opts.flag}-file FILE or $${opts.env}`,
    );
    return opts.value.trim();
  }
  return process.env[opts.env] || undefined;
}

/** A URL as written down: as given, unless it carries credentials or key-like query parameters (then without). */
export function shownUrl(url: string): string {
  const safe = safeUrl(url);
  try {
    return safe === new URL(url).toString() ? url : safe;
  } catch {
    return safe;
  }
}

/** An engine spec as written down (run argument files, results.json): `openai:` URLs through {@link shownUrl}. */
export function shownEngineSpec(spec: string): string {
  const m = /^openai:(.*)$/s.exec(spec);
  return m
    ? `openai:${m[1]
        .split(',')
        .map((u) => shownUrl(u.trim()))
        .join(',')}`
    : spec;
}
