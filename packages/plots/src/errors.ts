/**
 * Errors of `@polyglot/plots` that a caller can cause. Marked like `PolyglotError` of `@polyglot/model`
 * (which this package does not depend on), so that the CLI prints them as one line.
 */
export class PlotError extends Error {
  readonly isPolyglotError = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlotError';
    this.code = code;
  }
}
