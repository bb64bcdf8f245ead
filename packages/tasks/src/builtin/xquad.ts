import path from 'node:path';
import { findDataFile, readSquad, type SquadDoc } from '../datasets.js';
import { TasksError } from '../errors.js';
import { renderPrompt, XQUAD_PROMPTS, xquadInstruction } from '../prompts.js';
import { exactMatch, f1Score } from '../squad.js';
import {
  type Doc,
  defineTask,
  type Task,
  type TaskContext,
  type TaskOptionSpec,
  type Variant,
} from '../task.js';
import { cleanXquadResponse, XQUAD_LEAD_INS, xquadAnswerSpan, xquadContainment } from '../xquad.js';
import {
  firstString,
  fittedPrompt,
  intOption,
  paperQaParams,
  responseText,
  SEEDS,
  stringOption,
  TEMPLATE_OPTION,
} from './common.js';

/** The 12 languages of XQuAD. */
export const XQUAD_LANGUAGES = [
  'ar',
  'de',
  'el',
  'en',
  'es',
  'hi',
  'ro',
  'ru',
  'th',
  'tr',
  'vi',
  'zh',
] as const;

const OPTIONS: Record<string, TaskOptionSpec> = {
  template: TEMPLATE_OPTION,
  window: {
    description: 'characters of the cleaned response searched by the containment score',
    default: 50,
  },
};

const PARAMS = paperQaParams(128);

const HELP =
  'XQuAD (CC BY-SA 4.0) is at https://github.com/google-deepmind/xquad: put xquad.<lang>.json (SQuAD v1.1 JSON) in ' +
  'this folder, pass --data-dir, or run `polyglot data get xquad`.';

/** Lead-ins removed before scoring: the defaults plus our prompts' answer openings (without the quote). */
const LEAD_INS = [
  ...XQUAD_LEAD_INS,
  ...Object.values(XQUAD_PROMPTS).map((p) => p.answerPrefix.replace(/["\s]+$/u, '')),
];

function promptOf(variant: Variant) {
  const p = XQUAD_PROMPTS[variant.promptLang ?? 'en'];
  if (!p) throw new TasksError('unknown-language', `xquad: no prompt template in ${variant.promptLang}`);
  return p;
}

/** The question of a rendered XQuAD prompt (any of our prompt languages), for foreign run files. */
function questionFromPrompt(prompt: string): string | null {
  for (const p of Object.values(XQUAD_PROMPTS)) {
    const start = prompt.indexOf(`\n\n${p.question}\n\n`);
    if (start < 0) continue;
    const from = start + p.question.length + 4;
    const end = prompt.indexOf(`\n\n${p.note}`, from);
    if (end > from) return prompt.slice(from, end);
  }
  return null;
}

/**
 * XQuAD, generative, as the paper runs it: the passage and question in the data language, the instructions in the
 * prompt language (`en:de`: English instructions, German passage), the assistant turn opened with "Based on the
 * passage, the answer to the question is \"". Metrics: `containment` (the paper's score: a normalised reference
 * within the first 50 characters of the cleaned response), `exact_match` and `f1` (SQuAD v1.1 with multilingual
 * normalisation, on the answer span up to the closing quote).
 */
export const xquadTask: Task = defineTask({
  name: 'xquad',
  version: '1.0',
  description:
    "XQuAD extractive QA, generative in the paper's prompt format; containment@50 (paper) and SQuAD EM/F1",
  outputType: 'generate_until',
  languages: [...XQUAD_LANGUAGES],
  promptLanguages: Object.keys(XQUAD_PROMPTS),
  generation: { params: PARAMS, seeds: SEEDS },
  metrics: [
    {
      name: 'containment',
      description: "the paper's score: reference in the first 50 characters of the cleaned response",
    },
    {
      name: 'exact_match',
      description: 'SQuAD exact match of the quoted answer span, multilingual normalisation',
    },
    { name: 'f1', description: 'SQuAD token F1 of the quoted answer span, multilingual normalisation' },
  ],
  options: OPTIONS,
  dataHelp: HELP,
  async loadDocs(variant: Variant, ctx: TaskContext): Promise<Doc[]> {
    const lang = variant.lang!;
    const file = findDataFile(
      ctx.dataDir,
      [`xquad.${lang}.json`, `xquad.${lang}.jsonl`, `${lang}.json`, path.join(lang, 'test.jsonl')],
      `xquad (${lang})`,
      HELP,
    );
    return readSquad(file);
  },
  docId: (doc) => (doc as SquadDoc).id,
  target: (doc) => (doc as SquadDoc).answers,
  buildRequest(doc, variant, ctx) {
    const d = doc as SquadDoc;
    const p = promptOf(variant);
    const template = stringOption(ctx, OPTIONS, 'template');
    return {
      type: 'generate_until',
      prompt: fittedPrompt(ctx, xquadInstruction(p, d.context, d.question), (i) =>
        renderPrompt(i, p.answerPrefix, template),
      ),
      params: PARAMS,
    };
  },
  process(doc, response, variant, ctx) {
    const d = doc as SquadDoc;
    const text = responseText(response, 'xquad');
    const lang = variant.lang!;
    const clean = { question: d.question, leadIns: LEAD_INS };
    const span = xquadAnswerSpan(text, clean);
    const window = intOption(ctx, OPTIONS, 'window');
    const has = d.answers.length > 0;
    return {
      filtered: { none: cleanXquadResponse(text, clean), answer_span: span },
      scores: {
        'containment,none': has ? xquadContainment(text, d.answers, { ...clean, lang, window }) : null,
        'exact_match,none': has ? exactMatch(span, d.answers, lang) : null,
        'f1,none': has ? f1Score(span, d.answers, lang) : null,
      },
    };
  },
  docFromRecord(record) {
    const a = record.answers ?? record.answer ?? record.reference;
    const answers = Array.isArray(a)
      ? a.filter((x): x is string => typeof x === 'string')
      : typeof a === 'string'
        ? [a]
        : [];
    if (answers.length === 0) return null;
    const prompt = firstString(record, ['source', 'instruction', 'prompt']) ?? '';
    const question = firstString(record, ['question']) ?? questionFromPrompt(prompt) ?? '';
    return { id: String(record.id ?? ''), context: '', question, answers };
  },
  config(variant) {
    return {
      task: variant.name,
      dataset_path: 'google/xquad',
      dataset_name: `xquad.${variant.lang}`,
      prompt_language: variant.promptLang,
      data_language: variant.lang,
      output_type: 'generate_until',
      generation_kwargs: PARAMS,
      metric_list: ['containment', 'exact_match', 'f1'].map((metric) => ({
        metric,
        aggregation: 'mean',
        higher_is_better: true,
      })),
      prompt: "ours (English: the paper's wording); guanaco chat template; assistant turn opens the quote",
    };
  },
});
