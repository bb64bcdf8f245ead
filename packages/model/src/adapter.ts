/**
 * PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors with keys
 * `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]; the update of the module's
 * weight is `scale * B @ A` with scale = alpha / r (alpha / sqrt(r) with use_rslora), r and alpha per module from
 * rank_pattern / alpha_pattern, matched as PEFT matches them.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { isFloatDtype } from './dtype.js';
import { ModelFormatError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import { pythonJsonDumps } from './pyjson.js';
import { SafetensorsFile, type TensorSpec, type TensorToWrite, writeSafetensors } from './safetensors.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** adapter_config.json, normalised. `raw` keeps every field of the file (written back by {@link writeAdapter}). */
export interface LoraConfig {
  peftType: 'LORA';
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  /** A list (a module matches by full name or by a `.`-suffix) or a regex that must match the whole name. */
  targetModules: string[] | string;
  excludeModules: string[] | string | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  fanInFanOut: boolean;
  modulesToSave: string[] | null;
  loraDropout: number;
  bias: 'none' | 'all' | 'lora_only';
  taskType: string | null;
  baseModelNameOrPath: string | null;
  layersToTransform: number[] | number | null;
  layersPattern: string[] | string | null;
  raw: Record<string, unknown>;
}

export interface LoraModule {
  /** Module path in the base model, e.g. 'model.layers.0.self_attn.q_proj'. */
  module: string;
  /** The base weight it updates, e.g. 'model.layers.0.self_attn.q_proj.weight'. */
  baseWeight: string;
  r: number;
  alpha: number;
  /** alpha / r, or alpha / sqrt(r) with use_rslora. */
  scale: number;
  aKey: string;
  bKey: string;
  /** [r, in] */
  aShape: number[];
  /** [out, r] */
  bShape: number[];
}

export interface Adapter {
  dir: string;
  config: LoraConfig;
  /** Every tensor of adapter_model.safetensors. */
  tensors: Record<string, TensorSpec>;
  modules: LoraModule[];
  /** Tensors that are not LoRA factors (full weights of modules_to_save, trained biases). */
  otherTensors: string[];
}

/** PEFT's module names for Llama's linear layers: `target_modules: "all-linear"` means these (not lm_head). */
const LLAMA_LINEAR = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
/** PEFT's default target_modules for Llama when the config leaves them out. */
const LLAMA_DEFAULT_TARGETS = ['q_proj', 'v_proj'];

/** The fields PEFT's LoraConfig writes (those every PEFT release since 0.10 reads), with its defaults. */
const PEFT_FIELDS: Record<string, unknown> = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: null,
  bias: 'none',
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 8,
  lora_dropout: 0,
  megatron_config: null,
  megatron_core: 'megatron.core',
  modules_to_save: null,
  peft_type: 'LORA',
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: null,
  task_type: null,
  use_dora: false,
  use_rslora: false,
};

/** Options that change how the adapter applies, which polyglot does not implement: refused when set. */
const UNSUPPORTED = ['use_dora', 'lora_bias', 'use_qalora', 'layer_replication', 'alora_invocation_tokens'];

/** The numbers PEFT holds as floats (so that 0 is written `0.0`). */
const FLOAT_FIELDS = new Set(['lora_dropout']);

const LORA_KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B)(\.default)?\.weight$/;

/** A Python regex (as PEFT's config holds them) as a JS RegExp: `(?P<n>` and `(?P=n)` and `\A`/`\Z` translated. */
function pythonRegex(pattern: string, anchored: 'full' | 'suffix', where: string): RegExp {
  const js = pattern
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?P=(\w+)\)/g, '\\k<$1>')
    .replace(/\\A/g, '^')
    .replace(/\\Z/g, '$');
  try {
    return new RegExp(anchored === 'full' ? `^(?:${js})$` : `^(?:.*\\.)?(?:${js})$`);
  } catch (e) {
    throw new ModelFormatError(
      'ADAPTER_CONFIG_INVALID',
      `${where}: invalid regex ${JSON.stringify(pattern)}`,
      {
        cause: e,
      },
    );
  }
}

/** PEFT's regex for the layer index after a `layers_pattern` name (`…<pattern>.<index>.…`). */
function layersRegex(pattern: string): RegExp {
  return new RegExp(`^.*\\.${pattern}\\.(\\d+)\\.`);
}

/** Validate a parsed adapter_config.json (`where`: the file, for messages). */
export function parseLoraConfig(json: unknown, where: string): LoraConfig {
  const bad = (field: string, what: string): never => {
    throw new ModelFormatError('ADAPTER_CONFIG_INVALID', `${where}: "${field}" ${what}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelFormatError('ADAPTER_CONFIG_INVALID', `${where}: adapter config is not a JSON object`);
  }
  const raw = json as Record<string, unknown>;
  const get = (k: string): unknown => raw[k] ?? PEFT_FIELDS[k] ?? null;
  if (raw.peft_type !== 'LORA') {
    throw new ModelFormatError(
      'ADAPTER_NOT_LORA',
      `${where}: peft_type is ${JSON.stringify(raw.peft_type ?? null)}; polyglot reads LoRA adapters (peft_type "LORA")`,
    );
  }
  for (const k of UNSUPPORTED) {
    const v = raw[k];
    if (v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0)) {
      throw new ModelFormatError(
        'ADAPTER_UNSUPPORTED',
        `${where}: "${k}" is ${JSON.stringify(v)}; polyglot supports plain LoRA only (${k} unset or false)`,
      );
    }
  }
  const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const num = (k: string, test: (n: number) => boolean, what: string): number => {
    const v = get(k);
    if (typeof v !== 'number' || !test(v)) bad(k, `must be ${what}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (k: string): boolean => {
    const v = get(k);
    if (typeof v !== 'boolean') bad(k, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const stringOrNull = (k: string): string | null => {
    const v = get(k);
    if (v !== null && typeof v !== 'string') bad(k, `must be a string or null, got ${JSON.stringify(v)}`);
    return v as string | null;
  };
  const modules = (k: string): string[] | string | null => {
    const v = get(k);
    if (v !== null && typeof v !== 'string' && !isStrings(v))
      bad(k, 'must be a list of module names or a regex');
    if (typeof v === 'string') pythonRegex(v, 'full', `${where}: "${k}"`);
    return Array.isArray(v) ? [...v] : (v as string | null);
  };
  const patterns = (k: string, test: (n: number) => boolean, what: string): Record<string, number> => {
    const v = get(k);
    const ok =
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Object.values(v).every((x) => typeof x === 'number');
    if (!ok) bad(k, `must map module name patterns to ${what}`);
    for (const [p, n] of Object.entries(v as Record<string, number>)) {
      if (!test(n)) bad(k, `maps ${JSON.stringify(p)} to ${JSON.stringify(n)}; values must be ${what}`);
      pythonRegex(p, 'suffix', `${where}: "${k}"`);
    }
    // Object.fromEntries keeps a key named __proto__ as a key (a spread would too, but not an assignment)
    return Object.fromEntries(Object.entries(v as Record<string, number>));
  };

  const targetModules = modules('target_modules') ?? [...LLAMA_DEFAULT_TARGETS];
  const modulesToSave = get('modules_to_save');
  if (modulesToSave !== null && !isStrings(modulesToSave))
    bad('modules_to_save', 'must be a list of module names');
  const bias = get('bias');
  if (bias !== 'none' && bias !== 'all' && bias !== 'lora_only')
    bad('bias', 'must be "none", "all" or "lora_only"');
  const layers = get('layers_to_transform');
  const isLayer = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (layers !== null && !isLayer(layers) && !(Array.isArray(layers) && layers.every(isLayer))) {
    bad('layers_to_transform', 'must be a layer index or a list of them');
  }
  const layersPattern = get('layers_pattern');
  if (layersPattern !== null && typeof layersPattern !== 'string' && !isStrings(layersPattern)) {
    bad('layers_pattern', 'must be a string or a list of strings');
  }
  for (const p of typeof layersPattern === 'string'
    ? [layersPattern]
    : ((layersPattern as string[] | null) ?? [])) {
    try {
      layersRegex(p);
    } catch (e) {
      throw new ModelFormatError(
        'ADAPTER_CONFIG_INVALID',
        `${where}: "layers_pattern": invalid regex ${JSON.stringify(p)}`,
        { cause: e },
      );
    }
  }

  return {
    peftType: 'LORA',
    r: num('r', (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer'),
    loraAlpha: num('lora_alpha', Number.isFinite, 'a number'),
    useRslora: bool('use_rslora'),
    targetModules,
    excludeModules: modules('exclude_modules'),
    rankPattern: patterns(
      'rank_pattern',
      (n) => Number.isSafeInteger(n) && n > 0,
      'positive integers (ranks)',
    ),
    alphaPattern: patterns('alpha_pattern', Number.isFinite, 'numbers'),
    fanInFanOut: bool('fan_in_fan_out'),
    modulesToSave: modulesToSave === null ? null : [...(modulesToSave as string[])],
    loraDropout: num('lora_dropout', (n) => n >= 0 && n < 1, 'a probability in [0, 1)'),
    bias: bias as LoraConfig['bias'],
    taskType: stringOrNull('task_type'),
    baseModelNameOrPath: stringOrNull('base_model_name_or_path'),
    layersToTransform: Array.isArray(layers) ? [...layers] : (layers as number | null),
    layersPattern: Array.isArray(layersPattern) ? [...layersPattern] : (layersPattern as string | null),
    raw,
  };
}

/** The adapter_config.json object for a config: its `raw` fields, PEFT's defaults, and the normalised values. */
export function loraConfigToJson(config: LoraConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    ...PEFT_FIELDS,
    ...config.raw,
    peft_type: 'LORA',
    r: config.r,
    lora_alpha: config.loraAlpha,
    use_rslora: config.useRslora,
    target_modules: config.targetModules,
    rank_pattern: config.rankPattern,
    alpha_pattern: config.alphaPattern,
    fan_in_fan_out: config.fanInFanOut,
    modules_to_save: config.modulesToSave,
    lora_dropout: config.loraDropout,
    bias: config.bias,
    task_type: config.taskType,
    base_model_name_or_path: config.baseModelNameOrPath,
    layers_to_transform: config.layersToTransform,
    layers_pattern: config.layersPattern,
  };
  if (config.excludeModules !== null || 'exclude_modules' in config.raw)
    json.exclude_modules = config.excludeModules;
  return json;
}

/** A new config with PEFT's defaults (task type CAUSAL_LM) for what `options` leaves out. */
export function createLoraConfig(
  options: Partial<Omit<LoraConfig, 'peftType' | 'raw'>> &
    Pick<LoraConfig, 'r' | 'loraAlpha' | 'targetModules'>,
): LoraConfig {
  const defaults = parseLoraConfig({ peft_type: 'LORA', task_type: 'CAUSAL_LM' }, 'createLoraConfig');
  const json = loraConfigToJson({ ...defaults, ...options, peftType: 'LORA', raw: {} });
  return parseLoraConfig(JSON.parse(JSON.stringify(json)), 'createLoraConfig');
}

/** Does PEFT put a LoRA layer on this module? (exclude_modules, target_modules, layers_to_transform/pattern) */
export function isTargetModule(config: LoraConfig, moduleName: string): boolean {
  const listed = (names: string[]) =>
    names.includes(moduleName) || names.some((n) => moduleName.endsWith(`.${n}`));
  const { excludeModules } = config;
  if (
    typeof excludeModules === 'string' &&
    pythonRegex(excludeModules, 'full', 'exclude_modules').test(moduleName)
  ) {
    return false;
  }
  if (Array.isArray(excludeModules) && listed(excludeModules)) return false;

  let targets = config.targetModules;
  if (typeof targets === 'string' && targets.toLowerCase() === 'all-linear') targets = LLAMA_LINEAR;
  if (typeof targets === 'string') return pythonRegex(targets, 'full', 'target_modules').test(moduleName);
  if (targets.includes(moduleName)) return true;
  if (!targets.some((t) => moduleName.endsWith(`.${t}`))) return false;

  const layers = config.layersToTransform;
  if (layers === null || (Array.isArray(layers) && layers.length === 0)) return true;
  const patterns = config.layersPattern;
  let m: RegExpMatchArray | null = null;
  if (patterns === null || patterns.length === 0) {
    m = moduleName.match(/^.*\.[^.]*\.(\d+)\./);
  } else {
    for (const p of typeof patterns === 'string' ? [patterns] : patterns) {
      m = moduleName.match(layersRegex(p));
      if (m) break;
    }
  }
  if (!m) return false;
  const index = Number(m[1]);
  return typeof layers === 'number' ? index === layers : layers.includes(index);
}

/** PEFT's `get_pattern_key` + `.get`: the first pattern that matches the module name (or a dotted suffix of it). */
function patternValue(patterns: Record<string, number>, moduleName: string): number | undefined {
  for (const [key, value] of Object.entries(patterns)) {
    if (pythonRegex(key, 'suffix', 'pattern').test(moduleName)) return value;
  }
  return Object.hasOwn(patterns, moduleName) ? patterns[moduleName] : undefined;
}

/** Rank, alpha and scale of one module, as PEFT resolves them. */
export function loraModuleScale(
  config: LoraConfig,
  moduleName: string,
): { r: number; alpha: number; scale: number } {
  const r = patternValue(config.rankPattern, moduleName) ?? config.r;
  const alpha = patternValue(config.alphaPattern, moduleName) ?? config.loraAlpha;
  return { r, alpha, scale: config.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** Pair up lora_A / lora_B tensors into modules and check them against the config. */
function buildModules(
  config: LoraConfig,
  tensors: Record<string, TensorSpec>,
  where: string,
): { modules: LoraModule[]; otherTensors: string[] } {
  const pairs = new Map<string, { A?: string; B?: string }>();
  const otherTensors: string[] = [];
  for (const key of Object.keys(tensors)) {
    const m = LORA_KEY.exec(key);
    if (!m) {
      if (/\.lora_/.test(key) || !key.startsWith('base_model.model.')) {
        throw new ModelFormatError(
          'ADAPTER_UNSUPPORTED',
          `${where}: tensor "${key}" is not a LoRA factor polyglot reads (expected ` +
            'base_model.model.<module>.lora_A.weight / lora_B.weight)',
        );
      }
      otherTensors.push(key);
      continue;
    }
    const pair = pairs.get(m[1]) ?? {};
    const factor = m[2] === 'lora_A' ? 'A' : 'B';
    if (pair[factor])
      throw new ModelFormatError('ADAPTER_DUPLICATE', `${where}: both "${pair[factor]}" and "${key}"`);
    pair[factor] = key;
    pairs.set(m[1], pair);
  }
  const modules: LoraModule[] = [];
  for (const [module, { A, B }] of pairs) {
    if (!A || !B) {
      const [have, lacks] = A ? [A, 'lora_B'] : [B!, 'lora_A'];
      throw new ModelFormatError(
        'ADAPTER_MISSING_FACTOR',
        `${where}: "${have}" has no matching ${lacks} tensor`,
      );
    }
    if (!isTargetModule(config, module)) {
      throw new ModelFormatError(
        'ADAPTER_NOT_TARGET',
        `${where}: has LoRA weights for ${module}, which the config's target_modules ` +
          `(${JSON.stringify(config.targetModules)}) do not select`,
      );
    }
    const a = tensors[A];
    const b = tensors[B];
    for (const [key, t] of [
      [A, a],
      [B, b],
    ] as const) {
      if (t.shape.length !== 2 || !isFloatDtype(t.dtype)) {
        throw new ModelFormatError(
          'ADAPTER_BAD_TENSOR',
          `${where}: "${key}" must be a 2-D float matrix, found ${t.dtype} [${t.shape.join(', ')}]`,
        );
      }
    }
    const { r, alpha, scale } = loraModuleScale(config, module);
    if (a.shape[0] !== b.shape[1] || a.shape[0] !== r) {
      throw new ModelFormatError(
        'ADAPTER_RANK_MISMATCH',
        `${where}: ${module}: lora_A [${a.shape.join(', ')}] and lora_B [${b.shape.join(', ')}] must both have ` +
          `rank ${r} (from the config's r / rank_pattern)`,
      );
    }
    modules.push({
      module,
      baseWeight: `${module}.weight`,
      r,
      alpha,
      scale,
      aKey: A,
      bKey: B,
      aShape: [...a.shape],
      bShape: [...b.shape],
    });
  }
  return { modules, otherTensors };
}

/** Read an adapter directory: config, tensor list and the LoRA modules (tensor data is loaded on demand). */
export async function readAdapter(dir: string): Promise<Adapter> {
  const configFile = path.join(dir, ADAPTER_CONFIG_FILE);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(configFile)) {
    throw new ModelFormatError(
      'ADAPTER_MISSING',
      `${configFile} not found: ${dir} is not a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(configFile, 'utf8'));
  } catch (e) {
    throw new ModelFormatError(
      'ADAPTER_CONFIG_INVALID',
      `cannot read ${configFile}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const config = parseLoraConfig(json, configFile);
  if (!existsSync(weightsFile)) {
    const bin = existsSync(path.join(dir, 'adapter_model.bin'));
    throw new ModelFormatError(
      'ADAPTER_MISSING',
      bin
        ? `${dir} has adapter_model.bin but no ${ADAPTER_WEIGHTS_FILE}: convert it to safetensors ` +
            '(load it with PEFT and save_pretrained(dir, safe_serialization=True))'
        : `${weightsFile} not found`,
    );
  }
  const file = await SafetensorsFile.open(weightsFile);
  let tensors: Record<string, TensorSpec>;
  try {
    // fromEntries, not assignment: a tensor named "__proto__" must stay a tensor (and be refused as such)
    tensors = Object.fromEntries(
      file.names().map((name) => {
        const { dtype, shape } = file.info(name);
        return [name, { dtype, shape }];
      }),
    );
  } finally {
    await file.close();
  }
  return { dir, config, tensors, ...buildModules(config, tensors, weightsFile) };
}

/** One tensor of the adapter as F32. */
export async function loadAdapterTensor(adapter: Adapter, key: string): Promise<Float32Array> {
  return (await loadAdapterTensors(adapter, [key])).get(key)!;
}

/** Several (default: all) tensors of the adapter as F32, reading the file once. */
export async function loadAdapterTensors(
  adapter: Adapter,
  keys: string[] = Object.keys(adapter.tensors),
): Promise<Map<string, Float32Array>> {
  const file = await SafetensorsFile.open(path.join(adapter.dir, ADAPTER_WEIGHTS_FILE));
  try {
    const out = new Map<string, Float32Array>();
    for (const key of keys) out.set(key, await file.readFloat32(key));
    return out;
  } finally {
    await file.close();
  }
}

/**
 * Write an adapter directory as PEFT's save_pretrained does: adapter_config.json (`json.dumps(indent=2,
 * sort_keys=True)`) and adapter_model.safetensors (metadata {"format": "pt"}), each atomically. Keys with the
 * adapter name (`.lora_A.default.weight`, as PEFT names parameters) are saved without it, as PEFT saves them.
 */
export async function writeAdapter(
  dir: string,
  adapter: { config: LoraConfig; tensors: Record<string, TensorToWrite> },
): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [key, t] of Object.entries(adapter.tensors)) {
    const saved = key.replace(/\.(lora_[AB])\.default\.weight$/, '.$1.weight');
    if (tensors[saved])
      throw new ModelFormatError('ADAPTER_DUPLICATE', `${dir}: two tensors would be saved as "${saved}"`);
    tensors[saved] = t;
  }
  buildModules(adapter.config, tensors, dir);
  await fsp.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  const text = pythonJsonDumps(loraConfigToJson(adapter.config), { floatKeys: FLOAT_FIELDS });
  await writeFileAtomic(path.join(dir, ADAPTER_CONFIG_FILE), text);
}
