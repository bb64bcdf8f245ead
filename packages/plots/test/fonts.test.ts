import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  fontCoverage,
  PlotError,
  readFontFaces,
  renderSpec,
  resolveFonts,
  SCRIPT_SAMPLES,
  svgTexts,
} from '../src/index.js';
import { decodePng, inkStats } from './fixtures.js';

/** fontconfig's answer: the font files that have a code point (null without fc-list). */
function fcFilesWith(cp: number): Set<string> | null {
  try {
    const out = execFileSync('fc-list', [`:charset=${cp.toString(16)}`, 'file'], { encoding: 'utf8' });
    return new Set(
      out
        .split('\n')
        .map((l) => l.replace(/:\s*$/, '').trim())
        .filter(Boolean),
    );
  } catch {
    return null;
  }
}

const textSpec = (text: string) => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  data: { values: [{ t: text }] },
  mark: { type: 'text', fontSize: 32 },
  encoding: { text: { field: 't' } },
  width: 520,
  height: 60,
});

describe('fonts', function () {
  this.timeout(60_000);

  it('finds fonts for Latin, Greek, Cyrillic, Devanagari, Hangul and Han', () => {
    const cov = fontCoverage();
    expect(cov.map((c) => c.script)).to.deep.equal(Object.keys(SCRIPT_SAMPLES));
    const by = Object.fromEntries(cov.map((c) => [c.script, c.family]));
    expect(by.Latin).to.equal('Noto Sans');
    expect(by.Greek).to.equal('Noto Sans');
    expect(by.Cyrillic).to.equal('Noto Sans');
    expect(by.Devanagari).to.equal('Noto Sans Devanagari');
    expect(by.Hangul).to.equal('Noto Sans CJK SC');
    expect(by.Han).to.equal('Noto Sans CJK SC');
    const set = resolveFonts();
    expect(set.defaultFamily).to.equal('Noto Sans');
    expect(set.cssFamily).to.match(
      /^"Noto Sans", .*"Noto Sans Devanagari", .*"Noto Sans CJK SC".*, sans-serif$/,
    );
  });

  it('reads character maps as fontconfig does (cmap formats 4 and 12, collections)', function () {
    const samples = [0x41, 0xe9, 0x3a9, 0x416, 0x915, 0x94d, 0xd55c, 0x4e2d, 0x3042, 0x1f600];
    const fc = samples.map((cp) => fcFilesWith(cp));
    if (fc.some((s) => s === null)) {
      const reason = 'skipped: fc-list (fontconfig) is not installed';
      console.log(`      ${reason}`);
      (this.test as unknown as { polyglotSkipReason: string }).polyglotSkipReason = reason;
      this.skip();
    }
    const files = [...new Set(resolveFonts().faces.map((f) => f.file))];
    expect(files.some((f) => f.endsWith('.ttc'))).to.equal(true);
    for (const file of files) {
      const face = readFontFaces(file)[0];
      samples.forEach((cp, i) => {
        expect(face.has(cp), `${path.basename(file)} U+${cp.toString(16)}`).to.equal(fc[i]!.has(file));
      });
    }
  });

  it('reads names, weights and advance widths', () => {
    const set = resolveFonts();
    const regular = set.faces.find((f) => f.family === 'Noto Sans' && f.weight === 400)!;
    const bold = set.faces.find((f) => f.family === 'Noto Sans' && f.weight === 700)!;
    expect(regular.unitsPerEm).to.equal(1000);
    expect(bold).to.not.equal(undefined);
    // Noto Sans: 'M' is wider than 'i'; bold text is wider; a Han character is one em
    expect(set.measure('M', 10)).to.be.greaterThan(set.measure('i', 10) * 2);
    expect(set.measure('Multi-Guanaco', 10, true)).to.be.greaterThan(set.measure('Multi-Guanaco', 10));
    expect(set.measure('Multi-Guanaco', 10)).to.be.within(55, 85);
    expect(set.measure('中文', 10)).to.be.closeTo(20, 0.01);
    const cjk = readFontFaces(set.faces.find((f) => f.family === 'Noto Sans CJK SC')!.file);
    expect(cjk.map((f) => f.family)).to.include.members([
      'Noto Sans CJK JP',
      'Noto Sans CJK KR',
      'Noto Sans CJK SC',
    ]);
  });

  it('a label mixing Latin, Devanagari, Hangul, Han and Greek: each run drawn by the font that has it', async () => {
    const label = 'Hi हिन्दी 한국어 中文 Ωλ';
    const r = await renderSpec(textSpec(label), { scale: 1 });
    expect(svgTexts(r.svg)).to.include(label);
    const family = (ch: string) => r.fonts.find((u) => u.chars.includes(ch))?.family;
    expect([family('H'), family('ह'), family('ि'), family('한'), family('中'), family('Ω')]).to.deep.equal([
      'Noto Sans',
      'Noto Sans Devanagari',
      'Noto Sans Devanagari',
      'Noto Sans CJK SC',
      'Noto Sans CJK SC',
      'Noto Sans',
    ]);
    // the SVG names the chosen face for each run (resvg's own fallback would take CJK JP, or give up)
    expect(r.svg).to.match(
      /<tspan x="[-\d.]+" font-family="&quot;Noto Sans Devanagari&quot;[^>]*>हिन्दी <\/tspan>/,
    );
    expect(r.svg).to.match(
      /<tspan x="[-\d.]+" font-family="&quot;Noto Sans CJK SC&quot;[^>]*>한국어 中文 <\/tspan>/,
    );
    // rendered with the glyphs, not tofu: the same label with only a Latin font gives another picture
    const tofu = await renderSpec(textSpec(label), {
      scale: 1,
      fonts: [resolveFonts().faces[0].file],
      systemFonts: false,
      missingGlyphs: 'warn',
    });
    const good = decodePng(r.png!);
    const bad = decodePng(tofu.png!);
    expect(inkStats(good).inkPixels).to.be.greaterThan(800);
    expect(Buffer.compare(r.png!, tofu.png!)).to.not.equal(0);
    expect(Math.abs(inkStats(good).inkPixels - inkStats(bad).inkPixels)).to.be.greaterThan(200);
    expect(tofu.warnings.join('\n')).to.match(/no font has U\+0939 'ह'.*U\+D55C '한'.*U\+4E2D '中'/);
  });

  it('a label no font covers is an error (or a warning), never silent tofu', async () => {
    const latinOnly = { fonts: [resolveFonts().faces[0].file], systemFonts: false };
    let err: PlotError | undefined;
    try {
      await renderSpec(textSpec('Korean: 한국어'), latinOnly);
    } catch (e) {
      err = e as PlotError;
    }
    expect(err).to.be.instanceOf(PlotError);
    expect(err!.code).to.equal('PLOT_MISSING_GLYPHS');
    expect(err!.message).to.include("U+D55C '한'");
    expect(err!.message).to.include('apt-get install fonts-noto-core fonts-noto-cjk');
    const warned = await renderSpec(textSpec('Korean: 한국어'), {
      ...latinOnly,
      missingGlyphs: 'warn',
      png: false,
    });
    expect(warned.warnings.some((w) => w.includes("U+AD6D '국'"))).to.equal(true);
    expect(warned.png).to.equal(null);
  });

  it('no fonts at all, or a file that is not a font: clear errors', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-fonts-'));
    try {
      const none = (() => {
        try {
          resolveFonts({ fontDirs: [dir] });
        } catch (e) {
          return e as PlotError;
        }
      })();
      expect(none?.code).to.equal('PLOT_NO_FONTS');
      expect(none?.message).to.include(dir);
      const bogus = path.join(dir, 'bogus.ttf');
      writeFileSync(bogus, 'not a font at all');
      expect(() => readFontFaces(bogus)).to.throw(
        PlotError,
        /bogus\.ttf: cannot read it as an OpenType font/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
