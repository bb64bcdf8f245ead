import { PolyglotError } from '@polyglot/model';

/** A CLI flag or argument is wrong (exit code 2). */
export class UsageError extends PolyglotError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'UsageError';
  }
}

/** A command whose package has not implemented it yet says so instead of pretending. */
export class NotYetAvailableError extends PolyglotError {
  constructor(command: string, issue: number, what: string) {
    super(
      'not_yet_available',
      `polyglot ${command} is not yet available in this version: ${what} is planned (see issue #${issue} in the issue list)`,
    );
    this.name = 'NotYetAvailableError';
  }
}
