// 04 — Chat inference and language fidelity (@polyglot/infer, @polyglot/lid).
// Each model answers the chat prompts of every test language through the paper's template
// `### Human: {{ instruction }}### Assistant:` with the paper's sampling (temperature 0.8, top-p 0.9, top-k 50,
// frequency penalty 0.2, stop at `### Human`/`### Assistant`); the run files are named as the paper's
// (`<testset>-none-guanaco_prompt-s<seed>-k50-p0.9-t0.8-b8.jsonl` + `.json` of arguments), then fastText LID scores
// each file: lang_match (the response is in the prompt's language) and tgt_lang, written as the paper's one-row
// `.eval` CSV next to it.
//
// Embedded defaults (the merged models of example 03 on the 8 demo prompts of 10 languages, one seed, 48 tokens):
//   node --import tsx examples/04-chat-fidelity.ts
// Real scale (vLLM serving a merged model: `vllm serve models/llama-2-7b-multi-2 --served-model-name multi-2`;
// the paper's 805 translated AlpacaEval prompts from `polyglot data get paper-alpaca-eval`, 3 seeds, 1,024 tokens,
// OpenLID as the paper):
//   node --import tsx examples/04-chat-fidelity.ts --engine openai:http://localhost:8000 --served-model multi-2 \
//     --name Multi-2 --prompts ~/.cache/polyglot/datasets/paper-alpaca-eval --langs en,de,bg,is \
//     --seeds 0,42,723 --max-tokens 1024 --lid openlid
//
// Flags: --models Mono,Multi-2 (folders of --models-dir, default WORK/models: all) [--include-base: also the base
//   model, as "base"; --model DIR/--preset/--base-cache name it] | --engine openai:URL[,URL…] --served-model NAME
//   --name LABEL; --langs en,es,ru,de,zh,fr,bg,is,el,hi; --prompts DIR (default data/demo/test_prompts: <lang>.jsonl,
//   or the paper's alpaca_eval_instructions_<lang>.json); --seeds 0; --max-tokens 48; --limit N; --batch-size 8;
//   --lid lid176|openlid|glotlid|PATH; --resume (keep and continue earlier run files; default: replace them);
//   --backend wasm; --runs-dir DIR; --work DIR.
// Writes: WORK/runs/<Model>/<testset>-none-guanaco_prompt-s<seed>-k50-p0.9-t0.8-b8.{jsonl,json,eval};
//   WORK/prompts/ (the guanaco_prompt.txt template and the demo prompts named demo_prompts_<lang>.jsonl, so that the
//   test language can be read from the run file's name, as with the paper's files).
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PAPER_PROMPT_TEMPLATE } from '@polyglot/data';
import { type Engine, openEngine, PAPER_SAMPLING, runInference, testsetName } from '@polyglot/infer';
import { evalPathFor, fidelityOfFile, loadLidModel, writeEvalCsv } from '@polyglot/lid';
import {
  backendOf,
  baseModel,
  ExampleError,
  flags,
  foldersWith,
  layout,
  list,
  MODEL_OPTIONS,
  main,
  num,
  repoPath,
  show,
  workDir,
} from './lib/common.js';

const DEMO_LANGS = ['en', 'es', 'ru', 'de', 'zh', 'fr', 'bg', 'is', 'el', 'hi'];

const f = flags(import.meta.url, {
  ...MODEL_OPTIONS,
  models: { type: 'string' },
  'models-dir': { type: 'string' },
  'include-base': { type: 'boolean' },
  engine: { type: 'string' },
  'served-model': { type: 'string' },
  name: { type: 'string' },
  langs: { type: 'string' },
  prompts: { type: 'string' },
  seeds: { type: 'string' },
  'max-tokens': { type: 'string' },
  limit: { type: 'string' },
  'batch-size': { type: 'string' },
  lid: { type: 'string' },
  resume: { type: 'boolean' },
  'runs-dir': { type: 'string' },
});

main(import.meta.url, async () => {
  const work = await workDir(f.work);
  const dirs = layout(work);
  const runsDir = path.resolve(f['runs-dir'] ?? dirs.runs);
  const langs = list(f.langs, DEMO_LANGS);
  const seeds = list(f.seeds, ['0']).map((s) => num(s, 'seeds', 0));
  const maxTokens = num(f['max-tokens'], 'max-tokens', 48);
  const limit = num(f.limit, 'limit');
  const batchSize = num(f['batch-size'], 'batch-size', 8);
  const backend = backendOf(f.backend);

  // The paper's template file and the test sets, named so that the language is in the run file's name.
  await mkdir(dirs.prompts, { recursive: true });
  const template = path.join(dirs.prompts, 'guanaco_prompt.txt');
  await writeFile(template, PAPER_PROMPT_TEMPLATE);
  const promptsDir = path.resolve(f.prompts ?? repoPath('data', 'demo', 'test_prompts'));
  const inputs: { lang: string; file: string }[] = [];
  for (const lang of langs) {
    const paper = path.join(promptsDir, `alpaca_eval_instructions_${lang}.json`);
    const plain = path.join(promptsDir, `${lang}.jsonl`);
    if (existsSync(paper)) inputs.push({ lang, file: paper });
    else if (existsSync(plain)) {
      const named = path.join(dirs.prompts, `demo_prompts_${lang}.jsonl`);
      await copyFile(plain, named);
      inputs.push({ lang, file: named });
    } else {
      throw new ExampleError(
        `${lang}: no prompts in ${promptsDir} (looked for ${path.basename(paper)}, ${lang}.jsonl)`,
      );
    }
  }

  // The models: local folders (merged models of example 03, optionally the base) or one served model.
  const targets: { name: string; open: () => Promise<Engine> }[] = [];
  if (f.engine) {
    if (f.engine.startsWith('local:')) {
      const dir = f.engine.slice('local:'.length);
      targets.push({
        name: f.name ?? path.basename(dir),
        open: () => openEngine(f.engine!, { local: { backend, seed: 0 } }),
      });
    } else {
      if (!f.name) throw new ExampleError('--engine openai:… needs --name (the output folder, e.g. Multi-2)');
      const served = f['served-model'];
      targets.push({
        name: f.name,
        open: () => openEngine(f.engine!, served ? { openai: { model: served } } : {}),
      });
    }
  } else {
    const modelsDir = path.resolve(f['models-dir'] ?? dirs.models);
    const names = f.models ? list(f.models, []) : foldersWith(modelsDir, 'config.json');
    if (f['include-base']) {
      const base = await baseModel({ model: f.model, preset: f.preset, baseCache: f['base-cache'] });
      targets.push({
        name: 'base',
        open: () => openEngine(`local:${base}`, { local: { backend, seed: 0 } }),
      });
    }
    for (const n of names) {
      const dir = path.join(modelsDir, n);
      if (!existsSync(path.join(dir, 'config.json'))) {
        throw new ExampleError(
          `${dir}: no merged model; run examples/03-merge.ts first (or give --models-dir)`,
        );
      }
      targets.push({ name: n, open: () => openEngine(`local:${dir}`, { local: { backend, seed: 0 } }) });
    }
    if (targets.length === 0)
      throw new ExampleError(`no models in ${modelsDir}; run examples/03-merge.ts first`);
  }

  const lid = await loadLidModel(f.lid ?? 'lid176');
  const table: Record<string, Record<string, number[]>> = {};
  for (const t of targets) {
    const engine = await t.open();
    try {
      for (const { lang, file } of inputs) {
        // A fresh run replaces the files of an earlier one (and their .eval and judge outputs); --resume continues
        // them instead (a killed run goes on where it stopped; finished files are kept as they are).
        const modelDir = path.join(runsDir, t.name);
        if (!f.resume && existsSync(modelDir)) {
          const prefix = `${testsetName(file)}-none-${path.basename(template, '.txt')}-`;
          for (const n of readdirSync(modelDir)) if (n.startsWith(prefix)) await rm(path.join(modelDir, n));
        }
        const files = await runInference({
          engine,
          model: t.name,
          input: file,
          promptTemplate: template,
          outputDir: runsDir,
          params: { ...PAPER_SAMPLING, max_tokens: maxTokens },
          seeds,
          batchSize,
          ...(limit !== undefined ? { limit } : {}),
          quiet: true,
        });
        for (const r of files) {
          const fid = await fidelityOfFile(r.file, lid, { lang });
          const evalFile = evalPathFor(r.file);
          await writeEvalCsv(evalFile, fid);
          if (fid.lang_match !== null) {
            const row = table[t.name] ?? {};
            table[t.name] = row;
            row[lang] = [...(row[lang] ?? []), fid.lang_match];
          }
          console.log(
            `${t.name} ${lang} seed ${r.seed}: ${r.total} responses, lang_match ${fid.lang_match === null ? '–' : fid.lang_match.toFixed(3)}, ` +
              `tgt_lang ${fid.tgt_lang === null ? '–' : fid.tgt_lang.toFixed(3)} → ${show(evalFile)}`,
          );
        }
      }
    } finally {
      await engine.close();
    }
  }

  console.log(`\nlanguage fidelity (lang_match, mean over seeds ${seeds.join(', ')}):`);
  console.log(['model'.padEnd(10), ...langs.map((l) => l.padStart(6))].join(''));
  for (const [model, row] of Object.entries(table)) {
    const cells = langs.map((l) => {
      const v = row[l] ?? [];
      return (v.length ? (v.reduce((a, b) => a + b, 0) / v.length).toFixed(2) : '–').padStart(6);
    });
    console.log([model.padEnd(10), ...cells].join(''));
  }
  console.log(`run files and .eval files: ${show(runsDir)}/<Model>/`);
});
