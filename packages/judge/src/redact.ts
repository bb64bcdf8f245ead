/**
 * Removes secrets from text that may end up in an error message, a log line or a file: the API key itself, and
 * anything that looks like an OpenAI-style key (`sk-…`), a bearer token, an `api-key=` / `key=` parameter or the
 * credentials of a URL (`https://user:password@host` → `https://host`).
 */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = String(text);
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  }
  return out
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@"']+@/gi, '$1')
    .replace(/\bsk-[A-Za-z0-9_*.-]{6,}/g, 'sk-[redacted]')
    .replace(/\b(Bearer)\s+[A-Za-z0-9_.~+/=-]{8,}/gi, '$1 [redacted]')
    .replace(/\b((?:api[-_]?key|key|token|sig)=)[^&\s"']+/gi, '$1[redacted]');
}

/** An endpoint URL fit to be written down: no user name or password, no query parameters that carry keys. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) {
      if (/key|token|sig|secret|password/i.test(k)) u.searchParams.set(k, '[redacted]');
    }
    return u.toString();
  } catch {
    return redact(url);
  }
}
