// 07 — XNLI 0-shot by log-likelihood (@polyglot/tasks; lm-evaluation-harness's xnli_<lang>).
// Three continuations per pair, `premise, right? Yes|Also|No, hypothesis` with each language's words; the most
// likely one is the prediction. The paper found that multilingual tuning barely moves XNLI (base 0.433, Mono 0.439,
// Multi-6 0.443 over its nine languages): compare the base model with the tuned ones.
//
// Embedded defaults (the 9 demo pairs of data/demo/xnli in the paper's nine languages; chance is 1/3 and with 9
// pairs the standard error is ≈ 0.17, so the numbers only show that the pipeline runs):
//   node --import tsx examples/07-xnli.ts
// Real scale (XNLI-1.0's dev set from `polyglot data get xnli`, 2,490 pairs per language; a local model folder, or
// vLLM: log-likelihoods need /v1/completions with echo + logprobs, which vLLM and `polyglot infer serve` have):
//   node --import tsx examples/07-xnli.ts --engine openai:http://localhost:8000 --served-model multi-2 --name Multi-2 \
//     --data-dir ~/.cache/polyglot/datasets
//
// Flags: --models Mono,Multi-2 (of --models-dir, default WORK/models: all) plus the base model (--model DIR or the
//   smoke preset; --no-base to skip it) | --engine local:DIR|openai:URL [--served-model NAME] --name LABEL;
//   --langs bg,de,el,en,es,fr,hi,ru,zh; --data-dir DIR (default data/demo/xnli); --limit N; --batch-size 8;
//   --resume (continue an earlier run; default: replace it); --backend wasm; --runs-dir DIR;
//   --work DIR.
// Writes: WORK/runs/<Model>/xnli/{results.json (with the mean over languages as "xnli"), samples_xnli_<lang>.jsonl}.
import { main } from './lib/common.js';
import { runTaskExample } from './lib/tasks.js';

main(import.meta.url, () =>
  runTaskExample({
    file: import.meta.url,
    task: 'xnli',
    langs: ['bg', 'de', 'el', 'en', 'es', 'fr', 'hi', 'ru', 'zh'],
    demoData: 'xnli',
    seeds: null,
    metric: 'acc',
  }),
);
