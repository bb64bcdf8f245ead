/** Clock and timer, replaceable in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const t = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      const onAbort = () => {
        clearTimeout(t);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * A rate limit of `perMinute` units (requests or tokens) as a token bucket: it refills continuously at
 * perMinute/60 per second and holds at most `burstSeconds` of that (default 1 s, at least one unit), so the calls
 * are spread evenly instead of a minute's worth being sent at once. Waiters are served first come, first served.
 * A request larger than the bucket waits for a full bucket and drives the level below zero (the debt delays the
 * next ones). `adjust(delta)` corrects an estimate afterwards (the tokens a request really used).
 */
export class TokenBucket {
  readonly perMinute: number;
  readonly capacity: number;
  private level: number;
  private last: number;
  private queue: { n: number; resolve: () => void }[] = [];
  private pumping = false;

  private readonly clock: Clock;

  constructor(perMinute: number, opts: { burstSeconds?: number; clock?: Clock } = {}) {
    this.clock = opts.clock ?? realClock;
    if (!(perMinute > 0) || !Number.isFinite(perMinute)) {
      throw new RangeError(`a rate limit must be a positive number per minute, got ${perMinute}`);
    }
    this.perMinute = perMinute;
    this.capacity = Math.max(1, (perMinute / 60) * (opts.burstSeconds ?? 1));
    this.level = this.capacity;
    this.last = this.clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    this.level = Math.min(this.capacity, this.level + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
  }

  /** Waits until `n` units may be spent, then spends them. */
  take(n = 1): Promise<void> {
    return new Promise<void>((resolve) => {
      this.queue.push({ n, resolve });
      if (!this.pumping) void this.pump();
    });
  }

  /** Gives back (negative) or charges (positive) units after the fact. */
  adjust(delta: number): void {
    this.refill();
    this.level = Math.min(this.capacity, this.level - delta);
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0];
        this.refill();
        const need = Math.min(head.n, this.capacity);
        if (this.level >= need) {
          this.level -= head.n;
          this.queue.shift();
          head.resolve();
          continue;
        }
        const waitMs = ((need - this.level) * 60_000) / this.perMinute;
        await this.clock.sleep(Math.max(1, waitMs));
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** Runs `worker` on every item with at most `concurrency` at a time; stops taking new items once `stop()` says so. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, index: number) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const i = next++;
      await worker(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, run));
}
