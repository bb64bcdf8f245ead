/**
 * Errors a user can cause (malformed file, malformed conversation). They carry a stable `code`, name the file
 * and line or the record, and carry the `isPolyglotError` marker (test with `isPolyglotError` from
 * `@polyglot/lid`, re-exported here).
 */
export class DataError extends Error {
  readonly isPolyglotError = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataError';
    this.code = code;
  }
}

export { isPolyglotError } from '@polyglot/lid';
