import { PolyglotError } from '@polyglot/model';

/** A CLI flag or argument is wrong (exit code 2). */
export class UsageError extends PolyglotError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'UsageError';
  }
}
