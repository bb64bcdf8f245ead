import type { Command } from 'commander';
import { planned } from '../planned.js';

/*
 * Command families whose packages land with later issues: listed in --help, honest when run. They are registered
 * in the order data flows through the pipeline (data → sft → merge → infer → tasks/judge → plots), around the
 * families that already work.
 */

/** The families after `infer`: reproduce (judge, tasks and plot are registered from commands/judge.ts, tasks.ts and plot.ts). */
export function registerPlannedDownstream(program: Command): void {
  planned(program, 'reproduce', "Run the paper's experiment end to end on embedded defaults", 12);
}
