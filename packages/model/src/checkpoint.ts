/**
 * A Hugging Face model directory: config.json plus model.safetensors, or shards listed by
 * model.safetensors.index.json (`weight_map`: tensor name -> shard file).
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { type LlamaConfig, readLlamaConfig } from './config.js';
import { ModelFormatError } from './errors.js';
import { numel, SafetensorsFile, unknownTensorError } from './safetensors.js';

export interface CheckpointTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** The shard file name (relative to the checkpoint dir). */
  shard: string;
}

const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';

/** Read the index: tensor name -> shard file name. */
async function readIndex(dir: string): Promise<Map<string, string>> {
  const file = path.join(dir, INDEX_FILE);
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    throw new ModelFormatError('CHECKPOINT_BAD_INDEX', `cannot read ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelFormatError(
      'CHECKPOINT_BAD_INDEX',
      `${file}: "weight_map" (tensor name -> shard file) is missing`,
    );
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || path.basename(shard) !== shard || ['', '.', '..'].includes(shard)) {
      throw new ModelFormatError(
        'CHECKPOINT_BAD_INDEX',
        `${file}: weight_map maps "${name}" to ${JSON.stringify(shard)}, which is not a file name in the directory`,
      );
    }
    map.set(name, shard);
  }
  if (map.size === 0) {
    throw new ModelFormatError(
      'CHECKPOINT_BAD_INDEX',
      `${file}: "weight_map" lists no tensors (expected tensor name -> shard file)`,
    );
  }
  return map;
}

export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly config: LlamaConfig,
    /** Shard file names, in the order of their names. */
    readonly shards: string[],
    private readonly files: Map<string, SafetensorsFile>,
    private readonly shardOf: Map<string, string>,
  ) {}

  /** Open a model directory: config.json, then model.safetensors or the shards of its index. */
  static async open(dir: string): Promise<Checkpoint> {
    const stat = await fsp.stat(dir).catch(() => null);
    if (!stat?.isDirectory()) {
      throw new ModelFormatError(
        'CHECKPOINT_DIR_MISSING',
        stat
          ? `${dir} is not a directory (expected a Hugging Face model directory)`
          : `model directory ${dir} does not exist`,
      );
    }
    const config = await readLlamaConfig(dir);
    let index: Map<string, string> | null = null;
    let shards: string[];
    // As transformers: a single model.safetensors first, then the index.
    if (existsSync(path.join(dir, SINGLE_FILE))) {
      shards = [SINGLE_FILE];
    } else if (existsSync(path.join(dir, INDEX_FILE))) {
      index = await readIndex(dir);
      shards = [...new Set(index.values())].sort();
      for (const shard of shards) {
        if (!existsSync(path.join(dir, shard))) {
          throw new ModelFormatError(
            'CHECKPOINT_MISSING_SHARD',
            `${path.join(dir, INDEX_FILE)} names shard ${shard}, but ${path.join(dir, shard)} does not exist ` +
              '(incomplete download?)',
          );
        }
      }
    } else {
      const torchFile = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((f) =>
        existsSync(path.join(dir, f)),
      );
      throw new ModelFormatError(
        'CHECKPOINT_NO_WEIGHTS',
        torchFile
          ? `${dir} has ${torchFile} but no safetensors weights: polyglot reads safetensors only; convert the ` +
              'pytorch_model.bin weights to safetensors (e.g. load the model with transformers and ' +
              'save_pretrained(dir, safe_serialization=True))'
          : `${dir} has no weights: expected ${SINGLE_FILE} or ${INDEX_FILE} with its shards`,
      );
    }

    const files = new Map<string, SafetensorsFile>();
    try {
      for (const shard of shards) files.set(shard, await SafetensorsFile.open(path.join(dir, shard)));
      const shardOf = new Map<string, string>();
      for (const [shard, file] of files) {
        for (const name of file.names()) {
          const listed = index ? index.get(name) : shard;
          if (listed !== shard) {
            throw new ModelFormatError(
              'CHECKPOINT_INDEX_MISMATCH',
              `${file.path} contains tensor "${name}", which ${path.join(dir, INDEX_FILE)} ` +
                (listed ? `maps to ${listed}` : 'does not list'),
            );
          }
          shardOf.set(name, shard);
        }
      }
      for (const [name, shard] of index ?? []) {
        if (!shardOf.has(name)) {
          throw new ModelFormatError(
            'CHECKPOINT_INDEX_MISMATCH',
            `${path.join(dir, INDEX_FILE)} maps tensor "${name}" to ${shard}, but that shard does not contain it`,
          );
        }
      }
      return new Checkpoint(dir, config, shards, files, shardOf);
    } catch (e) {
      await Promise.all([...files.values()].map((f) => f.close()));
      throw e;
    }
  }

  /** All tensor names, shard by shard, in file order. */
  tensorNames(): string[] {
    return [...this.shardOf.keys()];
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  private fileOf(name: string): SafetensorsFile {
    const shard = this.shardOf.get(name);
    if (shard === undefined) throw unknownTensorError(name, this.tensorNames(), this.dir);
    return this.files.get(shard)!;
  }

  tensorInfo(name: string): CheckpointTensorInfo {
    const { dtype, shape } = this.fileOf(name).info(name);
    return { name, dtype, shape: [...shape], shard: this.shardOf.get(name)! };
  }

  /** A float tensor (F32, F16, BF16, F64) as F32. */
  async readFloat32(name: string): Promise<Float32Array> {
    return this.fileOf(name).readFloat32(name);
  }

  /** The tensor's stored bytes (little-endian, C order). */
  async readRaw(name: string): Promise<Uint8Array> {
    return this.fileOf(name).readRaw(name);
  }

  parameterCount(): number {
    let n = 0;
    for (const name of this.shardOf.keys()) n += numel(this.fileOf(name).info(name).shape);
    return n;
  }

  /** dtype -> number of tensors stored in it. */
  dtypes(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const name of this.shardOf.keys()) {
      const { dtype } = this.fileOf(name).info(name);
      counts[dtype] = (counts[dtype] ?? 0) + 1;
    }
    return counts;
  }

  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
  }
}

/** The tensors a Llama checkpoint must hold (Hugging Face names) and their shapes, from its config. */
export function expectedLlamaTensors(config: LlamaConfig): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: ff, vocabSize: v, headDim: d } = config;
  const q = config.numAttentionHeads * d;
  const kv = config.numKeyValueHeads * d;
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [v, h]]]);
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    const linear = (name: string, outDim: number, inDim: number, bias: boolean) => {
      out.set(`${p}.${name}.weight`, [outDim, inDim]);
      if (bias) out.set(`${p}.${name}.bias`, [outDim]);
    };
    linear('self_attn.q_proj', q, h, config.attentionBias);
    linear('self_attn.k_proj', kv, h, config.attentionBias);
    linear('self_attn.v_proj', kv, h, config.attentionBias);
    linear('self_attn.o_proj', h, q, config.attentionBias);
    linear('mlp.gate_proj', ff, h, config.mlpBias);
    linear('mlp.up_proj', ff, h, config.mlpBias);
    linear('mlp.down_proj', h, ff, config.mlpBias);
    out.set(`${p}.input_layernorm.weight`, [h]);
    out.set(`${p}.post_attention_layernorm.weight`, [h]);
  }
  out.set('model.norm.weight', [h]);
  if (!config.tieWordEmbeddings) out.set('lm_head.weight', [v, h]);
  return out;
}

/**
 * Check that the checkpoint holds every tensor its config implies, with the implied shapes, and nothing else
 * (old checkpoints' rotary `inv_freq` buffers and a stored lm_head of a tied model are allowed).
 */
export function validateLlamaCheckpoint(ckpt: Checkpoint): void {
  const expected = expectedLlamaTensors(ckpt.config);
  const configFile = path.join(ckpt.dir, 'config.json');
  for (const [name, shape] of expected) {
    if (!ckpt.has(name)) {
      throw new ModelFormatError(
        'CHECKPOINT_MISSING_TENSOR',
        `${ckpt.dir}: tensor "${name}" [${shape.join(', ')}] is missing (expected from ${configFile})`,
      );
    }
  }
  for (const name of ckpt.tensorNames()) {
    const found = ckpt.tensorInfo(name).shape;
    const want =
      expected.get(name) ??
      (name === 'lm_head.weight' ? [ckpt.config.vocabSize, ckpt.config.hiddenSize] : null);
    if (!want) {
      if (/\.rotary_emb\.inv_freq$/.test(name)) continue;
      throw new ModelFormatError(
        'CHECKPOINT_UNEXPECTED_TENSOR',
        `${ckpt.dir}: unexpected tensor "${name}" [${found.join(', ')}] for a Llama model with ` +
          `${ckpt.config.numHiddenLayers} layers (${configFile} does not match the weights?)`,
      );
    }
    if (want.length !== found.length || want.some((n, i) => n !== found[i])) {
      throw new ModelFormatError(
        'CHECKPOINT_SHAPE_MISMATCH',
        `${ckpt.dir}: tensor "${name}" has shape [${found.join(', ')}] but ${configFile} implies ` +
          `[${want.join(', ')}]`,
      );
    }
  }
}
