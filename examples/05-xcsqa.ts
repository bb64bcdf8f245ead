// 05 — X-CSQA, the paper's generative multiple choice (@polyglot/tasks).
// Each question is rendered into the paper's chat prompt (instructions, question, options A–E, and an assistant turn
// that opens a double quote so the first token is the answer); temperature 0.001; accuracy of the letter read from
// the start of the response. Runs the base model and every merged model; `--langs en:de` gives the paper's
// cross-lingual variants (English instructions, German question).
//
// Embedded defaults (the 5 demo questions of data/demo/xcsqa in 6 languages, one seed, 8 tokens):
//   node --import tsx examples/05-xcsqa.ts
// Real scale (X-CSR's dev files from `polyglot data get xcsqa`, 1,000 questions per language; vLLM serving a merged
// model; the paper's 3 seeds and 1,024 tokens):
//   node --import tsx examples/05-xcsqa.ts --engine openai:http://localhost:8000 --served-model multi-2 --name Multi-2 \
//     --data-dir ~/.cache/polyglot/datasets --langs en,de,es,ru,zh,fr,en:de --seeds 0,42,723 --max-tokens 1024
//
// Flags: --models Mono,Multi-2 (of --models-dir, default WORK/models: all) plus the base model (--model DIR or the
//   smoke preset; --no-base to skip it) | --engine local:DIR|openai:URL [--served-model NAME] --name LABEL;
//   --langs en,de,es,ru,zh,fr; --data-dir DIR (default data/demo/xcsqa); --limit N; --seeds 0; --max-tokens 8;
//   --batch-size 8; --resume (continue an earlier run; default: replace it); --backend wasm; --runs-dir DIR;
//   --work DIR.
// Writes: WORK/runs/<Model>/xcsqa/{results.json, samples_xcsqa_<lang>.jsonl, run.json}.
import { main } from './lib/common.js';
import { runTaskExample } from './lib/tasks.js';

main(import.meta.url, () =>
  runTaskExample({
    file: import.meta.url,
    task: 'xcsqa',
    langs: ['en', 'de', 'es', 'ru', 'zh', 'fr'],
    demoData: 'xcsqa',
    seeds: [0],
    maxTokens: 8,
    metric: 'acc',
  }),
);
