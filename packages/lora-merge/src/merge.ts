import type { MergeLoraOptions } from '@polyglot/model';
import { LoraMergeError } from './errors.js';

/**
 * PEFT's LoRA scaling: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with `use_rslora` (the paper: 16 / 64).
 */
export function loraScale(alpha: number, r: number, useRslora = false): number {
  if (!Number.isSafeInteger(r) || r < 1)
    throw new LoraMergeError('LORA_BAD_CONFIG', `LoRA rank r must be a positive integer, got ${r}`);
  if (!Number.isFinite(alpha))
    throw new LoraMergeError('LORA_BAD_CONFIG', `lora_alpha must be a finite number, got ${alpha}`);
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** The options of {@link mergeLoraInto} (the kernel lives in `@polyglot/model`, re-exported here). */
export type MergeOptions = MergeLoraOptions;
