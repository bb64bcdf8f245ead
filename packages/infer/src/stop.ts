/** Python's `str.strip()` whitespace (`str.isspace`), which differs from JavaScript's `trim()`. */
const PY_SPACE =
  '[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');

/** `s.strip()` as Python does it (JavaScript's trim() also strips U+FEFF and keeps U+001C–U+001F and U+0085). */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

const PY_SPACE_CHAR = new RegExp(`^${PY_SPACE}$`);

/** `s.rstrip()` as Python does it. */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && PY_SPACE_CHAR.test(s[end - 1])) end--;
  return s.slice(0, end);
}

/** Where a stop string occurs. */
export interface StopMatch {
  stop: string;
  index: number;
}

/**
 * The occurrence of a stop string that starts earliest in `text` at or after `from` and ends after `minEnd`
 * (on a tie, the stop string listed first), or null.
 */
export function earliestStop(text: string, stops: readonly string[], from = 0, minEnd = 0): StopMatch | null {
  let best: StopMatch | null = null;
  for (const stop of stops) {
    const index = text.indexOf(stop, Math.max(from, minEnd - stop.length + 1));
    if (index >= 0 && (best === null || index < best.index)) best = { stop, index };
  }
  return best;
}

/**
 * Cut `text` before the earliest stop string and strip the rest as Python does — what the paper's inference
 * script keeps of a response. `stop` is the stop string found (null if none; the text is stripped anyway).
 */
export function findStop(text: string, stops: readonly string[]): { text: string; stop: string | null } {
  const match = earliestStop(text, stops);
  return { text: pyStrip(match ? text.slice(0, match.index) : text), stop: match?.stop ?? null };
}

/**
 * Stop strings for streamed text. Each {@link push} returns the part of the output that is safe to show: it
 * never contains a stop string, nor the end of the text while that end could still grow into one (the
 * longest suffix that is a prefix of some stop string is held back). Once a stop string occurs, the output
 * ends before the earliest one in the text so far — the same cut {@link findStop} makes — and {@link stopped}
 * tells which. {@link flush} releases what was held back when generation ends for another reason.
 */
export class StopChecker {
  private readonly stops: readonly string[];
  private readonly longest: number;
  private buffer = '';
  private emitted = 0;
  /** No stop string may end at or before this offset (text added by {@link pushUnchecked}). */
  private minEnd = 0;
  private match: StopMatch | null = null;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.longest = Math.max(0, ...this.stops.map((s) => s.length));
  }

  /** The stop string that ended the output and where, or null while none has occurred. */
  get stopped(): StopMatch | null {
    return this.match;
  }

  /** The output so far: everything pushed, cut before the stop string once one occurred. */
  get text(): string {
    return this.buffer;
  }

  /** Add newly generated text; returns the newly safe output (possibly ''). After a stop, returns ''. */
  push(chunk: string): string {
    if (this.match) return '';
    const from = Math.max(0, this.buffer.length - this.longest + 1);
    this.buffer += chunk;
    this.match = earliestStop(this.buffer, this.stops, from, this.minEnd);
    if (this.match) {
      this.buffer = this.buffer.slice(0, this.match.index);
      return this.release(this.buffer.length);
    }
    return this.release(this.buffer.length - this.heldBack());
  }

  /**
   * Add text in which no stop string may end: vLLM checks stop strings only once more than `min_tokens` tokens
   * exist, so the text of the first `min_tokens` tokens goes here. A stop string that starts in it and ends in
   * text pushed later is still found. Returns the newly safe output, as {@link push}.
   */
  pushUnchecked(chunk: string): string {
    if (this.match) return '';
    this.buffer += chunk;
    this.minEnd = this.buffer.length;
    return this.release(this.buffer.length - this.heldBack());
  }

  /** Release what is held back (generation ended without a stop string). */
  flush(): string {
    return this.release(this.buffer.length);
  }

  private release(end: number): string {
    const out = this.buffer.slice(this.emitted, end);
    this.emitted = Math.max(this.emitted, end);
    return out;
  }

  /** Length of the longest suffix of the unreleased text that a stop string starts with. */
  private heldBack(): number {
    const max = Math.min(this.longest - 1, this.buffer.length - this.emitted);
    for (let len = max; len > 0; len--) {
      const tail = this.buffer.slice(this.buffer.length - len);
      if (this.stops.some((s) => s.startsWith(tail))) return len;
    }
    return 0;
  }
}
