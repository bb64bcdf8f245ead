import type { Command } from 'commander';
import { planned } from '../planned.js';

/*
 * Command families whose packages land with later issues: listed in --help, honest when run. They are registered
 * in the order data flows through the pipeline (data → sft → merge → infer → tasks/judge → plots), around the
 * families that already work.
 */

/** The families before `infer`: data, sft (lid and merge are registered from commands/lid.ts and merge.ts). */
export function registerPlannedUpstream(program: Command): void {
  const data = program
    .command('data')
    .description('Datasets, language mixes and prompt templates (@polyglot/data)');
  planned(
    data,
    'get',
    'Download a named dataset (guanaco, xquad, xcsqa, xnli, alpaca-eval) into the cache',
    8,
  );
  planned(data, 'tag', 'Tag the language of a text field of a JSONL file with fastText LID', 8);
  planned(data, 'mix', 'Build language mixes (paper recipe Mono / Multi-k, quotas, temperature sampling)', 8);
  planned(data, 'render', 'Render prompts with a Jinja, chat or built-in template', 8);
  planned(data, 'stats', 'Per-language counts and token lengths of a dataset', 8);

  const sft = program.command('sft').description('LoRA supervised fine-tuning (@polyglot/sft)');
  planned(sft, 'train', "LoRA-tune a model on JSONL data with the paper's defaults", 5);
  planned(sft, 'export', 'Write an equivalent TRL + PEFT training config and script', 5);
}

/** The families after `infer`: tasks, judge, plot, reproduce. */
export function registerPlannedDownstream(program: Command): void {
  const tasks = program
    .command('tasks')
    .description('Multilingual evaluation tasks and results (@polyglot/tasks)');
  planned(tasks, 'list', 'List built-in and user tasks', 9);
  planned(tasks, 'run', 'Run tasks over an engine and write results.json', 9);
  planned(tasks, 'score', 'Score existing run files without generating', 9);

  const judge = program
    .command('judge')
    .description('LLM-as-judge over OpenAI-compatible endpoints (@polyglot/judge)');
  planned(judge, 'run', 'Judge responses with a rubric, cached and resumable', 10);
  planned(judge, 'summarize', 'Aggregate judge outputs per language and model', 10);

  const plot = program.command('plot').description('Figures and experiment reports (@polyglot/plots)');
  planned(plot, 'report', 'Write the HTML/Markdown report of an experiment', 11);
  planned(plot, 'figure', 'Render one figure to SVG and PNG', 11);

  planned(program, 'reproduce', "Run the paper's experiment end to end on embedded defaults", 12);
}
