import type { Command } from 'commander';
import { planned } from '../planned.js';

/** Command families whose packages land with later issues: listed in --help, honest when run. */
export function registerPlannedFamilies(program: Command): void {
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

  const lid = program
    .command('lid')
    .description('fastText language identification and language fidelity (@polyglot/lid)');
  planned(lid, 'predict', 'Predict languages of text lines or a JSONL field', 7);
  planned(lid, 'fidelity', 'Language fidelity (lang_match, tgt_lang) of run files', 7);
  planned(lid, 'tag', 'Add <key>_lang fields to JSONL records', 7);
  planned(lid, 'download', 'Fetch and verify OpenLID or GlotLID into the cache', 7);

  const sft = program.command('sft').description('LoRA supervised fine-tuning (@polyglot/sft)');
  planned(sft, 'train', "LoRA-tune a model on JSONL data with the paper's defaults", 5);
  planned(sft, 'export', 'Write an equivalent TRL + PEFT training config and script', 5);

  planned(
    program,
    'merge',
    'Merge PEFT LoRA adapters into a checkpoint, shard by shard (@polyglot/lora-merge)',
    4,
  );

  const infer = program
    .command('infer')
    .description('Generation, scoring and an OpenAI-compatible server (@polyglot/infer)');
  planned(infer, 'score', 'Token log-probs of JSONL inputs', 3);
  planned(infer, 'generate', 'Batched generation with sampling, stop strings and seeds', 3);
  planned(infer, 'serve', 'OpenAI-compatible HTTP server over the local engine', 6);
  planned(
    infer,
    'run',
    "The paper's inference.py: resumable benchmark runs over a local or remote engine",
    6,
  );

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
