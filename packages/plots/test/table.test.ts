import { expect } from 'chai';
import { formatTable, PlotError, pivot } from '../src/index.js';

const rows = [
  { mix: 'Mono', en: 0.938, de: 0.406, is: 0.276 },
  { mix: 'Multi-2 (en+es)', en: 0.9352, de: 0.873, is: null },
];

describe('formatTable', () => {
  it('Markdown: padded cells, numeric columns right-aligned, missing as –', () => {
    expect(formatTable(rows, ['mix', 'en', 'de', 'is'], { format: 'md' })).to.equal(
      [
        '| mix             |    en |    de |    is |',
        '| --------------- | ----: | ----: | ----: |',
        '| Mono            | 0.938 | 0.406 | 0.276 |',
        '| Multi-2 (en+es) | 0.935 | 0.873 |     – |',
        '',
      ].join('\n'),
    );
  });

  it('Markdown escapes pipes and line breaks', () => {
    expect(formatTable([{ a: 'x|y', b: 'one\ntwo' }], ['a', 'b'], { format: 'md' })).to.equal(
      ['| a    | b          |', '| ---- | ---------- |', '| x\\|y | one<br>two |', ''].join('\n'),
    );
  });

  it('CSV: RFC 4180 quoting and CRLF line ends, no padding', () => {
    const data = [
      { name: 'a,b', note: 'say "hi"', score: 0.5 },
      { name: 'line1\nline2', note: 'plain', score: Number.NaN },
    ];
    expect(formatTable(data, ['name', 'note', 'score'], { format: 'csv', digits: 2 })).to.equal(
      'name,note,score\r\n"a,b","say ""hi""",0.50\r\n"line1\nline2",plain,–\r\n',
    );
    expect(formatTable(data, ['score'], { format: 'csv', missing: '' })).to.equal('score\r\n0.500\r\n\r\n');
  });

  it('LaTeX: booktabs, special characters escaped, missing as --', () => {
    const data = [
      { what: 'R&D 100% $5 #1 a_b {x}', v: 1.23456 },
      { what: '~ ^ \\', v: undefined },
    ];
    expect(
      formatTable(
        data,
        [
          { key: 'what', header: 'item_name' },
          { key: 'v', digits: 2 },
        ],
        { format: 'latex' },
      ),
    ).to.equal(
      [
        '\\begin{tabular}{lr}',
        '\\toprule',
        'item\\_name                                            &    v \\\\',
        '\\midrule',
        'R\\&D 100\\% \\$5 \\#1 a\\_b \\{x\\}                         & 1.23 \\\\',
        '\\textasciitilde{} \\textasciicircum{} \\textbackslash{} &   -- \\\\',
        '\\bottomrule',
        '\\end{tabular}',
        '',
      ].join('\n'),
    );
  });

  it('integer columns stay integers; rounding never shows -0; infinities are named', () => {
    const data = [
      { n: 805, x: -0.0001, y: Number.POSITIVE_INFINITY },
      { n: 1000, x: 2, y: 1.5 },
    ];
    expect(formatTable(data, ['n', 'x', 'y'], { format: 'csv', digits: 3 })).to.equal(
      'n,x,y\r\n805,0.000,inf\r\n1000,2.000,1.500\r\n',
    );
  });

  it('a column mixing text and numbers is text (left-aligned)', () => {
    expect(formatTable([{ a: 'n/a' }, { a: 12 }], ['a'], { format: 'md' })).to.equal(
      ['| a   |', '| --- |', '| n/a |', '| 12  |', ''].join('\n'),
    );
  });

  it('rejects unknown formats and bad digits with a typed error', () => {
    expect(() => formatTable(rows, ['mix'], { format: 'html' as 'md' }))
      .to.throw(PlotError, /unknown table format 'html'/)
      .with.property('isPolyglotError', true);
    expect(() => formatTable(rows, ['mix'], { format: 'md', digits: -1 })).to.throw(
      PlotError,
      /digits must be an integer/,
    );
    expect(() => formatTable(rows, [{ key: 'en', digits: 1.5 }], { format: 'md' })).to.throw(
      PlotError,
      /column 'en'/,
    );
  });
});

describe('pivot', () => {
  const long = [
    { model: 'Mono', lang: 'en', seed: 0, lang_match: 0.94 },
    { model: 'Mono', lang: 'en', seed: 42, lang_match: 0.93 },
    { model: 'Mono', lang: 'de', seed: 0, lang_match: 0.4 },
    { model: 'Multi-2', lang: 'de', seed: 0, lang_match: 0.87 },
    { model: 'Multi-2', lang: 'de', seed: 42, lang_match: Number.NaN },
    { model: 'Multi-2', lang: 'is', seed: 0, lang_match: null },
  ];

  it('makes a language × model table of means over seeds', () => {
    const p = pivot(long, { row: 'model', col: 'lang', value: 'lang_match' });
    expect(p.columns).to.deep.equal(['model', 'en', 'de', 'is']);
    expect(p.rows).to.have.length(2);
    expect(p.rows[0]).to.deep.include({ model: 'Mono', de: 0.4, is: null });
    expect(p.rows[0].en).to.be.closeTo(0.935, 1e-12);
    expect(p.rows[1]).to.deep.equal({ model: 'Multi-2', en: null, de: 0.87, is: null });
    expect(formatTable(p.rows, p.columns, { format: 'md', digits: 2 })).to.equal(
      [
        '| model   |   en |   de |  is |',
        '| ------- | ---: | ---: | --: |',
        '| Mono    | 0.94 | 0.40 |   – |',
        '| Multi-2 |    – | 0.87 |   – |',
        '',
      ].join('\n'),
    );
  });

  it('other aggregates and explicit orders', () => {
    const p = pivot(long, {
      row: 'lang',
      col: 'model',
      value: 'lang_match',
      agg: 'count',
      rows: ['is', 'de'],
      cols: ['Multi-2'],
    });
    expect(p).to.deep.equal({
      columns: ['lang', 'Multi-2'],
      rows: [
        { lang: 'is', 'Multi-2': 0 },
        { lang: 'de', 'Multi-2': 1 },
      ],
    });
    expect(pivot(long, { row: 'model', col: 'lang', value: 'lang_match', agg: 'max' }).rows[0].en).to.equal(
      0.94,
    );
    expect(pivot(long, { row: 'model', col: 'lang', value: 'seed', agg: 'sum' }).rows[0].en).to.equal(42);
  });

  it('rejects unknown aggregates, missing keys and text values', () => {
    expect(() =>
      pivot(long, { row: 'model', col: 'lang', value: 'lang_match', agg: 'median' as 'mean' }),
    ).to.throw(PlotError, /unknown aggregate 'median'/);
    expect(() => pivot([{ model: 'x' }], { row: 'model', col: 'lang', value: 'v' })).to.throw(
      /row 0 has no 'lang' value/,
    );
    expect(() =>
      pivot([{ model: 'x', lang: 'en', v: 'high' }], { row: 'model', col: 'lang', value: 'v' }),
    ).to.throw(/non-numeric 'v'/);
    expect(() =>
      pivot([{ model: 'x', lang: 'model', v: 1 }], { row: 'model', col: 'lang', value: 'v' }),
    ).to.throw(/name of the row field/);
  });
});
