import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  type FidelityRow,
  type FigureKind,
  figure,
  figureSpec,
  loadRuns,
  PlotError,
  type Runs,
  svgTexts,
} from '../src/index.js';
import { decodePng, hasColour, inkStats, svgColours, writeRuns } from './fixtures.js';

async function rejects(p: Promise<unknown>): Promise<PlotError> {
  try {
    await p;
  } catch (e) {
    return e as PlotError;
  }
  throw new Error('expected a rejection');
}

function throws(f: () => unknown): PlotError {
  try {
    f();
  } catch (e) {
    return e as PlotError;
  }
  throw new Error('expected an error');
}

describe('figure', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-plots-fig-'));
  let runs: Runs;
  before(async () => {
    writeRuns(dir);
    runs = await loadRuns(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // What each figure's SVG must say (labels present as text) and a colour its PNG must show.
  const expectations: Record<
    Exclude<FigureKind, 'task-heatmap'>,
    { texts: string[]; colour: string | null }
  > = {
    'fidelity-bars': {
      texts: [
        'Language fidelity per test language',
        'Test language',
        'Tuning mix',
        'Mono',
        'Multi-Guanaco',
        'bg',
        'zh',
      ],
      colour: '#4c78a8',
    },
    'fidelity-lines': {
      texts: [
        'Languages in the tuning mix',
        'Helpfulness',
        'Language fidelity',
        'Multi-Guanaco',
        'Test language',
        'ko',
      ],
      colour: '#f58518',
    },
    'helpfulness-heatmap': { texts: ['Mean score', 'Multi-3', 'hi', '1.80', '4.80'], colour: null },
    'xcsqa-heatmap': {
      texts: [
        'X-CSQA accuracy per prompt language × data language',
        'Prompt language',
        'Data language',
        'Mono',
        '0.40',
      ],
      colour: null,
    },
    'xquad-heatmap': {
      texts: ['XQuAD containment score per prompt language × data language', 'Multi-Guanaco', '0.66'],
      colour: null,
    },
    'xnli-bars': {
      texts: ['XNLI accuracy per language and model', 'mean', 'ru', 'Model'],
      colour: '#e45756',
    },
    'loss-curves': {
      texts: ['Training and evaluation loss', 'Step', 'Loss', 'Mono', 'Multi-2'],
      colour: '#4c78a8',
    },
  };

  for (const [kind, want] of Object.entries(expectations)) {
    it(`${kind}: SVG with its labels as text, a non-trivial PNG`, async () => {
      const f = await figure(kind as FigureKind, runs);
      expect(f.warnings).to.deep.equal([]);
      expect(f.svg).to.match(/^<svg[^>]+width="\d+/);
      const texts = svgTexts(f.svg);
      for (const t of want.texts) expect(texts, `${kind}: '${t}'`).to.include(t);
      const png = decodePng(f.png!);
      expect(png.width).to.equal(Math.round(f.width * 2));
      expect(png.height).to.equal(Math.round(f.height * 2));
      const { ink, colours } = inkStats(png);
      expect(ink, 'share of non-white pixels').to.be.within(0.03, 0.7);
      expect(colours, 'distinct colours').to.be.greaterThan(12);
      if (want.colour) expect(hasColour(png, want.colour), `${kind} shows ${want.colour}`).to.equal(true);
      // the marks' colours reach the PNG (bars, lines, cells: not only axes and text)
      const colours3 = svgColours(f.svg).slice(0, 3);
      expect(colours3.length, 'data colours in the SVG').to.be.at.least(2);
      for (const c of colours3) expect(hasColour(png, c, 6, 4), `${kind}: PNG has ${c}`).to.equal(true);
      // every label's characters come from a font that has them
      expect(f.fonts.map((u) => u.family)).to.include('Noto Sans');
      expect(f.spec.$schema).to.include('vega-lite');
      expect(f.tables.length).to.be.greaterThan(0);
      expect(f.caption).to.match(/\.$/);
    });
  }

  it('task-heatmap draws any task family; scale sets the PNG size; png: false skips it', async () => {
    const f = await figure('task-heatmap', runs, { task: 'xcsqa', scale: 1, models: ['Mono', 'Multi-3'] });
    expect(decodePng(f.png!).width).to.equal(Math.round(f.width));
    expect(svgTexts(f.svg)).to.include.members(['Mono', 'Multi-3']).and.not.include('Multi-2');
    const g = await figure('fidelity-bars', runs, { png: false, metric: 'tgt_lang', langs: ['de', 'en'] });
    expect(g.png).to.equal(null);
    expect(svgTexts(g.svg)).to.include('Responses in the expected language (tgt_lang)');
    expect(g.tables[0].columns.map((c) => c.key)).to.deep.equal(['model', 'de', 'en', '__mean']);
  });

  it('the numbers in the tables are the means over seeds', () => {
    const { tables } = figureSpec('fidelity-bars', runs);
    const mono = tables[0].rows.find((r) => r.model === 'Mono')!;
    expect(mono.de).to.be.closeTo(0.406, 1e-9);
    expect(mono.en).to.be.closeTo(0.938, 1e-9);
    const lines = figureSpec('fidelity-lines', runs);
    expect(lines.tables.map((t) => t.name)).to.deep.equal(['fidelity-by-mix', 'helpfulness-by-mix']);
    expect(lines.tables[0].columns.map((c) => c.header)).to.deep.equal([
      'test language',
      'Mono (1)',
      'Multi-2 (2)',
      'Multi-3 (3)',
      'Multi-Guanaco (30)',
    ]);
    // error bars: min–max over the three seeds (±0.02)
    const bg = lines.spec.hconcat[0].data.values.find(
      (v: Record<string, unknown>) => v.lang === 'bg' && v.k === 1,
    );
    expect(bg.lo).to.be.closeTo(0.212, 1e-9);
    expect(bg.hi).to.be.closeTo(0.252, 1e-9);
    const std = figureSpec('fidelity-lines', runs, { spread: 'std' }).spec.hconcat[0].data.values[0];
    expect(std.hi - std.mean).to.be.closeTo(0.02, 1e-9);
  });

  it('labels in Greek, Cyrillic, Devanagari, Hangul and Han render with fonts that have their glyphs', async () => {
    const f = await figure('fidelity-bars', runs, { langLabels: 'autonym' });
    const texts = svgTexts(f.svg);
    for (const t of ['Ελληνικά', 'български', 'हिन्दी', '한국어', '中文']) expect(texts).to.include(t);
    const fontOf = (ch: string) => f.fonts.find((u) => u.chars.includes(ch));
    expect(fontOf('λ')?.family).to.equal('Noto Sans');
    expect(fontOf('б')?.family).to.equal('Noto Sans');
    expect(fontOf('ह')?.family).to.equal('Noto Sans Devanagari');
    expect(fontOf('한')?.family).to.match(/^Noto Sans CJK/);
    expect(fontOf('中')?.family).to.equal('Noto Sans CJK SC');
    const png = decodePng(f.png!);
    expect(inkStats(png).ink).to.be.within(0.03, 0.7);
  });
});

describe('figure: empty and inconsistent results', function () {
  this.timeout(60_000);
  const row = (model: string, lang: string, v: number | null, seed = 0): FidelityRow => ({
    model,
    lang,
    seed,
    lang_match: v,
  });

  it('no rows: a clear error naming what is missing', async () => {
    const e = await rejects(figure('fidelity-bars', {}));
    expect(e).to.be.instanceOf(PlotError);
    expect(e.code).to.equal('PLOT_NO_DATA');
    expect(e.message).to.match(/fidelity-bars: no language fidelity results to plot/);
    expect((await rejects(figure('helpfulness-heatmap', { helpfulness: [] }))).message).to.match(
      /no judge scores/,
    );
    expect((await rejects(figure('loss-curves', { training: [] }))).message).to.match(/no training losses/);
  });

  it('every value missing is not an empty chart', async () => {
    const e = await rejects(
      figure('fidelity-bars', { fidelity: [row('Mono', 'de', null), row('Mono', 'en', null)] }),
    );
    expect(e.code).to.equal('PLOT_NO_DATA');
    expect(e.message).to.match(/every lang_match value is missing/);
    const h = await rejects(
      figure('helpfulness-heatmap', {
        helpfulness: [{ model: 'Mono', lang: 'de', score: null, n: 0, skipped: 5 }],
      }),
    );
    expect(h.message).to.match(/no judge output has a parseable score/);
  });

  it('values out of range, rows without a model, unknown options', () => {
    expect(
      throws(() => figureSpec('fidelity-bars', { fidelity: [row('Mono', 'de', 1.5)] })).message,
    ).to.match(/row 0 \(Mono, de\) has lang_match 1.5, not a share/);
    expect(
      throws(() =>
        figureSpec('fidelity-bars', { fidelity: [{ lang: 'de', lang_match: 0.5 } as FidelityRow] }),
      ).message,
    ).to.match(/row 0 has no 'model'/);
    expect(throws(() => figureSpec('pie' as FigureKind, {})).message).to.match(/unknown figure 'pie'/);
    expect(
      throws(() =>
        figureSpec('fidelity-bars', { fidelity: [row('Mono', 'de', 0.5)] }, { spread: 'iqr' as 'std' }),
      ).code,
    ).to.equal('PLOT_BAD_OPTION');
    expect(throws(() => figureSpec('task-heatmap', { tasks: [] })).message).to.match(/name the task family/);
    expect(
      throws(() =>
        figureSpec('fidelity-bars', { fidelity: [row('Mono', 'de', 0.5)] }, { models: ['Multi-9'] }),
      ).message,
    ).to.match(/none of the models asked for \(Multi-9\) has results; there are: Mono/);
  });

  it('fidelity-lines needs two mixes with known, distinct numbers of languages', () => {
    const one = throws(() =>
      figureSpec('fidelity-lines', { fidelity: [row('Mono', 'de', 0.4), row('Custom', 'de', 0.9)] }),
    );
    expect(one.code).to.equal('PLOT_NO_DATA');
    expect(one.message).to.match(/at least two tuning mixes .* has Mono \(1\); unknown: Custom/);
    const twice = throws(() =>
      figureSpec('fidelity-lines', {
        fidelity: [row('Multi-2', 'de', 0.8), row('multi_2_mt', 'de', 0.7), row('Mono', 'de', 0.4)],
      }),
    );
    expect(twice.code).to.equal('PLOT_BAD_DATA');
    expect(twice.message).to.match(/Multi-2 and multi_2_mt both have 2 languages/);
    const ok = figureSpec('fidelity-lines', {
      fidelity: [row('Mono', 'de', 0.4), row('Multi-2', 'de', 0.8), row('Custom', 'de', 0.9)],
    });
    expect(ok.warnings[0]).to.match(/left out Custom: the number of languages in the mix is unknown/);
    const withMeta = figureSpec('fidelity-lines', {
      fidelity: [row('Mono', 'de', 0.4), row('Custom', 'de', 0.9)],
      models: [
        { name: 'Mono', nLanguages: 1 },
        { name: 'Custom', nLanguages: 4 },
      ],
    });
    expect(withMeta.tables[0].columns.map((c) => c.header)).to.deep.equal([
      'test language',
      'Mono (1)',
      'Custom (4)',
    ]);
  });

  it('a task heatmap without that task says which tasks there are', () => {
    const e = throws(() =>
      figureSpec('xquad-heatmap', {
        tasks: [
          {
            model: 'Mono',
            task: 'xnli_de',
            family: 'xnli',
            promptLang: 'de',
            dataLang: 'de',
            metric: 'acc',
            value: 0.4,
          },
        ],
      }),
    );
    expect(e.code).to.equal('PLOT_NO_DATA');
    expect(e.message).to.match(/no xquad results .* the results have: xnli/);
  });
});
