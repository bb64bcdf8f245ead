import path from 'node:path';
import { Xoshiro128 } from '@polyglot/infer';
import { loadLidModel, scoreFidelity } from '@polyglot/lid';
import { findDataFile, type InstructionDoc, readInstructions } from '../datasets.js';
import { renderPrompt } from '../prompts.js';
import {
  type Doc,
  defineTask,
  type ProcessResult,
  type Task,
  type TaskContext,
  type TaskOptionSpec,
  type TaskResponse,
  type Variant,
} from '../task.js';
import {
  boolOption,
  firstString,
  fittedPrompt,
  intOption,
  PAPER_CHAT_PARAMS,
  responseText,
  SEEDS,
  stringOption,
  TEMPLATE_OPTION,
} from './common.js';

/** English and the 17 languages the paper translated the AlpacaEval instructions into. */
export const CHAT_LANGUAGES = [
  'bg',
  'ca',
  'da',
  'de',
  'el',
  'en',
  'es',
  'fi',
  'fr',
  'hi',
  'hu',
  'is',
  'ko',
  'no',
  'ru',
  'sv',
  'vi',
  'zh',
] as const;

const OPTIONS: Record<string, TaskOptionSpec> = {
  template: TEMPLATE_OPTION,
  lid_model: {
    description: 'language-ID model of @polyglot/lid (lid176, openlid, glotlid or a path)',
    default: 'lid176',
  },
  strip_quotes: {
    description:
      'remove the double quotes around the translated instructions (the paper left them in the prompt, by a bug; default false keeps them, as the paper did)',
    default: false,
  },
  judge_items: {
    description:
      'with a judge: how many items per language are judged, a sample drawn with seed 42 (the same ids for every model); 0 judges all',
    default: 300,
  },
};

const HELP =
  "The paper's translated AlpacaEval instructions are JSON lines of {instruction}: put alpaca_eval_instructions_<lang>.json " +
  'in this folder (English: alpaca_eval.json from AlpacaEval works too), pass --data-dir, or run `polyglot data get paper-alpaca-eval` (and `alpaca-eval` for English).';

/** `k` of the indices 0…n−1, drawn without replacement with a seeded generator (partial Fisher–Yates), sorted. */
export function sampleIndices(n: number, k: number, seed = 42): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  if (k <= 0 || k >= n) return idx;
  const rng = Xoshiro128.fromSeed(seed);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng.nextFloat() * (n - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k).sort((a, b) => a - b);
}

async function fidelity(doc: Doc, response: TaskResponse, variant: Variant, ctx: TaskContext) {
  const lid = await loadLidModel(stringOption(ctx, OPTIONS, 'lid_model'));
  const text = responseText(response, 'chat');
  const r = scoreFidelity([{ source: (doc as InstructionDoc).instruction, response: text }], lid, {
    lang: variant.lang,
  });
  return { text, langMatch: r.lang_match ?? 0, tgtLang: r.tgt_lang };
}

async function processChat(
  doc: Doc,
  response: TaskResponse,
  variant: Variant,
  ctx: TaskContext,
): Promise<ProcessResult> {
  const f = await fidelity(doc, response, variant, ctx);
  return {
    filtered: { none: f.text },
    scores: { 'lang_match,none': f.langMatch, 'tgt_lang,none': f.tgtLang },
  };
}

/**
 * Chat: AlpacaEval instructions in any language, answered with the paper's chat sampling (temperature 0.8, top-p
 * 0.9, top-k 50, frequency penalty 0.2, up to 1,024 tokens, stop at `### Human:`/`### Assistant:`), seeds 0, 42 and
 * 723. Metrics: `lang_match` (the response's top-1 LID label is the language of the instruction's), `tgt_lang`
 * (…is the expected language), and with a judge `helpfulness` (1–6, on a seeded sample of `judge_items` items).
 */
export const chatTask: Task = defineTask({
  name: 'chat',
  version: '1.0',
  description:
    'AlpacaEval instructions in any language; language fidelity (lang_match, tgt_lang) by fastText LID, helpfulness by a judge',
  outputType: 'generate_until',
  languages: [...CHAT_LANGUAGES],
  defaultLanguages: ['en', 'de', 'bg', 'is'],
  generation: { params: PAPER_CHAT_PARAMS, seeds: SEEDS },
  metrics: [
    {
      name: 'lang_match',
      description: 'share of responses in the language of their prompt (LID labels equal)',
    },
    { name: 'tgt_lang', description: 'share of responses in the expected language' },
    { name: 'helpfulness', description: 'mean judge score, 1–6 (only with a judge)' },
  ],
  options: OPTIONS,
  dataHelp: HELP,
  dataset: 'paper-alpaca-eval',
  async loadDocs(variant, ctx) {
    const lang = variant.lang!;
    const names = [
      `alpaca_eval_instructions_${lang}.json`,
      `alpaca_eval_instructions_${lang}.jsonl`,
      path.join('test_prompts', `${lang}.jsonl`),
    ];
    if (lang === 'en') names.push('alpaca_eval.json', path.join('..', 'alpaca-eval', 'alpaca_eval.json'));
    const file = findDataFile(ctx.dataDir, names, `chat (${lang})`, HELP);
    return readInstructions(file, boolOption(ctx, OPTIONS, 'strip_quotes'));
  },
  docId: (doc) => (doc as InstructionDoc).id,
  buildRequest(doc, _variant, ctx) {
    return {
      type: 'generate_until',
      prompt: fittedPrompt(ctx, (doc as InstructionDoc).instruction, (i) =>
        renderPrompt(i, '', stringOption(ctx, OPTIONS, 'template')),
      ),
      params: PAPER_CHAT_PARAMS,
    };
  },
  process: processChat,
  async processBatch(items, variant, ctx): Promise<ProcessResult[]> {
    const out: ProcessResult[] = [];
    for (const it of items) out.push(await processChat(it.doc, it.response, variant, ctx));
    if (!ctx.judge) return out;
    const judged = new Set(sampleIndices(ctx.docCount ?? 0, intOption(ctx, OPTIONS, 'judge_items')));
    const todo = items
      .map((it, k) => ({ it, k }))
      .filter(({ it }) => ctx.docCount === undefined || judged.has(it.index));
    const scores = await ctx.judge.judge(
      todo.map(({ it }) => ({
        instruction: (it.doc as InstructionDoc).instruction,
        response: responseText(it.response, 'chat'),
      })),
    );
    todo.forEach(({ k }, j) => {
      out[k]!.scores['helpfulness,none'] = scores[j] ?? null;
    });
    return out;
  },
  docFromRecord(record) {
    const instruction = firstString(record, ['source', 'instruction']);
    return instruction === null ? null : { id: String(record.id ?? ''), instruction };
  },
  config(variant) {
    return {
      task: variant.name,
      dataset_path: 'tatsu-lab/alpaca_eval (machine-translated, as the paper)',
      dataset_name: `alpaca_eval_instructions_${variant.lang}`,
      output_type: 'generate_until',
      generation_kwargs: PAPER_CHAT_PARAMS,
      metric_list: ['lang_match', 'tgt_lang', 'helpfulness'].map((metric) => ({
        metric,
        aggregation: 'mean',
        higher_is_better: true,
      })),
      prompt: 'guanaco: ### Human: {{ instruction }}### Assistant:',
    };
  },
});
