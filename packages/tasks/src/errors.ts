/**
 * Errors a user can cause in task scoring (no references, empty samples, bad options). They carry a stable
 * `code` and the `isPolyglotError` marker (test with `isPolyglotError`, re-exported from `@polyglot/lid`).
 */
export class TasksError extends Error {
  readonly isPolyglotError = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TasksError';
    this.code = code;
  }
}

export { isPolyglotError } from '@polyglot/lid';
