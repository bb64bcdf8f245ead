import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { type Browser, chromium } from 'playwright-core';
import { repoRoot } from '../../../tools/shared.js';
import { FIGURE_KINDS, loadRuns, reportTables, writeReport } from '../src/index.js';
import { decodePng, inkStats, runName, writeRuns } from './fixtures.js';

const CHROMIUM = process.env.POLYGLOT_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts');

describe('writeReport', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-plots-report-'));
  const runsDir = path.join(dir, 'runs');
  const out = path.join(dir, 'report');
  let result: Awaited<ReturnType<typeof writeReport>>;
  before(async () => {
    writeRuns(runsDir);
    result = await writeReport(runsDir, {
      out,
      formats: ['csv', 'md', 'latex'],
      now: new Date('2024-06-01T12:00:00Z'),
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes index.html, report.md, a PNG/SVG/spec per figure and the tables in every format', () => {
    const kinds = result.figures.map((f) => f.kind);
    expect(kinds).to.deep.equal([
      'fidelity-bars',
      'fidelity-lines',
      'helpfulness-heatmap',
      'xcsqa-heatmap',
      'xquad-heatmap',
      'xnli-bars',
      'loss-curves',
    ]);
    expect(result.figures.every((f) => f.ok)).to.equal(true);
    expect(result.warnings).to.deep.equal([]);
    for (const f of result.figures) {
      const png = decodePng(readFileSync(path.join(out, f.png!)));
      expect(png.width).to.be.greaterThan(400);
      expect(inkStats(png).ink, f.kind).to.be.within(0.02, 0.7);
      expect(readFileSync(path.join(out, f.svg!), 'utf8')).to.match(/^<svg/);
      expect(
        JSON.parse(readFileSync(path.join(out, `figures/${f.kind}.vl.json`), 'utf8')).$schema,
      ).to.include('vega-lite');
    }
    for (const ext of ['csv', 'md', 'tex']) {
      expect(existsSync(path.join(out, `tables/fidelity.${ext}`)), ext).to.equal(true);
    }
    expect(readFileSync(path.join(out, 'tables/fidelity.csv'), 'utf8').split('\r\n')[0]).to.equal(
      'model,en,bg,de,el,hi,ko,zh,mean',
    );
    expect(readFileSync(path.join(out, 'tables/xnli.tex'), 'utf8')).to.include('\\toprule');
    const md = readFileSync(result.markdown, 'utf8');
    expect(md).to.include('# Llama-2 7B: how much multilinguality?');
    expect(md).to.include('![');
    expect(md).to.include('(figures/fidelity-lines.png)');
    expect(md).to.match(/\| Mono +\| +0\.938 \|/);
    expect(md).to.include('| Base model');
    // no file is left half-written
    expect(readFileSync(result.html, 'utf8')).to.match(/<\/html>\n$/);
  });

  it('the HTML is self-contained: inline SVG, no external resources, unique SVG ids, run metadata', () => {
    const html = readFileSync(result.html, 'utf8');
    expect(html).to.not.match(/<(script|link|img)[^>]+(src|href)="https?:/);
    expect(html.match(/<svg\b/g)?.length).to.equal(7);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const ref of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).to.include(ref[1]);
    for (const text of [
      'meta-llama/Llama-2-7b-hf',
      'runs/Multi-2/adapter',
      'temperature 0.8',
      'wasm',
      '0, 42, 723',
      '@polyglot/cli 0.1.0',
      'gpt-3.5-turbo-1106',
    ]) {
      expect(html, text).to.include(text);
    }
  });

  it('opens in headless Chromium: no console errors, every figure and table in the DOM, tables sort', async function () {
    if (!existsSync(CHROMIUM)) {
      const reason = `skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set POLYGLOT_CHROMIUM)`;
      console.log(`      ${reason}`);
      (this.test as unknown as { polyglotSkipReason: string }).polyglotSkipReason = reason;
      this.skip();
    }
    // playwright gives the browser a new, empty profile folder of its own (and removes it)
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--no-first-run',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      await page.goto(`file://${result.html}`, { waitUntil: 'load' });
      for (const kind of result.figures.map((f) => f.kind)) {
        const svg = page.locator(`#fig-${kind} figure svg`);
        expect(await svg.count(), kind).to.equal(1);
        const box = await svg.boundingBox();
        expect(box!.width, kind).to.be.greaterThan(200);
        expect(await page.locator(`#fig-${kind} table.sortable`).count(), kind).to.be.greaterThan(0);
        expect(await svg.locator('text').count(), kind).to.be.greaterThan(5);
      }
      expect(await page.locator('#meta table.kv').count()).to.equal(1);
      expect(await page.locator('#models-table tbody tr').count()).to.equal(4);
      // sorting: the de column of the fidelity table, descending → Multi-Guanaco first, Mono last
      const table = page.locator('#fig-fidelity-bars-table-0');
      const header = table.locator('thead th', { hasText: /^de$/ });
      await header.click();
      await header.click();
      expect(await header.getAttribute('aria-sort')).to.equal('descending');
      const first = await table.locator('tbody tr').first().locator('th').textContent();
      const last = await table.locator('tbody tr').last().locator('th').textContent();
      expect([first, last]).to.deep.equal(['Multi-Guanaco', 'Mono']);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'plots-report.png'), fullPage: true });
      expect(errors).to.deep.equal([]);
      expect(requests).to.deep.equal([]);
    } finally {
      await browser?.close();
    }
  });

  it('a figure whose results contradict each other becomes a notice, not an empty chart', async () => {
    const bad = path.join(dir, 'runs-bad');
    writeRuns(bad, { tasks: false, training: false, judge: false });
    // Multi-3 and a second three-language mix: the lines figure has one point per number of languages
    mkdirSync(path.join(bad, 'Multi-3-alt'));
    writeFileSync(
      path.join(bad, 'Multi-3-alt', `${runName('de', 0)}.jsonl.eval`),
      'lang_match,tgt_lang,ppl,ppl_model,n,file\n0.5,0.5,,,805,x\n',
    );
    const r = await writeReport(bad, { out: path.join(dir, 'report-bad') });
    const lines = r.figures.find((f) => f.kind === 'fidelity-lines')!;
    expect(lines.ok).to.equal(false);
    expect(lines.message).to.match(/Multi-3 and Multi-3-alt both have 3 languages/);
    const html = readFileSync(r.html, 'utf8');
    expect(html).to.include('Not drawn.');
    expect(html).to.match(/Not in this experiment[\s\S]*Helpfulness per language and model/);
    expect(readFileSync(r.markdown, 'utf8')).to.include('> **Not drawn.**');
    expect(r.warnings.join('\n')).to.include('seeds');
  });

  it('an empty runs folder is a clear error, not an empty report', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    let err: Error | undefined;
    try {
      await writeReport(empty, { out: path.join(dir, 'report-empty') });
    } catch (e) {
      err = e as Error;
    }
    expect(err).to.have.property('code', 'PLOT_NO_DATA');
    expect(err!.message).to.match(/no results in .*empty.*\.eval/);
    expect(existsSync(path.join(dir, 'report-empty', 'index.html'))).to.equal(false);
  });

  it('reportTables gives the same numbers without rendering', async () => {
    const { tables, warnings } = reportTables(await loadRuns(runsDir));
    expect(warnings).to.deep.equal([]);
    expect(tables.map((t) => t.name)).to.deep.equal([
      'fidelity',
      'fidelity-by-mix',
      'helpfulness-by-mix',
      'helpfulness',
      'xcsqa',
      'xquad',
      'xnli',
      'training',
    ]);
    expect(FIGURE_KINDS).to.include('task-heatmap');
  });
});
