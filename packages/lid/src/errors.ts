/**
 * Errors a user can cause (unknown language code, malformed label, bad table entry). They carry a stable `code`
 * and the `isPolyglotError` marker, so that the CLI prints them as one line without a stack trace.
 */
export class LidError extends Error {
  readonly isPolyglotError = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LidError';
    this.code = code;
  }
}

/** True for the typed errors of any polyglot package (they all carry the `isPolyglotError` marker). */
export function isPolyglotError(e: unknown): e is Error & { code: string; isPolyglotError: true } {
  return typeof e === 'object' && e !== null && (e as { isPolyglotError?: unknown }).isPolyglotError === true;
}
