// Parity with the reference implementation: labels and probabilities of FastTextModel equal those of the
// fastText 0.9.2 CLI (`fasttext predict-prob`) on models the tests train, and on lid.176 with XQuAD.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { FastTextModel, lid176Path, type Prediction, sameLanguage } from '../src/index.js';
import {
  manyLabelText,
  quantize,
  type RefPrediction,
  referencePredict,
  requireFasttext,
  tempDir,
  testLines,
  train,
  trainingText,
  writeBytes,
} from './helpers/reference.js';

/** How C++ iostreams print a float by default (printf %g, 6 significant digits). */
function formatG6(x: number): string {
  if (x === 0) return '0';
  const s = x.toExponential(5);
  const e = Number(s.slice(s.indexOf('e') + 1));
  const strip = (t: string) => (t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t);
  if (e < -4 || e >= 6) {
    return `${strip(s.slice(0, s.indexOf('e')))}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return strip(x.toFixed(5 - e));
}

interface Comparison {
  lines: number;
  labelMismatches: string[];
  maxAbsDiff: number;
  printedDifferent: number;
  predictions: number;
}

function compare(ours: Prediction[], ref: RefPrediction[], refText: string[]): Comparison {
  const c: Comparison = {
    lines: ref.length,
    labelMismatches: [],
    maxAbsDiff: 0,
    printedDifferent: 0,
    predictions: 0,
  };
  expect(ours.length, 'number of predicted lines').to.equal(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const a = ours[i]!;
    const b = ref[i]!;
    if (a.labels.join(' ') !== b.labels.join(' ')) {
      c.labelMismatches.push(`line ${i + 1}: ours ${a.labels.join(' ')} vs fasttext ${b.labels.join(' ')}`);
      continue;
    }
    for (let j = 0; j < a.probs.length; j++) {
      c.predictions++;
      c.maxAbsDiff = Math.max(c.maxAbsDiff, Math.abs(a.probs[j]! - b.probs[j]!));
    }
    const printed = a.labels.map((l, j) => `${l} ${formatG6(a.probs[j]!)}`).join(' ');
    if (printed !== refText[i]) c.printedDifferent++;
  }
  return c;
}

function refLines(model: string, file: string, k: number, threshold?: number): [RefPrediction[], string[]] {
  const parsed = referencePredict(model, file, k, threshold);
  const text = parsed.map((p) => p.labels.map((l, j) => `${l} ${formatG6(p.probs[j]!)}`).join(' '));
  return [parsed, text];
}

describe('FastTextModel: parity with the fastText CLI on trained models', function () {
  this.timeout(300_000);
  let dir: string;
  let testFile: string;
  let testBytes: Buffer;
  const models: { name: string; file: string; loss: string }[] = [];

  before(function () {
    requireFasttext(this);
    dir = tempDir('parity');
    const corpus = writeBytes(path.join(dir, 'train.txt'), trainingText(1, 3000));
    const corpus300 = writeBytes(path.join(dir, 'train300.txt'), manyLabelText(2, 5000, 300));
    testBytes = testLines(3, 400);
    testFile = writeBytes(path.join(dir, 'test.txt'), testBytes);
    const common = ['-dim', '10', '-epoch', '3', '-bucket', '30000', '-lr', '0.5'];
    const add = (name: string, loss: string, file: string) => models.push({ name, file, loss });
    const variants: [string, string, string[]][] = [
      ['softmax, wordNgrams 1, no char n-grams', 'softmax', ['-wordNgrams', '1', '-minn', '0', '-maxn', '0']],
      ['softmax, wordNgrams 2, minn 2 maxn 5', 'softmax', ['-wordNgrams', '2', '-minn', '2', '-maxn', '5']],
      ['hs, wordNgrams 1, minn 3 maxn 6', 'hs', ['-wordNgrams', '1', '-minn', '3', '-maxn', '6']],
      ['hs, wordNgrams 2, no char n-grams', 'hs', ['-wordNgrams', '2', '-maxn', '0']],
      ['ova, wordNgrams 2, minn 1 maxn 3', 'ova', ['-wordNgrams', '2', '-minn', '1', '-maxn', '3']],
      ['ova, wordNgrams 1, no char n-grams', 'ova', ['-wordNgrams', '1', '-maxn', '0']],
      ['ns, wordNgrams 3, minn 2 maxn 4', 'ns', ['-wordNgrams', '3', '-minn', '2', '-maxn', '4']],
    ];
    variants.forEach(([name, loss, args], i) => {
      add(`${name} (.bin)`, loss, train(dir, `m${i}`, corpus, [...common, '-loss', loss, ...args]));
    });
    train(dir, 'many', corpus300, [...common, '-loss', 'softmax', '-minn', '2', '-maxn', '3']);
    add(
      'softmax, quantized: qnorm, cutoff 500 (pruned), dsub 2 (.ftz)',
      'softmax',
      quantize(dir, 'm1', corpus, ['-qnorm', '-cutoff', '500', '-dsub', '2']),
    );
    add('hs, quantized: no cutoff, dsub 3 (.ftz)', 'hs', quantize(dir, 'm2', corpus, ['-dsub', '3']));
    add(
      'softmax, 300 labels, quantized output + qnorm, cutoff 2000 (.ftz)',
      'softmax',
      quantize(dir, 'many', corpus300, ['-qnorm', '-qout', '-dsub', '4', '-cutoff', '2000']),
    );
  });

  it('the test input covers the hard cases', () => {
    const text = testBytes.toString('latin1');
    expect(text.split('\n').length).to.be.greaterThan(400);
    expect(testBytes.includes(Buffer.from('😀'))).to.equal(true);
    expect(testBytes.includes(0xff)).to.equal(true);
    expect(testBytes.includes(Buffer.from('\n\n'))).to.equal(true);
    expect(text.split('\n').some((l) => l.split(' ').length > 1500)).to.equal(true);
    expect(text.endsWith('\n')).to.equal(false);
  });

  const cases: [number, number | undefined][] = [
    [-1, undefined],
    [3, 0.05],
  ];
  for (let m = 0; m < 10; m++) {
    for (const [k, threshold] of cases) {
      it(`model ${m + 1}: labels and probabilities equal \`fasttext predict-prob\` (k ${k}${threshold !== undefined ? `, threshold ${threshold}` : ''})`, function () {
        const model = models[m];
        if (!model) this.skip();
        const ft = FastTextModel.loadSync(model!.file);
        expect(ft.args.loss).to.equal(model!.loss);
        const [ref, text] = refLines(model!.file, testFile, k, threshold);
        const c = compare(ft.predictLines(testBytes, { k, threshold }), ref, text);
        if (ft.quantized) {
          // summing rows from the product-quantizer codes gives the same bits as the decoded rows
          const codes = FastTextModel.loadSync(model!.file, { decodeQuantized: false });
          expect(codes.predictLines(testBytes, { k, threshold })).to.deep.equal(
            ft.predictLines(testBytes, { k, threshold }),
          );
        }
        console.log(
          `      ${model!.name}: ${c.lines} lines, ${c.predictions} probabilities, max |Δp| ${c.maxAbsDiff.toExponential(2)}, ` +
            `printed output identical on ${c.lines - c.printedDifferent - c.labelMismatches.length}/${c.lines} lines`,
        );
        expect(c.labelMismatches, c.labelMismatches.slice(0, 5).join('\n')).to.deep.equal([]);
        expect(c.maxAbsDiff).to.be.at.most(1e-5);
      });
    }
  }

  it('predict() of one line equals the CLI on that line', () => {
    const ft = FastTextModel.loadSync(models[1]!.file);
    const lines = readFileSync(testFile, 'utf8').split('\n').slice(0, 60);
    const file = writeBytes(
      path.join(dir, 'some.txt'),
      `${lines.filter((l) => !l.includes('</s>')).join('\n')}\n`,
    );
    const [ref] = refLines(models[1]!.file, file, 2);
    const text = readFileSync(file, 'utf8').split('\n').slice(0, -1);
    expect(text.length).to.equal(ref.length);
    text.forEach((line, i) => {
      const p = ft.predict(line, { k: 2 });
      expect(p.labels, `line ${i + 1}`).to.deep.equal(ref[i]!.labels);
      p.probs.forEach((v, j) => {
        expect(Math.abs(v - ref[i]!.probs[j]!)).to.be.at.most(1e-5);
      });
    });
  });
});

describe('FastTextModel: lid.176.ftz on XQuAD questions (12 languages) against the CLI', function () {
  this.timeout(300_000);
  const LANGS = ['ar', 'de', 'el', 'en', 'es', 'hi', 'ro', 'ru', 'th', 'tr', 'vi', 'zh'];

  it('labels and probabilities equal `fasttext predict-prob`; top-1 accuracy per language', function () {
    requireFasttext(this);
    const questions: { lang: string; text: string }[] = [];
    for (const lang of LANGS) {
      const data = JSON.parse(readFileSync(sharedPath(this, 'data', 'xquad', `xquad.${lang}.json`), 'utf8'));
      for (const article of data.data)
        for (const p of article.paragraphs)
          for (const qa of p.qas) questions.push({ lang, text: qa.question.replace(/\n/g, ' ') });
    }
    expect(questions.length).to.equal(12 * 1190);
    const dir = tempDir('xquad');
    const file = path.join(dir, 'questions.txt');
    writeFileSync(file, `${questions.map((q) => q.text).join('\n')}\n`);
    const model = lid176Path();
    const ft = FastTextModel.loadSync(model);
    for (const k of [1, 3]) {
      const [ref, text] = refLines(model, file, k);
      const ours = ft.predictLines(readFileSync(file), { k });
      const c = compare(ours, ref, text);
      expect(c.labelMismatches, c.labelMismatches.slice(0, 5).join('\n')).to.deep.equal([]);
      expect(c.maxAbsDiff).to.be.at.most(1e-5);
      console.log(
        `      k=${k}: ${c.lines} questions, max |Δp| ${c.maxAbsDiff.toExponential(2)}, printed output identical on ${c.lines - c.printedDifferent}/${c.lines}`,
      );
      if (k === 1) {
        const row: string[] = [];
        let correct = 0;
        for (const lang of LANGS) {
          const idx = questions.map((q, i) => (q.lang === lang ? i : -1)).filter((i) => i >= 0);
          const ok = idx.filter((i) => ours[i]!.labels[0] && sameLanguage(ours[i]!.labels[0]!, lang)).length;
          correct += ok;
          row.push(`${lang} ${(ok / idx.length).toFixed(3)}`);
        }
        console.log(
          `      top-1 accuracy: ${row.join(', ')}; all ${(correct / questions.length).toFixed(3)}`,
        );
        expect(correct / questions.length).to.be.greaterThan(0.9);
      }
    }
  });
});
