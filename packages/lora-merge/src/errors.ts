import { PolyglotError } from '@polyglot/model';

/** Errors of `@polyglot/lora-merge` that a caller can cause (mismatched adapter and base tensors). */
export class LoraMergeError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'LoraMergeError';
  }
}
