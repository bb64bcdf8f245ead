// The state file of a reproduce run (`<out>/reproduce.json`): which stages are done, with which inputs (a key
// chained from the previous stage's), how long each took and what it produced. A stage whose record is `done`
// with the same key is cached; one left `running` (a killed run) resumes from what it wrote; `--from STAGE`
// forces that stage and every later one.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '@polyglot/plots';
import { UsageError } from '../errors.js';

export const STAGES = [
  'mixes',
  'base',
  'train',
  'merge',
  'generate',
  'fidelity',
  'tasks',
  'judge',
  'report',
] as const;
export type StageName = (typeof STAGES)[number];

export interface StageRecord {
  status: 'running' | 'done';
  /** Hash of the stage's settings chained with the previous stage's key. */
  key: string;
  /** Seconds the stage took when it last ran (0 when taken from the cache). */
  secs: number;
  /** Seconds of the run that did the work (kept when a later run finds it cached). */
  workSecs: number;
  startedAt: string;
  finishedAt?: string;
  /** How many times this stage was started with this key (> 1: it was resumed). */
  attempts: number;
  detail?: unknown;
}

export interface ReproduceState {
  format: 'polyglot-reproduce/1';
  preset: string;
  stages: Partial<Record<StageName, StageRecord>>;
}

export function stageKey(previous: string, settings: unknown): string {
  return createHash('sha256')
    .update(previous)
    .update('\0')
    .update(JSON.stringify(settings))
    .digest('hex')
    .slice(0, 16);
}

export function checkStage(name: string, flag: string): StageName {
  if (!(STAGES as readonly string[]).includes(name)) {
    throw new UsageError(`${flag} ${name}: unknown stage; the stages are ${STAGES.join(', ')}`);
  }
  return name as StageName;
}

export function readState(file: string, preset: string): ReproduceState {
  if (!existsSync(file)) return { format: 'polyglot-reproduce/1', preset, stages: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(
      `${file}: not a reproduce state file (${(e as Error).message}); remove it or choose another --out`,
    );
  }
  const s = parsed as Partial<ReproduceState>;
  if (s?.format !== 'polyglot-reproduce/1' || typeof s.stages !== 'object' || s.stages === null) {
    throw new UsageError(
      `${file}: not a reproduce state file (format polyglot-reproduce/1); choose another --out`,
    );
  }
  return { format: s.format, preset: String(s.preset), stages: s.stages };
}

export async function writeState(file: string, state: ReproduceState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}
