/**
 * The base model directory, as a merge reads it: config.json (kept as text, for editing one key), the safetensors
 * weights (one `model.safetensors`, or the shards of `model.safetensors.index.json`), and the checks that refuse
 * quantized checkpoints. Any architecture: nothing here is Llama-specific.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { SafetensorsFile } from '@polyglot/model';
import { LoraMergeError } from './errors.js';

export const CONFIG_FILE = 'config.json';
export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

export interface BaseModel {
  dir: string;
  configText: string;
  config: Record<string, unknown>;
  /** The index file's text, or null for a single-file checkpoint. */
  indexText: string | null;
  /** Shard file names (sorted), each opened. */
  shards: { file: string; st: SafetensorsFile }[];
  /** Tensor name → shard file name. */
  shardOf: Map<string, string>;
  file(name: string): SafetensorsFile;
  close(): Promise<void>;
}

/** Tensor names that only quantized checkpoints hold (GPTQ/AWQ, bitsandbytes, FP8 with inverse scales). */
const QUANTIZED_TENSOR = /\.(qweight|qzeros|g_idx|SCB|absmax|quant_map|weight_scale_inv)$|\.quant_state\./;

async function readJson(
  file: string,
  code: string,
): Promise<{ text: string; json: Record<string, unknown> }> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new LoraMergeError(code, `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LoraMergeError(code, `${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new LoraMergeError(code, `${file} is not a JSON object`);
  }
  return { text, json: json as Record<string, unknown> };
}

/** Open a base model directory for merging; refuses quantized checkpoints with a message saying why. */
export async function openBase(dir: string): Promise<BaseModel> {
  const stat = await fsp.stat(dir).catch(() => null);
  if (!stat?.isDirectory()) {
    throw new LoraMergeError(
      'BASE_MISSING',
      stat
        ? `base model ${dir} is not a directory (expected a Hugging Face model directory)`
        : `base model directory ${dir} does not exist`,
    );
  }
  const configFile = path.join(dir, CONFIG_FILE);
  if (!existsSync(configFile)) {
    throw new LoraMergeError(
      'BASE_NO_CONFIG',
      `${configFile} not found: ${dir} is not a Hugging Face model directory (config.json + safetensors weights)`,
    );
  }
  const { text: configText, json: config } = await readJson(configFile, 'BASE_BAD_CONFIG');
  const q = config.quantization_config;
  if (q !== undefined && q !== null) {
    const method = (q as { quant_method?: unknown }).quant_method;
    throw new LoraMergeError(
      'BASE_QUANTIZED',
      `${configFile} has a quantization_config${typeof method === 'string' ? ` (quant_method "${method}")` : ''}: ` +
        'merging into a quantized base is not supported; merge into the unquantized base model ' +
        '(float32, float16 or bfloat16) and quantize the merged model afterwards',
    );
  }

  let indexText: string | null = null;
  let shardNames: string[];
  let weightMap: Map<string, string> | null = null;
  if (existsSync(path.join(dir, SINGLE_FILE))) {
    shardNames = [SINGLE_FILE];
  } else if (existsSync(path.join(dir, INDEX_FILE))) {
    const indexFile = path.join(dir, INDEX_FILE);
    const { text, json } = await readJson(indexFile, 'BASE_BAD_INDEX');
    indexText = text;
    const map = json.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw new LoraMergeError(
        'BASE_BAD_INDEX',
        `${indexFile}: "weight_map" (tensor name -> shard file) is missing`,
      );
    }
    weightMap = new Map();
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || path.basename(shard) !== shard || ['', '.', '..'].includes(shard)) {
        throw new LoraMergeError(
          'BASE_BAD_INDEX',
          `${indexFile}: weight_map maps "${name}" to ${JSON.stringify(shard)}, which is not a file name in the directory`,
        );
      }
      weightMap.set(name, shard);
    }
    shardNames = [...new Set(weightMap.values())].sort();
    for (const shard of shardNames) {
      if (!existsSync(path.join(dir, shard))) {
        throw new LoraMergeError(
          'BASE_MISSING_SHARD',
          `${indexFile} names shard ${shard}, but ${path.join(dir, shard)} does not exist (incomplete download?)`,
        );
      }
    }
  } else {
    const other = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.gguf'].find((f) =>
      existsSync(path.join(dir, f)),
    );
    throw new LoraMergeError(
      'BASE_NO_WEIGHTS',
      other
        ? `${dir} has ${other} but no safetensors weights: convert them to safetensors first (load the model with ` +
            'transformers and save_pretrained(dir, safe_serialization=True))'
        : `${dir} has no weights: expected ${SINGLE_FILE} or ${INDEX_FILE} with its shards`,
    );
  }

  const shards: { file: string; st: SafetensorsFile }[] = [];
  try {
    const shardOf = new Map<string, string>();
    for (const file of shardNames) {
      const st = await SafetensorsFile.open(path.join(dir, file));
      shards.push({ file, st });
      for (const name of st.names()) {
        const listed = weightMap ? weightMap.get(name) : file;
        if (listed !== file) {
          throw new LoraMergeError(
            'BASE_INDEX_MISMATCH',
            `${st.path} contains tensor "${name}", which ${path.join(dir, INDEX_FILE)} ` +
              (listed ? `maps to ${listed}` : 'does not list'),
          );
        }
        const { dtype } = st.info(name);
        if (dtype === 'F8_E4M3' || dtype === 'F8_E5M2' || QUANTIZED_TENSOR.test(name)) {
          throw new LoraMergeError(
            'BASE_QUANTIZED',
            `${st.path}: tensor "${name}" (${dtype}) belongs to a quantized checkpoint: merging into a quantized ` +
              'base is not supported; merge into the unquantized base model and quantize the merged model afterwards',
          );
        }
        shardOf.set(name, file);
      }
    }
    for (const [name, shard] of weightMap ?? []) {
      if (!shardOf.has(name)) {
        throw new LoraMergeError(
          'BASE_INDEX_MISMATCH',
          `${path.join(dir, INDEX_FILE)} maps tensor "${name}" to ${shard}, but that shard does not contain it`,
        );
      }
    }
    const byFile = new Map(shards.map((s) => [s.file, s.st]));
    return {
      dir,
      configText,
      config,
      indexText,
      shards,
      shardOf,
      file: (name) => byFile.get(shardOf.get(name)!)!,
      close: async () => {
        await Promise.all(shards.map((s) => s.st.close()));
      },
    };
  } catch (e) {
    await Promise.all(shards.map((s) => s.st.close()));
    throw e;
  }
}
