/**
 * Adapters as a merge takes them: PEFT LoRA adapter directories, each with a weight. Everything that a plain
 * `W + scale·B·A` merge cannot reproduce is refused up front, naming the adapter and what it holds.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  readAdapter,
  SafetensorsFile,
} from '@polyglot/model';
import { LoraMergeError } from './errors.js';

/** An adapter to merge: its directory and the weight its delta is multiplied by (default 1). */
export interface AdapterSpec {
  dir: string;
  weight?: number;
}

export interface MergeAdapterInput {
  dir: string;
  weight: number;
  adapter: Adapter;
  /** adapter_model.safetensors, open for reading the factors. */
  file: SafetensorsFile;
}

/** PEFT's adapter kinds that are not LoRA, by `peft_type`, as their papers name them. */
const PEFT_KINDS: Record<string, string> = {
  LOHA: 'LoHa',
  LOKR: 'LoKr',
  IA3: '(IA)³',
  ADALORA: 'AdaLoRA',
  OFT: 'OFT',
  BOFT: 'BOFT',
  VERA: 'VeRA',
  FOURIERFT: 'FourierFT',
  HRA: 'HRA',
  BONE: 'Bone',
  VBLORA: 'VB-LoRA',
  RANDLORA: 'RandLoRA',
  SHIRA: 'SHiRA',
  C3A: 'C3A',
  MISS: 'MiSS',
  LN_TUNING: 'LayerNorm tuning',
  POLY: 'Poly',
  XLORA: 'X-LoRA',
  PROMPT_TUNING: 'prompt tuning',
  PREFIX_TUNING: 'prefix tuning',
  P_TUNING: 'P-tuning',
  MULTITASK_PROMPT_TUNING: 'multitask prompt tuning',
  CPT: 'context-aware prompt tuning',
  TRAINABLE_TOKENS: 'trainable tokens',
};

const isSet = (v: unknown) =>
  v !== undefined &&
  v !== null &&
  v !== false &&
  !(Array.isArray(v) && v.length === 0) &&
  !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

/** Read one adapter directory and refuse what cannot be merged. */
export async function openAdapterForMerge(spec: AdapterSpec): Promise<MergeAdapterInput> {
  const { dir } = spec;
  const weight = spec.weight ?? 1;
  if (!Number.isFinite(weight)) {
    throw new LoraMergeError(
      'MERGE_BAD_OPTION',
      `adapter ${dir}: weight must be a finite number, got ${weight}`,
    );
  }
  const configFile = path.join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(configFile)) {
    throw new LoraMergeError(
      'ADAPTER_MISSING',
      `${configFile} not found: ${dir} is not a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)`,
    );
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await fsp.readFile(configFile, 'utf8'));
  } catch (e) {
    throw new LoraMergeError('ADAPTER_CONFIG_INVALID', `cannot read ${configFile}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const refuse = (code: string, what: string): never => {
    throw new LoraMergeError(code, `adapter ${dir}: ${what}`);
  };
  const kind = typeof raw?.peft_type === 'string' ? raw.peft_type : null;
  if (kind !== 'LORA') {
    const name = kind ? (PEFT_KINDS[kind.toUpperCase()] ?? kind) : null;
    refuse(
      'ADAPTER_UNSUPPORTED_KIND',
      name
        ? `peft_type "${kind}" is a ${name} adapter, not LoRA: only LoRA adapters can be merged (merge it with PEFT's merge_and_unload)`
        : `${configFile} has no peft_type: not a PEFT adapter`,
    );
  }
  if (isSet(raw.use_dora)) {
    refuse(
      'ADAPTER_DORA',
      'it is a DoRA adapter (use_dora: true): DoRA rescales each merged weight by a learned magnitude vector, ' +
        'which this merge does not implement (merge it with PEFT)',
    );
  }
  if (isSet(raw.modules_to_save)) {
    const mods = Array.isArray(raw.modules_to_save)
      ? raw.modules_to_save.join(', ')
      : String(raw.modules_to_save);
    refuse(
      'ADAPTER_MODULES_TO_SAVE',
      `it carries fully trained copies of modules_to_save (${mods}), which replace the base modules; merging ` +
        'them is not supported (merge it with PEFT, or retrain without modules_to_save)',
    );
  }
  if (isSet(raw.trainable_token_indices)) {
    refuse(
      'ADAPTER_TRAINABLE_TOKENS',
      `it trains embedding rows (trainable_token_indices: ${JSON.stringify(raw.trainable_token_indices)}); ` +
        'merging trainable tokens is not supported (merge it with PEFT)',
    );
  }
  if (isSet(raw.target_parameters)) {
    refuse(
      'ADAPTER_UNSUPPORTED',
      `it targets parameters (target_parameters: ${JSON.stringify(raw.target_parameters)}), not modules; ` +
        'merging LoRA on parameters is not supported',
    );
  }
  if (raw.bias !== undefined && raw.bias !== null && raw.bias !== 'none') {
    refuse(
      'ADAPTER_BIAS',
      `it trains biases (bias: ${JSON.stringify(raw.bias)}), which replace the base biases; merging them is not ` +
        'supported (merge it with PEFT, or retrain with bias "none")',
    );
  }
  // LoRA on embeddings (lora_embedding_A/B) and other layer kinds show in the tensor names.
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_FILE);
  if (existsSync(weightsFile)) {
    const st = await SafetensorsFile.open(weightsFile);
    try {
      const emb = st.names().find((n) => /\.lora_embedding_[AB]\b/.test(n));
      if (emb) {
        const module = emb.replace(/^base_model\.model\./, '').replace(/\.lora_embedding_[AB].*$/, '');
        refuse(
          'ADAPTER_EMBEDDING_LORA',
          `it puts LoRA on the embedding ${module} (tensor "${emb}"); merging embedding LoRA is not supported`,
        );
      }
    } finally {
      await st.close();
    }
  }
  // Format checks (factor pairs, ranks, target_modules, other unsupported options) are readAdapter's.
  const adapter = await readAdapter(dir);
  if (adapter.otherTensors.length > 0) {
    const shown = adapter.otherTensors.slice(0, 5).map((t) => `"${t}"`);
    refuse(
      'ADAPTER_EXTRA_TENSORS',
      `it holds ${adapter.otherTensors.length} tensor(s) that are not LoRA factors (${shown.join(', ')}` +
        `${adapter.otherTensors.length > 5 ? ', …' : ''}): trained full weights or biases cannot be merged as LoRA`,
    );
  }
  if (adapter.modules.length === 0) refuse('ADAPTER_EMPTY', 'it has no LoRA modules');
  const file = await SafetensorsFile.open(weightsFile);
  return { dir, weight, adapter, file };
}
