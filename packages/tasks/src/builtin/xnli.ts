import path from 'node:path';
import { findDataFile, readXnli, type XnliDoc } from '../datasets.js';
import { TasksError } from '../errors.js';
import { type Doc, defineTask, type Task, type TaskContext, type Variant } from '../task.js';

/**
 * lm-evaluation-harness's XNLI verbalisers (`lm_eval/tasks/xnli/utils.py`, MIT licence): the question word and
 * the three label words per language. The prompt of choice k is `premise, QUESTION? LABEL_k, hypothesis`.
 */
export const XNLI_VERBALISERS: Readonly<
  Record<string, { question: string; entailment: string; neutral: string; contradiction: string }>
> = {
  ar: { question: 'صحيح', entailment: 'نعم', neutral: 'لذا', contradiction: 'رقم' },
  bg: { question: 'правилно', entailment: 'да', neutral: 'така', contradiction: 'не' },
  de: { question: 'richtig', entailment: 'Ja', neutral: 'Auch', contradiction: 'Nein' },
  el: { question: 'σωστός', entailment: 'Ναί', neutral: 'Έτσι', contradiction: 'όχι' },
  en: { question: 'right', entailment: 'Yes', neutral: 'Also', contradiction: 'No' },
  es: { question: 'correcto', entailment: 'Sí', neutral: 'Asi que', contradiction: 'No' },
  fr: { question: 'correct', entailment: 'Oui', neutral: 'Aussi', contradiction: 'Non' },
  hi: { question: 'सही', entailment: 'हाँ', neutral: 'इसलिए', contradiction: 'नहीं' },
  ru: { question: 'правильно', entailment: 'Да', neutral: 'Так', contradiction: 'Нет' },
  sw: { question: 'sahihi', entailment: 'Ndiyo', neutral: 'Hivyo', contradiction: 'Hapana' },
  th: { question: 'ถูกต้อง', entailment: 'ใช่', neutral: 'ดังนั้น', contradiction: 'ไม่' },
  tr: { question: 'doğru', entailment: 'Evet', neutral: 'Böylece', contradiction: 'Hayır' },
  ur: { question: 'صحیح', entailment: 'جی ہاں', neutral: 'اس لئے', contradiction: 'نہیں' },
  vi: { question: 'đúng', entailment: 'Vâng', neutral: 'Vì vậy', contradiction: 'Không' },
  zh: { question: '正确', entailment: '是的', neutral: '所以', contradiction: '不是的' },
};

/** The nine XNLI languages the paper reports (its mean is over these). */
export const XNLI_PAPER_LANGUAGES = ['bg', 'de', 'el', 'en', 'es', 'fr', 'hi', 'ru', 'zh'] as const;

const HELP =
  'XNLI is at https://github.com/facebookresearch/XNLI (XNLI-1.0: xnli.dev.tsv) and on the Hugging Face hub ' +
  '(facebook/xnli, validation split): put xnli.<lang>.jsonl ({premise, hypothesis, label}) or xnli.dev.tsv in this ' +
  'folder, pass --data-dir, or run `polyglot data get xnli`.';

/** The three full sentences whose likelihoods are compared, in label order (entailment, neutral, contradiction). */
export function xnliChoices(doc: { premise: string; hypothesis: string }, lang: string): string[] {
  const v = XNLI_VERBALISERS[lang];
  if (!v) throw new TasksError('unknown-language', `xnli: no verbalisers for ${lang}`);
  return [v.entailment, v.neutral, v.contradiction].map(
    (label) => `${doc.premise}, ${v.question}? ${label}, ${doc.hypothesis}`,
  );
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * XNLI 0-shot in lm-evaluation-harness's `xnli_<lang>` form: an empty context, three continuations
 * `" premise, right? Yes|Also|No, hypothesis"` (per-language words), the most likely one is the prediction; accuracy
 * over the validation split (2,490 pairs per language).
 */
export const xnliTask: Task = defineTask({
  name: 'xnli',
  version: '1.0',
  description:
    'XNLI 0-shot by log-likelihood, lm-evaluation-harness prompts and per-language verbalisers; accuracy',
  outputType: 'multiple_choice',
  languages: Object.keys(XNLI_VERBALISERS),
  defaultLanguages: [...XNLI_PAPER_LANGUAGES],
  numFewshot: 0,
  metrics: [{ name: 'acc', description: 'the most likely of the three sentences carries the gold label' }],
  dataHelp: HELP,
  async loadDocs(variant: Variant, ctx: TaskContext): Promise<Doc[]> {
    const lang = variant.lang!;
    const file = findDataFile(
      ctx.dataDir,
      [
        `xnli.${lang}.jsonl`,
        `xnli.${lang}.json`,
        path.join(lang, 'validation.jsonl'),
        'xnli.dev.tsv',
        path.join('XNLI-1.0', 'xnli.dev.tsv'),
      ],
      `xnli (${lang})`,
      HELP,
    );
    const docs = await readXnli(file, lang);
    if (docs.length === 0)
      throw new TasksError('data-missing', `xnli (${lang}): ${file} has no ${lang} pairs. ${HELP}`);
    return docs;
  },
  docId: (doc) => (doc as XnliDoc).id,
  target: (doc) => (doc as XnliDoc).label,
  buildRequest(doc, variant) {
    return {
      type: 'multiple_choice',
      context: '',
      choices: xnliChoices(doc as XnliDoc, variant.lang!).map((c) => ` ${c}`),
    };
  },
  process(doc, response) {
    if (response.type !== 'multiple_choice' || response.logprobs.length !== 3) {
      throw new TasksError(
        'bad-response',
        `xnli: expected 3 log-likelihoods, got a ${response.type} response`,
      );
    }
    const best = argmax(response.logprobs);
    return { filtered: { none: best }, scores: { 'acc,none': best === (doc as XnliDoc).label ? 1 : 0 } };
  },
  config(variant) {
    return {
      task: variant.name,
      tag: 'xnli',
      dataset_path: 'xnli',
      dataset_name: variant.lang,
      validation_split: 'validation',
      output_type: 'multiple_choice',
      doc_to_text: '',
      doc_to_target: 'label',
      target_delimiter: ' ',
      num_fewshot: 0,
      metric_list: [{ metric: 'acc', aggregation: 'mean', higher_is_better: true }],
    };
  },
});
