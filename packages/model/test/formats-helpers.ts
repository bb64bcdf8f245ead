// Test support for the file-format tests: temp dirs, expected typed errors, tiny synthetic checkpoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { expectedLlamaTensors } from '../src/checkpoint.js';
import { parseLlamaConfig } from '../src/config.js';
import { isPolyglotError } from '../src/errors.js';
import { type TensorToWrite, writeSafetensors } from '../src/safetensors.js';

/** A fresh temp dir, removed after the current mocha suite. */
export function useTempDir(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-model-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/** Await `p`, expect a typed polyglot error with `code` whose message contains every string of `mentions`. */
export async function expectError(
  p: Promise<unknown> | (() => unknown),
  code: string,
  ...mentions: string[]
) {
  let error: unknown = null;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${code}`).to.not.equal(null);
  expect(isPolyglotError(error), String(error)).to.equal(true);
  expect((error as { code: string }).code, (error as Error).message).to.equal(code);
  for (const m of mentions) expect((error as Error).message).to.include(m);
  return error as Error & { code: string };
}

/** config.json of a tiny Llama (hidden 8, 1 layer, 2 heads, 1 kv head, ff 16, vocab 10). */
export const TINY_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 10,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
};

/** The tensors of TINY_CONFIG, each filled with its index + 1 (F32). */
export function tinyTensors(config: Record<string, unknown> = TINY_CONFIG): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  let i = 0;
  for (const [name, shape] of expectedLlamaTensors(parseLlamaConfig(config, 'test config'))) {
    out[name] = { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(++i) };
  }
  return out;
}

/** Write a model dir: config.json and the tensors, in one file or in shards (tensor name -> shard file). */
export async function writeTinyModel(
  dir: string,
  tensors: Record<string, TensorToWrite> = tinyTensors(),
  shardOf?: (name: string) => string,
  config: Record<string, unknown> = TINY_CONFIG,
): Promise<void> {
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  if (!shardOf) {
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return;
  }
  const shards = new Map<string, Record<string, TensorToWrite>>();
  const weightMap: Record<string, string> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const shard = shardOf(name);
    weightMap[name] = shard;
    shards.set(shard, { ...shards.get(shard), [name]: t });
  }
  for (const [shard, ts] of shards) await writeSafetensors(path.join(dir, shard), ts, { format: 'pt' });
  await writeFile(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2),
  );
}
