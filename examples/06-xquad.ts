// 06 — XQuAD, extractive QA by generation, monolingual and cross-lingual (@polyglot/tasks).
// Passage and question in the paper's chat prompt, the assistant turn opening `… the answer to the question is "`;
// scored with the paper's containment score (a normalised reference in the first 50 characters of the cleaned
// response) next to SQuAD exact match and F1. `en:de` is the paper's cross-lingual setting: English instructions,
// German passage and question.
//
// Embedded defaults (the 6 demo questions of data/demo/xquad in 7 languages and en:de, one seed, 24 tokens):
//   node --import tsx examples/06-xquad.ts
// Real scale (XQuAD from `polyglot data get xquad`, 1,190 questions per language; vLLM; 3 seeds, 1,024 tokens):
//   node --import tsx examples/06-xquad.ts --engine openai:http://localhost:8000 --served-model multi-2 --name Multi-2 \
//     --data-dir ~/.cache/polyglot/datasets --langs en,de,es,ru,zh,el,hi,en:de,en:zh --seeds 0,42,723 --max-tokens 1024
//
// Flags: --models Mono,Multi-2 (of --models-dir, default WORK/models: all) plus the base model (--model DIR or the
//   smoke preset; --no-base to skip it) | --engine local:DIR|openai:URL [--served-model NAME] --name LABEL;
//   --langs en,de,es,ru,zh,el,hi,en:de; --data-dir DIR (default data/demo/xquad); --limit N; --seeds 0;
//   --max-tokens 24; --batch-size 8; --resume (continue an earlier run; default: replace it); --backend wasm; --runs-dir DIR;
//   --work DIR.
// Writes: WORK/runs/<Model>/xquad/{results.json, samples_xquad_<variant>.jsonl, run.json}.
import { main } from './lib/common.js';
import { runTaskExample } from './lib/tasks.js';

main(import.meta.url, () =>
  runTaskExample({
    file: import.meta.url,
    task: 'xquad',
    langs: ['en', 'de', 'es', 'ru', 'zh', 'el', 'hi', 'en:de'],
    demoData: 'xquad',
    seeds: [0],
    maxTokens: 24,
    metric: 'containment',
  }),
);
