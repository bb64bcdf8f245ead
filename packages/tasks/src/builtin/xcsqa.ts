import path from 'node:path';
import { findDataFile, readXcsqa, type XcsqaDoc } from '../datasets.js';
import { TasksError } from '../errors.js';
import { renderPrompt, XCSQA_PROMPTS, xcsqaInstruction } from '../prompts.js';
import {
  type Doc,
  defineTask,
  type Task,
  type TaskContext,
  type TaskOptionSpec,
  type Variant,
} from '../task.js';
import { extractChoice } from '../xcsqa.js';
import {
  firstString,
  fittedPrompt,
  paperQaParams,
  responseText,
  SEEDS,
  stringOption,
  TEMPLATE_OPTION,
} from './common.js';

/** The 16 languages of X-CSQA (X-CSR's `jap` is `ja` here). */
export const XCSQA_LANGUAGES = [
  'ar',
  'de',
  'en',
  'es',
  'fr',
  'hi',
  'it',
  'ja',
  'nl',
  'pl',
  'pt',
  'ru',
  'sw',
  'ur',
  'vi',
  'zh',
] as const;

const HELP =
  'X-CSQA (the X-CSR benchmark, https://inklab.usc.edu/XCSR/) ships dev files with answers: put X-CSR_datasets/X-CSQA/<lang>/dev.jsonl ' +
  '(the release zip, extracted) or xcsqa.<lang>.jsonl in this folder, pass --data-dir, or run `polyglot data get xcsqa`.';

const PARAMS = paperQaParams(32);

const OPTIONS: Record<string, TaskOptionSpec> = { template: TEMPLATE_OPTION };

const MC_OPTIONS: Record<string, TaskOptionSpec> = {
  template: TEMPLATE_OPTION,
  mc_target: {
    description:
      "what is scored after the prompt: `letter` (the answer letter, the paper's format) or `text` (the option's text)",
    default: 'letter',
  },
};

const LETTERS = ['A', 'B', 'C', 'D', 'E'];

async function loadXcsqa(variant: Variant, ctx: TaskContext): Promise<Doc[]> {
  const lang = variant.lang!;
  const xcsr = lang === 'ja' ? 'jap' : lang;
  const file = findDataFile(
    ctx.dataDir,
    [
      path.join('X-CSR_datasets', 'X-CSQA', xcsr, 'dev.jsonl'),
      path.join('X-CSQA', xcsr, 'dev.jsonl'),
      path.join(xcsr, 'dev.jsonl'),
      `xcsqa.${lang}.jsonl`,
      `xcsqa_dev_${lang}_${lang}.json`,
    ],
    `xcsqa (${lang})`,
    HELP,
  );
  const docs = await readXcsqa(file);
  docs.forEach((d, i) => {
    if (d.answer === null || !LETTERS.slice(0, d.options.length).includes(d.answer)) {
      throw new TasksError(
        'bad-data',
        `${file}: item ${i + 1} (${d.id}) has no answer letter among ${LETTERS.slice(0, d.options.length).join(', ')}; score the dev split (the test split hides its answers)`,
      );
    }
  });
  return docs;
}

function promptOf(variant: Variant, task: string) {
  const p = XCSQA_PROMPTS[variant.promptLang ?? 'en'];
  if (!p) throw new TasksError('unknown-language', `${task}: no prompt template in ${variant.promptLang}`);
  return p;
}

function prompt(doc: XcsqaDoc, variant: Variant, ctx: TaskContext, task: string, template: string): string {
  const instruction = xcsqaInstruction(promptOf(variant, task), doc.question, doc.options);
  return fittedPrompt(ctx, instruction, (i) => renderPrompt(i, '"', template));
}

/** Options listed as `A: …` lines in a rendered prompt (foreign run files without an `options` field). */
function optionsFromPrompt(text: string): string[] | null {
  const out: string[] = [];
  for (const m of text.matchAll(/^([A-E]): (.*)$/gmu)) {
    if (m[1] !== LETTERS[out.length]) return null;
    out.push(m[2]!);
  }
  return out.length >= 2 ? out : null;
}

/**
 * X-CSQA, generative, as the paper runs it: the question and its five options A–E in the prompt language's
 * instructions, the assistant turn opening a double quote; the answer is read from the start of the response with
 * {@link extractChoice}. Metric: `acc`.
 */
export const xcsqaTask: Task = defineTask({
  name: 'xcsqa',
  version: '1.0',
  description:
    "X-CSQA commonsense QA, generative in the paper's prompt format; the answer letter read from the response",
  outputType: 'generate_until',
  dataset: 'xcsqa',
  languages: [...XCSQA_LANGUAGES],
  promptLanguages: Object.keys(XCSQA_PROMPTS),
  defaultLanguages: XCSQA_LANGUAGES.filter((l) => l in XCSQA_PROMPTS),
  generation: { params: PARAMS, seeds: SEEDS },
  metrics: [{ name: 'acc', description: 'share of responses whose extracted letter is the answer' }],
  options: OPTIONS,
  dataHelp: HELP,
  loadDocs: loadXcsqa,
  docId: (doc) => (doc as XcsqaDoc).id,
  target: (doc) => (doc as XcsqaDoc).answer,
  buildRequest(doc, variant, ctx) {
    return {
      type: 'generate_until',
      prompt: prompt(doc as XcsqaDoc, variant, ctx, 'xcsqa', stringOption(ctx, OPTIONS, 'template')),
      params: PARAMS,
    };
  },
  process(doc, response) {
    const d = doc as XcsqaDoc;
    const choice = extractChoice(responseText(response, 'xcsqa'), d.options);
    return {
      filtered: { none: choice?.letter ?? null },
      scores: { 'acc,none': choice?.letter === d.answer ? 1 : 0 },
    };
  },
  docFromRecord(record) {
    const a = record.answer ?? record.reference ?? record.answerKey;
    const answer = Array.isArray(a) ? a[0] : a;
    if (typeof answer !== 'string') return null;
    const prompt = firstString(record, ['source', 'instruction', 'prompt']) ?? '';
    const options = Array.isArray(record.options) ? (record.options as string[]) : optionsFromPrompt(prompt);
    if (!options) return null;
    return {
      id: String(record.id ?? ''),
      question: firstString(record, ['question']) ?? '',
      options,
      answer: answer.toUpperCase(),
    };
  },
  config(variant) {
    return {
      task: variant.name,
      dataset_path: 'INK-USC/xcsr',
      dataset_name: `X-CSQA-${variant.lang}`,
      validation_split: 'dev',
      prompt_language: variant.promptLang,
      data_language: variant.lang,
      output_type: 'generate_until',
      generation_kwargs: PARAMS,
      metric_list: [{ metric: 'acc', aggregation: 'mean', higher_is_better: true }],
      prompt: "ours (English: the paper's wording); guanaco chat template; assistant turn opens the quote",
    };
  },
});

/**
 * X-CSQA by log-likelihood: after the same prompt (which ends with the opening quote), the five answer letters —
 * or, with `mc_target=text`, the five options' texts — are scored and the most likely one is the answer. Metrics:
 * `acc`, and `acc_norm` (log-likelihood per character of the continuation).
 */
export const xcsqaMcTask: Task = defineTask({
  name: 'xcsqa_mc',
  version: '1.0',
  description:
    "X-CSQA by log-likelihood over the five options after the paper's prompt (letters, or option texts)",
  outputType: 'multiple_choice',
  dataset: 'xcsqa',
  languages: [...XCSQA_LANGUAGES],
  promptLanguages: Object.keys(XCSQA_PROMPTS),
  defaultLanguages: XCSQA_LANGUAGES.filter((l) => l in XCSQA_PROMPTS),
  metrics: [
    { name: 'acc', description: 'the most likely continuation is the answer' },
    { name: 'acc_norm', description: 'the continuation most likely per character is the answer' },
  ],
  options: MC_OPTIONS,
  dataHelp: HELP,
  loadDocs: loadXcsqa,
  docId: (doc) => (doc as XcsqaDoc).id,
  target: (doc) => (doc as XcsqaDoc).answer,
  buildRequest(doc, variant, ctx) {
    const d = doc as XcsqaDoc;
    const mode = stringOption(ctx, MC_OPTIONS, 'mc_target');
    if (mode !== 'letter' && mode !== 'text') {
      throw new TasksError(
        'bad-option',
        `xcsqa_mc: mc_target must be letter or text, got ${JSON.stringify(mode)}`,
      );
    }
    return {
      type: 'multiple_choice',
      context: prompt(d, variant, ctx, 'xcsqa_mc', stringOption(ctx, MC_OPTIONS, 'template')),
      choices: mode === 'letter' ? LETTERS.slice(0, d.options.length) : d.options,
    };
  },
  process(doc, response, _variant, ctx) {
    const d = doc as XcsqaDoc;
    if (response.type !== 'multiple_choice' || response.logprobs.length !== d.options.length) {
      throw new TasksError(
        'bad-response',
        `xcsqa_mc: expected ${d.options.length} log-likelihoods, got a ${response.type} response`,
      );
    }
    const gold = LETTERS.indexOf(d.answer!);
    const text = stringOption(ctx, MC_OPTIONS, 'mc_target') === 'text';
    const chars = (i: number) => (text ? Math.max(1, d.options[i]!.length) : 1);
    const best = argmax(response.logprobs);
    const bestNorm = argmax(response.logprobs.map((lp, i) => lp / chars(i)));
    return {
      filtered: { none: LETTERS[best] ?? null },
      scores: { 'acc,none': best === gold ? 1 : 0, 'acc_norm,none': bestNorm === gold ? 1 : 0 },
    };
  },
  config(variant) {
    return {
      task: variant.name,
      dataset_path: 'INK-USC/xcsr',
      dataset_name: `X-CSQA-${variant.lang}`,
      validation_split: 'dev',
      prompt_language: variant.promptLang,
      data_language: variant.lang,
      output_type: 'multiple_choice',
      metric_list: [
        { metric: 'acc', aggregation: 'mean', higher_is_better: true },
        { metric: 'acc_norm', aggregation: 'mean', higher_is_better: true },
      ],
    };
  },
});

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
