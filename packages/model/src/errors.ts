/**
 * Errors a user can cause (bad file, wrong shapes, unknown names) are typed: they carry a stable `code`, say what
 * was wrong and where, and are marked with `isPolyglotError` so that the CLI prints them as one line without a
 * stack trace. Other packages mark their own errors the same way; test with {@link isPolyglotError}.
 */
export class PolyglotError extends Error {
  readonly isPolyglotError = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolyglotError';
    this.code = code;
  }
}

/** Errors of the model file formats (safetensors, config.json, adapters, tokenizers). */
export class ModelFormatError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ModelFormatError';
  }
}

export function isPolyglotError(e: unknown): e is Error & { code: string; isPolyglotError: true } {
  return typeof e === 'object' && e !== null && (e as { isPolyglotError?: unknown }).isPolyglotError === true;
}
