import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  createLoraConfig,
  isTargetModule,
  type LoraConfig,
  loadAdapterTensor,
  loadAdapterTensors,
  loraModuleScale,
  parseLoraConfig,
  readAdapter,
  writeAdapter,
} from '../src/adapter.js';
import { compareCodePoints, pythonFloatRepr, pythonJsonDumps } from '../src/pyjson.js';
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from '../src/safetensors.js';
import { expectError, useTempDir } from './formats-helpers.js';

const Q = 'model.layers.0.self_attn.q_proj';
const key = (module: string, factor: 'A' | 'B') => `base_model.model.${module}.lora_${factor}.weight`;

/** A config as PEFT would read it from this JSON (with peft_type LORA). */
const config = (json: Record<string, unknown>): LoraConfig =>
  parseLoraConfig({ peft_type: 'LORA', ...json }, 'cfg.json');

/** LoRA factors for `modules` (r x in, out x r), filled with distinct values. */
function factors(modules: [string, number, number, number][]): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  for (const [module, r, inDim, outDim] of modules) {
    out[key(module, 'A')] = {
      dtype: 'F32',
      shape: [r, inDim],
      data: Float32Array.from({ length: r * inDim }, (_, i) => i / 7),
    };
    out[key(module, 'B')] = {
      dtype: 'F32',
      shape: [outDim, r],
      data: Float32Array.from({ length: r * outDim }, (_, i) => -i / 3),
    };
  }
  return out;
}

describe('PEFT LoRA adapters', () => {
  const tmp = useTempDir();

  it('reads the fixture adapter: 14 modules, r 8, alpha 16, scale 2', async function () {
    const adapter = await readAdapter(sharedPath(this, 'fixtures', 'tiny-llama', 'adapter'));
    const c = adapter.config;
    expect([c.r, c.loraAlpha, c.useRslora, c.fanInFanOut, c.bias, c.taskType]).to.deep.equal([
      8,
      16,
      false,
      false,
      'none',
      'CAUSAL_LM',
    ]);
    expect([...(c.targetModules as string[])].sort()).to.deep.equal([
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
    expect(adapter.modules).to.have.length(14);
    expect(adapter.otherTensors).to.deep.equal([]);
    const byName = new Map(adapter.modules.map((m) => [m.module, m]));
    expect(byName.get(Q)).to.deep.equal({
      module: Q,
      baseWeight: `${Q}.weight`,
      r: 8,
      alpha: 16,
      scale: 2,
      aKey: key(Q, 'A'),
      bKey: key(Q, 'B'),
      aShape: [8, 64],
      bShape: [64, 8],
    });
    expect(byName.get('model.layers.1.self_attn.k_proj')!.bShape).to.deep.equal([32, 8]);
    expect(byName.get('model.layers.1.mlp.down_proj')!.aShape).to.deep.equal([8, 176]);
    const a = await loadAdapterTensor(adapter, key(Q, 'A'));
    expect(a).to.have.length(8 * 64);
    expect(a.some((x) => x !== 0)).to.equal(true);
    await expectError(loadAdapterTensor(adapter, 'nope'), 'UNKNOWN_TENSOR', 'adapter_model.safetensors');
  });

  it('writes the fixture adapters back byte for byte', async function () {
    for (const name of ['adapter', 'sft-init-adapter', 'sft-after-steps-adapter']) {
      const src = sharedPath(this, 'fixtures', 'tiny-llama', name);
      const adapter = await readAdapter(src);
      const data = await loadAdapterTensors(adapter);
      const tensors: Record<string, TensorToWrite> = {};
      for (const [k, v] of data) tensors[k] = { dtype: 'F32', shape: adapter.tensors[k].shape, data: v };
      const out = path.join(tmp(), name);
      await writeAdapter(out, { config: adapter.config, tensors });
      for (const file of ['adapter_config.json', 'adapter_model.safetensors']) {
        expect(
          readFileSync(path.join(out, file)).equals(readFileSync(path.join(src, file))),
          `${name}/${file}`,
        ).to.equal(true);
      }
      const again = await readAdapter(out);
      expect(again.modules).to.deep.equal(adapter.modules);
      const data2 = await loadAdapterTensors(again);
      for (const [k, v] of data)
        expect(Buffer.from(data2.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).to.equal(true);
    }
  });

  it('reads keys with the adapter name (.lora_A.default.weight) and saves them without it', async () => {
    const tensors: Record<string, TensorToWrite> = {};
    for (const [k, t] of Object.entries(factors([[Q, 4, 8, 8]])))
      tensors[k.replace('.weight', '.default.weight')] = t;
    const cfg = createLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj'] });
    await writeSafetensors(path.join(tmp(), 'adapter_model.safetensors'), tensors);
    await writeFile(
      path.join(tmp(), 'adapter_config.json'),
      pythonJsonDumps({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] }),
    );
    const read = await readAdapter(tmp());
    expect(read.modules.map((m) => [m.module, m.aKey])).to.deep.equal([
      [Q, `base_model.model.${Q}.lora_A.default.weight`],
    ]);
    const out = path.join(tmp(), 'out');
    await writeAdapter(out, { config: cfg, tensors });
    const st = await SafetensorsFile.open(path.join(out, 'adapter_model.safetensors'));
    try {
      expect(st.names()).to.deep.equal([key(Q, 'A'), key(Q, 'B')]);
      expect(st.metadata).to.deep.equal({ format: 'pt' });
    } finally {
      await st.close();
    }
  });

  it('writes a new config with the fields PEFT writes, sorted as json.dumps(sort_keys=True)', async () => {
    const cfg = createLoraConfig({
      r: 16,
      loraAlpha: 32,
      targetModules: ['q_proj', 'v_proj'],
      loraDropout: 0.05,
      useRslora: true,
    });
    await writeAdapter(tmp(), { config: cfg, tensors: factors([[Q, 16, 8, 8]]) });
    const text = await readFile(path.join(tmp(), 'adapter_config.json'), 'utf8');
    const json = JSON.parse(text);
    expect(Object.keys(json)).to.deep.equal([...Object.keys(json)].sort());
    expect(json).to.include({
      peft_type: 'LORA',
      r: 16,
      lora_alpha: 32,
      use_rslora: true,
      use_dora: false,
      task_type: 'CAUSAL_LM',
      bias: 'none',
      inference_mode: true,
    });
    expect(text).to.include('\n  "lora_dropout": 0.05,\n');
    expect(text).to.include('\n  "target_modules": [\n    "q_proj",\n    "v_proj"\n  ],\n');
    expect(text).to.include('\n  "rank_pattern": {},\n');
    expect(text.endsWith('}')).to.equal(true);
    const back = await readAdapter(tmp());
    expect(back.modules[0].scale).to.equal(32 / 4);
    expect(back.config.loraDropout).to.equal(0.05);
  });

  describe('scale, rank_pattern and alpha_pattern (as PEFT resolves them)', () => {
    it('alpha/r, or alpha/sqrt(r) with use_rslora', () => {
      expect(loraModuleScale(config({ r: 8, lora_alpha: 16 }), Q)).to.deep.equal({
        r: 8,
        alpha: 16,
        scale: 2,
      });
      expect(loraModuleScale(config({ r: 16, lora_alpha: 32, use_rslora: true }), Q)).to.deep.equal({
        r: 16,
        alpha: 32,
        scale: 8,
      });
      expect(loraModuleScale(config({ r: 8, lora_alpha: 16, use_rslora: true }), Q).scale).to.equal(
        16 / Math.sqrt(8),
      );
    });

    it('matches a pattern against the whole name or a dotted suffix, first match winning', () => {
      const c = config({
        r: 8,
        lora_alpha: 16,
        rank_pattern: {
          'layers.1.self_attn.q_proj': 2,
          q_proj: 4,
          proj: 99,
          '^model.layers.0.mlp.up_proj': 6,
          'layers\\.[01]\\.mlp\\.down_.*': 12,
        },
        alpha_pattern: { v_proj: 64, 'model.layers.1.self_attn.k_proj': 3 },
      });
      const r = (m: string) => loraModuleScale(c, m).r;
      expect(r(Q)).to.equal(4);
      expect(r('model.layers.1.self_attn.q_proj')).to.equal(2);
      expect(r('model.layers.0.self_attn.k_proj')).to.equal(8); // 'proj' is not a dotted suffix of k_proj
      expect(r('model.layers.0.mlp.up_proj')).to.equal(6); // '^' anchors at the start of the full name
      expect(r('model.layers.1.mlp.up_proj')).to.equal(8);
      expect(r('model.layers.1.mlp.down_proj')).to.equal(12);
      expect(r('model.layers.2.mlp.down_proj')).to.equal(8);
      expect(loraModuleScale(c, 'model.layers.0.self_attn.v_proj')).to.deep.equal({
        r: 8,
        alpha: 64,
        scale: 8,
      });
      expect(loraModuleScale(c, 'model.layers.1.self_attn.k_proj')).to.deep.equal({
        r: 8,
        alpha: 3,
        scale: 3 / 8,
      });
      expect(loraModuleScale(c, 'model.layers.0.self_attn.k_proj').alpha).to.equal(16);
      const rs = config({
        r: 8,
        lora_alpha: 16,
        use_rslora: true,
        rank_pattern: { q_proj: 4 },
        alpha_pattern: { q_proj: 10 },
      });
      expect(loraModuleScale(rs, Q)).to.deep.equal({ r: 4, alpha: 10, scale: 5 });
    });

    it('applies rank_pattern when reading an adapter, and rejects ranks that disagree', async () => {
      const cfg = createLoraConfig({
        r: 8,
        loraAlpha: 16,
        targetModules: ['q_proj', 'v_proj'],
        rankPattern: { v_proj: 2 },
      });
      const V = 'model.layers.0.self_attn.v_proj';
      await writeAdapter(tmp(), {
        config: cfg,
        tensors: factors([
          [Q, 8, 8, 8],
          [V, 2, 8, 4],
        ]),
      });
      const adapter = await readAdapter(tmp());
      expect(adapter.modules.map((m) => [m.module, m.r, m.scale])).to.deep.equal([
        [Q, 8, 2],
        [V, 2, 8],
      ]);
      await expectError(
        writeAdapter(tmp(), {
          config: cfg,
          tensors: factors([
            [Q, 8, 8, 8],
            [V, 8, 8, 4],
          ]),
        }),
        'ADAPTER_RANK_MISMATCH',
        V,
        'rank 2',
      );
    });
  });

  describe('isTargetModule (PEFT semantics)', () => {
    it('matches list entries by full name or dotted suffix', () => {
      const c = config({ target_modules: ['q_proj', 'mlp.up_proj', 'model.norm'] });
      expect(isTargetModule(c, Q)).to.equal(true);
      expect(isTargetModule(c, 'q_proj')).to.equal(true);
      expect(isTargetModule(c, 'model.layers.0.self_attn.xq_proj')).to.equal(false);
      expect(isTargetModule(c, 'model.layers.3.mlp.up_proj')).to.equal(true);
      expect(isTargetModule(c, 'model.layers.3.xmlp.up_proj')).to.equal(false);
      expect(isTargetModule(c, 'model.norm')).to.equal(true);
    });

    it('fully matches a regex string, and expands all-linear to the projections', () => {
      const c = config({ target_modules: '.*\\.(q|v)_proj' });
      expect(isTargetModule(c, Q)).to.equal(true);
      expect(isTargetModule(c, 'model.layers.0.self_attn.k_proj')).to.equal(false);
      expect(isTargetModule(c, `${Q}.extra`)).to.equal(false);
      expect(isTargetModule(config({ target_modules: 'q_proj' }), Q)).to.equal(false);
      const all = config({ target_modules: 'all-linear' });
      expect(isTargetModule(all, 'model.layers.1.mlp.down_proj')).to.equal(true);
      expect(isTargetModule(all, 'lm_head')).to.equal(false);
    });

    it('honours exclude_modules and layers_to_transform / layers_pattern', () => {
      expect(
        isTargetModule(
          config({ target_modules: ['q_proj'], exclude_modules: ['layers.1.self_attn.q_proj'] }),
          'model.layers.1.self_attn.q_proj',
        ),
      ).to.equal(false);
      expect(
        isTargetModule(config({ target_modules: ['q_proj'], exclude_modules: '.*layers\\.0\\..*' }), Q),
      ).to.equal(false);
      const l = config({ target_modules: ['q_proj'], layers_to_transform: [1, 3] });
      expect(isTargetModule(l, Q)).to.equal(false);
      expect(isTargetModule(l, 'model.layers.3.self_attn.q_proj')).to.equal(true);
      const lp = config({ target_modules: ['q_proj'], layers_to_transform: 0, layers_pattern: 'layers' });
      expect(isTargetModule(lp, Q)).to.equal(true);
      expect(isTargetModule(lp, 'model.layers.1.self_attn.q_proj')).to.equal(false);
      expect(
        isTargetModule(
          config({ target_modules: ['q_proj'], layers_to_transform: 0, layers_pattern: 'blocks' }),
          Q,
        ),
      ).to.equal(false);
    });
  });

  describe('rejections', () => {
    async function writeRaw(cfg: Record<string, unknown>, tensors: Record<string, TensorToWrite>) {
      await writeFile(path.join(tmp(), 'adapter_config.json'), JSON.stringify(cfg));
      await writeSafetensors(path.join(tmp(), 'adapter_model.safetensors'), tensors, { format: 'pt' });
    }
    const base = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] };

    it('refuses other PEFT types and DoRA', async () => {
      await writeRaw({ ...base, peft_type: 'PREFIX_TUNING' }, {});
      await expectError(readAdapter(tmp()), 'ADAPTER_NOT_LORA', 'PREFIX_TUNING', 'adapter_config.json');
      await writeRaw({ ...base, use_dora: true }, {});
      await expectError(readAdapter(tmp()), 'ADAPTER_UNSUPPORTED', 'use_dora');
      await expectError(() => config({ r: 0 }), 'ADAPTER_CONFIG_INVALID', '"r"');
      await expectError(() => config({ target_modules: 5 }), 'ADAPTER_CONFIG_INVALID', '"target_modules"');
      await expectError(
        () => config({ rank_pattern: { q_proj: 'x' } }),
        'ADAPTER_CONFIG_INVALID',
        '"rank_pattern"',
      );
      await expectError(() => config({ target_modules: '(' }), 'ADAPTER_CONFIG_INVALID', 'regex');
    });

    it('refuses a lora_A without its lora_B, and ranks that disagree', async () => {
      const { [key(Q, 'B')]: _, ...noB } = factors([[Q, 4, 8, 8]]);
      await writeRaw(base, noB);
      await expectError(readAdapter(tmp()), 'ADAPTER_MISSING_FACTOR', key(Q, 'A'), 'lora_B');
      const t = factors([[Q, 4, 8, 8]]);
      t[key(Q, 'B')] = { dtype: 'F32', shape: [8, 3], data: new Float32Array(24) };
      await writeRaw(base, t);
      await expectError(readAdapter(tmp()), 'ADAPTER_RANK_MISMATCH', Q, '[8, 3]');
      await writeRaw({ ...base, r: 8 }, factors([[Q, 4, 8, 8]]));
      await expectError(readAdapter(tmp()), 'ADAPTER_RANK_MISMATCH', 'rank 8');
    });

    it('refuses LoRA weights for modules the config does not target, and unknown LoRA tensors', async () => {
      await writeRaw(base, factors([['model.layers.0.mlp.up_proj', 4, 8, 16]]));
      await expectError(readAdapter(tmp()), 'ADAPTER_NOT_TARGET', 'model.layers.0.mlp.up_proj');
      await writeRaw(
        { ...base, target_modules: ['embed_tokens'] },
        {
          'base_model.model.model.embed_tokens.lora_embedding_A': {
            dtype: 'F32',
            shape: [4, 10],
            data: new Float32Array(40),
          },
        },
      );
      await expectError(readAdapter(tmp()), 'ADAPTER_UNSUPPORTED', 'lora_embedding_A');
    });

    it('keeps full weights of modules_to_save as other tensors', async () => {
      const t = factors([[Q, 4, 8, 8]]);
      t['base_model.model.lm_head.weight'] = { dtype: 'F32', shape: [10, 8], data: new Float32Array(80) };
      await writeRaw({ ...base, modules_to_save: ['lm_head'] }, t);
      const adapter = await readAdapter(tmp());
      expect(adapter.otherTensors).to.deep.equal(['base_model.model.lm_head.weight']);
      expect(adapter.config.modulesToSave).to.deep.equal(['lm_head']);
    });

    it('names missing files and asks to convert adapter_model.bin', async () => {
      await expectError(readAdapter(tmp()), 'ADAPTER_MISSING', 'adapter_config.json');
      await writeRaw(base, {});
      await rm(path.join(tmp(), 'adapter_model.safetensors'));
      await writeFile(path.join(tmp(), 'adapter_model.bin'), 'x');
      await expectError(readAdapter(tmp()), 'ADAPTER_MISSING', 'adapter_model.bin', 'convert');
    });
  });

  describe('Python json.dumps compatibility', () => {
    it('prints floats as repr(float) does', () => {
      const cases: [number, string][] = [
        [0, '0.0'],
        [-0, '-0.0'],
        [16, '16.0'],
        [0.05, '0.05'],
        [1e-5, '1e-05'],
        [0.0001, '0.0001'],
        [1.5e-7, '1.5e-07'],
        [1e16, '1e+16'],
        [1234567890123456, '1234567890123456.0'],
        [1.2345678901234568e17, '1.2345678901234568e+17'],
        [-2.5, '-2.5'],
        [0.1 + 0.2, '0.30000000000000004'],
        [1e22, '1e+22'],
      ];
      for (const [x, want] of cases) expect(pythonFloatRepr(x), String(x)).to.equal(want);
    });

    it('escapes like ensure_ascii and sorts keys by code point', () => {
      expect(
        pythonJsonDumps(
          { b: 'é\u007f"\\\n', a: ['😀'], c: { z: 1, y: [] }, d: 0.0 },
          { floatKeys: new Set(['d']) },
        ),
      ).to.equal(
        '{\n  "a": [\n    "\\ud83d\\ude00"\n  ],\n  "b": "\\u00e9\\u007f\\"\\\\\\n",\n  "c": {\n    "y": [],\n    "z": 1\n  },\n  "d": 0.0\n}',
      );
      expect(['\uffff', '😀', 'a', 'Z'].sort(compareCodePoints)).to.deep.equal(['Z', 'a', '\uffff', '😀']);
    });
  });
});
