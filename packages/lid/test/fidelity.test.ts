// Language fidelity on hand-made run files: every expected number below is counted by hand from the records.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import {
  cleanForLid,
  EVAL_HEADER,
  evalPathFor,
  type FidelityResult,
  fidelityOfFile,
  formatEvalCsv,
  formatPyFloat3,
  inferLangFromFileName,
  LidError,
  type LidModel,
  loadLidModel,
  scoreFidelity,
  summarizeFidelity,
  tagFile,
  tagRecords,
  writeEvalCsv,
} from '../src/index.js';
import { tempDir } from './helpers/reference.js';

const DE_Q = 'Wie kann ich meine Zeit besser einteilen?';
const DE_A = 'Hier sind einige Tipps, wie Sie Ihre Zeit besser einteilen können: Machen Sie eine Liste.';
const DE_A2 = 'Ein Kühlschrank funktioniert durch einen Kältekreislauf, bei dem ein Kältemittel verdampft.';
const DE_CHAT = '### Assistant: Das ist eine gute Frage.\nIch helfe Ihnen gerne dabei.';
const EN_Q = 'How does a refrigerator work?';
const EN_A = 'A refrigerator works by moving heat from the inside to the outside.';
const ZH_A = '这是一个很好的问题，我很乐意帮助你。';

/**
 * A German run file (source = prompt text, system = response), 9 records:
 *  1 de→de  2 de→de  3 de→en  4 de→""  5 de→"  \n "  6 de→de (chat markers, newline)  7 de→zh  8 en→en  9 en→""
 * policy fail:    n 9, lang_match {1,2,6,8} = 4/9, tgt_lang (de) {1,2,6} = 3/9, empty 3
 * policy skip:    n 6, lang_match 4/6, tgt_lang 3/6
 * policy predict: n 9; an empty response is identified from the end-of-line token alone (lid.176: en),
 *                 so record 9 (en→"") matches too: lang_match 5/9, tgt_lang 3/9
 */
const GERMAN_RUN = [
  { source: DE_Q, system: DE_A },
  { source: DE_Q, system: DE_A2 },
  { source: DE_Q, system: EN_A },
  { source: DE_Q, system: '' },
  { source: DE_Q, system: '  \n ' },
  { source: DE_Q, system: DE_CHAT },
  { source: DE_Q, system: ZH_A },
  { source: EN_Q, system: EN_A },
  { source: EN_Q, system: '' },
];

const jsonl = (records: object[]) => `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;

function expectLidError(fn: () => unknown, code: string, ...mentions: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected LidError ${code}`).to.be.instanceOf(LidError);
  expect((caught as LidError).code, (caught as Error).message).to.equal(code);
  for (const m of mentions) expect((caught as Error).message).to.include(m);
}

async function expectLidErrorAsync(p: Promise<unknown>, code: string, ...mentions: string[]): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected LidError ${code}`).to.be.instanceOf(LidError);
  expect((caught as LidError).code, (caught as Error).message).to.equal(code);
  for (const m of mentions) expect((caught as Error).message).to.include(m);
}

describe('language fidelity', () => {
  let lid: LidModel;
  let dir: string;
  before(async () => {
    lid = await loadLidModel('lid176');
    dir = tempDir('fidelity');
  });

  it('cleans text as the paper: newlines to spaces, chat markers removed', () => {
    expect(cleanForLid('### Human: Hallo\nWelt### Assistant: Antwort\r\nzwei')).to.equal(
      'Hallo Welt Antwort zwei',
    );
    expect(cleanForLid(' ### Assistant:  ')).to.equal('');
  });

  it('lang_match and tgt_lang of a hand-made German run file, empty responses failing (default)', async () => {
    const file = path.join(dir, 'alpaca_eval_instructions_de-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8.jsonl');
    writeFileSync(file, jsonl(GERMAN_RUN));
    const r = await fidelityOfFile(file, lid);
    expect(r).to.include({ file, n: 9, empty: 3, lang: 'deu_Latn', model: 'lid176' });
    expect(r.lang_match).to.equal(4 / 9);
    expect(r.tgt_lang).to.equal(3 / 9);
    expect(r.labels).to.deep.equal({ __label__de: 3, __label__en: 2, __label__zh: 1 });
    expect(r.unknownLabels).to.deep.equal([]);
  });

  it('empty responses: skip leaves them out, predict identifies them as the paper did', async () => {
    const file = path.join(dir, 'run.jsonl');
    writeFileSync(file, jsonl(GERMAN_RUN));
    const skip = await fidelityOfFile(file, lid, { lang: 'de', empty: 'skip' });
    expect(skip).to.include({ n: 6, empty: 3, lang_match: 4 / 6, tgt_lang: 3 / 6 });
    const predict = await fidelityOfFile(file, lid, { lang: 'de', empty: 'predict' });
    expect(predict).to.include({ n: 9, empty: 3, lang_match: 5 / 9, tgt_lang: 3 / 9 });
    const none = await fidelityOfFile(file, lid, { lang: null });
    expect(none.tgt_lang).to.equal(null);
    expect(none.lang_match).to.equal(4 / 9);
  });

  it('scores Bulgarian, Norwegian and Danish (which the original code scored 0)', () => {
    const cases: [string, string[], string[]][] = [
      [
        'bg',
        ['Как мога да управлявам времето си по-добре?', 'Какво е най-хубавото място за почивка в България?'],
        [
          'Ето няколко съвета как да управлявате времето си по-добре.',
          'Най-хубавото място за почивка зависи от това какво обичате: морето или планините.',
        ],
      ],
      [
        'no',
        [
          'Jeg vil gjerne vite hvordan jeg kan bli flinkere til å skrive.',
          'Hva er de beste stedene å besøke i Norge om sommeren?',
        ],
        [
          'Her er noen tips for hvordan du kan bruke tiden din bedre: lag en liste over oppgavene dine.',
          'Om sommeren er det fint å besøke fjordene på Vestlandet og Lofoten i Nord-Norge.',
        ],
      ],
      [
        'da',
        ['Hvordan kan jeg bruge min tid bedre?', 'Hvad er de bedste steder at besøge i Danmark om sommeren?'],
        [
          'Her er nogle tips til, hvordan du kan bruge din tid bedre: lav en liste over dine opgaver.',
          'Om sommeren er det dejligt at besøge strandene på Vestkysten og de gamle byer på Fyn.',
        ],
      ],
    ];
    for (const [lang, sources, responses] of cases) {
      const r = scoreFidelity(
        sources.map((source, i) => ({ source, response: responses[i]! })),
        lid,
        { lang },
      );
      expect(r, lang).to.include({ n: 2, lang_match: 1, tgt_lang: 1 });
    }
  });

  it('compares languages, or labels with match: label', () => {
    // lid.176: ar and arz are one language (Arabic) for the table; as labels they differ
    const records = [
      {
        source: 'ماذا تفعل اليوم؟ أنا ذاهب إلى السوق',
        response: 'انا رايح السوق النهارده عشان اشتري حاجات كتير',
      },
    ];
    const src = lid.top(records[0]!.source)!.label;
    const res = lid.top(records[0]!.response)!.label;
    const byLanguage = scoreFidelity(records, lid, { lang: 'ar' });
    const byLabel = scoreFidelity(records, lid, { lang: 'ar', match: 'label' });
    expect(byLanguage.lang_match).to.equal(1);
    expect(byLabel.lang_match).to.equal(src === res ? 1 : 0);
    expect(byLanguage.tgt_lang).to.equal(1);
  });

  it('unknown language codes raise — never a silent 0', async () => {
    expectLidError(
      () => scoreFidelity([{ source: DE_Q, response: DE_A }], lid, { lang: 'xx' }),
      'unknown-language',
      'xx',
    );
    expectLidError(
      () => scoreFidelity([{ source: DE_Q, response: DE_A }], lid, { lang: 'ace' }), // in the table (OpenLID), not in lid.176
      'language-not-in-model',
      'Acehnese',
    );
    expectLidError(() => scoreFidelity([], lid, { empty: 'drop' as never }), 'bad-option');
    const file = path.join(dir, 'no-system.jsonl');
    writeFileSync(
      file,
      jsonl([
        { source: DE_Q, system: DE_A },
        { source: DE_Q, response: DE_A },
      ]),
    );
    await expectLidErrorAsync(
      fidelityOfFile(file, lid, { lang: 'de' }),
      'missing-field',
      `${file}:2`,
      'system',
    );
    writeFileSync(file, `${JSON.stringify({ source: DE_Q, system: DE_A })}\n{"source": oops}\n`);
    await expectLidErrorAsync(fidelityOfFile(file, lid, { lang: 'de' }), 'bad-jsonl', `${file}:2`);
    // a null response is an empty response
    writeFileSync(file, jsonl([{ source: DE_Q, system: null }]));
    expect(await fidelityOfFile(file, lid, { lang: 'de' })).to.include({ n: 1, empty: 1, lang_match: 0 });
  });

  it('infers the expected language from the paper’s file names', () => {
    expect(
      inferLangFromFileName('x/alpaca_eval_instructions_bg-none-guanaco_prompt-s42-k50-p0.9-t0.8-b8.jsonl'),
    ).to.equal('bul_Cyrl');
    expect(inferLangFromFileName('alpaca_eval_instructions_no-none-x.jsonl')).to.equal('nob_Latn');
    expect(inferLangFromFileName('run.jsonl')).to.equal(null);
    expect(inferLangFromFileName('data_qq-none.jsonl')).to.equal(null);
  });

  it('mean and standard deviation over seeds', () => {
    const r = (lang_match: number, tgt_lang: number | null, n = 805): FidelityResult => ({
      n,
      lang_match,
      tgt_lang,
      empty: 1,
      lang: 'deu_Latn',
      labels: {},
      unknownLabels: [],
      model: 'lid176',
    });
    const s = summarizeFidelity([r(0.5, 0.4), r(0.6, 0.5), r(0.7, 0.9)]);
    expect(s).to.include({ files: 3, n: 3 * 805, empty: 3 });
    expect(s.lang_match.mean).to.be.closeTo(0.6, 1e-12);
    expect(s.lang_match.std).to.be.closeTo(0.1, 1e-12); // sample std, as pandas
    expect(s.tgt_lang.mean).to.be.closeTo(0.6, 1e-12);
    expect(s.tgt_lang.std).to.be.closeTo(Math.sqrt((0.04 + 0.01 + 0.09) / 2), 1e-12);
    const one = summarizeFidelity([r(0.5, null)]);
    expect(one.lang_match).to.deep.equal({ mean: 0.5, std: null });
    expect(one.tgt_lang).to.deep.equal({ mean: null, std: null });
  });

  it('writes the paper’s one-row .eval CSV, rounded as Python rounds', async () => {
    expect(formatPyFloat3(4 / 9)).to.equal('0.444');
    expect(formatPyFloat3(2 / 3)).to.equal('0.667');
    expect(formatPyFloat3(1)).to.equal('1.0');
    expect(formatPyFloat3(0)).to.equal('0.0');
    expect(formatPyFloat3(0.9375)).to.equal('0.938');
    expect(formatPyFloat3(0.0625)).to.equal('0.062'); // an exact tie: to even, as round(0.0625, 3)
    expect(formatPyFloat3(0.3125)).to.equal('0.312');
    expect(formatPyFloat3(0.1875)).to.equal('0.188');
    expect(formatPyFloat3(0.0005)).to.equal('0.001'); // 0.0005 is slightly above the tie in binary
    expect(formatPyFloat3(null)).to.equal('');
    expect(formatPyFloat3(Number.NaN)).to.equal('');

    const file = path.join(dir, 'alpaca_eval_instructions_de-none-guanaco_prompt-s0.jsonl');
    writeFileSync(file, jsonl(GERMAN_RUN));
    const r = await fidelityOfFile(file, lid);
    expect(evalPathFor(file)).to.equal(file.replace(/\.jsonl$/, '.eval'));
    await writeEvalCsv(evalPathFor(file), r);
    expect(readFileSync(evalPathFor(file), 'utf8')).to.equal(`${EVAL_HEADER}\n0.444,0.333,,,9,${file}\n`);
    const noLang = await fidelityOfFile(file, lid, { lang: null });
    expect(formatEvalCsv(noLang, { file: 'a,b.jsonl', ppl: 12.3456, pplModel: 'llama' })).to.equal(
      `${EVAL_HEADER}\n0.444,,12.346,llama,9,"a,b.jsonl"\n`,
    );
  });
});

describe('tagging records (assign_langs)', () => {
  it('adds <key>_lang (and optionally the probability) to every record, atomically', async () => {
    const lid = await loadLidModel();
    const dir = tempDir('tag');
    const input = path.join(dir, 'in.jsonl');
    const output = path.join(dir, 'out.jsonl');
    writeFileSync(
      input,
      jsonl([
        { id: 1, source: DE_Q, system: EN_A },
        { id: 2, source: EN_Q, system: null },
      ]),
    );
    expect(await tagFile(input, output, lid, { keys: ['source', 'system'] })).to.deep.equal({ records: 2 });
    const rows = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows[0]).to.deep.equal({
      id: 1,
      source: DE_Q,
      system: EN_A,
      source_lang: 'de',
      system_lang: 'en',
    });
    expect(rows[1]).to.include({ id: 2, source_lang: 'en', system_lang: null });
    const lines: string[] = [];
    await tagRecords(input, lid, { keys: ['system'], prob: true }, (l) => {
      lines.push(l);
    });
    expect(JSON.parse(lines[0]!).system_lang_prob).to.be.greaterThan(0.5);
    await expectLidErrorAsync(tagFile(input, output, lid, { keys: ['text'] }), 'missing-field', `${input}:1`);
    // the earlier output is untouched by the failed run
    expect(readFileSync(output, 'utf8').trim().split('\n')).to.have.length(2);
  });
});
