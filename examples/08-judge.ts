// 08 — LLM-as-judge helpfulness of the chat responses (@polyglot/judge, @polyglot/infer's server).
// A judge model reads each task and response and answers JSON {"reasoning", "score"} on a 1–6 helpfulness scale
// (temperature 0, seed 42, JSON mode where the server has it); items are sampled with seed 42 so every model is
// judged on the same prompts; unparseable answers are counted and left out of the mean, as in the paper. Outputs are
// named as the paper's: `<run file>-l<N>-ds42-as42-source-system.jsonl`, next to the run files of example 04.
//
// Embedded defaults — there is no real judge offline, so this is honest, not meaningful: the example serves the
// small base model itself through @polyglot/infer's OpenAI-compatible server on 127.0.0.1 (a free port) and judges
// with it, 4 items per run file. The requests, JSON-mode fallback, parsing, output files and summary are the real
// ones; the "judge" cannot follow a rubric, so nearly all of its answers are unparseable (reported as such). It
// gets a compact rubric (the same 1–6 scale and JSON answer) in one user message: the full rubric's system message
// is 1,157 bytes, beyond the byte-level model's 512 positions, and the guanaco chat template has no system turn:
//   node --import tsx examples/08-judge.ts
// Real scale (the paper's judge: gpt-3.5-turbo-1106 on 300 items per file; needs OPENAI_API_KEY; or any
// OpenAI-compatible endpoint, e.g. a vLLM server with a strong open model):
//   OPENAI_API_KEY=… node --import tsx examples/08-judge.ts --judge-url https://api.openai.com/v1 \
//     --judge-model gpt-3.5-turbo-1106 --limit 300 --max-tokens 512 --max-cost 5
//
// Flags: --judge-url URL --judge-model NAME (a real judge; the full helpfulness rubric) | --judge-dir DIR (a local
//   model folder to serve as the judge; default the base model: --model DIR or the smoke preset); --input FILE
//   (repeatable; default every chat run file in WORK/runs/<Model>/); --limit 4; --max-tokens 24; --concurrency 8;
//   --max-cost USD; --rubric full|compact; --backend wasm; --runs-dir DIR; --work DIR.
// Writes: WORK/runs/<Model>/<run file stem>-l<N>-ds42-as42-source-system.jsonl (each record + eval_score,
//   eval_reasoning, eval_meta); WORK/judge-cache.sqlite (the answer cache: a rerun sends no requests).
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { LocalEngine, OpenAIServer } from '@polyglot/infer';
import { HELPFULNESS_RUBRIC, JudgeCache, JudgeClient, judgeFile, type Rubric } from '@polyglot/judge';
import {
  backendOf,
  baseModel,
  ExampleError,
  flags,
  layout,
  MODEL_OPTIONS,
  main,
  num,
  show,
  subfolders,
  workDir,
} from './lib/common.js';

const f = flags(import.meta.url, {
  ...MODEL_OPTIONS,
  'judge-url': { type: 'string' },
  'judge-model': { type: 'string' },
  'judge-dir': { type: 'string' },
  input: { type: 'string', multiple: true },
  limit: { type: 'string' },
  'max-tokens': { type: 'string' },
  concurrency: { type: 'string' },
  'max-cost': { type: 'string' },
  rubric: { type: 'string' },
  'runs-dir': { type: 'string' },
});

/**
 * The compact rubric of the embedded default: the helpfulness scale and answer format of the full rubric in one user
 * message (no system turn) short enough that the task, the response and the answer fit a 512-token model.
 */
const COMPACT_RUBRIC: Rubric = {
  name: 'helpfulness-compact',
  min: 1,
  max: 6,
  criteria: '',
  system: '',
  user:
    'Rate the response to the task for helpfulness from 1 (not helpful) to 6 (highly helpful). ' +
    'Answer only JSON: {"reasoning": "...", "score": N}\nTask: {{instruction}}\nResponse: {{response}}',
};

/** A chat run file of example 04 (not a judge output, not a task samples file). */
const RUN_FILE = /-none-.+-s\d+-k-?\d+-p[\d.e-]+-t[\d.e-]+-b\d+\.jsonl$/;

main(import.meta.url, async () => {
  const work = await workDir(f.work);
  const dirs = layout(work);
  const runsDir = path.resolve(f['runs-dir'] ?? dirs.runs);
  const limit = num(f.limit, 'limit', 4);
  const maxTokens = num(f['max-tokens'], 'max-tokens', f['judge-url'] ? 512 : 24);
  const concurrency = num(f.concurrency, 'concurrency', 8);
  const maxCost = num(f['max-cost'], 'max-cost');

  const inputs = f.input
    ? f.input.map((p) => path.resolve(p))
    : subfolders(runsDir)
        .flatMap((m) =>
          readdirSync(path.join(runsDir, m))
            .filter((n) => RUN_FILE.test(n))
            .map((n) => path.join(runsDir, m, n)),
        )
        .sort();
  if (inputs.length === 0)
    throw new ExampleError(
      `no chat run files in ${runsDir}/<Model>/; run examples/04-chat-fidelity.ts first`,
    );
  for (const i of inputs) if (!existsSync(i)) throw new ExampleError(`--input ${i}: no such file`);

  // The judge: a real endpoint, or the small local model served on a free port of 127.0.0.1.
  let server: OpenAIServer | null = null;
  let engine: LocalEngine | null = null;
  let baseURL: string;
  let model: string;
  let namespace: string;
  let rubric: Rubric;
  if (f['judge-url']) {
    if (!f['judge-model'])
      throw new ExampleError('--judge-url needs --judge-model (e.g. gpt-3.5-turbo-1106)');
    baseURL = f['judge-url'];
    model = f['judge-model'];
    namespace = baseURL;
    rubric = f.rubric === 'compact' ? COMPACT_RUBRIC : HELPFULNESS_RUBRIC;
  } else {
    if (f['judge-model']) throw new ExampleError('--judge-model names a model at --judge-url; give both');
    const dir = f['judge-dir']
      ? path.resolve(f['judge-dir'])
      : await baseModel({ model: f.model, preset: f.preset, baseCache: f['base-cache'] });
    engine = await LocalEngine.load({
      model: dir,
      backend: backendOf(f.backend),
      chatTemplate: 'guanaco',
      seed: 0,
    });
    server = await OpenAIServer.start({ engine, host: '127.0.0.1', port: 0, servedModelName: 'local-judge' });
    baseURL = `${server.url}/v1`;
    model = 'local-judge';
    namespace = dir;
    rubric = f.rubric === 'full' ? HELPFULNESS_RUBRIC : COMPACT_RUBRIC;
    console.log(
      `judge: ${show(dir)} served at ${server.url} (OpenAI-compatible; not a real judge, see the header)`,
    );
  }

  const client = new JudgeClient({
    baseURL,
    model,
    cache: JudgeCache.open(dirs.judgeCache),
    cacheNamespace: namespace,
    ...(maxCost !== undefined ? { maxCost } : {}),
  });
  let judged = 0;
  let unparseable = 0;
  let failed = 0;
  try {
    for (const input of inputs) {
      const r = await judgeFile({
        input,
        client,
        rubric,
        limit,
        dataSeed: 42,
        apiSeed: 42,
        maxTokens,
        concurrency,
      });
      judged += r.judged;
      unparseable += r.unparseable;
      failed += r.failed;
      console.log(
        `${show(input)}: ${r.total} items — ${r.judged} scored (mean ${r.mean === null ? '–' : r.mean.toFixed(2)}), ` +
          `${r.unparseable} unparseable, ${r.failed} failed; ${r.requests} requests, ${r.cacheHits} cached → ${path.basename(r.output)}`,
      );
      if (r.stopped === 'budget')
        throw new ExampleError(`--max-cost ${maxCost} reached; rerun with a larger budget to go on`);
    }
  } finally {
    client.close();
    await server?.close();
    await engine?.close();
  }
  console.log(
    `\n${inputs.length} files: ${judged} answers scored, ${unparseable} unparseable, ${failed} failed` +
      (server ? ' (a small local model is no judge: unparseable answers are expected here)' : ''),
  );
  console.log(
    `judge outputs next to the run files in ${show(runsDir)}/<Model>/; cache ${show(dirs.judgeCache)}`,
  );
});
