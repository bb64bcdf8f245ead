/**
 * Progress of long work (DESIGN.md: "Long work shows progress (items/s, ETA) on a TTY and logs JSON lines
 * otherwise"). One reporter for every package: on a terminal a single line rewritten in place, elsewhere (a file,
 * a pipe, CI logs) one JSON line at most every `logEveryMs` and one at the end.
 */

/** Where a {@link Progress} writes: a stream such as `process.stderr`. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Items expected; null (or omitted) when unknown (no percentage, no ETA). */
  total?: number | null;
  /** What is counted, e.g. `generate`; the `progress` field of the JSON lines. */
  label: string;
  /** Default `process.stderr`. */
  stream?: ProgressStream;
  /** Write nothing. Default false. */
  quiet?: boolean;
  /** Force the TTY (true) or the JSON-lines (false) form; default: `stream.isTTY`. */
  tty?: boolean;
  /** Least time between two JSON lines when not on a TTY; default 10,000 ms. */
  logEveryMs?: number;
  /** Least time between two redraws on a TTY; default 100 ms. */
  redrawEveryMs?: number;
  /** Clock in milliseconds (tests pass their own); default `performance.now()`. */
  now?: () => number;
}

/** One JSON progress line (what is written when the stream is not a TTY). */
export interface ProgressRecord {
  progress: string;
  done: number;
  total: number | null;
  /** Items per second since the start. */
  items_per_s: number;
  /** Seconds left at the current rate; null when the total is unknown or nothing is done yet. */
  eta_s: number | null;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** `1h02m`, `3m07s`, `12s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/**
 * Counts finished items and reports count/total, items per second and the estimated time left.
 *
 * ```ts
 * const progress = new Progress({ total: rows.length, label: 'generate' });
 * for (const row of rows) { work(row); progress.tick(); }
 * progress.done();
 * ```
 */
export class Progress {
  readonly label: string;
  readonly total: number | null;
  private readonly stream: ProgressStream;
  private readonly quiet: boolean;
  private readonly tty: boolean;
  private readonly logEveryMs: number;
  private readonly redrawEveryMs: number;
  private readonly now: () => number;
  private readonly start: number;
  private n = 0;
  private lastWrite: number;
  private finished = false;

  constructor(opts: ProgressOptions) {
    this.label = opts.label;
    this.total = opts.total ?? null;
    this.stream = opts.stream ?? process.stderr;
    this.quiet = opts.quiet ?? false;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.logEveryMs = opts.logEveryMs ?? 10_000;
    this.redrawEveryMs = opts.redrawEveryMs ?? 100;
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
    this.lastWrite = this.start;
    if (this.tty && !this.quiet) this.draw(this.start);
  }

  /** Items finished so far. */
  get count(): number {
    return this.n;
  }

  /** The current state, as the JSON lines carry it. */
  record(at: number = this.now()): ProgressRecord {
    const secs = (at - this.start) / 1000;
    const rate = secs > 0 ? this.n / secs : 0;
    const eta = this.total === null || rate === 0 ? null : round(Math.max(0, this.total - this.n) / rate, 1);
    return {
      progress: this.label,
      done: this.n,
      total: this.total,
      items_per_s: round(rate, 2),
      eta_s: eta,
    };
  }

  /** Count `n` more finished items (default 1). */
  tick(n = 1): void {
    if (this.finished) return;
    this.n += n;
    if (this.quiet) return;
    const at = this.now();
    const every = this.tty ? this.redrawEveryMs : this.logEveryMs;
    if (at - this.lastWrite < every) return;
    this.lastWrite = at;
    if (this.tty) this.draw(at);
    else this.log(at);
  }

  /** The final report: the line completed with a newline on a TTY, the last JSON line elsewhere. Idempotent. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.quiet) return;
    const at = this.now();
    if (this.tty) {
      this.draw(at);
      this.stream.write('\n');
    } else {
      this.log(at);
    }
  }

  private log(at: number): void {
    this.stream.write(`${JSON.stringify(this.record(at))}\n`);
  }

  private draw(at: number): void {
    const r = this.record(at);
    const count = this.total === null ? `${r.done}` : `${r.done}/${this.total}`;
    const pct =
      this.total !== null && this.total > 0
        ? ` ${((100 * r.done) / this.total).toFixed(0).padStart(3)}%`
        : '';
    const eta = this.finished
      ? ` in ${formatDuration((at - this.start) / 1000)}`
      : r.eta_s === null
        ? ''
        : ` ETA ${formatDuration(r.eta_s)}`;
    let line = `${this.label} ${count}${pct} ${r.items_per_s.toFixed(r.items_per_s < 10 ? 2 : 1)} items/s${eta}`;
    const width = this.stream.columns;
    if (width !== undefined && width > 1 && line.length >= width) line = line.slice(0, width - 1);
    // \r and clear-to-end-of-line: the line is rewritten in place.
    this.stream.write(`\r${line}\x1b[K`);
  }
}
