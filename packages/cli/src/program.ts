import { isPolyglotError } from '@polyglot/model';
import { Command, CommanderError } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { registerData } from './commands/data.js';
import { registerInfer } from './commands/infer.js';
import { registerJudge } from './commands/judge.js';
import { registerLid } from './commands/lid.js';
import { registerMerge } from './commands/merge.js';
import { registerModel } from './commands/model.js';
import { registerPlot } from './commands/plot.js';
import { registerReproduce } from './commands/reproduce.js';
import { registerSft } from './commands/sft.js';
import { registerTasks } from './commands/tasks.js';
import { type Io, processIo } from './io.js';

export const VERSION: string = pkg.version;

/** Exit codes: 0 ok, 1 a user-facing error (bad file, bad data, API failure), 2 usage, 70 internal error. */
export const EXIT = { ok: 0, error: 1, usage: 2, internal: 70 } as const;

export function buildProgram(io: Io = processIo): Command {
  const program = new Command('polyglot')
    .description(
      'polyglot: multilingual instruction tuning and evaluation (Kew, Schottmann & Sennrich), end to end',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
  registerModel(program, io);
  registerData(program, io);
  registerSft(program, io);
  registerLid(program, io);
  registerMerge(program, io);
  registerInfer(program, io);
  registerJudge(program, io);
  registerTasks(program, io);
  registerPlot(program, io);
  registerReproduce(program, io);
  // Every subcommand reports through the same sinks and throws instead of exiting.
  const configure = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub
        .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
        .exitOverride()
        .showHelpAfterError('(run with --help for usage)');
      configure(sub);
    }
  };
  configure(program);
  return program;
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code; never throws. */
export async function run(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; commander has already printed its message
      if (e.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    if (isPolyglotError(e)) {
      io.stderr(`polyglot: error: ${e.message}\n`);
      return e.code === 'usage' ? EXIT.usage : EXIT.error;
    }
    const err = e as Error;
    if (process.env.POLYGLOT_DEBUG) io.stderr(`${err?.stack ?? String(e)}\n`);
    io.stderr(
      `polyglot: internal error: ${err?.message ?? String(e)} (this is a bug; rerun with POLYGLOT_DEBUG=1 for a stack trace and report it)\n`,
    );
    return EXIT.internal;
  }
}
