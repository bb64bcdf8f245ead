import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { inProcess as polyglot } from './helpers/cli.js';

const runFile = (lang: string, seed: number) =>
  `alpaca_eval_instructions_${lang}-none-guanaco_prompt-s${seed}-k50-p0.9-t0.8-b8`;

/** A small runs folder: fidelity of three mixes, judge outputs, one results.json, one training log. */
function writeRuns(dir: string): void {
  const fid: Record<string, Record<string, number>> = {
    Mono: { en: 0.94, de: 0.41, ko: 0.2 },
    'Multi-2': { en: 0.93, de: 0.87, ko: 0.72 },
    'Multi-3': { en: 0.94, de: 0.9, ko: 0.8 },
  };
  for (const [model, langs] of Object.entries(fid)) {
    mkdirSync(path.join(dir, model), { recursive: true });
    for (const [lang, v] of Object.entries(langs)) {
      for (const [i, seed] of [0, 42].entries()) {
        writeFileSync(
          path.join(dir, model, `${runFile(lang, seed)}.jsonl.eval`),
          `lang_match,tgt_lang,ppl,ppl_model,n,file\n${(v + i * 0.01).toFixed(3)},,,,805,x\n`,
        );
      }
      writeFileSync(
        path.join(dir, model, `${runFile(lang, 0)}-l300-ds42-as42-source-system.jsonl`),
        `${[3, 4, 5].map((s) => JSON.stringify({ eval_score: Math.round(s * v + 1) })).join('\n')}\n`,
      );
    }
    writeFileSync(
      path.join(dir, model, 'results.json'),
      JSON.stringify({
        results: Object.fromEntries(
          ['de', 'en', 'zh'].map((l) => [
            `xnli_${l}`,
            { 'acc,none': 0.43 + (l === 'en' ? 0.1 : 0), 'acc_stderr,none': 0.01 },
          ]),
        ),
      }),
    );
  }
  writeFileSync(
    path.join(dir, 'Mono', 'train-log.jsonl'),
    `${[1, 2, 3, 4].map((step) => JSON.stringify({ step, loss: 2 / step, grad_norm: 1, lr: 1e-5, tokens: 100, secs: 1 })).join('\n')}\n${JSON.stringify({ step: 4, eval_loss: 0.7 })}\n`,
  );
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ title: 'CLI test', base_model: 'tiny-llama' }));
}

describe('polyglot plot', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-cli-plot-'));
  const runs = path.join(dir, 'runs');
  before(() => writeRuns(runs));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--help lists report, figure, table and fonts', async () => {
    const r = await polyglot('plot', '--help');
    expect(r.code).to.equal(0);
    for (const sub of ['report', 'figure', 'table', 'fonts'])
      expect(r.stdout).to.match(new RegExp(`^\\s+${sub}\\b`, 'm'));
    const f = await polyglot('plot', 'figure', '--help');
    expect(f.stdout).to.include('fidelity-lines');
  });

  it('report writes index.html, report.md, the PNGs and the tables in the formats asked for', async () => {
    const out = path.join(dir, 'report');
    const r = await polyglot(
      'plot',
      'report',
      '--runs',
      runs,
      '--out',
      out,
      '--format',
      'csv,latex',
      '--format',
      'md',
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.include(`report: ${path.join(out, 'index.html')}`);
    expect(r.stdout).to.match(/fidelity-lines: .*figures\/fidelity-lines\.png/);
    for (const f of [
      'index.html',
      'report.md',
      'figures/fidelity-bars.png',
      'figures/xnli-bars.svg',
      'figures/loss-curves.vl.json',
    ]) {
      expect(existsSync(path.join(out, f)), f).to.equal(true);
    }
    for (const ext of ['csv', 'md', 'tex'])
      expect(existsSync(path.join(out, `tables/fidelity.${ext}`)), ext).to.equal(true);
    const html = readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(html).to.include('<h1>CLI test</h1>');
    expect(html).to.include('tiny-llama');
    // figures without their results are listed, not drawn empty
    expect(html).to.match(/Not in this experiment[\s\S]*X-CSQA/);
  });

  it('figure writes SVG, PNG and the Vega-Lite spec; or just the file named', async () => {
    const prefix = path.join(dir, 'fig', 'lines');
    const r = await polyglot(
      'plot',
      'figure',
      'fidelity-lines',
      '--runs',
      runs,
      '--out',
      prefix,
      '--lang-labels',
      'autonym',
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n')).to.deep.equal([
      `${prefix}.svg`,
      `${prefix}.png`,
      `${prefix}.vl.json`,
    ]);
    expect(readFileSync(`${prefix}.svg`, 'utf8')).to.include('한국어');
    expect(readFileSync(`${prefix}.png`).subarray(1, 4).toString()).to.equal('PNG');
    expect(JSON.parse(readFileSync(`${prefix}.vl.json`, 'utf8')).hconcat).to.have.length(2);
    const svg = path.join(dir, 'fig', 'bars.svg');
    const s = await polyglot(
      'plot',
      'figure',
      'fidelity-bars',
      '--runs',
      runs,
      '--out',
      svg,
      '--models',
      'Multi-3,Mono',
      '--langs',
      'de',
    );
    expect(s.code, s.stderr).to.equal(0);
    expect(existsSync(svg)).to.equal(true);
    expect(existsSync(path.join(dir, 'fig', 'bars.png'))).to.equal(false);
  });

  it('table prints the numbers as Markdown, CSV or LaTeX', async () => {
    const md = await polyglot('plot', 'table', 'fidelity', '--runs', runs);
    expect(md.code, md.stderr).to.equal(0);
    expect(md.stdout).to.match(/^\| model +\| +en \| +de \| +ko \| +mean \|/);
    expect(md.stdout).to.match(/\| Mono +\| 0\.945 \| 0\.415 \| 0\.205 \| 0\.522 \|/);
    const csv = await polyglot('plot', 'table', 'xnli', '--runs', runs, '--format', 'csv', '--digits', '2');
    expect(csv.stdout.split('\r\n')[0]).to.equal('model,en,de,zh,mean');
    expect(csv.stdout).to.include('Mono,0.53,0.43,0.43,0.46');
    const all = await polyglot('plot', 'table', '--runs', runs, '--format', 'latex');
    expect(all.stdout).to.include('% XNLI accuracy per model and language');
    expect(all.stdout.match(/\\begin\{tabular\}/g)?.length).to.be.greaterThan(4);
    const none = await polyglot('plot', 'table', 'xquad', '--runs', runs);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.match(/^polyglot: error: no table "xquad" .* there are: fidelity, /);
  });

  it('fonts shows the font of every script', async () => {
    const r = await polyglot('plot', 'fonts');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Devanagari\s+कि\s+Noto Sans Devanagari\s+\//m);
    expect(r.stdout).to.match(/^Hangul\s+한국\s+Noto Sans CJK SC/m);
  });

  it('empty folders, unknown figures and bad flags are one-line errors', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const e = await polyglot('plot', 'report', '--runs', empty, '--out', path.join(dir, 'r2'));
    expect(e.code).to.equal(1);
    expect(e.stderr).to.match(/^polyglot: error: no results in .*empty/);
    expect(e.stderr.trim().split('\n')).to.have.length(1);
    const k = await polyglot('plot', 'figure', 'pie', '--runs', runs, '--out', path.join(dir, 'pie'));
    expect(k.code).to.equal(2);
    expect(k.stderr).to.include('unknown figure "pie"');
    const f = await polyglot(
      'plot',
      'report',
      '--runs',
      runs,
      '--out',
      path.join(dir, 'r3'),
      '--format',
      'html',
    );
    expect(f.code).to.equal(2);
    expect(f.stderr).to.include('unknown table format "html"');
    const m = await polyglot('plot', 'figure', 'xcsqa-heatmap', '--runs', runs, '--out', path.join(dir, 'x'));
    expect(m.code).to.equal(1);
    expect(m.stderr).to.match(/no xcsqa results .* the results have: xnli/);
  });
});
