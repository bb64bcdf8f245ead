import type { Command } from 'commander';
import { NotYetAvailableError } from './errors.js';

/**
 * Registers a subcommand whose implementation lands with a later issue. It is listed in --help with what it will
 * do, and running it fails with a clear message naming the issue — never a pretend result.
 */
export function planned(parent: Command, name: string, description: string, issue: number): Command {
  const full = `${parent.name() === 'polyglot' ? '' : `${parent.name()} `}${name.split(' ')[0]}`;
  return parent
    .command(name)
    .description(`${description} [planned: issue #${issue}]`)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(() => {
      throw new NotYetAvailableError(full, issue, description.replace(/\.$/, ''));
    });
}
