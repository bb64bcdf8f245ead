import { mkdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { Checkpoint, expectedLlamaTensors, validateLlamaCheckpoint } from '../src/checkpoint.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, typedArrayFor } from '../src/dtype.js';
import { expectError, TINY_CONFIG, tinyTensors, useTempDir, writeTinyModel } from './formats-helpers.js';

/** Parameters of a Llama from its sizes (the formula, not the tensor list). */
function llamaParameters(c: {
  h: number;
  ff: number;
  layers: number;
  heads: number;
  kv: number;
  d: number;
  v: number;
}) {
  const attention = c.h * c.heads * c.d * 2 + c.h * c.kv * c.d * 2;
  const mlp = 3 * c.h * c.ff;
  return 2 * c.v * c.h + c.layers * (attention + mlp + 2 * c.h) + c.h;
}

describe('Checkpoint', () => {
  const tmp = useTempDir();

  it('opens the sharded fixture and reports its tensors', async function () {
    const ckpt = await Checkpoint.open(sharedPath(this, 'fixtures', 'tiny-llama', 'base'));
    try {
      expect(ckpt.shards).to.deep.equal([
        'model-00001-of-00003.safetensors',
        'model-00002-of-00003.safetensors',
        'model-00003-of-00003.safetensors',
      ]);
      expect(ckpt.tensorNames()).to.have.length(21);
      expect(ckpt.tensorInfo('lm_head.weight')).to.deep.equal({
        name: 'lm_head.weight',
        dtype: 'F32',
        shape: [32000, 64],
        shard: 'model-00002-of-00003.safetensors',
      });
      expect(ckpt.dtypes()).to.deep.equal({ F32: 21 });
      const want = llamaParameters({ h: 64, ff: 176, layers: 2, heads: 4, kv: 2, d: 16, v: 32000 });
      expect(want).to.equal(4188480);
      expect(ckpt.parameterCount()).to.equal(want);
      expect(new Set(ckpt.tensorNames())).to.deep.equal(new Set(expectedLlamaTensors(ckpt.config).keys()));
      validateLlamaCheckpoint(ckpt);
      const norm = await ckpt.readFloat32('model.norm.weight');
      expect(norm).to.have.length(64);
      expect(Math.min(...norm)).to.be.at.least(0.8);
      expect(Math.max(...norm)).to.be.at.most(1.2);
      expect((await ckpt.readRaw('model.norm.weight')).byteLength).to.equal(256);
      await expectError(
        ckpt.readFloat32('model.layers.5.mlp.up_proj.weight'),
        'UNKNOWN_TENSOR',
        'model.layers.0.mlp.up_proj.weight',
      );
    } finally {
      await ckpt.close();
    }
  });

  it('base-bf16 and base-fp16 hold exactly the base weights rounded as torch rounds them', async function () {
    const base = await Checkpoint.open(sharedPath(this, 'fixtures', 'tiny-llama', 'base'));
    const bf16 = await Checkpoint.open(sharedPath(this, 'fixtures', 'tiny-llama', 'base-bf16'));
    const fp16 = await Checkpoint.open(sharedPath(this, 'fixtures', 'tiny-llama', 'base-fp16'));
    try {
      expect(bf16.dtypes()).to.deep.equal({ BF16: 21 });
      expect(fp16.dtypes()).to.deep.equal({ F16: 21 });
      validateLlamaCheckpoint(bf16);
      validateLlamaCheckpoint(fp16);
      for (const name of base.tensorNames()) {
        const x = await base.readFloat32(name);
        for (const [ckpt, round, widen, eps] of [
          [bf16, f32ToBf16, bf16ToF32, 2 ** -8],
          [fp16, f32ToF16, f16ToF32, 2 ** -11],
        ] as const) {
          expect(ckpt.tensorInfo(name).shape).to.deep.equal(base.tensorInfo(name).shape);
          const stored = typedArrayFor('F16', await ckpt.readRaw(name)) as Uint16Array;
          const rounded = round(x);
          for (let i = 0; i < x.length; i++) {
            if (rounded[i] !== stored[i])
              expect.fail(`${name}[${i}]: ${x[i]} rounds to ${rounded[i]}, stored ${stored[i]}`);
          }
          const asF32 = await ckpt.readFloat32(name);
          expect(Array.from(asF32.subarray(0, 64))).to.deep.equal(Array.from(widen(stored).subarray(0, 64)));
          for (let i = 0; i < x.length; i += 97) {
            expect(Math.abs(asF32[i] - x[i])).to.be.at.most(Math.abs(x[i]) * eps + 2 ** -24);
          }
        }
      }
    } finally {
      await Promise.all([base.close(), bf16.close(), fp16.close()]);
    }
  });

  it('opens single-file and sharded checkpoints it wrote itself', async () => {
    const tensors = tinyTensors();
    mkdirSync(path.join(tmp(), 'one'));
    mkdirSync(path.join(tmp(), 'two'));
    await writeTinyModel(path.join(tmp(), 'one'), tensors);
    await writeTinyModel(path.join(tmp(), 'two'), tensors, (n) =>
      n.includes('layers') ? 'b.safetensors' : 'a.safetensors',
    );
    for (const dir of ['one', 'two']) {
      const ckpt = await Checkpoint.open(path.join(tmp(), dir));
      try {
        validateLlamaCheckpoint(ckpt);
        expect(ckpt.shards).to.deep.equal(
          dir === 'one' ? ['model.safetensors'] : ['a.safetensors', 'b.safetensors'],
        );
        expect(ckpt.parameterCount()).to.equal(
          llamaParameters({ h: 8, ff: 16, layers: 1, heads: 2, kv: 1, d: 4, v: 10 }),
        );
        const q = await ckpt.readFloat32('model.layers.0.self_attn.q_proj.weight');
        expect(Array.from(q)).to.deep.equal(
          Array.from(tensors['model.layers.0.self_attn.q_proj.weight'].data as Float32Array),
        );
      } finally {
        await ckpt.close();
      }
    }
  });

  it('names what is missing: directory, config, weights', async () => {
    const missing = path.join(tmp(), 'nope');
    await expectError(Checkpoint.open(missing), 'CHECKPOINT_DIR_MISSING', missing);
    await expectError(Checkpoint.open(tmp()), 'CONFIG_MISSING', 'config.json');
    await writeFile(path.join(tmp(), 'config.json'), JSON.stringify(TINY_CONFIG));
    await expectError(Checkpoint.open(tmp()), 'CHECKPOINT_NO_WEIGHTS', 'model.safetensors');
    await writeFile(path.join(tmp(), 'pytorch_model.bin'), 'x');
    await expectError(
      Checkpoint.open(tmp()),
      'CHECKPOINT_NO_WEIGHTS',
      'pytorch_model.bin',
      'convert',
      'safetensors',
    );
  });

  it('names a shard the index lists but the directory lacks', async () => {
    await writeTinyModel(tmp(), tinyTensors(), (n) =>
      n.startsWith('lm_head') ? 'b.safetensors' : 'a.safetensors',
    );
    await rm(path.join(tmp(), 'b.safetensors'));
    await expectError(Checkpoint.open(tmp()), 'CHECKPOINT_MISSING_SHARD', 'b.safetensors');
  });

  it('finds disagreements between the index and the shards', async () => {
    const index = path.join(tmp(), 'model.safetensors.index.json');
    await writeTinyModel(tmp(), tinyTensors(), () => 'a.safetensors');
    // the index lists a tensor that its shard does not hold
    await writeFile(
      index,
      JSON.stringify({
        weight_map: {
          ...Object.fromEntries(Object.keys(tinyTensors()).map((n) => [n, 'a.safetensors'])),
          extra: 'a.safetensors',
        },
      }),
    );
    await expectError(Checkpoint.open(tmp()), 'CHECKPOINT_INDEX_MISMATCH', '"extra"', 'a.safetensors');
    // a shard holds a tensor the index does not list
    await writeFile(index, JSON.stringify({ weight_map: { 'model.norm.weight': 'a.safetensors' } }));
    await expectError(Checkpoint.open(tmp()), 'CHECKPOINT_INDEX_MISMATCH', 'does not list');
    await writeFile(index, JSON.stringify({ weight_map: { 'model.norm.weight': '../a.safetensors' } }));
    await expectError(Checkpoint.open(tmp()), 'CHECKPOINT_BAD_INDEX', '../a.safetensors');
    await writeFile(index, JSON.stringify({ metadata: {} }));
    await expectError(Checkpoint.open(tmp()), 'CHECKPOINT_BAD_INDEX', 'weight_map');
  });

  describe('validateLlamaCheckpoint', () => {
    async function check(tensors: ReturnType<typeof tinyTensors>, code: string, ...mentions: string[]) {
      await writeTinyModel(tmp(), tensors);
      const ckpt = await Checkpoint.open(tmp());
      try {
        await expectError(() => validateLlamaCheckpoint(ckpt), code, ...mentions);
      } finally {
        await ckpt.close();
      }
    }

    it('names a missing tensor', async () => {
      const { 'model.layers.0.mlp.down_proj.weight': _, ...rest } = tinyTensors();
      await check(rest, 'CHECKPOINT_MISSING_TENSOR', 'model.layers.0.mlp.down_proj.weight', '[8, 16]');
    });

    it('names a wrong shape with the expected and found shapes', async () => {
      const t = tinyTensors();
      t['model.layers.0.self_attn.k_proj.weight'] = {
        dtype: 'F32',
        shape: [8, 8],
        data: new Float32Array(64),
      };
      await check(
        t,
        'CHECKPOINT_SHAPE_MISMATCH',
        'model.layers.0.self_attn.k_proj.weight',
        '[8, 8]',
        '[4, 8]',
      );
    });

    it('names a tensor the config does not explain, allowing rotary inv_freq and a tied lm_head', async () => {
      const t = tinyTensors();
      t['model.layers.1.input_layernorm.weight'] = { dtype: 'F32', shape: [8], data: new Float32Array(8) };
      await check(t, 'CHECKPOINT_UNEXPECTED_TENSOR', 'model.layers.1.input_layernorm.weight');

      await rm(path.join(tmp(), 'model.safetensors'));
      const tied = { ...TINY_CONFIG, tie_word_embeddings: true };
      const ok = tinyTensors(tied);
      ok['model.layers.0.self_attn.rotary_emb.inv_freq'] = {
        dtype: 'F32',
        shape: [2],
        data: new Float32Array(2),
      };
      ok['lm_head.weight'] = { dtype: 'F32', shape: [10, 8], data: new Float32Array(80) };
      await writeTinyModel(tmp(), ok, undefined, tied);
      const ckpt = await Checkpoint.open(tmp());
      try {
        expect(ckpt.config.tieWordEmbeddings).to.equal(true);
        validateLlamaCheckpoint(ckpt);
      } finally {
        await ckpt.close();
      }
    });
  });
});
