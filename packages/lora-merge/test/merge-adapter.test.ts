import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  bf16ToF32,
  f32ToBf16,
  isPolyglotError,
  LlamaModel,
  loadAdapterTensors,
  mergeLoraInto,
  readAdapter,
  SafetensorsFile,
  writeSafetensors,
} from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { type MergeReport, mergeAdapter, setConfigDtype, verifyMerge } from '../src/index.js';

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
}

const tiny = (ctx: Mocha.Context, ...parts: string[]) => sharedPath(ctx, 'fixtures', 'tiny-llama', ...parts);

let tmpRoot = '';
before(() => {
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'polyglot-lora-merge-'));
});
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
/** A fresh path (not created) under the suite's temp dir. */
const fresh = (name: string) => path.join(tmpRoot, `${name}-${++counter}`);

async function tensorsOf(
  file: string,
): Promise<Map<string, { dtype: string; shape: number[]; raw: Buffer }>> {
  const st = await SafetensorsFile.open(file);
  try {
    const out = new Map<string, { dtype: string; shape: number[]; raw: Buffer }>();
    for (const name of st.names()) {
      const { dtype, shape } = st.info(name);
      out.set(name, { dtype, shape, raw: Buffer.from(await st.readRaw(name)) });
    }
    return out;
  } finally {
    await st.close();
  }
}

/** Every tensor of a model directory (all shards). */
async function modelTensors(dir: string) {
  const all = new Map<string, { dtype: string; shape: number[]; raw: Buffer }>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.safetensors'))) {
    for (const [k, v] of await tensorsOf(path.join(dir, f))) all.set(k, v);
  }
  return all;
}

const f32 = (raw: Buffer) => new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
const bf16 = (raw: Buffer) =>
  bf16ToF32(new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));

/** max |x − want| / (|want| + 1e-3) — relative, with a floor for the weights near zero (as the model tests). */
function worstRelative(x: Float32Array, want: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < x.length; i++)
    worst = Math.max(worst, Math.abs(x[i] - want[i]) / (Math.abs(want[i]) + 1e-3));
  return worst;
}

async function expectCode(p: Promise<unknown>, code: string, ...mentions: string[]): Promise<Error> {
  let error: unknown = null;
  try {
    await p;
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${code}`).to.not.equal(null);
  expect(isPolyglotError(error), String(error)).to.equal(true);
  expect((error as { code: string }).code, (error as Error).message).to.equal(code);
  for (const m of mentions) expect((error as Error).message).to.include(m);
  return error as Error;
}

async function expectScores(dir: string, entries: RefEntry[], tol: number) {
  const model = await LlamaModel.load(dir, { backend: 'cpu' });
  try {
    for (const [i, e] of entries.entries()) {
      const s = await model.scoreTokens(e.input_ids);
      let worst = 0;
      for (let t = 0; t < e.token_logprobs.length; t++) {
        worst = Math.max(worst, Math.abs(s.tokenLogprobs[t] - e.token_logprobs[t]));
      }
      expect(worst, `prompt ${i}`).to.be.below(tol);
    }
  } finally {
    model.dispose();
  }
}

/** A copy of the fixture adapter with its config changed (and its tensors, when given). */
function adapterVariant(
  ctx: Mocha.Context,
  config: Record<string, unknown>,
  tensors?: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>,
): Promise<string> | string {
  const src = tiny(ctx, 'adapter');
  const dir = fresh('adapter');
  mkdirSync(dir, { recursive: true });
  const json = { ...JSON.parse(readFileSync(path.join(src, 'adapter_config.json'), 'utf8')), ...config };
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(json, null, 2));
  if (!tensors) {
    cpSync(path.join(src, 'adapter_model.safetensors'), path.join(dir, 'adapter_model.safetensors'));
    return dir;
  }
  return writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' }).then(
    () => dir,
  );
}

/** The tensors of the fixture adapter as writeSafetensors takes them, keys renamed by `rename`. */
async function adapterTensors(ctx: Mocha.Context, rename: (k: string) => string = (k) => k) {
  const adapter = await readAdapter(tiny(ctx, 'adapter'));
  const data = await loadAdapterTensors(adapter);
  const out: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of data) out[rename(k)] = { dtype: 'F32', shape: adapter.tensors[k].shape, data: v };
  return out;
}

describe('mergeAdapter: the tiny-llama fixture (PEFT merge_and_unload as the reference)', () => {
  let out = '';
  let report: MergeReport;

  before(async function () {
    out = fresh('merged');
    report = await mergeAdapter({
      base: tiny(this, 'base'),
      adapters: [tiny(this, 'adapter')],
      out,
      verify: true,
    });
  });

  it('gives the 14 tensors PEFT merged within 1e-5 relative', async function () {
    const changed = await tensorsOf(tiny(this, 'merged-by-peft', 'changed-tensors.safetensors'));
    const got = await modelTensors(out);
    expect(changed.size).to.equal(14);
    for (const [name, want] of changed) {
      const t = got.get(name)!;
      expect(t.dtype, name).to.equal('F32');
      expect(worstRelative(f32(t.raw), f32(want.raw)), name).to.be.below(1e-5);
    }
  });

  it('copies every other tensor and file byte for byte (same shard files, layout and metadata)', async function () {
    const baseDir = tiny(this, 'base');
    const changed = await tensorsOf(tiny(this, 'merged-by-peft', 'changed-tensors.safetensors'));
    const base = await modelTensors(baseDir);
    const got = await modelTensors(out);
    expect([...got.keys()].sort()).to.deep.equal([...base.keys()].sort());
    for (const [name, t] of base) {
      if (changed.has(name)) expect(got.get(name)!.raw.equals(t.raw), name).to.equal(false);
      else expect(got.get(name)!.raw.equals(t.raw), name).to.equal(true);
    }
    expect(readdirSync(out).sort()).to.deep.equal(readdirSync(baseDir).sort());
    for (const f of readdirSync(baseDir)) {
      const a = readFileSync(path.join(baseDir, f));
      const b = readFileSync(path.join(out, f));
      if (f === 'model-00003-of-00003.safetensors') {
        // the merged tensors' shard: the same header, other data
        const header = 8 + Number(a.readBigUInt64LE(0));
        expect(b.subarray(0, header).equals(a.subarray(0, header))).to.equal(true);
        expect(b.length).to.equal(a.length);
      } else {
        expect(b.equals(a), f).to.equal(true); // shards 1 and 2, index, config (float32 kept), tokenizer files
      }
    }
  });

  it('reports what it did, including the verification', () => {
    expect(report).to.include({ tensorsMerged: 14, tensorsCopied: 7, tensorsConverted: 0, dtype: 'float32' });
    expect(report.kernel).to.equal('wasm');
    expect(report.merged[0].contributions[0]).to.include({
      r: 8,
      alpha: 16,
      scale: 2,
      weight: 1,
      effectiveScale: 2,
    });
    const size = readdirSync(out).reduce((s, f) => s + readFileSync(path.join(out, f)).length, 0);
    expect(report.bytesWritten).to.equal(size);
    expect(report.shards.map((s) => s.merged)).to.deep.equal([0, 0, 14]);
    expect(report.verify).to.include({ tensors: 21, merged: 14, identical: 21 });
    expect(report.seconds).to.be.above(0);
    expect(readdirSync(path.dirname(out)).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  });

  it('scores like the PEFT-merged reference in our engine (1e-4)', async function () {
    const ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as { merged: RefEntry[] };
    await expectScores(out, ref.merged, 1e-4);
  });

  it('gives the same bits in small chunks with the JS kernel (chunk boundaries, both kernels)', async function () {
    const again = fresh('chunked');
    await mergeAdapter({
      base: tiny(this, 'base'),
      adapters: [tiny(this, 'adapter')],
      out: again,
      chunkBytes: 1000, // rows of 64 or 176 floats: chunks of 3 or 1 rows, and byte chunks for the copies
      kernel: 'js',
    });
    for (const f of readdirSync(out)) {
      expect(readFileSync(path.join(again, f)).equals(readFileSync(path.join(out, f))), f).to.equal(true);
    }
  });

  it('--dry-run reports the same plan and writes nothing', async function () {
    const target = fresh('dry');
    const dry = await mergeAdapter({
      base: tiny(this, 'base'),
      adapters: [tiny(this, 'adapter')],
      out: target,
      dryRun: true,
    });
    expect(existsSync(target)).to.equal(false);
    expect(dry.dryRun).to.equal(true);
    const { seconds: _a, verify: _b, out: _c, dryRun: _d, ...plan } = dry;
    const { seconds: _e, verify: _f, out: _g, dryRun: _h, ...done } = report;
    expect(plan).to.deep.equal(done);
  });

  it('verifyMerge passes on the output and names a corrupted tensor', async function () {
    const opts = { base: tiny(this, 'base'), adapters: [tiny(this, 'adapter')] };
    expect(await verifyMerge({ ...opts, out })).to.include({ tensors: 21, identical: 21 });
    const copy = fresh('corrupt');
    cpSync(out, copy, { recursive: true });
    const shard = path.join(copy, 'model-00003-of-00003.safetensors');
    const bytes = readFileSync(shard);
    const st = await SafetensorsFile.open(shard);
    const at = st.dataStart + st.info('model.layers.1.mlp.up_proj.weight').dataOffsets[0] + 4 * 100;
    await st.close();
    bytes[at] ^= 1;
    writeFileSync(shard, bytes);
    await expectCode(
      verifyMerge({ ...opts, out: copy }),
      'VERIFY_FAILED',
      '"model.layers.1.mlp.up_proj.weight" element 100',
    );
  });
});

describe('mergeAdapter: dtypes', () => {
  it('keeps a BF16 base in BF16 (round to nearest even of the float32 merge) and sets config.json', async function () {
    const baseDir = tiny(this, 'base-bf16');
    const out = fresh('bf16');
    const report = await mergeAdapter({
      base: baseDir,
      adapters: [tiny(this, 'adapter')],
      out,
      verify: true,
    });
    expect(report.dtype).to.equal('bfloat16');
    expect(readdirSync(out).sort()).to.deep.equal(['config.json', 'model.safetensors']); // single file stays single
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.dtype).to.equal('bfloat16'); // the fixture's config says float32 for its BF16 weights
    expect(config).to.not.have.property('torch_dtype');
    const base = await modelTensors(baseDir);
    const got = await modelTensors(out);
    const adapter = await readAdapter(tiny(this, 'adapter'));
    const factors = await loadAdapterTensors(adapter);
    const peft = await tensorsOf(tiny(this, 'merged-by-peft', 'changed-tensors.safetensors'));
    for (const [name, t] of base) {
      const g = got.get(name)!;
      expect(g.dtype, name).to.equal('BF16');
      const m = adapter.modules.find((x) => x.baseWeight === name);
      if (!m) {
        expect(g.raw.equals(t.raw), name).to.equal(true);
        continue;
      }
      // independently: upcast, merge in float32 (JS kernel), round once to BF16
      const w = bf16(t.raw);
      mergeLoraInto(w, t.shape, factors.get(m.aKey)!, factors.get(m.bKey)!, m.scale, { kernel: 'js' });
      expect(g.raw.equals(Buffer.from(f32ToBf16(w).buffer)), name).to.equal(true);
      // and within BF16 precision of PEFT's float32 merge of the float32 weights
      const want = f32(peft.get(name)!.raw);
      const have = bf16(g.raw);
      for (let i = 0; i < want.length; i++) {
        expect(Math.abs(have[i] - want[i]), `${name}[${i}]`).to.be.at.most(
          2 ** -7 * Math.abs(want[i]) + 2e-3,
        );
      }
    }
    const ref = JSON.parse(readFileSync(tiny(this, 'reference.json'), 'utf8')) as { merged: RefEntry[] };
    await expectScores(out, ref.merged, 0.05); // BF16 rounding moves log-probs ~0.015; the merge itself ~0.9
  });

  it('--dtype bfloat16 converts every float tensor of a float32 base (index total_size halved)', async function () {
    const out = fresh('to-bf16');
    const keep = fresh('keep');
    const opts = { base: tiny(this, 'base'), adapters: [tiny(this, 'adapter')] };
    const report = await mergeAdapter({ ...opts, out, dtype: 'bfloat16', verify: true });
    await mergeAdapter({ ...opts, out: keep });
    expect(report).to.include({
      tensorsMerged: 14,
      tensorsCopied: 0,
      tensorsConverted: 7,
      dtype: 'bfloat16',
    });
    const got = await modelTensors(out);
    for (const [name, t] of await modelTensors(keep)) {
      expect(got.get(name)!.dtype).to.equal('BF16');
      expect(got.get(name)!.raw.equals(Buffer.from(f32ToBf16(f32(t.raw)).buffer)), name).to.equal(true);
    }
    const index = JSON.parse(readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).to.equal(16753920 / 2);
    expect(index.metadata.total_parameters).to.equal(4188480);
    expect(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).dtype).to.equal('bfloat16');
  });

  it('--dtype float32 of a BF16 base is the float32 merge of the upcast weights', async function () {
    const out = fresh('bf16-to-f32');
    await mergeAdapter({
      base: tiny(this, 'base-bf16'),
      adapters: [tiny(this, 'adapter')],
      out,
      dtype: 'float32',
    });
    const base = await modelTensors(tiny(this, 'base-bf16'));
    const got = await modelTensors(out);
    const adapter = await readAdapter(tiny(this, 'adapter'));
    const factors = await loadAdapterTensors(adapter);
    for (const [name, t] of base) {
      const w = bf16(t.raw);
      const m = adapter.modules.find((x) => x.baseWeight === name);
      if (m) mergeLoraInto(w, t.shape, factors.get(m.aKey)!, factors.get(m.bKey)!, m.scale);
      expect(got.get(name)!.raw.equals(Buffer.from(w.buffer)), name).to.equal(true);
    }
  });

  it('setConfigDtype edits the dtype keys in place, or adds torch_dtype', () => {
    const text = '{\n  "a": 1.0,\n  "torch_dtype": "float32",\n  "dtype": null\n}\n';
    expect(setConfigDtype(text, 'bfloat16')).to.equal(
      '{\n  "a": 1.0,\n  "torch_dtype": "bfloat16",\n  "dtype": "bfloat16"\n}\n',
    );
    expect(setConfigDtype('{\n  "rope_theta": 10000.0\n}\n', 'float16')).to.equal(
      '{\n  "torch_dtype": "float16",\n  "rope_theta": 10000.0\n}\n',
    );
    expect(JSON.parse(setConfigDtype('{}', 'float16'))).to.deep.equal({ torch_dtype: 'float16' });
  });
});

describe('mergeAdapter: several adapters', () => {
  it('adds each weighted delta in turn: A + A:-1 gives the base back (to rounding), A:0.5 twice ≈ A', async function () {
    const base = tiny(this, 'base');
    const a = tiny(this, 'adapter');
    const cancel = fresh('cancel');
    const halves = fresh('halves');
    const whole = fresh('whole');
    const r = await mergeAdapter({ base, adapters: [a, { dir: a, weight: -1 }], out: cancel });
    expect(r.merged[0].contributions.map((c) => c.effectiveScale)).to.deep.equal([2, -2]);
    await mergeAdapter({
      base,
      adapters: [
        { dir: a, weight: 0.5 },
        { dir: a, weight: 0.5 },
      ],
      out: halves,
    });
    await mergeAdapter({ base, adapters: [a], out: whole });
    const b = await modelTensors(base);
    const c = await modelTensors(cancel);
    const h = await modelTensors(halves);
    const w = await modelTensors(whole);
    for (const [name, t] of b) {
      // (W + δ) − δ: one float32 rounding of W + δ away from W
      expect(worstRelative(f32(c.get(name)!.raw), f32(t.raw)), name).to.be.below(1e-5);
      expect(worstRelative(f32(h.get(name)!.raw), f32(w.get(name)!.raw)), name).to.be.below(1e-5);
    }
  });

  it('the sum of the deltas of two different adapters, in order', async function () {
    const base = tiny(this, 'base');
    const a = tiny(this, 'adapter');
    const b = sharedPath(this, 'fixtures', 'tiny-llama', 'sft-after-steps-adapter');
    const out = fresh('two');
    await mergeAdapter({ base, adapters: [a, `${b}`], out });
    const got = await modelTensors(out);
    const ads = [await readAdapter(a), await readAdapter(b)];
    const fs = [await loadAdapterTensors(ads[0]), await loadAdapterTensors(ads[1])];
    for (const [name, t] of await modelTensors(base)) {
      const w = f32(t.raw);
      ads.forEach((ad, i) => {
        const m = ad.modules.find((x) => x.baseWeight === name);
        if (m) mergeLoraInto(w, t.shape, fs[i].get(m.aKey)!, fs[i].get(m.bKey)!, m.scale, { kernel: 'js' });
      });
      expect(got.get(name)!.raw.equals(Buffer.from(w.buffer)), name).to.equal(true);
    }
  });
});

describe('mergeAdapter: refusals (typed errors; nothing written)', () => {
  const noLeftovers = (out: string) => {
    expect(existsSync(out), out).to.equal(false);
    expect(readdirSync(path.dirname(out)).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  };

  it('an existing output directory, unless --force (which replaces it)', async function () {
    const out = fresh('exists');
    mkdirSync(out);
    writeFileSync(path.join(out, 'old-file'), 'x');
    const opts = { base: tiny(this, 'base'), adapters: [tiny(this, 'adapter')], out };
    await expectCode(mergeAdapter(opts), 'OUT_EXISTS', out, '--force');
    expect(readdirSync(out)).to.deep.equal(['old-file']);
    await mergeAdapter({ ...opts, force: true });
    expect(readdirSync(out)).to.include('model.safetensors.index.json').and.not.include('old-file');
    expect(readdirSync(path.dirname(out)).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  });

  it('an output directory that is (or contains) an input', async function () {
    const base = tiny(this, 'base');
    await expectCode(
      mergeAdapter({ base, adapters: [tiny(this, 'adapter')], out: base, force: true }),
      'OUT_IS_INPUT',
    );
    await expectCode(
      mergeAdapter({ base, adapters: [tiny(this, 'adapter')], out: path.dirname(base), force: true }),
      'OUT_IS_INPUT',
    );
  });

  const kinds: [string, Record<string, unknown>, string, string[]][] = [
    ['DoRA', { use_dora: true }, 'ADAPTER_DORA', ['DoRA', 'use_dora']],
    ['LoHa', { peft_type: 'LOHA' }, 'ADAPTER_UNSUPPORTED_KIND', ['"LOHA"', 'LoHa', 'not LoRA']],
    ['LoKr', { peft_type: 'LOKR' }, 'ADAPTER_UNSUPPORTED_KIND', ['LoKr']],
    ['IA3', { peft_type: 'IA3' }, 'ADAPTER_UNSUPPORTED_KIND', ['(IA)³']],
    [
      'modules_to_save',
      { modules_to_save: ['lm_head', 'embed_tokens'] },
      'ADAPTER_MODULES_TO_SAVE',
      ['lm_head, embed_tokens'],
    ],
    ['trainable tokens', { trainable_token_indices: [5, 7] }, 'ADAPTER_TRAINABLE_TOKENS', ['[5,7]']],
    ['trained biases', { bias: 'all' }, 'ADAPTER_BIAS', ['"all"']],
  ];
  for (const [what, config, code, mentions] of kinds) {
    it(`${what} adapters`, async function () {
      const dir = await adapterVariant(this, config);
      const out = fresh('refused');
      await expectCode(
        mergeAdapter({ base: tiny(this, 'base'), adapters: [dir], out }),
        code,
        `adapter ${dir}`,
        ...mentions,
      );
      noLeftovers(out);
    });
  }

  it('LoRA on the embedding (lora_embedding_A/B)', async function () {
    const tensors = await adapterTensors(this);
    tensors['base_model.model.model.embed_tokens.lora_embedding_A'] = {
      dtype: 'F32',
      shape: [8, 32000],
      data: new Float32Array(8 * 32000),
    };
    const dir = await adapterVariant(this, {}, tensors);
    await expectCode(
      mergeAdapter({ base: tiny(this, 'base'), adapters: [dir], out: fresh('emb') }),
      'ADAPTER_EMBEDDING_LORA',
      'model.embed_tokens',
    );
  });

  it('a target module the base does not have', async function () {
    const tensors = await adapterTensors(this, (k) => k.replace('model.layers.1.', 'model.layers.7.'));
    const dir = await adapterVariant(this, {}, tensors);
    const out = fresh('missing');
    await expectCode(
      mergeAdapter({ base: tiny(this, 'base'), adapters: [dir], out }),
      'ADAPTER_TARGET_MISSING',
      `adapter ${dir}`,
      'model.layers.7.',
      'different model',
    );
    noLeftovers(out);
  });

  it('a shape mismatch, with the expected and the found shapes', async function () {
    const tensors = await adapterTensors(this);
    const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
    tensors[key] = { dtype: 'F32', shape: [8, 48], data: new Float32Array(8 * 48) };
    const dir = await adapterVariant(this, {}, tensors);
    await expectCode(
      mergeAdapter({ base: tiny(this, 'base'), adapters: [dir], out: fresh('shape') }),
      'ADAPTER_SHAPE_MISMATCH',
      'model.layers.0.self_attn.q_proj',
      '[64, 48]',
      'has [64, 64]',
    );
  });

  it('quantized bases: quantization_config, integer target weights, F8 tensors', async function () {
    const adapter = tiny(this, 'adapter');
    const src = tiny(this, 'base-bf16');
    const withConfig = fresh('quant-config');
    cpSync(src, withConfig, { recursive: true });
    const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8'));
    writeFileSync(
      path.join(withConfig, 'config.json'),
      JSON.stringify({ ...config, quantization_config: { quant_method: 'gptq', bits: 4 } }),
    );
    await expectCode(
      mergeAdapter({ base: withConfig, adapters: [adapter], out: fresh('q') }),
      'BASE_QUANTIZED',
      'quantization_config',
      'gptq',
    );
    // a target weight stored as I8, and an F8 tensor
    const st = await tensorsOf(path.join(src, 'model.safetensors'));
    for (const [name, dtype] of [
      ['model.layers.0.self_attn.q_proj.weight', 'I8'],
      ['model.norm.weight', 'F8_E4M3'],
    ] as const) {
      const dir = fresh('quant-weights');
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
      const tensors: Record<string, { dtype: string; shape: number[]; data: Uint8Array }> = {};
      for (const [k, t] of st) {
        tensors[k] =
          k === name
            ? { dtype, shape: t.shape, data: new Uint8Array(t.shape.reduce((a, b) => a * b, 1)) }
            : { dtype: t.dtype, shape: t.shape, data: new Uint8Array(t.raw) };
      }
      await writeSafetensors(path.join(dir, 'model.safetensors'), tensors as never);
      await expectCode(
        mergeAdapter({ base: dir, adapters: [adapter], out: fresh('q') }),
        'BASE_QUANTIZED',
        name,
        dtype,
      );
    }
  });

  it('bad options and missing inputs', async function () {
    const base = tiny(this, 'base');
    const adapter = tiny(this, 'adapter');
    await expectCode(mergeAdapter({ base, adapters: [], out: fresh('x') }), 'MERGE_BAD_OPTION', 'no adapter');
    await expectCode(
      mergeAdapter({ base, adapters: [adapter], out: fresh('x'), dtype: 'int8' as never }),
      'MERGE_BAD_OPTION',
      'keep, float32, float16, bfloat16',
    );
    await expectCode(
      mergeAdapter({ base, adapters: [{ dir: adapter, weight: Number.NaN }], out: fresh('x') }),
      'MERGE_BAD_OPTION',
      'weight',
    );
    await expectCode(
      mergeAdapter({ base: fresh('none'), adapters: [adapter], out: fresh('x') }),
      'BASE_MISSING',
    );
    await expectCode(
      mergeAdapter({ base, adapters: [base], out: fresh('x') }),
      'ADAPTER_MISSING',
      'adapter_config.json',
    );
  });
});
