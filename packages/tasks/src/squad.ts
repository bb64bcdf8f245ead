import { TasksError } from './errors.js';
import { answerTokens, normalizeAnswer } from './normalize.js';

function referenceList(references: string | readonly string[]): readonly string[] {
  const list = typeof references === 'string' ? [references] : references;
  if (!Array.isArray(list) || list.length === 0 || list.some((r) => typeof r !== 'string')) {
    throw new TasksError('no-references', 'SQuAD metrics need at least one reference answer (a string)');
  }
  return list;
}

/**
 * SQuAD v1.1 exact match: 1 when the normalised prediction equals the normalised reference, maximised over the
 * references (see `normalizeAnswer` for the multilingual normalisation).
 */
export function exactMatch(prediction: string, references: string | readonly string[], lang = 'en'): number {
  const pred = normalizeAnswer(prediction, lang);
  return referenceList(references).some((r) => normalizeAnswer(r, lang) === pred) ? 1 : 0;
}

function tokenF1(pred: readonly string[], ref: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const t of ref) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of pred) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / pred.length;
  const recall = same / ref.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * SQuAD v1.1 token F1 (bag-of-tokens overlap of prediction and reference), maximised over the references.
 * As in the official v1.1 script, an empty normalised prediction or reference scores 0.
 */
export function f1Score(prediction: string, references: string | readonly string[], lang = 'en'): number {
  const pred = answerTokens(prediction, lang);
  return Math.max(...referenceList(references).map((r) => tokenF1(pred, answerTokens(r, lang))));
}
