// The presets of `polyglot reproduce`: the same pipeline at three scales. `smoke` and `tiny` run on the
// project's embedded demo data and a small Llama the project defines (nothing downloaded); `paper` is the
// paper's setting (Guanaco pool, Llama-2 7B, 3,200 conversations per mix, 200 per added language, its LoRA and
// sampling hyper-parameters), given a model directory and the data.
import type { GenerateParams } from '@polyglot/infer';
import type { SftArgs } from '@polyglot/sft';

export type PresetName = 'smoke' | 'tiny' | 'paper';
export const PRESET_NAMES: readonly PresetName[] = ['smoke', 'tiny', 'paper'];

/** A task run on every tuned model: its name, its variants' languages and how many documents each. */
export interface PresetTask {
  task: string;
  langs: string[];
  /** Documents per variant (null: all). */
  limit: number | null;
}

export interface Preset {
  name: PresetName;
  /** The embedded base model preset, or null where the user names the model (`--model`). */
  base: 'smoke' | 'tiny' | null;
  /** Mixes by the paper's recipe names (`mono`, `multi-2`, …, `all`). */
  mixes: string[];
  /** Conversations per mix and per added language. */
  mixTotal: number;
  perLanguage: number;
  /** Order in which the Multi-k mixes add languages to English. */
  order: string[];
  /** Mixing seed. */
  mixSeed: number;
  /** Test languages of the chat prompts (the fidelity figures). */
  testLangs: string[];
  /** Chat prompts per language (null: all). */
  promptsPerLang: number | null;
  seeds: number[];
  sampling: GenerateParams;
  /** LoRA fine-tuning arguments (the rest are @polyglot/sft's paper defaults). */
  sft: Partial<SftArgs>;
  tasks: PresetTask[];
  /** Sampling seeds of the generation tasks (XQuAD, X-CSQA); null: each task's own (the paper's 0, 42, 723). */
  taskSeeds: number[] | null;
  /** Requests per engine call. */
  batchSize: number;
  /** Whether the untuned base model is evaluated too (as `base`). */
  evalBase: boolean;
}

const PAPER_STOP = ['### Human:', '### Assistant:', '### Human', '### Assistant'];

const DEMO_TASK_LANGS = ['en', 'de', 'es', 'ru', 'zh', 'fr'];

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  smoke: {
    name: 'smoke',
    base: 'smoke',
    mixes: ['mono', 'multi-2', 'multi-3'],
    mixTotal: 24,
    perLanguage: 6,
    order: ['es', 'ru', 'de', 'zh', 'fr'],
    mixSeed: 42,
    testLangs: ['en', 'es', 'ru', 'de'],
    promptsPerLang: 3,
    seeds: [0, 42, 723],
    sampling: {
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 32,
      stop: PAPER_STOP,
    },
    sft: {
      loraR: 8,
      loraAlpha: 16,
      loraDropout: 0,
      lr: 2e-3,
      warmupRatio: 0,
      epochs: 1,
      maxSteps: 6,
      batchSize: 4,
      gradAccum: 1,
      maxLength: 256,
      saveSteps: 2,
    },
    tasks: [
      { task: 'xcsqa_mc', langs: ['en', 'es'], limit: 3 },
      { task: 'xnli', langs: ['en', 'es'], limit: 3 },
    ],
    taskSeeds: [0],
    batchSize: 12,
    evalBase: true,
  },
  tiny: {
    name: 'tiny',
    base: 'tiny',
    mixes: ['mono', 'multi-2', 'multi-3', 'multi-4', 'multi-5', 'multi-6'],
    mixTotal: 40,
    perLanguage: 6,
    order: ['es', 'ru', 'de', 'zh', 'fr'],
    mixSeed: 42,
    testLangs: ['en', 'es', 'ru', 'de', 'zh', 'fr', 'bg', 'is', 'el', 'hi'],
    promptsPerLang: 8,
    seeds: [0, 42, 723],
    sampling: {
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 128,
      stop: PAPER_STOP,
    },
    sft: {
      loraR: 16,
      loraAlpha: 32,
      loraDropout: 0,
      lr: 3e-3,
      warmupRatio: 0.03,
      epochs: 8,
      batchSize: 4,
      gradAccum: 1,
      maxLength: 384,
      saveSteps: 20,
    },
    tasks: [
      { task: 'xcsqa_mc', langs: DEMO_TASK_LANGS, limit: null },
      { task: 'xquad', langs: ['en', 'de', 'es', 'ru', 'zh'], limit: null },
      { task: 'xnli', langs: ['en', 'de', 'es', 'ru', 'zh', 'fr', 'bg', 'el', 'hi'], limit: null },
    ],
    taskSeeds: [0],
    batchSize: 16,
    evalBase: true,
  },
  paper: {
    name: 'paper',
    base: null,
    mixes: ['mono', 'multi-2', 'multi-3', 'multi-4', 'multi-5', 'multi-6'],
    mixTotal: 3200,
    perLanguage: 200,
    order: ['es', 'ru', 'de', 'zh', 'fr'],
    mixSeed: 42,
    testLangs: [
      'en',
      'es',
      'ru',
      'de',
      'zh',
      'fr',
      'bg',
      'ca',
      'cs',
      'da',
      'el',
      'fi',
      'hi',
      'hu',
      'is',
      'ko',
      'no',
      'sv',
    ],
    promptsPerLang: null,
    seeds: [0, 42, 723],
    sampling: {
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 1024,
      stop: PAPER_STOP,
    },
    sft: {},
    tasks: [
      { task: 'xcsqa', langs: DEMO_TASK_LANGS, limit: null },
      { task: 'xquad', langs: ['en', 'de', 'es', 'ru', 'zh', 'el', 'hi'], limit: null },
      { task: 'xnli', langs: ['en', 'de', 'es', 'ru', 'zh', 'fr', 'bg', 'el', 'hi'], limit: null },
    ],
    taskSeeds: null,
    batchSize: 32,
    evalBase: false,
  },
};

/** `mono` → `Mono`, `multi-3` → `Multi-3`, `all` → `Multi-Guanaco`: the model (folder) names of the report. */
export function mixLabel(mix: string): string {
  if (mix === 'mono' || mix === 'multi-1') return 'Mono';
  if (mix === 'all') return 'Multi-Guanaco';
  const m = /^multi-(\d+)$/.exec(mix);
  if (m) return `Multi-${m[1]}`;
  const loo = /^loo-([a-z]{2,3})$/.exec(mix);
  if (loo) return `LOO-${loo[1]}`;
  return mix;
}

/** The languages of a paper-recipe mix (null for `all`: whatever the pool holds). */
export function mixLanguages(mix: string, order: readonly string[]): string[] | null {
  if (mix === 'mono' || mix === 'multi-1') return ['en'];
  const m = /^multi-(\d+)$/.exec(mix);
  if (m) return ['en', ...order.slice(0, Number(m[1]) - 1)];
  const loo = /^loo-([a-z]{2,3})$/.exec(mix);
  if (loo) return ['en', ...order.filter((l) => l !== loo[1])];
  return null;
}
