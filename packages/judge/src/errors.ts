/**
 * Errors a user can cause when configuring a judge (bad score range, bad rubric, missing instruction). They carry
 * a stable `code` and the `isPolyglotError` marker. Unparseable judge answers are not errors: see
 * `parseJudgeResponse`.
 */
export class JudgeError extends Error {
  readonly isPolyglotError = true;
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JudgeError';
    this.code = code;
  }
}
