import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  Checkpoint,
  decodeTensor,
  dequantizeQ8_0,
  exportGguf,
  exportLoraGguf,
  GgmlType,
  GgufTokenType,
  GgufValueType,
  gguf,
  ggufTensorName,
  ggufText,
  isPolyglotError,
  POLYGLOT_GGUF_KEYS,
  permuteRotary,
  quantizeQ8_0,
  readAdapter,
  readGgufHeader,
  readLlamaConfig,
  TINY_CONFIGS,
  Tokenizer,
  writeGguf,
  writeRandomLlama,
} from '../src/index.js';

/** Bytes of a tensor of a GGUF file. */
async function tensorBytes(file: string, offset: number, bytes: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, offset);
    return new Uint8Array(buf);
  } finally {
    await fh.close();
  }
}

describe('gguf: container', () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'gguf-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes metadata and tensors that @huggingface/gguf and our reader parse back', async () => {
    const file = path.join(tmp, 'a.gguf');
    const w = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i));
    const meta = new Map([
      ['general.architecture', gguf.str('llama')],
      ['x.u32', gguf.u32(7)],
      ['x.f32', gguf.f32(0.5)],
      ['x.bool', gguf.bool(true)],
      ['x.strings', gguf.strings(['a', 'ü b', ''])],
      ['x.f32s', gguf.f32s([1.5, -2])],
      ['x.i32s', gguf.i32s([3, -4])],
    ]);
    await writeGguf(file, meta, [
      { name: 'w', shape: [2, 64], type: GgmlType.F32, data: async () => new Uint8Array(w.buffer.slice(0)) },
      { name: 'h', shape: [2, 64], type: GgmlType.F16, data: async () => encodeF16(w) },
      { name: 'q', shape: [2, 64], type: GgmlType.Q8_0, data: async () => quantizeQ8_0(w) },
    ]);
    const parsed = await hfGguf(file, { allowLocalFile: true });
    const pm = parsed.metadata as unknown as Record<string, unknown>;
    expect(pm['x.u32']).to.equal(7);
    expect(pm['x.f32']).to.equal(0.5);
    expect(pm['x.bool']).to.equal(true);
    expect(pm['x.strings']).to.deep.equal(['a', 'ü b', '']);
    expect(pm.version).to.equal(3);
    expect(parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype])).to.deep.equal([
      ['w', [64, 2], 0],
      ['h', [64, 2], 1],
      ['q', [64, 2], 8],
    ]);
    const ours = await readGgufHeader(file);
    expect(ours.metadata.get('x.strings')).to.deep.equal(['a', 'ü b', '']);
    expect([...(ours.metadata.get('x.i32s') as Int32Array)]).to.deep.equal([3, -4]);
    expect(ours.tensors.map((t) => t.shape)).to.deep.equal([
      [2, 64],
      [2, 64],
      [2, 64],
    ]);
    for (const t of ours.tensors) expect(t.offset % 32).to.equal(0);
    const back = decodeTensor(GgmlType.F32, await tensorBytes(file, ours.tensors[0].offset, 512));
    expect([...back]).to.deep.equal([...w]);
    const q = dequantizeQ8_0(await tensorBytes(file, ours.tensors[2].offset, 4 * 34));
    for (let i = 0; i < w.length; i++) expect(Math.abs(q[i] - w[i])).to.be.below(1 / 127);
  });

  it('Q8_0 blocks: an F16 scale max|x|/127 and int8 values rounded half away from zero', () => {
    const x = new Float32Array(32);
    x[0] = 1.27;
    x[1] = -0.635; // → -63.5 → -64
    x[2] = 0.005; // → 0.5 → 1
    const b = quantizeQ8_0(x);
    expect(b.length).to.equal(34);
    const q = new Int8Array(b.buffer, 2, 32);
    expect([q[0], q[1], q[2], q[3]]).to.deep.equal([127, -64, 1, 0]);
    expect(() => quantizeQ8_0(new Float32Array(31))).to.throw(/multiple of 32/);
    expect([...dequantizeQ8_0(quantizeQ8_0(new Float32Array(32)))].every((v) => v === 0)).to.equal(true);
  });

  it('permutes q/k rows as convert_hf_to_gguf (rotate-half pairs to adjacent pairs)', () => {
    // 2 heads of head_dim 4, rows tagged by their index
    const w = Float32Array.from({ length: 8 }, (_, i) => i);
    expect([...permuteRotary(w, 2, 1)]).to.deep.equal([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(ggufTensorName('model.layers.3.self_attn.k_proj.weight')).to.equal('blk.3.attn_k.weight');
    expect(ggufTensorName('lm_head.weight')).to.equal('output.weight');
    expect(() => ggufTensorName('model.vision.weight')).to.throw(/no GGUF name/);
  });
});

function encodeF16(w: Float32Array): Uint8Array {
  const out = new Uint8Array(w.length * 2);
  const v = new DataView(out.buffer);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < w.length; i++) {
    f[0] = w[i];
    // same conversion as the exporter
    v.setUint16(i * 2, f16bits(u[0]), true);
  }
  return out;
}

function f16bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 0xff) - 112;
  const mant = x & 0x7fffff;
  if (e <= 0) return sign;
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

describe('gguf: export of the tiny-llama fixture', function () {
  this.timeout(120_000);
  let tmp: string;
  let base: string;
  before(function () {
    base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    tmp = mkdtempSync(path.join(tmpdir(), 'gguf-export-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
    it(`${dtype}: Llama metadata, tokenizer and tensors that @huggingface/gguf parses`, async () => {
      const file = path.join(tmp, `tiny-${dtype}.gguf`);
      const r = await exportGguf(base, file, { dtype });
      expect(r.tokenizerModel).to.equal('llama');
      const parsed = await hfGguf(file, { allowLocalFile: true });
      const m = parsed.metadata as unknown as Record<string, unknown>;
      expect(m['general.architecture']).to.equal('llama');
      expect(m['general.file_type']).to.equal({ f32: 0, f16: 1, q8_0: 7 }[dtype]);
      expect(m['llama.embedding_length']).to.equal(64);
      expect(m['llama.block_count']).to.equal(2);
      expect(m['llama.attention.head_count']).to.equal(4);
      expect(m['llama.attention.head_count_kv']).to.equal(2);
      expect(m['llama.feed_forward_length']).to.equal(176);
      expect(m['llama.rope.dimension_count']).to.equal(16);
      expect(m['llama.rope.freq_base']).to.equal(10000);
      expect(m['llama.context_length']).to.equal(512);
      expect(m['tokenizer.ggml.model']).to.equal('llama');
      expect(m['tokenizer.ggml.bos_token_id']).to.equal(1);
      expect(m['tokenizer.ggml.eos_token_id']).to.equal(2);
      expect(m['tokenizer.ggml.add_bos_token']).to.equal(true);
      const tokens = m['tokenizer.ggml.tokens'] as string[];
      expect(tokens.length).to.equal(32000);
      expect(tokens.slice(0, 4)).to.deep.equal(['<unk>', '<s>', '</s>', '<0x00>']);
      const types = m['tokenizer.ggml.token_type'] as number[];
      expect(types.slice(0, 4)).to.deep.equal([
        GgufTokenType.UNKNOWN,
        GgufTokenType.CONTROL,
        GgufTokenType.CONTROL,
        GgufTokenType.BYTE,
      ]);
      expect(types[3 + 255]).to.equal(GgufTokenType.BYTE);
      expect(types[1000]).to.equal(GgufTokenType.NORMAL);
      // ranks: "▁t" (merge 1) outranks "er" (merge 2)
      const scores = m['tokenizer.ggml.scores'] as number[];
      expect(scores[tokens.indexOf('▁t')]).to.be.above(scores[tokens.indexOf('er')]);
      expect(parsed.tensorInfos.length).to.equal(3 + 2 * 9);
      const types2 = Object.fromEntries(parsed.tensorInfos.map((t) => [t.name, t.dtype]));
      expect(types2['blk.0.attn_norm.weight']).to.equal(GgmlType.F32);
      expect(types2['blk.0.attn_q.weight']).to.equal({ f32: 0, f16: 1, q8_0: 8 }[dtype]);
      // ffn_down rows have 176 values, not a multiple of 32: Q8_0 falls back to F16 as llama.cpp's converter does
      expect(types2['blk.0.ffn_down.weight']).to.equal({ f32: 0, f16: 1, q8_0: 1 }[dtype]);
      // kept whole, as string chunks that @huggingface/gguf reads across its 2 MB fetches
      const stored = ggufText(m[POLYGLOT_GGUF_KEYS.tokenizerJson]);
      expect(
        stored === readFileSync(path.join(base, 'tokenizer.json'), 'utf8'),
        'tokenizer.json kept',
      ).to.equal(true);
    });
  }

  it('stores the weights: embeddings as they are, q/k permuted, F16 and Q8_0 within their rounding', async () => {
    const ckpt = await Checkpoint.open(base);
    try {
      const heads = ckpt.config.numKeyValueHeads;
      for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
        const file = path.join(tmp, `tiny-${dtype}.gguf`);
        const h = await readGgufHeader(file);
        const info = (n: string) => h.tensors.find((t) => t.name === n)!;
        const read = async (n: string, count: number) => {
          const t = info(n);
          const bytes = t.type === 0 ? count * 4 : t.type === 1 ? count * 2 : (count / 32) * 34;
          return decodeTensor(t.type as GgmlType, await tensorBytes(file, t.offset, bytes));
        };
        const emb = await ckpt.readFloat32('model.embed_tokens.weight');
        const k = await ckpt.readFloat32('model.layers.1.self_attn.k_proj.weight');
        const kPerm = permuteRotary(k, heads, 64);
        const tol = { f32: 0, f16: 1e-3, q8_0: 3e-3 }[dtype];
        for (const [name, want] of [
          ['token_embd.weight', emb],
          ['blk.1.attn_k.weight', kPerm],
        ] as const) {
          const got = await read(name, want.length);
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
          expect(worst, `${dtype} ${name}`).to.be.at.most(tol);
        }
      }
    } finally {
      await ckpt.close();
    }
  });

  it('merges an adapter while exporting, and exports an adapter in llama.cpp LoRA format', async function () {
    const adapterDir = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const merged = sharedPath(
      this,
      'fixtures',
      'tiny-llama',
      'merged-by-peft',
      'changed-tensors.safetensors',
    );
    const file = path.join(tmp, 'merged.gguf');
    await exportGguf(base, file, { dtype: 'f32', mergeAdapter: adapterDir });
    const h = await readGgufHeader(file);
    expect(h.metadata.get(POLYGLOT_GGUF_KEYS.adapter)).to.equal('adapter');
    const { SafetensorsFile } = await import('../src/index.js');
    const peft = await SafetensorsFile.open(merged);
    try {
      const v = await peft.readFloat32('model.layers.0.self_attn.v_proj.weight');
      const t = h.tensors.find((x) => x.name === 'blk.0.attn_v.weight')!;
      const got = decodeTensor(GgmlType.F32, await tensorBytes(file, t.offset, v.length * 4));
      let worst = 0;
      for (let i = 0; i < v.length; i++)
        worst = Math.max(worst, Math.abs(got[i] - v[i]) / (Math.abs(v[i]) + 1e-3));
      expect(worst).to.be.below(1e-4);
    } finally {
      await peft.close();
    }

    const lora = path.join(tmp, 'lora.gguf');
    const config = await readLlamaConfig(base);
    const r = await exportLoraGguf(adapterDir, config, lora);
    expect(r.alpha).to.equal(16);
    expect(r.modules).to.equal(14);
    const parsed = await hfGguf(lora, { allowLocalFile: true });
    const m = parsed.metadata as unknown as Record<string, unknown>;
    expect(m['general.type']).to.equal('adapter');
    expect(m['adapter.type']).to.equal('lora');
    expect(m['adapter.lora.alpha']).to.equal(16);
    const a = parsed.tensorInfos.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!;
    const b = parsed.tensorInfos.find((t) => t.name === 'blk.0.attn_q.weight.lora_b')!;
    expect(a.shape.map(Number)).to.deep.equal([64, 8]); // ggml order: [in, r]
    expect(b.shape.map(Number)).to.deep.equal([8, 64]); // [r, out]
    expect((await readAdapter(adapterDir)).modules.length).to.equal(14);
  });

  it('refuses a tokenizer llama.cpp has no model for, naming the file', async () => {
    const dir = mkdtempSync(path.join(tmp, 'wp-'));
    await writeRandomLlama(dir, TINY_CONFIGS.smoke, { seed: 3, std: 0.08 });
    const tok = JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    tok.pre_tokenizer = null;
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
    try {
      await exportGguf(dir, path.join(tmp, 'bad.gguf'));
      expect.fail('exported');
    } catch (e) {
      expect(isPolyglotError(e)).to.equal(true);
      expect((e as Error & { code: string }).code).to.equal('GGUF_TOKENIZER_UNSUPPORTED');
      expect((e as Error).message).to.include(dir);
    }
    await expectNoFile(path.join(tmp, 'bad.gguf'));
  });
});

describe('gguf: byte-level BPE tokenizer (GGUF "gpt2")', () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'gguf-bl-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('exports tokens, types, an empty merge list and the gpt-2 pre-tokenizer', async () => {
    const dir = path.join(tmp, 'model');
    mkdirSync(dir);
    await writeRandomLlama(dir, TINY_CONFIGS.smoke, { seed: 3, std: 0.08 });
    const tok = await Tokenizer.fromDir(dir);
    expect(tok.encode('hé')).to.deep.equal([1, 3 + 0x68, 3 + 0xc3, 3 + 0xa9]);
    const file = path.join(tmp, 'bl.gguf');
    const r = await exportGguf(dir, file, { dtype: 'f32' });
    expect(r.tokenizerModel).to.equal('gpt2');
    const h = await readGgufHeader(file);
    expect(h.metadata.get('tokenizer.ggml.model')).to.equal('gpt2');
    expect(h.metadata.get('tokenizer.ggml.pre')).to.equal('gpt-2');
    expect(h.metadata.get('tokenizer.ggml.merges')).to.deep.equal([]);
    const tokens = h.metadata.get('tokenizer.ggml.tokens') as string[];
    expect(tokens.length).to.equal(259);
    expect(tokens[3 + 0x20]).to.equal('Ġ');
    const types = [...(h.metadata.get('tokenizer.ggml.token_type') as Int32Array)];
    expect(types.slice(0, 4)).to.deep.equal([
      GgufTokenType.UNKNOWN,
      GgufTokenType.CONTROL,
      GgufTokenType.CONTROL,
      GgufTokenType.NORMAL,
    ]);
    expect(GgufValueType.ARRAY).to.equal(9);
  });
});

async function expectNoFile(file: string): Promise<void> {
  const { existsSync, readdirSync } = await import('node:fs');
  expect(existsSync(file)).to.equal(false);
  expect(readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
}
