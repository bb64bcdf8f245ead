/** How failed requests are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt; default 6. */
  maxRetries: number;
  /** Back-off before the first retry, doubled at each next one; default 1,000 ms. */
  baseDelayMs: number;
  /** Largest back-off; default 60,000 ms. */
  maxDelayMs: number;
  /** Longest `Retry-After` honoured (a longer one is cut to this); default 300,000 ms. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 6,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  maxRetryAfterMs: 300_000,
};

/**
 * Exponential back-off with "equal jitter": half of base·2^attempt (capped) plus a random share of the other
 * half, so that parallel workers hit by the same failure come back spread out. `attempt` counts from 0.
 */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return cap / 2 + random() * (cap / 2);
}

/** Minimal view of response headers: a `Headers` object or a plain record. */
type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

function header(h: HeaderSource | undefined | null, name: string): string | undefined {
  if (!h) return undefined;
  if (typeof (h as { get?: unknown }).get === 'function') {
    return (h as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const rec = h as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : rec[key];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The wait a server asks for, in ms: `retry-after-ms` (OpenAI, Azure), else `Retry-After` as seconds or as an
 * HTTP date. Undefined when absent or unreadable.
 */
export function retryAfterMs(
  h: HeaderSource | undefined | null,
  now: number = Date.now(),
): number | undefined {
  const ms = header(h, 'retry-after-ms');
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Number(ms);
  const ra = header(h, 'retry-after');
  if (ra === undefined) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Number(ra) * 1000;
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * What to do after a failed request:
 * - `retry`: transient (connection failure, timeout, 408, 409, 425, 429 other than exhausted quota, 5xx);
 * - `fatal`: no request can succeed (401, 403, 404, a 429 "insufficient_quota"): stop the run;
 * - `item`: this request is refused (400, 413, 422 …: too long, filtered): record the item as failed.
 */
export type FailureKind = 'retry' | 'fatal' | 'item';

export function classifyFailure(status: number | undefined, code?: string | null): FailureKind {
  if (status === undefined) return 'retry';
  if (status === 429) return code === 'insufficient_quota' ? 'fatal' : 'retry';
  if (status === 408 || status === 409 || status === 425 || status >= 500) return 'retry';
  if (status === 401 || status === 403 || status === 404) return 'fatal';
  return 'item';
}
