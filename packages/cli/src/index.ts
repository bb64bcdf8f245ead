import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run } from './program.js';

export { UsageError } from './errors.js';
export type { Io } from './io.js';
export { buildProgram, EXIT, run, VERSION } from './program.js';
export { ensureBaseModel, findDemoData } from './reproduce/base.js';
export {
  type JudgeSettings,
  type ModelSummary,
  type ReproduceOptions,
  type ReproduceResult,
  reproduce,
  type StageOutcome,
} from './reproduce/pipeline.js';
export {
  mixLabel,
  mixLanguages,
  PRESET_NAMES,
  PRESETS,
  type Preset,
  type PresetName,
} from './reproduce/presets.js';
export { STAGES, type StageName } from './reproduce/state.js';

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  // `polyglot … | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
