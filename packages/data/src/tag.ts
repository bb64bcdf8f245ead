// Language tagging of any text field with @polyglot/lid: the top label and its confidence, with a threshold
// below which a record counts as untagged (the paper used OpenLID labels with confidence ≥ 0.8).
import { cleanForLid, type LidModel } from '@polyglot/lid';
import { DataError } from './errors.js';
import { type JsonObject, readJsonl, writeJsonlAtomic } from './jsonl.js';

/** What a tagger needs of a model: the top label and its probability (a `LidModel` from @polyglot/lid). */
export type LanguageIdentifier = Pick<LidModel, 'top'>;

export interface TagOptions {
  /** The field to identify (default `text`). */
  field?: string;
  /** Where the label goes (default `lang`). */
  labelKey?: string;
  /** Where the confidence goes (default `lang_prob`). */
  probKey?: string;
  /**
   * Labels with a lower confidence are written as null (the confidence is still written). Default 0: every
   * label is kept.
   */
  threshold?: number;
  /** `label`: the model's label without `__label__` (`deu_Latn` for OpenLID, `de` for lid.176; default). */
  format?: 'label';
  /**
   * Clean the text as the paper did before identifying it (newlines → spaces, `### Human:` / `### Assistant:`
   * removed; default true).
   */
  clean?: boolean;
}

/** Counts of a tagging run. */
export interface TagSummary {
  records: number;
  /** Records whose label passed the threshold, per label. */
  labels: Record<string, number>;
  /** Records whose label was below the threshold (written as null). */
  belowThreshold: number;
  /** Records whose text gave no label at all (empty text). */
  empty: number;
}

function checkThreshold(t: number | undefined): number {
  const v = t ?? 0;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
    throw new DataError('bad-option', `the confidence threshold must be in [0, 1], got ${t}`);
  }
  return v;
}

/**
 * Returns the record with the label and confidence of `field` added. A missing or non-string field raises
 * `missing-field` / `bad-field` naming `where`.
 */
export function tagRecord(
  record: JsonObject,
  model: LanguageIdentifier,
  options: TagOptions = {},
  where = 'record',
): JsonObject {
  const field = options.field ?? 'text';
  const v = record[field];
  if (typeof v !== 'string') {
    throw new DataError(
      v === undefined ? 'missing-field' : 'bad-field',
      `${where}: ${v === undefined ? `no field "${field}"` : `field "${field}" is not a string`} to identify the language of (the record has: ${Object.keys(record).slice(0, 12).join(', ')}); choose it with --field`,
    );
  }
  const text = options.clean === false ? v.replace(/\r?\n/g, ' ') : cleanForLid(v);
  const top = text === '' ? null : model.top(text);
  const threshold = checkThreshold(options.threshold);
  const label = top ? top.label.replace(/^__label__/, '') : null;
  return {
    ...record,
    [options.labelKey ?? 'lang']: top && top.prob >= threshold ? label : null,
    [options.probKey ?? 'lang_prob']: top ? Math.round(top.prob * 1e6) / 1e6 : null,
  };
}

function summarizer(options: TagOptions) {
  const labelKey = options.labelKey ?? 'lang';
  const probKey = options.probKey ?? 'lang_prob';
  const summary: TagSummary = { records: 0, labels: {}, belowThreshold: 0, empty: 0 };
  return {
    add(tagged: JsonObject) {
      const label = tagged[labelKey];
      if (typeof label === 'string') summary.labels[label] = (summary.labels[label] ?? 0) + 1;
      else if (tagged[probKey] === null) summary.empty++;
      else summary.belowThreshold++;
      summary.records++;
    },
    done(): TagSummary {
      summary.labels = Object.fromEntries(Object.entries(summary.labels).sort((a, b) => b[1] - a[1]));
      return summary;
    },
  };
}

/** Tags every record of a JSON Lines file and hands each tagged record to `write`; errors name file:line. */
export async function tagRecords(
  file: string,
  model: LanguageIdentifier,
  options: TagOptions,
  write: (record: JsonObject) => void | Promise<void>,
): Promise<TagSummary> {
  checkThreshold(options.threshold);
  const sum = summarizer(options);
  for await (const { value, line } of readJsonl(file)) {
    const tagged = tagRecord(value, model, options, `${file}:${line}`);
    sum.add(tagged);
    await write(tagged);
  }
  return sum.done();
}

/** {@link tagRecords} into `output`, written atomically (temp file, fsync, rename): all or nothing. */
export async function tagFile(
  input: string,
  output: string,
  model: LanguageIdentifier,
  options: TagOptions = {},
): Promise<TagSummary> {
  checkThreshold(options.threshold);
  const sum = summarizer(options);
  async function* rows(): AsyncGenerator<JsonObject> {
    for await (const { value, line } of readJsonl(input)) {
      const tagged = tagRecord(value, model, options, `${input}:${line}`);
      sum.add(tagged);
      yield tagged;
    }
  }
  await writeJsonlAtomic(output, rows());
  return sum.done();
}
