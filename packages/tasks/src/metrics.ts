/**
 * Metrics by name, as YAML tasks (`metric_list`) use them: lm-evaluation-harness's (`acc`, `acc_norm`,
 * `exact_match`, `perplexity`) and ours (`squad_exact_match`, `squad_f1`, `xquad_contains`, `contains`).
 */
import { TasksError } from './errors.js';
import { exactMatch, f1Score } from './squad.js';
import type { Aggregation, OutputType } from './task.js';
import { xquadContainment } from './xquad.js';

/** What a generation metric compares: the filtered response and the reference answers. */
export interface GenerationMetricInput {
  prediction: string;
  references: string[];
  kwargs: Record<string, unknown>;
}

/** What a multiple-choice metric reads: the choices' log-likelihoods and the gold index (or indices). */
export interface ChoiceMetricInput {
  logprobs: number[];
  isGreedy: boolean[];
  choices: string[];
  gold: number[];
  kwargs: Record<string, unknown>;
}

export interface LoglikelihoodMetricInput {
  logprob: number;
  isGreedy: boolean;
  kwargs: Record<string, unknown>;
}

export interface MetricFunction {
  outputTypes: readonly OutputType[];
  aggregation: Aggregation;
  higherIsBetter: boolean;
  description: string;
  generation?(input: GenerationMetricInput): number;
  choice?(input: ChoiceMetricInput): number;
  loglikelihood?(input: LoglikelihoodMetricInput): number;
}

const ASCII_PUNCT_RE = /[!-/:-@[-`{-~]/g;

function regexesToIgnore(kwargs: Record<string, unknown>): RegExp[] {
  const r = kwargs.regexes_to_ignore;
  if (r === undefined || r === null) return [];
  const list = typeof r === 'string' ? [r] : r;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw new TasksError(
      'bad-metric',
      'exact_match: regexes_to_ignore must be a list of regular expressions',
    );
  }
  return (list as string[]).map((p) => new RegExp(p, 'gu'));
}

/** Hugging Face `evaluate`'s exact_match, as lm-evaluation-harness calls it (no stripping unless a filter strips). */
export function hfExactMatch(
  prediction: string,
  reference: string,
  kwargs: Record<string, unknown> = {},
): number {
  let p = prediction;
  let r = reference;
  for (const re of regexesToIgnore(kwargs)) {
    p = p.replace(re, '');
    r = r.replace(re, '');
  }
  if (kwargs.ignore_case) {
    p = p.toLowerCase();
    r = r.toLowerCase();
  }
  if (kwargs.ignore_punctuation) {
    p = p.replace(ASCII_PUNCT_RE, '');
    r = r.replace(ASCII_PUNCT_RE, '');
  }
  if (kwargs.ignore_numbers) {
    p = p.replace(/[0-9]/g, '');
    r = r.replace(/[0-9]/g, '');
  }
  return p === r ? 1 : 0;
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

const lang = (kwargs: Record<string, unknown>) => (typeof kwargs.lang === 'string' ? kwargs.lang : 'en');

/** The metrics YAML tasks can name. */
export const METRICS: Readonly<Record<string, MetricFunction>> = {
  acc: {
    outputTypes: ['multiple_choice', 'loglikelihood'],
    aggregation: 'mean',
    higherIsBetter: true,
    description:
      'multiple_choice: 1 when the choice with the highest log-likelihood is the gold one; loglikelihood: 1 when the target is the greedy continuation',
    choice: ({ logprobs, gold }) => (gold.includes(argmax(logprobs)) ? 1 : 0),
    loglikelihood: ({ isGreedy }) => (isGreedy ? 1 : 0),
  },
  acc_norm: {
    outputTypes: ['multiple_choice'],
    aggregation: 'mean',
    higherIsBetter: true,
    description: 'accuracy with each log-likelihood divided by the length of its choice in characters',
    choice: ({ logprobs, choices, gold }) =>
      gold.includes(argmax(logprobs.map((lp, i) => lp / Math.max(1, choices[i]!.length)))) ? 1 : 0,
  },
  perplexity: {
    outputTypes: ['loglikelihood'],
    aggregation: 'perplexity',
    higherIsBetter: false,
    description: 'exp of minus the mean log-likelihood of the targets',
    loglikelihood: ({ logprob }) => logprob,
  },
  exact_match: {
    outputTypes: ['generate_until'],
    aggregation: 'mean',
    higherIsBetter: true,
    description:
      'Hugging Face evaluate exact_match (kwargs ignore_case, ignore_punctuation, ignore_numbers, regexes_to_ignore), maximised over references',
    generation: ({ prediction, references, kwargs }) =>
      Math.max(0, ...references.map((r) => hfExactMatch(prediction, r, kwargs))),
  },
  squad_exact_match: {
    outputTypes: ['generate_until'],
    aggregation: 'mean',
    higherIsBetter: true,
    description: 'SQuAD exact match with multilingual normalisation (kwarg lang, default en)',
    generation: ({ prediction, references, kwargs }) => exactMatch(prediction, references, lang(kwargs)),
  },
  squad_f1: {
    outputTypes: ['generate_until'],
    aggregation: 'mean',
    higherIsBetter: true,
    description: 'SQuAD token F1 with multilingual normalisation (kwarg lang, default en)',
    generation: ({ prediction, references, kwargs }) => f1Score(prediction, references, lang(kwargs)),
  },
  xquad_contains: {
    outputTypes: ['generate_until'],
    aggregation: 'mean',
    higherIsBetter: true,
    description:
      "the paper's XQuAD score: a normalised reference within the first 50 characters of the cleaned response (kwargs lang, window)",
    generation: ({ prediction, references, kwargs }) =>
      xquadContainment(prediction, references, {
        lang: lang(kwargs),
        window: typeof kwargs.window === 'number' ? kwargs.window : 50,
      }),
  },
  contains: {
    outputTypes: ['generate_until'],
    aggregation: 'mean',
    higherIsBetter: true,
    description: 'a reference occurs anywhere in the response (kwarg ignore_case)',
    generation: ({ prediction, references, kwargs }) => {
      const fold = (s: string) => (kwargs.ignore_case ? s.toLowerCase() : s);
      return references.some((r) => r !== '' && fold(prediction).includes(fold(r))) ? 1 : 0;
    },
  },
};

/** The metric function of a name; `bad-metric` listing the known ones for the output type. */
export function metricFunction(name: string, outputType: OutputType, where: string): MetricFunction {
  const m = Object.hasOwn(METRICS, name) ? METRICS[name] : undefined;
  if (!m || !m.outputTypes.includes(outputType)) {
    const known = Object.entries(METRICS)
      .filter(([, f]) => f.outputTypes.includes(outputType))
      .map(([n]) => n);
    throw new TasksError(
      'bad-metric',
      `${where}: metric "${name}" is not available for output_type ${outputType}; use one of ${known.join(', ')}`,
    );
  }
  return m;
}
