/**
 * The task API: what a task declares (languages, documents, requests, post-processing, metrics) and the
 * language variants it runs as. Built-in tasks, YAML tasks and tasks from npm packages are all {@link Task}s.
 */
import type { GenerateParams } from '@polyglot/infer';
import { TasksError } from './errors.js';

/** One item of a task's data (a JSON object). */
export type Doc = Record<string, unknown>;

/** lm-evaluation-harness's output types. */
export type OutputType = 'generate_until' | 'multiple_choice' | 'loglikelihood';
export const OUTPUT_TYPES: readonly OutputType[] = ['generate_until', 'multiple_choice', 'loglikelihood'];

/** One language configuration of a task: a name (`xquad_de`, `xquad_en_de`), the data's and the prompt's language. */
export interface Variant {
  /** The task's name. */
  task: string;
  /** `task_lang`, or `task_prompt_data` for a cross-lingual pair; the task's own name where it has no languages. */
  name: string;
  /** Language of the data (passage, question, instruction), or null for a task without languages. */
  lang: string | null;
  /** Language of the prompt's instructions (equal to `lang` unless cross-lingual). */
  promptLang: string | null;
}

/** What a document asks of the engine. */
export type TaskRequest =
  | {
      type: 'generate_until';
      /** The whole prompt text (chat template applied), encoded by the engine with BOS. */
      prompt: string;
      /** Sampling parameters (vLLM names); the runner sets `seed` per request. */
      params: GenerateParams;
      /** Strip the output as Python's `str.strip()` after a stop string (default true: the paper's script does). */
      trim?: boolean;
    }
  | {
      type: 'multiple_choice';
      context: string;
      /** The continuations scored, target delimiter included (`" Yes"`). */
      choices: string[];
    }
  | { type: 'loglikelihood'; context: string; continuation: string };

/** The engine's answer to a {@link TaskRequest} (snake_case: it is stored as it is in the samples JSONL). */
export type TaskResponse =
  | { type: 'generate_until'; text: string; finish_reason?: string | null }
  | { type: 'multiple_choice'; logprobs: number[]; is_greedy: boolean[] }
  | { type: 'loglikelihood'; logprob: number; is_greedy: boolean };

/** How per-document values become the reported number. */
export type Aggregation = 'mean' | 'median' | 'perplexity';

export interface MetricSpec {
  /** `acc`, `exact_match`, `f1`, `lang_match`, … (the key in results.json is `name,filter`). */
  name: string;
  /** Default `mean`: the mean with its standard error; others get a bootstrap standard error. */
  aggregation?: Aggregation;
  /** Default true. */
  higherIsBetter?: boolean;
  /** What the metric is, for `tasks list` and results. */
  description?: string;
}

/** Per filter (`none`, `strict-match`, …): the filtered response and the document's metric values. */
export interface ProcessResult {
  /** The filtered response of each filter pipeline (`none` is the response as it came where there is no filter). */
  filtered: Record<string, unknown>;
  /**
   * Metric values keyed `metric,filter` (`"acc,none"`); null leaves the document out of that metric (e.g. a judge
   * answer that could not be read).
   */
  scores: Record<string, number | null>;
}

/** A helpfulness judge (issue `judge`): scores instruction/response pairs; null where the judge's answer is unusable. */
export interface HelpfulnessJudge {
  readonly name: string;
  judge(items: { instruction: string; response: string }[]): Promise<(number | null)[]>;
}

/** What a task gets while it loads data and scores. */
export interface TaskContext {
  /** Folder of the task's data files (`--data-dir`, else {@link defaultDataDir}`/<task>`). */
  dataDir: string;
  /** Task options (`--set key=value`), checked against the task's {@link Task.options}. */
  options: Record<string, unknown>;
  /** Documents of the variant being run (after `--limit`); set by the runner and by `scoreRecords`. */
  docCount?: number;
  /** A helpfulness judge, where one was configured. */
  judge?: HelpfulnessJudge;
  /**
   * Fits an over-long prompt into the engine's context: drops words from the start of `instruction` until
   * `render(instruction)` fits (the paper's rule, at most 4,096 tokens); set by the runner where the engine has a
   * tokenizer (the local engine), absent otherwise.
   */
  fitPrompt?: (instruction: string, render: (instruction: string) => string) => string;
  /** Where to say what is happening (warnings); default nothing. */
  log?: (message: string) => void;
}

export interface TaskOptionSpec {
  description: string;
  default?: unknown;
}

/** Default generation settings of a `generate_until` task. */
export interface GenerationSettings {
  params: GenerateParams;
  /** Sampling seeds: one run per seed, metrics averaged over them (the paper: 0, 42, 723). */
  seeds: readonly number[];
}

/**
 * A task. Only `name`, `outputType`, `metrics`, `loadDocs`, `buildRequest` and `process` are required; the rest
 * have defaults (see {@link defineTask}).
 */
export interface Task {
  readonly name: string;
  readonly version: string | number;
  readonly description: string;
  readonly outputType: OutputType;
  /** Languages of the data, ISO 639-1 where there is a code (`en`, `de`, `zh`); empty for a task without languages. */
  readonly languages: readonly string[];
  /**
   * Languages the prompt can be written in, where this differs from the data (cross-lingual pairs `prompt:data`);
   * absent: the prompt is always in the data's language.
   */
  readonly promptLanguages?: readonly string[];
  /** What `--langs` is when not given (default all of `languages`). */
  readonly defaultLanguages?: readonly string[];
  /** Generation defaults (generate_until). */
  readonly generation?: GenerationSettings;
  readonly metrics: readonly MetricSpec[];
  /** Names of the filter pipelines whose results are reported (default `['none']`). */
  readonly filters?: readonly string[];
  readonly numFewshot?: number;
  /** Options the task reads from {@link TaskContext.options}, with their descriptions and defaults. */
  readonly options?: Readonly<Record<string, TaskOptionSpec>>;
  /** Name of the data folder under `--data-dir` and the cache (default the task's name). */
  readonly dataset?: string;
  /** Where the data comes from and how to get it (said when data files are missing). */
  readonly dataHelp?: string;
  /** Where the definition came from: `builtin`, a YAML file, an npm package. */
  readonly source?: string;
  /** Called once before documents are loaded (e.g. to load a language-ID model). */
  setup?(ctx: TaskContext): Promise<void>;
  /** The documents of one variant, in a stable order. */
  loadDocs(variant: Variant, ctx: TaskContext): Promise<Doc[]>;
  /** A document's id in the samples file (default its index). */
  docId?(doc: Doc, index: number): string | number;
  /** The reference answer recorded in the samples file. */
  target?(doc: Doc, variant: Variant): unknown;
  /** The request of a document (`index`: its position in the variant's documents). */
  buildRequest(doc: Doc, variant: Variant, ctx: TaskContext, index: number): TaskRequest;
  /** Filters and scores one response. */
  process(
    doc: Doc,
    response: TaskResponse,
    variant: Variant,
    ctx: TaskContext,
  ): ProcessResult | Promise<ProcessResult>;
  /**
   * Scores several documents at once (e.g. to batch judge calls); default: {@link process} on each. Results in the
   * order of `items`.
   */
  processBatch?(
    items: { doc: Doc; response: TaskResponse; index: number }[],
    variant: Variant,
    ctx: TaskContext,
  ): Promise<ProcessResult[]>;
  /**
   * A document rebuilt from a foreign run file's record (the paper's `{prompt, system, source, reference}` lines,
   * vLLM outputs), for `tasks score`; null where the record lacks what the task needs.
   */
  docFromRecord?(record: Doc, variant: Variant): Doc | null;
  /** The task's configuration as recorded in results.json `configs`. */
  config?(variant: Variant): Record<string, unknown>;
}

/** What a task author writes: a {@link Task} whose `version`, `description` and `languages` may be left out. */
export type TaskDefinition = Omit<Task, 'version' | 'description' | 'languages'> &
  Partial<Pick<Task, 'version' | 'description' | 'languages'>>;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Checks a task definition and completes it (version 1, empty description, no languages). Raises `bad-task`
 * naming what is wrong.
 */
export function defineTask(definition: TaskDefinition): Task {
  const task = { version: 1, description: '', languages: [], ...definition } as Task;
  const where = `task ${JSON.stringify((task as { name?: unknown })?.name)}`;
  const bad = (why: string): never => {
    throw new TasksError('bad-task', `${where}: ${why}`);
  };
  if (typeof task !== 'object' || task === null) bad('a task definition must be an object');
  if (typeof task.name !== 'string' || !NAME_RE.test(task.name)) {
    bad('name must be letters, digits, "_", "-" or "." (starting with a letter or digit)');
  }
  if (!OUTPUT_TYPES.includes(task.outputType)) bad(`outputType must be one of ${OUTPUT_TYPES.join(', ')}`);
  if (!Array.isArray(task.metrics) || task.metrics.length === 0) bad('metrics must list at least one metric');
  for (const fn of ['loadDocs', 'buildRequest', 'process'] as const) {
    if (typeof task[fn] !== 'function') bad(`${fn} must be a function`);
  }
  if (!Array.isArray(task.languages)) bad('languages must be a list (empty for a task without languages)');
  if (task.languages.some((l) => typeof l !== 'string' || !/^[a-z]{2,3}$/.test(l))) {
    bad('languages must be ISO 639 codes such as "en", "de", "zh"');
  }
  if (
    task.generation &&
    !(Array.isArray(task.generation.seeds) && task.generation.seeds.every(Number.isSafeInteger))
  ) {
    bad('generation.seeds must be a list of integers');
  }
  if (task.filters && !(Array.isArray(task.filters) && task.filters.length > 0)) {
    bad('filters must name at least one filter pipeline');
  }
  return task;
}

/** Metric value keys: `name,filter`. */
export function metricKey(metric: string, filter = 'none'): string {
  return `${metric},${filter}`;
}
