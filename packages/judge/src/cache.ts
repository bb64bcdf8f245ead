import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { JudgeError } from './errors.js';

/** Token counts as the endpoint returned them. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What is kept of one chat completion: enough to rebuild a judgement and its cost without asking again. */
export interface CachedCompletion {
  /** The first choice's message content (null when the endpoint gave none). */
  content: string | null;
  /** The model the endpoint says answered (may be more specific than the one asked for). */
  model: string;
  /** `system_fingerprint`, where the endpoint gives one. */
  fingerprint: string | null;
  usage: Usage | null;
  finish_reason: string | null;
  /** Answered through the Batch API (priced at the batch rate). */
  batch?: boolean;
  /** When it was answered (ISO 8601). */
  created_at: string;
}

/** `$POLYGLOT_CACHE/judge/cache.sqlite`, by default under `~/.cache/polyglot`. */
export function defaultCachePath(): string {
  const root = process.env.POLYGLOT_CACHE || path.join(os.homedir(), '.cache', 'polyglot');
  return path.join(root, 'judge', 'cache.sqlite');
}

const SCHEMA_VERSION = 1;

/**
 * A content-addressed store of judge answers in SQLite: key = {@link requestKey} of the request body. Several
 * processes may read and write one file at once (WAL journal, a busy timeout, `INSERT OR IGNORE`: the first
 * answer stored for a key is kept, which for a content-addressed key is as good as any); a process killed at any
 * point leaves it consistent (each insert is one transaction). API keys are never stored: only the request body
 * and the answer.
 */
export class JudgeCache {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string], { response: string }>;
  private readonly putStmt: Database.Statement<[string, string, string, string, string]>;
  private readonly pending = new Map<
    string,
    { request: Record<string, unknown>; completion: CachedCompletion }
  >();
  private scheduled = false;

  private constructor(file: string) {
    this.path = file;
    try {
      if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      this.db = new Database(file, { timeout: 30_000 });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS completions (
           key TEXT PRIMARY KEY,
           model TEXT NOT NULL,
           request TEXT NOT NULL,
           response TEXT NOT NULL,
           created_at TEXT NOT NULL
         );
         INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '${SCHEMA_VERSION}');`,
      );
      const v = this.db.prepare<[], { value: string }>(`SELECT value FROM meta WHERE key = 'schema'`).get();
      if (v && Number(v.value) > SCHEMA_VERSION) {
        throw new JudgeError(
          'cache-version',
          `judge cache ${file}: written by a newer version (schema ${v.value}); upgrade @polyglot/judge or use another --cache`,
        );
      }
    } catch (e) {
      if (e instanceof JudgeError) throw e;
      throw new JudgeError(
        'cache-open',
        `judge cache ${file}: cannot open it as SQLite (${(e as Error).message}); move it away or pass another --cache`,
        { cause: e },
      );
    }
    this.getStmt = this.db.prepare('SELECT response FROM completions WHERE key = ?');
    this.putStmt = this.db.prepare(
      'INSERT OR IGNORE INTO completions (key, model, request, response, created_at) VALUES (?, ?, ?, ?, ?)',
    );
  }

  /** Opens (creating it and its folder if needed) the cache file; `':memory:'` for a cache of this process only. */
  static open(file: string = defaultCachePath()): JudgeCache {
    return new JudgeCache(file);
  }

  get(key: string): CachedCompletion | undefined {
    const waiting = this.pending.get(key);
    if (waiting) return waiting.completion;
    const row = this.getStmt.get(key);
    return row ? (JSON.parse(row.response) as CachedCompletion) : undefined;
  }

  has(key: string): boolean {
    return this.pending.has(key) || this.getStmt.get(key) !== undefined;
  }

  /**
   * Stores an answer at the end of the current turn of the event loop, in one transaction with the others stored
   * meanwhile (group commit: one WAL append for many answers). Visible to `get` at once. A process killed before
   * the flush loses at most those answers from the cache — the judge run has already written them to its output.
   */
  putSoon(key: string, request: Record<string, unknown>, completion: CachedCompletion): void {
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, completion });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes the answers `putSoon` holds. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0 || !this.db.open) return;
    const rows = [...this.pending.entries()];
    this.pending.clear();
    this.db.transaction(() => {
      for (const [key, r] of rows) this.put(key, r.request, r.completion);
    })();
  }

  /** Stores an answer; true when it was new (false: another writer had stored that key first). */
  put(key: string, request: Record<string, unknown>, completion: CachedCompletion): boolean {
    const model = typeof request.model === 'string' ? request.model : '';
    const r = this.putStmt.run(
      key,
      model,
      JSON.stringify(request),
      JSON.stringify(completion),
      completion.created_at,
    );
    return r.changes > 0;
  }

  /** Stores many answers in one transaction (the Batch API's results). Returns how many were new. */
  putMany(rows: { key: string; request: Record<string, unknown>; completion: CachedCompletion }[]): number {
    let added = 0;
    this.db.transaction(() => {
      for (const r of rows) if (this.put(r.key, r.request, r.completion)) added++;
    })();
    return added;
  }

  /** Number of stored answers. */
  count(): number {
    this.flush();
    return this.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM completions').get()!.n;
  }

  close(): void {
    if (!this.db.open) return;
    this.flush();
    this.db.close();
  }
}
