// Property-based and fuzz tests of the fastText model reader (.bin/.ftz: header, dictionary, pruned index, dense
// and product-quantized matrices) and of prediction on what it loads. Every file must load correctly or raise a
// LidError — never another exception, a hang (mocha's timeout), a read outside the file, or an allocation that
// the file's remaining bytes do not back (declared counts are checked first: asserted through the error codes).
// Case counts are printed (`fuzz: <parser> <N> cases`); POLYGLOT_FUZZ_RUNS scales them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyMutations,
  fuzz,
  fuzzCounts,
  mutationsArb,
  parsesOrTypedSync,
  recordCases,
  runs,
} from '../../../tools/fuzz.js';
import { type ByteSource, bytesSource } from '../src/fasttext/binary.js';
import { readJsonlLines } from '../src/fsutil.js';
import { FastTextModel, LidModel, lid176Path } from '../src/index.js';
import { type FtModelSpec, headerOffsets, writeFastText } from './helpers/fasttext-writer.js';

const N = {
  valid: runs(150),
  mutation: runs(400),
  header: runs(300),
  lid176: runs(25),
  jsonl: runs(60),
};

after(() => {
  console.log(`      fuzz: lid total ${[...fuzzCounts.values()].reduce((a, b) => a + b, 0)} cases`);
});

/** A ByteSource that fails the test if the reader asks for bytes past the end of the file. */
function checkedSource(bytes: Uint8Array, name: string): ByteSource {
  const inner = bytesSource(bytes, name);
  return {
    name,
    size: inner.size,
    read(target, position) {
      if (!(Number.isSafeInteger(position) && position >= 0 && position <= bytes.length)) {
        throw new Error(`read at ${position} outside the ${bytes.length}-byte file`);
      }
      return inner.read(target, position);
    },
    close() {},
  };
}

const wordArb = fc.stringMatching(/^[a-zäöüéç]{1,6}$/);

/** Valid supervised models: dense or quantized, any loss, with or without n-grams and pruning. */
const modelArb: fc.Arbitrary<FtModelSpec> = fc
  .record({
    dim: fc.integer({ min: 1, max: 6 }),
    wordNgrams: fc.integer({ min: 1, max: 3 }),
    loss: fc.integer({ min: 1, max: 4 }),
    bucket: fc.integer({ min: 0, max: 20 }),
    minn: fc.integer({ min: 0, max: 3 }),
    maxn: fc.integer({ min: 0, max: 4 }),
    words: fc.uniqueArray(wordArb, { maxLength: 6 }),
    labels: fc.uniqueArray(
      fc.oneof(
        fc.stringMatching(/^[a-z]{2,3}$/),
        fc.constantFrom('deu_Latn', 'zho_Hans', 'xx_Yyyy', 'de-CH', '', 'é', '__label__', 'constructor'),
      ),
      { minLength: 1, maxLength: 5 },
    ),
    quant: fc.boolean(),
    qout: fc.boolean(),
    qnorm: fc.boolean(),
    dsub: fc.integer({ min: 1, max: 3 }),
    pruned: fc.boolean(),
    seed: fc.nat({ max: 1000 }),
  })
  .map((v) => {
    const usesBuckets = v.maxn > 0 || v.wordNgrams > 1;
    const bucket = usesBuckets ? Math.max(1, v.bucket) : v.bucket;
    const pruned = v.quant && v.pruned;
    const prune: [number, number][] | -1 = pruned
      ? Array.from({ length: Math.min(3, bucket) }, (_, i) => [(i * 7) % Math.max(1, bucket), i])
      : -1;
    const buckets = prune === -1 ? (usesBuckets ? bucket : 0) : prune.length;
    return {
      dim: v.dim,
      wordNgrams: v.wordNgrams,
      loss: v.loss,
      bucket,
      minn: Math.min(v.minn, v.maxn),
      maxn: v.maxn,
      words: v.words,
      labels: v.labels.map((l) => `__label__${l}`),
      prune,
      input: {
        kind: v.quant ? ('quant' as const) : ('dense' as const),
        rows: v.words.length + buckets,
        seed: v.seed,
        dsub: v.dsub,
        qnorm: v.qnorm,
      },
      output: {
        kind: v.quant && v.qout ? ('quant' as const) : ('dense' as const),
        rows: v.labels.length,
        seed: v.seed + 1,
        dsub: v.dsub,
        qnorm: false,
      },
    };
  });

const textArb = fc.oneof(
  fc
    .array(fc.oneof(wordArb, fc.constantFrom('</s>', '__label__x', '😀', '\t', ' ')), { maxLength: 8 })
    .map((w) => w.join(' ')),
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replace(/\n/g, ' ')),
);

/** A loaded model must predict: k labels of its own, best first, probabilities in (0, 1 + 1e-5]. */
function checkPredicts(model: FastTextModel, text: string): void {
  const r = parsesOrTypedSync(() => model.predict(text, { k: -1 }));
  if (!r.ok) throw new Error(`predict raised ${r.error.code} on a loaded model: ${r.error.message}`);
  const { labels, probs } = r.value;
  expect(labels.length).to.equal(probs.length);
  for (const l of labels) expect(model.labels).to.include(l);
  for (let i = 0; i < probs.length; i++) {
    // NaN/Infinity in corrupt matrices are the file's values, not a reader failure; just no exception
    if (Number.isFinite(probs[i]!)) expect(probs[i]).to.be.at.most(1 + 1e-4);
  }
  parsesOrTypedSync(() => model.predictLines(`${text}\n${text}`, { k: 2 }));
  // and language-level answers over whatever labels the file has
  const lid = new LidModel(model, 'fuzz');
  parsesOrTypedSync(() => lid.describeLabels());
  parsesOrTypedSync(() => lid.identify(`${text}\r\n${text}`));
  parsesOrTypedSync(() => lid.labelsFor('de'));
}

describe('fuzz: fastText model reader', () => {
  it(`generated valid models load with their labels and dim, and predict (${N.valid} cases)`, async () => {
    await fuzz(
      'fasttext valid',
      fc.property(modelArb, textArb, (spec, text) => {
        const bytes = writeFastText(spec);
        for (const decodeQuantized of [true, false]) {
          const model = FastTextModel.fromSource(checkedSource(bytes, 'gen.bin'), { decodeQuantized });
          expect(model.labels).to.deep.equal(spec.labels);
          expect(model.dim).to.equal(spec.dim);
          expect(model.quantized).to.equal(spec.input.kind === 'quant');
          checkPredicts(model, text);
        }
      }),
      N.valid,
    );
  });

  it('truncating small models at every length raises truncated-model', () => {
    const dense: FtModelSpec = {
      dim: 2,
      wordNgrams: 2,
      loss: 1,
      bucket: 3,
      minn: 1,
      maxn: 2,
      words: ['ab', 'c'],
      labels: ['__label__x', '__label__y'],
      prune: -1,
      input: { kind: 'dense', rows: 5, seed: 1 },
      output: { kind: 'dense', rows: 2, seed: 2 },
    };
    const quant: FtModelSpec = {
      ...dense,
      dim: 1,
      prune: [[1, 0]],
      input: { kind: 'quant', rows: 3, seed: 1, dsub: 1, qnorm: false },
      output: { kind: 'dense', rows: 2, seed: 2 },
    };
    let cases = 0;
    for (const spec of [dense, quant]) {
      const bytes = writeFastText(spec);
      FastTextModel.fromBytes(bytes); // the whole file loads
      for (let n = 0; n < bytes.length; n++) {
        const r = parsesOrTypedSync(
          () => FastTextModel.fromSource(checkedSource(bytes.subarray(0, n), 'cut.ftz')),
          'cut.ftz',
        );
        expect(r.ok, `prefix of ${n} bytes`).to.equal(false);
        if (!r.ok) expect(r.error.code, r.error.message).to.equal('truncated-model');
      }
      cases += bytes.length;
    }
    recordCases('fasttext truncation', cases);
  });

  it(`mutated models (bit flips, inserted/deleted/overwritten bytes) load or raise LidError (${N.mutation} cases)`, async () => {
    const seeds = fc.sample(modelArb, { numRuns: 8, seed: 7 }).map(writeFastText);
    await fuzz(
      'fasttext mutation',
      fc.property(
        fc
          .nat({ max: seeds.length - 1 })
          .chain((i) => fc.tuple(fc.constant(i), mutationsArb(seeds[i]!.length))),
        textArb,
        ([i, ms], text) => {
          const bytes = applyMutations(seeds[i]!, ms);
          const r = parsesOrTypedSync(
            () => FastTextModel.fromSource(checkedSource(bytes, 'mut.bin')),
            'mut.bin',
          );
          if (r.ok) checkPredicts(r.value, text);
        },
      ),
      N.mutation,
    );
  });

  it(`header fields set to extreme values load or raise LidError (${N.header} cases)`, async () => {
    const seeds = fc.sample(modelArb, { numRuns: 6, seed: 11 });
    const extreme = fc.oneof(
      fc.constantFrom(0, 1, -1, 2, 255, 256, 2 ** 16, 2 ** 16 + 1, 2 ** 31 - 1, -(2 ** 31), 2 ** 30),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    );
    const extreme64 = fc.oneof(
      fc.constantFrom(
        0n,
        1n,
        -1n,
        -2n,
        2n ** 31n,
        2n ** 40n,
        2n ** 53n,
        2n ** 62n,
        -(2n ** 63n),
        2n ** 63n - 1n,
      ),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    );
    const fields = [
      'dim',
      'wordNgrams',
      'bucket',
      'maxn',
      'dictSize',
      'dictWords',
      'dictLabels',
      'codeSize',
    ] as const;
    const wide = ['pruneSize', 'inputRows', 'inputCols'] as const;
    await fuzz(
      'fasttext header fields',
      fc.property(
        fc.nat({ max: seeds.length - 1 }),
        fc.oneof(
          fc.tuple(fc.constantFrom(...fields), extreme),
          fc.tuple(fc.constantFrom(...wide), extreme64),
        ),
        textArb,
        (i, [field, v], text) => {
          const spec = seeds[i]!;
          if (field === 'codeSize' && spec.input.kind !== 'quant') return;
          const bytes = writeFastText(spec);
          const at = headerOffsets(spec)[field]!;
          const view = new DataView(bytes.buffer);
          if (typeof v === 'bigint') view.setBigInt64(at, v, true);
          else view.setInt32(at, v, true);
          const r = parsesOrTypedSync(
            () => FastTextModel.fromSource(checkedSource(bytes, 'hdr.bin')),
            'hdr.bin',
          );
          if (r.ok) checkPredicts(r.value, text);
        },
      ),
      N.header,
    );
  });

  it('refuses huge declared counts before allocating (the error says the file is too short)', () => {
    const spec = fc.sample(
      modelArb.filter((s) => s.input.kind === 'quant' && s.prune === -1),
      { numRuns: 1, seed: 3 },
    )[0]!;
    const off = headerOffsets(spec);
    const cases: [string, number, bigint | number, string][] = [
      ['dictionary of 2^31-1 entries', off.dictSize!, 2 ** 31 - 1, 'corrupt-model'],
      ['pruned index of 2^40 pairs', off.pruneSize!, 2n ** 40n, 'truncated-model'],
      ['input matrix of 2^40 rows', off.inputRows!, 2n ** 40n, 'corrupt-model'],
      ['input matrix of 2^40 columns', off.inputCols!, 2n ** 40n, 'corrupt-model'],
      ['2^31-1 product-quantizer codes', off.codeSize!, 2 ** 31 - 1, 'truncated-model'],
    ];
    // a dictionary that adds up but is longer than the file
    const words = writeFastText(spec);
    for (const [what, at, v, code] of cases) {
      const bytes = words.slice();
      const view = new DataView(bytes.buffer);
      if (typeof v === 'bigint') view.setBigInt64(at, v, true);
      else view.setInt32(at, v, true);
      if (what.startsWith('dictionary')) {
        view.setInt32(off.dictWords!, 2 ** 31 - 1 - spec.labels.length, true);
        view.setInt32(off.dictLabels!, spec.labels.length, true);
      }
      const r = parsesOrTypedSync(() => FastTextModel.fromBytes(bytes, 'huge.bin'), 'huge.bin');
      expect(r.ok, what).to.equal(false);
      if (!r.ok) {
        expect(r.error.code, `${what}: ${r.error.message}`).to.be.oneOf([code, 'truncated-model']);
      }
    }
    recordCases('fasttext huge counts', cases.length);
  });

  it('a huge maxn (char n-gram length) predicts without sizing buffers by it', () => {
    const spec: FtModelSpec = {
      dim: 2,
      wordNgrams: 1,
      loss: 3,
      bucket: 5,
      minn: 1,
      maxn: 3,
      words: ['ab'],
      labels: ['__label__x', '__label__y'],
      prune: -1,
      input: { kind: 'dense', rows: 6, seed: 1 },
      output: { kind: 'dense', rows: 2, seed: 2 },
    };
    const expected = FastTextModel.fromBytes(writeFastText({ ...spec, maxn: 64 })).predict('hello world xyz');
    for (const maxn of [2 ** 24, 2 ** 31 - 1]) {
      const bytes = writeFastText(spec);
      new DataView(bytes.buffer).setInt32(headerOffsets(spec).maxn!, maxn, true);
      // every n-gram of these short words is shorter than 64 bytes: the same rows as with maxn 64
      expect(FastTextModel.fromBytes(bytes).predict('hello world xyz')).to.deep.equal(expected);
    }
    recordCases('fasttext huge maxn', 2);
  });

  it(`mutations of lid.176.ftz load or raise LidError (${N.lid176} cases)`, async () => {
    const bytes = new Uint8Array(readFileSync(lid176Path()));
    // the header and dictionary start (where parsing decisions are made) and anywhere in the file
    const arb = fc.oneof(mutationsArb(4096), mutationsArb(bytes.length));
    await fuzz(
      'fasttext lid176 mutation',
      fc.property(arb, (ms) => {
        const mutated = applyMutations(bytes, ms);
        const r = parsesOrTypedSync(
          () => FastTextModel.fromSource(checkedSource(mutated, 'lid.176.ftz'), { decodeQuantized: false }),
          'lid.176.ftz',
        );
        if (r.ok) checkPredicts(r.value, 'Das ist ein kleiner Test');
      }),
      N.lid176,
    );
  });
});

describe('fuzz: JSON Lines input of lid tag / fidelity', () => {
  it(`reads rows with CRLF, BOM, blank and long lines; mutated files read or raise LidError (${N.jsonl} cases)`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-lid-fuzz-'));
    let n = 0;
    try {
      const row = fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
      await fuzz(
        'lid jsonl',
        fc.asyncProperty(
          fc.array(row, { maxLength: 4 }),
          fc.boolean(),
          fc.constantFrom('\n', '\r\n'),
          fc.nat({ max: 150_000 }),
          fc.option(mutationsArb(64)),
          async (rows, bom, eol, pad, ms) => {
            const padded = rows.map((r, i) => (i === 0 && pad > 0 ? { ...r, pad: 'y'.repeat(pad) } : r));
            const text = `${bom ? '\uFEFF' : ''}${padded.map((r) => JSON.stringify(r)).join(`${eol}${eol}`)}${eol}`;
            const file = path.join(dir, `${n++}.jsonl`);
            let bytes: Uint8Array = new TextEncoder().encode(text);
            if (ms) bytes = applyMutations(bytes, ms);
            writeFileSync(file, bytes);
            const read = async () => {
              const out: unknown[] = [];
              for await (const { value } of readJsonlLines(file)) out.push(value);
              return out;
            };
            const r = await (async () => {
              try {
                return { ok: true as const, value: await read() };
              } catch (e) {
                expect((e as { isPolyglotError?: unknown }).isPolyglotError, String(e)).to.equal(true);
                expect((e as Error).message).to.include(file);
                return { ok: false as const };
              }
            })();
            if (!ms) expect(r.ok && r.value).to.deep.equal(JSON.parse(JSON.stringify(padded)));
          },
        ),
        N.jsonl,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
