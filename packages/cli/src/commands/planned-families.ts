import type { Command } from 'commander';
import { planned } from '../planned.js';

/*
 * Command families whose packages land with later issues: listed in --help, honest when run. They are registered
 * in the order data flows through the pipeline (data → sft → merge → infer → tasks/judge → plots), around the
 * families that already work.
 */

/** The families before `infer` (data, sft, lid and merge are registered from commands/data.ts, sft.ts, lid.ts and merge.ts). */
export function registerPlannedUpstream(_program: Command): void {
  // none left: every upstream family has landed
}

/** The families after `infer`: reproduce (judge, tasks and plot are registered from commands/judge.ts, tasks.ts and plot.ts). */
export function registerPlannedDownstream(program: Command): void {
  planned(program, 'reproduce', "Run the paper's experiment end to end on embedded defaults", 12);
}
