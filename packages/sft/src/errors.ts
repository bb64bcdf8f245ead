import { PolyglotError } from '@polyglot/model';

/** Errors of `@polyglot/sft` that a caller can cause (bad training arguments, mismatched tensors). */
export class SftError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SftError';
  }
}

/** A non-negative integer option, else an {@link SftError} naming it. */
export function nonNegativeInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new SftError('SFT_BAD_ARG', `${name} must be a non-negative integer, got ${v}`);
  }
  return v;
}

/** A positive integer option, else an {@link SftError} naming it. */
export function positiveInt(name: string, v: number): number {
  if (nonNegativeInt(name, v) === 0) throw new SftError('SFT_BAD_ARG', `${name} must be at least 1, got 0`);
  return v;
}
