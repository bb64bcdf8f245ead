import { statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { formatInspect, inspectModel } from '../src/inspect.js';
import { tinyTensors, useTempDir, writeTinyModel } from './formats-helpers.js';

describe('inspectModel', () => {
  const tmp = useTempDir();

  it('summarises the sharded fixture model', async function () {
    const dir = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const report = await inspectModel(dir);
    expect(report.architecture).to.equal('LlamaForCausalLM');
    expect(report.modelType).to.equal('llama');
    expect(report.config).to.deep.equal({
      hidden: 64,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      headDim: 16,
      intermediate: 176,
      vocab: 32000,
      maxPositions: 512,
      ropeTheta: 10000,
      ropeScaling: null,
      tied: false,
      dtype: 'float32',
    });
    // embed + lm_head + per layer (q, k, v, o, gate, up, down, 2 norms) + final norm
    const perLayer = 64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 3 * 176 * 64 + 2 * 64;
    expect(report.parameterCount).to.equal(2 * 32000 * 64 + 2 * perLayer + 64);
    expect(report.dtypes).to.deep.equal({ F32: 21 });
    expect(report.shards.map((s) => [s.file, s.tensors])).to.deep.equal([
      ['model-00001-of-00003.safetensors', 1],
      ['model-00002-of-00003.safetensors', 1],
      ['model-00003-of-00003.safetensors', 19],
    ]);
    for (const s of report.shards) expect(s.bytes).to.equal(statSync(path.join(dir, s.file)).size);
    expect(report.totalBytes).to.equal(report.shards.reduce((a, s) => a + s.bytes, 0));
    expect(report.files).to.include.members([
      'config.json',
      'tokenizer.json',
      'model.safetensors.index.json',
    ]);
    expect(report.files.some((f) => f.startsWith('model-0000'))).to.equal(false);
    expect(report.problem).to.equal(null);

    const text = formatInspect(report);
    expect(text.split('\n')[0]).to.equal(dir);
    for (const part of [
      'LlamaForCausalLM',
      '4 heads, 2 kv heads, head_dim 16',
      '4,188,480',
      'F32 × 21',
      'model-00003-of-00003.safetensors: 19 tensors',
      'tokenizer.json',
      'weights match config.json',
    ]) {
      expect(text).to.include(part);
    }
  });

  it('reports the stored dtype of the BF16 fixture', async function () {
    const report = await inspectModel(sharedPath(this, 'fixtures', 'tiny-llama', 'base-bf16'));
    expect(report.dtypes).to.deep.equal({ BF16: 21 });
    expect(report.shards).to.have.length(1);
    expect(report.parameterCount).to.equal(4188480);
  });

  it('reports weights that do not match the config instead of failing', async () => {
    const { 'model.norm.weight': _, ...rest } = tinyTensors();
    await writeTinyModel(tmp(), rest);
    const report = await inspectModel(tmp());
    expect(report.problem).to.include('model.norm.weight');
    expect(formatInspect(report)).to.include('is missing');
  });
});
