// Property-based and fuzz tests of the parsers of untrusted model files: safetensors (header length, JSON
// header, dtype/shape/data_offsets), the sharded index, config.json, adapter_config.json + adapter tensors,
// tokenizer.json, and the Python-JSON writer they round-trip through. Every input must parse correctly or raise
// our typed error (ModelFormatError) — never another exception, a hang (mocha's timeout) or an allocation the
// file's size does not back. Case counts are printed (`fuzz: <parser> <N> cases`); POLYGLOT_FUZZ_RUNS scales them.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyMutations,
  deepJson,
  fuzz,
  fuzzCounts,
  mutationsArb,
  parsesOrTyped,
  parsesOrTypedSync,
  recordCases,
  runs,
  weirdValue,
} from '../../../tools/fuzz.js';
import { sharedPath } from '../../../tools/shared.js';
import {
  isTargetModule,
  loraConfigToJson,
  loraModuleScale,
  parseLoraConfig,
  readAdapter,
} from '../src/adapter.js';
import { Checkpoint } from '../src/checkpoint.js';
import { parseLlamaConfig, readLlamaConfig } from '../src/config.js';
import { dtypeSize, SAFETENSORS_DTYPES, type SafetensorsDtype } from '../src/dtype.js';
import { compareCodePoints, pythonFloatRepr, pythonJsonDumps, pythonJsonString } from '../src/pyjson.js';
import { MAX_HEADER_BYTES, SafetensorsFile, writeSafetensors } from '../src/safetensors.js';
import { Tokenizer } from '../src/tokenizer.js';

const N = {
  stRoundTrip: runs(60),
  stHeader: runs(300),
  stMutation: runs(200),
  index: runs(100),
  config: runs(400),
  configFile: runs(100),
  lora: runs(400),
  adapterDir: runs(60),
  pyjson: runs(300),
  tokenizer: runs(300),
  tokenizerFile: runs(100),
};

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-model-fuzz-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  console.log(`      fuzz: model total ${[...fuzzCounts.values()].reduce((a, b) => a + b, 0)} cases`);
});

/**
 * An empty folder for one case (cases run one after another, so each property reuses its own: thousands of cases
 * leave no thousands of files behind).
 */
function freshDir(tag: string): string {
  const dir = path.join(tmp, tag);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  return dir;
}

function tempFile(name: string, bytes: Uint8Array | string): string {
  const file = path.join(freshDir('file'), name);
  writeFileSync(file, bytes);
  return file;
}

// ------------------------------------------------------------------------------------------------------------
// safetensors

const dtypeArb = fc.constantFrom(...SAFETENSORS_DTYPES);
const nameArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__'),
  fc.constantFrom('model.embed_tokens.weight', '__proto__', 'constructor', 'a.b.c', 'é✓😀'),
);
const specsArb = fc.dictionary(
  nameArb,
  fc.record({ dtype: dtypeArb, shape: fc.array(fc.nat({ max: 5 }), { maxLength: 3 }) }),
  { maxKeys: 5 },
);

/** The bytes of a safetensors file with this header object (padded as save_file pads) and `dataSize` bytes. */
function safetensorsBytes(header: unknown, dataSize: number, rawHeader?: Uint8Array): Uint8Array {
  const text = rawHeader ?? new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + dataSize);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  for (let i = 0; i < dataSize; i++) out[8 + text.length + i] = (i * 31) & 0xff;
  return out;
}

/** Open a safetensors file: a typed error, or a file whose every tensor reads back inside the file. */
async function openChecked(file: string, size: number): Promise<void> {
  const r = await parsesOrTyped(() => SafetensorsFile.open(file), file);
  if (!r.ok) return;
  const st = r.value;
  try {
    let total = 0;
    for (const name of st.names()) {
      const { dtype, shape, dataOffsets } = st.info(name);
      const bytes = shape.reduce((a, b) => a * b, 1) * dtypeSize(dtype);
      expect(dataOffsets[1] - dataOffsets[0]).to.equal(bytes);
      expect(st.dataStart + dataOffsets[1]).to.be.at.most(size);
      expect((await st.readRaw(name)).length).to.equal(bytes);
      total += bytes;
    }
    expect(st.dataStart + total).to.equal(size);
  } finally {
    await st.close();
  }
}

describe('fuzz: safetensors', () => {
  it(`round-trips generated tensors through writeSafetensors / SafetensorsFile (${N.stRoundTrip} cases)`, async () => {
    await fuzz(
      'safetensors round-trip',
      fc.asyncProperty(
        specsArb,
        fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 })),
        async (specs, metadata) => {
          const tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }> = {};
          for (const [name, { dtype, shape }] of Object.entries(specs)) {
            const n = shape.reduce((a, b) => a * b, 1) * dtypeSize(dtype);
            tensors[name] = {
              dtype,
              shape,
              data: Uint8Array.from({ length: n }, (_, i) => (i * 7 + name.length) & 0xff),
            };
          }
          const dir = freshDir('roundtrip');
          const file = path.join(dir, 'm.safetensors');
          await writeSafetensors(file, tensors, metadata);
          const st = await SafetensorsFile.open(file);
          try {
            expect(st.names().sort()).to.deep.equal(Object.keys(tensors).sort());
            expect(st.metadata).to.deep.equal(metadata);
            for (const [name, t] of Object.entries(tensors)) {
              expect(st.info(name).dtype).to.equal(t.dtype);
              expect(st.info(name).shape).to.deep.equal(t.shape);
              expect(await st.readRaw(name)).to.deep.equal(t.data);
            }
          } finally {
            await st.close();
          }
        },
      ),
      N.stRoundTrip,
    );
  });

  it(`parses generated headers (wrong types, huge shapes and offsets) or raises ModelFormatError (${N.stHeader} cases)`, async () => {
    const entryArb = fc.record(
      {
        dtype: fc.oneof(dtypeArb, weirdValue),
        shape: fc.oneof(
          fc.array(
            fc.oneof(fc.nat({ max: 6 }), fc.constantFrom(2 ** 20, 2 ** 31, 2 ** 40, 2 ** 53, -1, 1.5)),
            {
              maxLength: 4,
            },
          ),
          weirdValue,
        ),
        data_offsets: fc.oneof(
          fc.tuple(fc.nat({ max: 64 }), fc.nat({ max: 64 })),
          fc.tuple(
            fc.constantFrom(0, 2 ** 40, 2 ** 53, -8, 0.5),
            fc.constantFrom(0, 4, 2 ** 42, 2 ** 64, -1),
          ),
          weirdValue,
        ),
      },
      { requiredKeys: [] },
    );
    const headerArb = fc.oneof(
      fc.dictionary(nameArb, fc.oneof({ weight: 4, arbitrary: entryArb }, weirdValue), { maxKeys: 4 }),
      weirdValue,
      fc.record({ __metadata__: weirdValue }),
    );
    await fuzz(
      'safetensors header',
      fc.asyncProperty(headerArb, fc.nat({ max: 96 }), async (header, dataSize) => {
        const bytes = safetensorsBytes(header, dataSize);
        await openChecked(tempFile('h.safetensors', bytes), bytes.length);
      }),
      N.stHeader,
    );
  });

  it('refuses huge declared sizes before allocating', async () => {
    const cases: [string, Uint8Array, string][] = [
      // 2^40 F32 elements whose offsets claim 4 TiB: refused as past the end of the file, nothing read
      [
        'offsets past the file',
        safetensorsBytes({ w: { dtype: 'F32', shape: [2 ** 20, 2 ** 20], data_offsets: [0, 2 ** 42] } }, 16),
        'SAFETENSORS_TRUNCATED',
      ],
      [
        'shape larger than its offsets',
        safetensorsBytes({ w: { dtype: 'F32', shape: [2 ** 40], data_offsets: [0, 16] } }, 16),
        'SAFETENSORS_SIZE_MISMATCH',
      ],
      [
        'shape product beyond 2^53',
        safetensorsBytes(
          { w: { dtype: 'U8', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 16] } },
          16,
        ),
        'SAFETENSORS_SIZE_MISMATCH',
      ],
      [
        'offset beyond 2^53',
        safetensorsBytes({ w: { dtype: 'U8', shape: [4], data_offsets: [2 ** 60, 2 ** 60 + 4] } }, 4),
        'SAFETENSORS_BAD_HEADER',
      ],
    ];
    const headerLength = (n: bigint) => {
      const b = safetensorsBytes({}, 0);
      new DataView(b.buffer).setBigUint64(0, n, true);
      return b;
    };
    cases.push(['header length 2^64-1', headerLength(2n ** 64n - 1n), 'SAFETENSORS_HEADER_TOO_LARGE']);
    cases.push(['header length 2^40', headerLength(2n ** 40n), 'SAFETENSORS_HEADER_TOO_LARGE']);
    cases.push([
      'header length at the limit but past the file',
      headerLength(BigInt(MAX_HEADER_BYTES)),
      'SAFETENSORS_TRUNCATED',
    ]);
    for (const [what, bytes, code] of cases) {
      const file = tempFile('big.safetensors', bytes);
      const r = await parsesOrTyped(() => SafetensorsFile.open(file), file);
      expect(r.ok, what).to.equal(false);
      if (!r.ok) expect(r.error.code, `${what}: ${r.error.message}`).to.equal(code);
    }
    recordCases('safetensors huge sizes', cases.length);
  });

  it('refuses deeply nested, non-UTF-8 and non-object headers', async () => {
    const raw: Uint8Array[] = [
      new TextEncoder().encode(deepJson(100_000, 'array')),
      new TextEncoder().encode(`{"a":${deepJson(50_000, 'object')}}`),
      Uint8Array.of(0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d), // {"\xff\xfe":1}
      Uint8Array.of(0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d), // a UTF-8-encoded surrogate
      new TextEncoder().encode('[]'),
      new TextEncoder().encode('null'),
      new TextEncoder().encode(''),
    ];
    for (const header of raw) {
      const bytes = safetensorsBytes(null, 0, header);
      const file = tempFile('deep.safetensors', bytes);
      const r = await parsesOrTyped(() => SafetensorsFile.open(file), file);
      expect(r.ok).to.equal(false);
    }
    recordCases('safetensors odd headers', raw.length);
  });

  it(`truncates a small file at every length: ModelFormatError each time`, async () => {
    const tensors = {
      a: { dtype: 'F32' as const, shape: [2, 3], data: new Float32Array(6).fill(1.5) },
      b: { dtype: 'BF16' as const, shape: [4], data: new Uint16Array(4).fill(0x3f80) },
      c: { dtype: 'I64' as const, shape: [1], data: new BigInt64Array([5n]) },
    };
    const file = path.join(tmp, 'small.safetensors');
    await writeSafetensors(file, tensors, { format: 'pt' });
    const bytes = readFileSync(file);
    for (let n = 0; n < bytes.length; n++) {
      const cut = tempFile('cut.safetensors', bytes.subarray(0, n));
      const r = await parsesOrTyped(() => SafetensorsFile.open(cut), cut);
      expect(r.ok, `prefix of ${n} bytes`).to.equal(false);
    }
    recordCases('safetensors truncation', bytes.length);
  });

  it(`mutated files (bit flips, inserted/deleted bytes, overwrites) parse or raise ModelFormatError (${N.stMutation} cases)`, async () => {
    const seeds: Uint8Array[] = [];
    const small = path.join(tmp, 'seed.safetensors');
    await writeSafetensors(
      small,
      {
        'model.layers.0.self_attn.q_proj.weight': { dtype: 'F16', shape: [2, 2], data: new Uint16Array(4) },
        'model.norm.weight': { dtype: 'F32', shape: [3], data: new Float32Array(3) },
        empty: { dtype: 'U8', shape: [0, 7], data: new Uint8Array(0) },
      },
      { format: 'pt' },
    );
    seeds.push(readFileSync(small));
    await fuzz(
      'safetensors mutation',
      fc.asyncProperty(
        fc
          .nat({ max: seeds.length - 1 })
          .chain((i) => fc.tuple(fc.constant(i), mutationsArb(seeds[i]!.length))),
        async ([i, ms]) => {
          const bytes = applyMutations(seeds[i]!, ms);
          await openChecked(tempFile('mut.safetensors', bytes), bytes.length);
        },
      ),
      N.stMutation,
    );
  });

  it('mutations of a real fixture shard parse or raise ModelFormatError', async function () {
    const shard = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter', 'adapter_model.safetensors');
    const bytes = new Uint8Array(readFileSync(shard));
    const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    // the header is where the parsing happens: mutate it (and the first bytes of data)
    await fuzz(
      'safetensors fixture mutation',
      fc.asyncProperty(mutationsArb(headerEnd + 16), async (ms) => {
        const out = applyMutations(bytes, ms);
        await openChecked(tempFile('fixture.safetensors', out), out.length);
      }),
      runs(40),
    );
  });
});

// ------------------------------------------------------------------------------------------------------------
// sharded checkpoint index

const TINY_CONFIG = {
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  hidden_size: 4,
  intermediate_size: 8,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 8,
  rms_norm_eps: 1e-5,
};

describe('fuzz: sharded checkpoint index (model.safetensors.index.json)', () => {
  let base: string;
  before(async () => {
    base = path.join(tmp, 'ckpt-base');
    mkdirSync(base);
    await writeSafetensors(path.join(base, 'model-00001-of-00002.safetensors'), {
      'model.embed_tokens.weight': { dtype: 'F32', shape: [8, 4], data: new Float32Array(32) },
    });
    await writeSafetensors(path.join(base, 'model-00002-of-00002.safetensors'), {
      'model.norm.weight': { dtype: 'F32', shape: [4], data: new Float32Array(4) },
    });
  });

  it(`parses generated and mutated indexes or raises ModelFormatError (${N.index} cases)`, async () => {
    const validIndex = {
      metadata: { total_size: 144 },
      weight_map: {
        'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
        'model.norm.weight': 'model-00002-of-00002.safetensors',
      },
    };
    const shardName = fc.oneof(
      fc.constantFrom(
        'model-00001-of-00002.safetensors',
        'model-00002-of-00002.safetensors',
        '../model-00001-of-00002.safetensors',
        '/etc/passwd',
        '.',
        '..',
        '',
        'missing.safetensors',
        'a\u0000b',
      ),
      weirdValue,
    );
    const indexArb = fc.oneof(
      fc.record({
        weight_map: fc.oneof(
          fc.dictionary(
            fc.constantFrom('model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight', '__proto__'),
            shardName,
          ),
          weirdValue,
        ),
      }),
      weirdValue,
    );
    const textArb = fc.oneof(
      indexArb.map((v) => JSON.stringify(v) ?? 'undefined'),
      mutationsArb(JSON.stringify(validIndex).length).map((ms) =>
        Buffer.from(applyMutations(new TextEncoder().encode(JSON.stringify(validIndex)), ms)).toString(
          'latin1',
        ),
      ),
    );
    await fuzz(
      'checkpoint index',
      fc.asyncProperty(textArb, async (text) => {
        const dir = freshDir('ckpt');
        writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TINY_CONFIG));
        for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
          writeFileSync(path.join(dir, f), readFileSync(path.join(base, f)));
        }
        writeFileSync(path.join(dir, 'model.safetensors.index.json'), text, 'latin1');
        const r = await parsesOrTyped(() => Checkpoint.open(dir));
        if (r.ok) {
          // every tensor the index lists, from the shard it names, and nothing else
          const listed = Object.keys(JSON.parse(text).weight_map).sort();
          expect(r.value.tensorNames().sort()).to.deep.equal(listed);
          expect(listed.length).to.be.greaterThan(0);
          await r.value.close();
        }
      }),
      N.index,
    );
  });
});

// ------------------------------------------------------------------------------------------------------------
// config.json

const CONFIG_FIELDS = [
  'model_type',
  'architectures',
  'hidden_act',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'vocab_size',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'rope_parameters',
  'tie_word_embeddings',
  'attention_bias',
  'mlp_bias',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'dtype',
  'torch_dtype',
];

describe('fuzz: config.json', () => {
  it(`valid generated configs parse to the values they hold (${N.config} cases)`, async () => {
    const validArb = fc
      .record({
        heads: fc.integer({ min: 1, max: 16 }),
        groups: fc.integer({ min: 1, max: 4 }),
        headDim: fc.integer({ min: 1, max: 64 }),
        ff: fc.integer({ min: 1, max: 10_000 }),
        layers: fc.integer({ min: 1, max: 80 }),
        vocab: fc.integer({ min: 1, max: 200_000 }),
        eps: fc.double({ min: 1e-12, max: 1e-1, noNaN: true }),
        theta: fc.double({ min: 1, max: 1e7, noNaN: true }),
        tie: fc.boolean(),
        newRope: fc.boolean(),
        dtype: fc.constantFrom('float32', 'float16', 'bfloat16'),
        eos: fc.oneof(fc.nat({ max: 1000 }), fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 3 })),
      })
      .map((v) => ({ ...v, kv: v.heads, q: v.heads * v.groups }));
    await fuzz(
      'config.json valid',
      fc.property(validArb, (v) => {
        const json: Record<string, unknown> = {
          model_type: 'llama',
          hidden_size: v.q * v.headDim,
          intermediate_size: v.ff,
          num_hidden_layers: v.layers,
          num_attention_heads: v.q,
          num_key_value_heads: v.kv,
          vocab_size: v.vocab,
          rms_norm_eps: v.eps,
          tie_word_embeddings: v.tie,
          eos_token_id: v.eos,
          torch_dtype: v.dtype,
        };
        if (v.newRope) json.rope_parameters = { rope_theta: v.theta, rope_type: 'default' };
        else json.rope_theta = v.theta;
        const c = parseLlamaConfig(JSON.parse(JSON.stringify(json)), 'config.json');
        expect(c.hiddenSize).to.equal(v.q * v.headDim);
        expect(c.headDim).to.equal(v.headDim);
        expect(c.numKeyValueHeads).to.equal(v.kv);
        expect(c.ropeTheta).to.equal(v.theta);
        expect(c.ropeScaling).to.equal(null);
        expect(c.rmsNormEps).to.equal(v.eps);
        expect(c.tieWordEmbeddings).to.equal(v.tie);
        expect(c.eosTokenId).to.deep.equal(v.eos);
        expect(c.dtype).to.equal(v.dtype);
      }),
      N.config,
    );
  });

  it(`configs with fields of wrong types or out of range parse or raise ModelFormatError naming the file (${N.config} cases)`, async () => {
    const valid = { ...TINY_CONFIG, rope_theta: 10000, torch_dtype: 'float32' } as Record<string, unknown>;
    const mutated = fc.oneof(
      fc.dictionary(fc.constantFrom(...CONFIG_FIELDS), weirdValue).map((over) => ({ ...valid, ...over })),
      fc.constantFrom(...CONFIG_FIELDS).map((drop) => {
        const { [drop]: _gone, ...rest } = valid;
        return rest;
      }),
      weirdValue,
    );
    await fuzz(
      'config.json fields',
      fc.property(mutated, (json) => {
        const r = parsesOrTypedSync(() => parseLlamaConfig(json, 'cfg/config.json'), 'cfg/config.json');
        if (r.ok) {
          const c = r.value;
          for (const k of [
            'hiddenSize',
            'intermediateSize',
            'numHiddenLayers',
            'vocabSize',
            'headDim',
          ] as const) {
            expect(Number.isSafeInteger(c[k]) && c[k] > 0, `${k} ${c[k]}`).to.equal(true);
          }
          expect(c.numAttentionHeads % c.numKeyValueHeads).to.equal(0);
          expect(Number.isFinite(c.ropeTheta) && c.ropeTheta > 0).to.equal(true);
        }
      }),
      N.config,
    );
  });

  it(`mutated config.json files parse or raise ModelFormatError (${N.configFile} cases)`, async function () {
    const text = readFileSync(sharedPath(this, 'fixtures', 'tiny-llama', 'base', 'config.json'));
    await fuzz(
      'config.json file',
      fc.asyncProperty(mutationsArb(text.length), async (ms) => {
        const dir = freshDir('cfg');
        writeFileSync(path.join(dir, 'config.json'), applyMutations(text, ms));
        await parsesOrTyped(() => readLlamaConfig(dir), path.join(dir, 'config.json'));
      }),
      N.configFile,
    );
    const deep = freshDir('cfg');
    writeFileSync(path.join(deep, 'config.json'), deepJson(200_000, 'array'));
    expect((await parsesOrTyped(() => readLlamaConfig(deep))).ok).to.equal(false);
  });
});

// ------------------------------------------------------------------------------------------------------------
// PEFT adapter_config.json and adapter tensors

const MODULES = [
  'model.layers.0.self_attn.q_proj',
  'model.layers.1.self_attn.v_proj',
  'model.layers.12.mlp.down_proj',
  'lm_head',
  'model.embed_tokens',
];

const LORA_FIELDS = [
  'r',
  'lora_alpha',
  'use_rslora',
  'target_modules',
  'exclude_modules',
  'rank_pattern',
  'alpha_pattern',
  'fan_in_fan_out',
  'modules_to_save',
  'lora_dropout',
  'bias',
  'task_type',
  'base_model_name_or_path',
  'layers_to_transform',
  'layers_pattern',
  'use_dora',
  'layer_replication',
];

/** Strings that are interesting as module names and regexes (invalid regexes included). */
const patternArb = fc.oneof(
  fc.constantFrom(
    'q_proj',
    'v_proj',
    '.*',
    '(',
    '[',
    '(?P<x>a)(?P=x)',
    '\\A.*\\Z',
    'all-linear',
    'layers',
    'h',
    '*',
  ),
  fc.string({ maxLength: 6 }),
);

describe('fuzz: adapter_config.json', () => {
  it(`valid generated configs round-trip through loraConfigToJson (${N.lora} cases)`, async () => {
    const arb = fc.record({
      r: fc.integer({ min: 1, max: 256 }),
      lora_alpha: fc.oneof(fc.integer({ min: -64, max: 512 }), fc.double({ min: 0.1, max: 64, noNaN: true })),
      use_rslora: fc.boolean(),
      target_modules: fc.oneof(
        fc.array(fc.constantFrom('q_proj', 'k_proj', 'v_proj', 'o_proj')),
        fc.constant('.*proj'),
      ),
      lora_dropout: fc.double({ min: 0, max: 0.99, noNaN: true }),
      bias: fc.constantFrom('none', 'all', 'lora_only'),
      rank_pattern: fc.dictionary(
        fc.constantFrom('q_proj', 'layers.0.self_attn.v_proj'),
        fc.integer({ min: 1, max: 64 }),
      ),
      layers_to_transform: fc.oneof(fc.constant(null), fc.nat({ max: 40 }), fc.array(fc.nat({ max: 40 }))),
    });
    await fuzz(
      'adapter_config.json valid',
      fc.property(arb, (v) => {
        const c = parseLoraConfig({ peft_type: 'LORA', ...v }, 'adapter_config.json');
        expect([c.r, c.loraAlpha, c.useRslora, c.bias, c.loraDropout]).to.deep.equal([
          v.r,
          v.lora_alpha,
          v.use_rslora,
          v.bias,
          v.lora_dropout,
        ]);
        const again = parseLoraConfig(JSON.parse(JSON.stringify(loraConfigToJson(c))), 'again');
        expect({ ...again, raw: null }).to.deep.equal({ ...c, raw: null });
        for (const m of MODULES) {
          const { r, scale } = loraModuleScale(c, m);
          expect(Number.isSafeInteger(r) && r > 0, `rank ${r}`).to.equal(true);
          expect(Number.isFinite(scale)).to.equal(true);
          isTargetModule(c, m);
        }
      }),
      N.lora,
    );
  });

  it(`configs with wrong types, bad regexes and odd values parse or raise ModelFormatError (${N.lora} cases)`, async () => {
    const base = JSON.parse(
      JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] }),
    );
    const value = fc.oneof(
      weirdValue,
      patternArb,
      fc.array(patternArb, { maxLength: 3 }),
      fc.dictionary(patternArb, fc.oneof(fc.integer({ min: -2, max: 64 }), weirdValue), { maxKeys: 3 }),
    );
    const arb = fc.oneof(
      fc
        .dictionary(fc.constantFrom(...LORA_FIELDS, 'peft_type'), value)
        .map((over) => ({ ...base, ...over })),
      weirdValue,
    );
    await fuzz(
      'adapter_config.json fields',
      fc.property(arb, (json) => {
        const r = parsesOrTypedSync(
          () => parseLoraConfig(json, 'ad/adapter_config.json'),
          'ad/adapter_config.json',
        );
        if (!r.ok) return;
        // A config that loads must be usable: module matching and scales never throw, ranks are positive
        for (const m of MODULES) {
          parsesOrTypedSync(() => isTargetModule(r.value, m));
          const { r: rank, alpha, scale } = loraModuleScale(r.value, m);
          expect(Number.isSafeInteger(rank) && rank > 0, `rank ${rank}`).to.equal(true);
          expect(Number.isFinite(alpha) && Number.isFinite(scale), `alpha ${alpha} scale ${scale}`).to.equal(
            true,
          );
        }
      }),
      N.lora,
    );
    // the fields that interact when modules are matched: layer selection, rank and alpha patterns
    const matching = fc.record(
      {
        target_modules: fc.oneof(fc.array(patternArb, { maxLength: 3 }), patternArb),
        layers_to_transform: fc.oneof(fc.nat({ max: 12 }), fc.array(fc.nat({ max: 12 }), { maxLength: 3 })),
        layers_pattern: fc.oneof(patternArb, fc.array(patternArb, { maxLength: 2 })),
        rank_pattern: fc.dictionary(
          patternArb,
          fc.oneof(fc.integer({ min: -2, max: 16 }), fc.constant(0.5)),
          {
            maxKeys: 2,
          },
        ),
        alpha_pattern: fc.dictionary(
          patternArb,
          fc.oneof(fc.integer({ min: -2, max: 16 }), fc.constant(1e308)),
          {
            maxKeys: 2,
          },
        ),
      },
      { requiredKeys: [] },
    );
    await fuzz(
      'adapter_config.json module matching',
      fc.property(matching, (over) => {
        const json = { ...base, target_modules: ['q_proj', 'v_proj', 'down_proj'], ...over };
        const r = parsesOrTypedSync(
          () => parseLoraConfig(json, 'ad/adapter_config.json'),
          'ad/adapter_config.json',
        );
        if (!r.ok) return;
        for (const m of MODULES) {
          isTargetModule(r.value, m);
          const { r: rank, scale } = loraModuleScale(r.value, m);
          expect(Number.isSafeInteger(rank) && rank > 0, `rank ${rank}`).to.equal(true);
          expect(Number.isFinite(scale), `scale ${scale}`).to.equal(true);
        }
      }),
      N.lora,
    );
  });

  it('refuses a layers_pattern that is not a regex and ranks that are not positive integers', () => {
    const base = {
      peft_type: 'LORA',
      r: 8,
      lora_alpha: 16,
      target_modules: ['q_proj'],
      layers_to_transform: [0],
    };
    for (const over of [
      { layers_pattern: '(' },
      { layers_pattern: ['layers', '[a-'] },
      { rank_pattern: { q_proj: 0 } },
      { rank_pattern: { q_proj: -4 } },
      { rank_pattern: { q_proj: 2.5 } },
    ]) {
      const r = parsesOrTypedSync(() => parseLoraConfig({ ...base, ...over }, 'a/adapter_config.json'));
      expect(r.ok, JSON.stringify(over)).to.equal(false);
      if (!r.ok) expect(r.error.code).to.equal('ADAPTER_CONFIG_INVALID');
    }
  });

  it(`adapter directories with generated tensors and mutated files read or raise ModelFormatError (${N.adapterDir} cases)`, async function () {
    const fixture = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const configText = readFileSync(path.join(fixture, 'adapter_config.json'));
    const tensorKey = fc.oneof(
      fc
        .constantFrom(...MODULES)
        .chain((m) =>
          fc.constantFrom(`base_model.model.${m}.lora_A.weight`, `base_model.model.${m}.lora_B.weight`),
        ),
      fc.constantFrom(
        'base_model.model.x.lora_A.default.weight',
        'base_model.model.lm_head.weight',
        '__proto__',
        'w',
      ),
    );
    const tensorsArb = fc.dictionary(
      tensorKey,
      fc.record({
        dtype: fc.constantFrom<SafetensorsDtype>('F32', 'F16', 'I32'),
        shape: fc.array(fc.constantFrom(0, 1, 2, 8), { maxLength: 3 }),
      }),
      { maxKeys: 4 },
    );
    const dirArb = fc.oneof(
      fc.record({ kind: fc.constant('tensors' as const), tensors: tensorsArb }),
      fc.record({ kind: fc.constant('config' as const), ms: mutationsArb(configText.length) }),
    );
    await fuzz(
      'adapter dir',
      fc.asyncProperty(dirArb, async (c) => {
        const dir = freshDir('adapter');
        if (c.kind === 'tensors') {
          writeFileSync(
            path.join(dir, 'adapter_config.json'),
            JSON.stringify({
              peft_type: 'LORA',
              r: 8,
              lora_alpha: 16,
              target_modules: ['q_proj', 'v_proj', 'down_proj'],
            }),
          );
          // fromEntries: a tensor named `__proto__` is written as a tensor, not set as the object's prototype
          const tensors = Object.fromEntries(
            Object.entries(c.tensors).map(([k, t]) => [
              k,
              {
                ...t,
                data: new Uint8Array(t.shape.reduce((a: number, b: number) => a * b, 1) * dtypeSize(t.dtype)),
              },
            ]),
          );
          await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
        } else {
          writeFileSync(path.join(dir, 'adapter_config.json'), applyMutations(configText, c.ms));
          writeFileSync(
            path.join(dir, 'adapter_model.safetensors'),
            readFileSync(path.join(fixture, 'adapter_model.safetensors')),
          );
        }
        const r = await parsesOrTyped(() => readAdapter(dir), dir);
        if (r.ok) {
          const keys = new Set(Object.keys(r.value.tensors));
          for (const m of r.value.modules) {
            expect(keys.has(m.aKey) && keys.has(m.bKey)).to.equal(true);
            expect(m.aShape[0]).to.equal(m.r);
            expect(m.bShape[1]).to.equal(m.r);
          }
          const listed = new Set([
            ...r.value.modules.flatMap((m) => [m.aKey, m.bKey]),
            ...r.value.otherTensors,
          ]);
          expect([...listed].sort()).to.deep.equal([...keys].sort());
        }
      }),
      N.adapterDir,
    );
  });
});

// ------------------------------------------------------------------------------------------------------------
// Python JSON (what adapter_config.json is written with)

describe('fuzz: pyjson', () => {
  it(`pythonJsonDumps gives JSON that reads back as the value; float repr and strings round-trip (${N.pyjson} cases)`, async () => {
    await fuzz(
      'pyjson dumps',
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        // -0 prints as 0 (an int) and reads back as 0: compare as JSON.stringify does
        expect(JSON.parse(pythonJsonDumps(v))).to.deep.equal(JSON.parse(JSON.stringify(v)));
      }),
      N.pyjson,
    );
    await fuzz(
      'pyjson float repr',
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const s = pythonFloatRepr(x);
        expect(Number(s)).to.equal(x);
        expect(s).to.match(/^-?\d+(\.\d+)?(e[+-]\d\d+)?$|^-?\d\.?\d*e[+-]\d+$/);
      }),
      N.pyjson,
    );
    await fuzz(
      'pyjson strings',
      fc.property(
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.string({ unit: 'binary', maxLength: 20 }),
        (a, b) => {
          const s = pythonJsonString(a);
          expect(s).to.match(/^[\x20-\x7e]*$/);
          expect(JSON.parse(s)).to.equal(a);
          const cp = (x: string) => Array.from(x, (c) => c.codePointAt(0)!);
          const [x, y] = [cp(a), cp(b)];
          let expected = 0;
          for (let i = 0; i < Math.min(x.length, y.length) && expected === 0; i++)
            expected = Math.sign(x[i]! - y[i]!);
          if (expected === 0) expected = Math.sign(x.length - y.length);
          expect(Math.sign(compareCodePoints(a, b))).to.equal(expected);
        },
      ),
      N.pyjson,
    );
  });
});

// ------------------------------------------------------------------------------------------------------------
// tokenizer.json (parsed by @huggingface/tokenizers; a corrupt file must still be our typed error)

/** A small tokenizer.json with Llama-2's pipeline: its first `size` vocabulary entries and the merges among them. */
function smallLlamaTokenizer(full: Record<string, unknown>, size: number): Record<string, unknown> {
  const model = full.model as { vocab: Record<string, number>; merges: (string | string[])[] };
  const vocab = Object.fromEntries(Object.entries(model.vocab).filter(([, id]) => id < size));
  const merges = model.merges
    .map((m) => (typeof m === 'string' ? m.split(' ') : m))
    .filter(
      ([a, b]) => a !== undefined && b !== undefined && a in vocab && b in vocab && `${a}${b}` in vocab,
    );
  return { ...full, model: { ...model, vocab, merges } };
}

/** Every path (list of keys) into a JSON value, down to `depth`, skipping long arrays' elements past the first few. */
function jsonPaths(v: unknown, depth: number, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (depth === 0 || typeof v !== 'object' || v === null) return out;
  const entries: [string | number, unknown][] = Array.isArray(v)
    ? v.slice(0, 3).map((x, i) => [i, x])
    : Object.entries(v).slice(0, 40);
  for (const [k, x] of entries) out.push(...jsonPaths(x, depth - 1, [...prefix, k]));
  return out;
}

function setPath(v: unknown, p: (string | number)[], value: unknown, remove: boolean): unknown {
  if (p.length === 0) return value;
  const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, unknown>;
  const [k, ...rest] = p;
  if (remove && rest.length === 0) {
    if (Array.isArray(copy)) (copy as unknown[]).splice(k as number, 1);
    else delete copy[k!];
  } else {
    copy[k!] = setPath(copy[k!], rest, value, remove);
  }
  return copy;
}

describe('fuzz: tokenizer.json', () => {
  let small: Record<string, unknown>;
  let smallText: string;
  // tokenizers.js warns on the console about some unknown component types: keep the test output readable
  const warn = console.warn;
  after(() => {
    console.warn = warn;
  });
  before(function () {
    console.warn = () => {};
    const full = JSON.parse(
      readFileSync(sharedPath(this, 'fixtures', 'llama2-tokenizer', 'tokenizer.json'), 'utf8'),
    );
    small = smallLlamaTokenizer(full, 400);
    smallText = JSON.stringify(small);
  });

  it('the small seed tokenizer loads and encodes', () => {
    const t = Tokenizer.fromJSON({ tokenizer: small });
    const ids = t.encode('ab c');
    expect(ids.length).to.be.greaterThan(1);
    expect(ids.every((id) => id >= 0 && id < 400)).to.equal(true);
    expect(t.decode(ids, { skipSpecialTokens: true })).to.include('ab');
  });

  it('a corrupt pipeline component fails while loading, as ModelFormatError naming the folder', () => {
    const decoder = small.decoder as { decoders: Record<string, unknown>[] };
    const cases: [string, unknown][] = [
      [
        'decoder',
        { ...decoder, decoders: [{ ...decoder.decoders[0], content: 5 }, ...decoder.decoders.slice(1)] },
      ],
      ['post_processor', { ...(small.post_processor as object), single: 0 }],
      ['normalizer', { type: 'Replace', pattern: { Regex: '(' }, content: 'x' }],
      ['pre_tokenizer', { type: 'Split', pattern: 7, behavior: 'Isolated' }],
    ];
    for (const [field, value] of cases) {
      const r = parsesOrTypedSync(
        () => Tokenizer.fromJSON({ tokenizer: { ...small, [field]: value }, source: 'tok-dir' }),
        'tok-dir',
      );
      // loads (tokenizers.js may ignore the part) or fails as our error; once loaded, text goes through
      if (r.ok) parsesOrTypedSync(() => r.value.decode(r.value.encode('Hello wörld')), 'tok-dir');
    }
    // ids far beyond the tokens the file defines: refused before tokenizers.js sizes arrays by them
    const added = small.added_tokens as Record<string, unknown>[];
    const model = small.model as { vocab: Record<string, number> };
    for (const tokenizer of [
      { ...small, added_tokens: [{ ...added[0], id: 804_740_061 }, ...added.slice(1)] },
      { ...small, model: { ...model, vocab: { ...model.vocab, '▁zz': 2 ** 31 } } },
      { ...small, added_tokens: [{ ...added[0], id: -1 }] },
      { ...small, added_tokens: 'none' },
    ]) {
      const r = parsesOrTypedSync(() => Tokenizer.fromJSON({ tokenizer, source: 'tok-dir' }), 'tok-dir');
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.error.code).to.equal('TOKENIZER_INVALID');
    }
    recordCases('tokenizer.json corrupt components', cases.length + 4);
  });

  it(`tokenizer.json with parts replaced by wrong types loads or raises ModelFormatError (${N.tokenizer} cases)`, async () => {
    const paths = jsonPaths(small, 4).filter((p) => p.length > 0 && p[1] !== 'vocab');
    const arb = fc.tuple(
      fc.constantFrom(...paths),
      fc.oneof(
        weirdValue,
        fc.constantFrom('BPE', 'Unigram', 'WordPiece', 'Sequence', 'Metaspace', 'ByteFallback'),
      ),
      fc.boolean(),
      fc.option(
        fc.record(
          {
            bos_token: fc.oneof(fc.constantFrom('<s>', '</s>', 'nope'), weirdValue),
            eos_token: fc.oneof(fc.constantFrom('<s>', '</s>'), weirdValue),
            add_bos_token: weirdValue,
            add_eos_token: weirdValue,
            chat_template: weirdValue,
            added_tokens_decoder: weirdValue,
            additional_special_tokens: weirdValue,
          },
          { requiredKeys: [] },
        ),
      ),
    );
    await fuzz(
      'tokenizer.json structure',
      fc.property(arb, ([p, value, remove, config]) => {
        const tokenizer = setPath(small, p, value, remove);
        const r = parsesOrTypedSync(
          () => Tokenizer.fromJSON({ tokenizer, config: config ?? undefined, source: 'tok-dir' }),
          'tok-dir',
        );
        if (r.ok) {
          // loaded: encoding and decoding text raise nothing but typed errors either
          parsesOrTypedSync(() => r.value.decode(r.value.encode('Hello wörld 😀 ab')));
        }
      }),
      N.tokenizer,
    );
  });

  it(`corrupt tokenizer.json files (truncated, bit flips, non-UTF-8) raise ModelFormatError (${N.tokenizerFile} cases)`, async () => {
    const bytes = new TextEncoder().encode(smallText);
    await fuzz(
      'tokenizer.json file',
      fc.asyncProperty(mutationsArb(bytes.length), async (ms) => {
        const file = tempFile('tokenizer.json', applyMutations(bytes, ms));
        const r = await parsesOrTyped(() => Tokenizer.fromFiles({ tokenizer: file }), path.dirname(file));
        if (r.ok) parsesOrTypedSync(() => r.value.decode(r.value.encode('Hello wörld')));
      }),
      N.tokenizerFile,
    );
  });
});
