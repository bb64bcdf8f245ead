/**
 * Training checkpoints: `checkpoints/checkpoint-<step>/` with the adapter (PEFT format: usable as it is),
 * `optimizer.safetensors` (AdamW's moments per parameter), and `trainer_state.json` (update count, data position,
 * schedule, seeds, running totals). A checkpoint is written into a temporary folder beside it and renamed into
 * place, so that a run killed at any moment leaves complete checkpoints only.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  readAdapter,
  SafetensorsFile,
  type TensorToWrite,
  writeFileAtomic,
  writeSafetensors,
} from '@polyglot/model';
import { SftError } from './errors.js';
import { type LoraTrainer, readFactors } from './lora.js';

export const CHECKPOINTS_DIR = 'checkpoints';
const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';

/** What a checkpoint records besides the tensors. */
export interface TrainerState {
  version: 1;
  /** Optimizer updates done. */
  step: number;
  /** Where the data continues: epoch (0-based) and the index of its next accumulation window. */
  epoch: number;
  window: number;
  /** AdamW's update count (torch's `state['step']`). */
  adamStep: number;
  /** The generator is counter-based: the seed and the update count decide every later draw. */
  rng: { kind: 'counter'; seed: number };
  schedule: { type: string; baseLr: number; numTrainingSteps: number; warmupSteps: number };
  totals: { tokens: number; targetTokens: number; trainSecs: number };
  /** The arguments that decide the trajectory (checked on resume). */
  trajectory: Record<string, unknown>;
}

/** Writes `root/checkpoint-<step>` atomically; returns its path. */
export async function saveCheckpoint(
  root: string,
  trainer: LoraTrainer,
  state: TrainerState,
): Promise<string> {
  await fsp.mkdir(root, { recursive: true });
  const final = path.join(root, `checkpoint-${state.step}`);
  const tmp = path.join(
    root,
    `.checkpoint-${state.step}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    await trainer.saveAdapter(tmp);
    const tensors: Record<string, TensorToWrite> = {};
    trainer.parameterNames.forEach((name, i) => {
      const { expAvg, expAvgSq } = trainer.optimizer.moments(i);
      tensors[`${name}.exp_avg`] = { dtype: 'F32', shape: [expAvg.length], data: expAvg };
      tensors[`${name}.exp_avg_sq`] = { dtype: 'F32', shape: [expAvgSq.length], data: expAvgSq };
    });
    await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), tensors, { format: 'pt' });
    await writeFileAtomic(path.join(tmp, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
    if (existsSync(final)) {
      // A checkpoint of the same step from an earlier attempt: replaced.
      const old = `${tmp}.old`;
      await fsp.rename(final, old);
      await fsp.rename(tmp, final);
      await fsp.rm(old, { recursive: true, force: true });
    } else {
      await fsp.rename(tmp, final);
    }
    return final;
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The complete checkpoint with the highest step under `root`, or null. */
export async function latestCheckpoint(root: string): Promise<string | null> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return null;
  }
  const steps = names
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(path.join(root, m[0], STATE_FILE)))
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  return steps.length > 0 ? path.join(root, `checkpoint-${steps[0]}`) : null;
}

/** Reads a checkpoint's state file. */
export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = path.join(dir, STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(await fsp.readFile(file, 'utf8')) as TrainerState;
  } catch (e) {
    throw new SftError(
      'SFT_BAD_CHECKPOINT',
      `${file}: cannot read the checkpoint state: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  if (state?.version !== 1 || !Number.isSafeInteger(state.step)) {
    throw new SftError('SFT_BAD_CHECKPOINT', `${file} is not a polyglot sft checkpoint state (version 1)`);
  }
  return state;
}

/** Restores the factors and the optimizer state of a checkpoint into `trainer`; returns the state. */
export async function loadCheckpoint(dir: string, trainer: LoraTrainer): Promise<TrainerState> {
  const state = await readTrainerState(dir);
  const factors = await readFactors(await readAdapter(dir), trainer.targets);
  const file = await SafetensorsFile.open(path.join(dir, OPTIMIZER_FILE));
  try {
    const expAvg: Float32Array[] = [];
    const expAvgSq: Float32Array[] = [];
    for (const name of trainer.parameterNames) {
      expAvg.push(await file.readFloat32(`${name}.exp_avg`));
      expAvgSq.push(await file.readFloat32(`${name}.exp_avg_sq`));
    }
    trainer.setFactors(factors);
    trainer.optimizer.loadState({ step: state.adamStep, expAvg, expAvgSq });
    trainer.steps = state.step;
  } catch (e) {
    if (e instanceof SftError) throw e;
    throw new SftError(
      'SFT_BAD_CHECKPOINT',
      `${dir}: cannot restore the optimizer state: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  } finally {
    await file.close();
  }
  return state;
}
