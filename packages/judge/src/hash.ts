import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so that equal values always give the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** Hex SHA-256 of a string. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The cache key of a chat request: the SHA-256 of the canonical JSON of its body (the endpoint's model name, the
 * messages and every sampling parameter sent, `response_format` included) and an optional namespace. The API key
 * and the endpoint URL are not part of it.
 */
export function requestKey(body: Record<string, unknown>, namespace = ''): string {
  return sha256(canonicalJson({ v: 1, namespace, body }));
}
