import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { expectedLlamaTensors } from '../src/checkpoint.js';
import { parseLlamaConfig, readLlamaConfig } from '../src/config.js';
import { expectError, TINY_CONFIG, useTempDir } from './formats-helpers.js';

const parse = (overrides: Record<string, unknown>) =>
  parseLlamaConfig({ ...TINY_CONFIG, ...overrides }, 'my/config.json');

describe('config.json', () => {
  const tmp = useTempDir();

  it('reads the fixture config (transformers 5, rope_parameters)', async function () {
    const dir = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const c = await readLlamaConfig(dir);
    const { raw, ...rest } = c;
    expect(rest).to.deep.equal({
      modelType: 'llama',
      architectures: ['LlamaForCausalLM'],
      hiddenSize: 64,
      intermediateSize: 176,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 16,
      vocabSize: 32000,
      maxPositionEmbeddings: 512,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      attentionBias: false,
      mlpBias: false,
      bosTokenId: 1,
      eosTokenId: 2,
      padTokenId: 2,
      dtype: 'float32',
    });
    expect(raw.transformers_version).to.equal('5.17.0');
  });

  it('reads old-style rope_theta and rope_scaling (Llama 3)', () => {
    const rope_scaling = {
      factor: 8.0,
      low_freq_factor: 1.0,
      high_freq_factor: 4.0,
      original_max_position_embeddings: 8192,
      rope_type: 'llama3',
    };
    const c = parse({
      rope_theta: 500000.0,
      rope_scaling,
      torch_dtype: 'bfloat16',
      eos_token_id: [128001, 128009],
    });
    expect(c.ropeTheta).to.equal(500000);
    expect(c.ropeScaling).to.deep.equal({ ...rope_scaling, type: 'llama3' });
    expect(c.dtype).to.equal('bfloat16');
    expect(c.eosTokenId).to.deep.equal([128001, 128009]);
    expect(parse({ rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling).to.deep.equal({
      type: 'linear',
      factor: 2,
    });
    expect(parse({ rope_scaling: null }).ropeScaling).to.equal(null);
  });

  it('reads rope_parameters with a scaling type, over a top-level rope_theta', () => {
    const c = parse({
      rope_theta: 1,
      rope_parameters: { rope_theta: 1e6, rope_type: 'linear', factor: 4.0 },
    });
    expect(c.ropeTheta).to.equal(1e6);
    expect(c.ropeScaling).to.deep.equal({ type: 'linear', rope_type: 'linear', factor: 4 });
    const { rope_theta: _, ...noTheta } = TINY_CONFIG;
    expect(parseLlamaConfig(noTheta, 'x').ropeTheta).to.equal(10000);
  });

  it('applies the defaults: GQA off, head_dim = hidden/heads, untied, bos 1, eos 2', () => {
    const { num_key_value_heads: _k, ...noKv } = TINY_CONFIG;
    const c = parseLlamaConfig({ ...noKv, rms_norm_eps: undefined }, 'x');
    expect(c.numKeyValueHeads).to.equal(2);
    expect(c.headDim).to.equal(4);
    expect(c.tieWordEmbeddings).to.equal(false);
    expect([c.bosTokenId, c.eosTokenId, c.padTokenId]).to.deep.equal([1, 2, null]);
    expect(c.rmsNormEps).to.equal(1e-6);
    expect(c.dtype).to.equal(null);
    expect(
      parse({ model_type: 'mistral', max_position_embeddings: undefined }).maxPositionEmbeddings,
    ).to.equal(131072);
  });

  it('derives tensor shapes from head_dim, GQA, biases and tied embeddings', () => {
    const c = parse({ head_dim: 16, tie_word_embeddings: true, attention_bias: true });
    const t = expectedLlamaTensors(c);
    expect(t.get('model.layers.0.self_attn.q_proj.weight')).to.deep.equal([32, 8]);
    expect(t.get('model.layers.0.self_attn.k_proj.weight')).to.deep.equal([16, 8]);
    expect(t.get('model.layers.0.self_attn.o_proj.weight')).to.deep.equal([8, 32]);
    expect(t.get('model.layers.0.self_attn.k_proj.bias')).to.deep.equal([16]);
    expect(t.has('model.layers.0.mlp.up_proj.bias')).to.equal(false);
    expect(t.has('lm_head.weight')).to.equal(false);
    expect(t.size).to.equal(1 + 9 + 4 + 1);
    expect(expectedLlamaTensors(parse({})).get('lm_head.weight')).to.deep.equal([10, 8]);
  });

  it('rejects bad values, naming the file and the field', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ hidden_size: 0 }, '"hidden_size"'],
      [{ hidden_size: '8' }, '"hidden_size"'],
      [{ num_hidden_layers: 1.5 }, '"num_hidden_layers"'],
      [{ vocab_size: undefined }, '"vocab_size" is missing'],
      [{ num_attention_heads: 4, num_key_value_heads: 3 }, '"num_key_value_heads" (3) must divide'],
      [{ num_attention_heads: 3, num_key_value_heads: 3 }, 'must divide hidden_size'],
      [{ num_key_value_heads: 4 }, '"num_key_value_heads"'],
      [{ rms_norm_eps: -1 }, '"rms_norm_eps"'],
      [{ rope_parameters: { rope_theta: 'big' } }, '"rope_parameters.rope_theta"'],
      [{ tie_word_embeddings: 'yes' }, '"tie_word_embeddings"'],
      [{ torch_dtype: 'int8' }, '"torch_dtype"'],
      [{ hidden_act: 'gelu' }, '"hidden_act"'],
      [{ eos_token_id: [-1] }, '"eos_token_id"'],
    ];
    for (const [overrides, field] of bad) {
      await expectError(() => parse(overrides), 'CONFIG_INVALID', 'my/config.json', field);
    }
    await expectError(
      () => parse({ model_type: 'gpt2' }),
      'CONFIG_ARCHITECTURE',
      'unknown architecture "gpt2" in my/config.json: polyglot runs Llama-family models (LlamaForCausalLM)',
    );
    await expectError(() => parseLlamaConfig([], 'a.json'), 'CONFIG_INVALID', 'a.json');
  });

  it('names the missing or malformed config.json', async () => {
    await expectError(readLlamaConfig(tmp()), 'CONFIG_MISSING', path.join(tmp(), 'config.json'));
    await writeFile(path.join(tmp(), 'config.json'), '{"model_type": "llama",');
    await expectError(readLlamaConfig(tmp()), 'CONFIG_INVALID', path.join(tmp(), 'config.json'));
  });
});
