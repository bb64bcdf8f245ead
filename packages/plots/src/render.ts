// Vega-Lite (or Vega) spec → SVG (Vega, headless, text as <text>) → PNG (resvg-js with the resolved fonts).
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { PlotError } from './errors.js';
import {
  describeChars,
  type FontFace,
  type FontOptions,
  type FontSet,
  type FontUse,
  resolveFonts,
} from './fonts.js';

/** What to do when a label has characters no font has: fail (default) or render anyway and warn. */
export type MissingGlyphs = 'error' | 'warn';

export interface RenderOptions extends FontOptions {
  /** PNG pixels per SVG pixel (default 2, for sharp figures on high-density screens and in print). */
  scale?: number;
  /** Render the PNG too (default true). */
  png?: boolean;
  missingGlyphs?: MissingGlyphs;
}

export interface Rendered {
  /** The spec as rendered (Vega-Lite, with the font family filled in). */
  spec: Record<string, any>;
  svg: string;
  /** PNG bytes, or null when `png: false`. */
  png: Buffer | null;
  /** SVG size in pixels (the PNG is `scale` times larger). */
  width: number;
  height: number;
  /** Which font draws which characters of the figure's text. */
  fonts: FontUse[];
  warnings: string[];
}

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
}

type Metrics = { width: (item: TextItem, text: unknown) => number };

/**
 * Vega measures text to lay out axes and legends. In Node it has no canvas and estimates 0.8 em per character,
 * which is wrong for every real font (too wide for Latin, too narrow for CJK). Measure with the fonts the PNG is
 * drawn with instead (advance widths from `hmtx`), as vl-convert does with its own textMetrics.width.
 */
function installTextMetrics(fonts: FontSet): void {
  const tm = (vega as unknown as { textMetrics: Metrics }).textMetrics;
  tm.width = (item: TextItem, text: unknown) => {
    const size = item.fontSize != null ? +item.fontSize || 0 : 11;
    const s = text == null ? '' : String(text).trim();
    if (size <= 0 || s === '') return 0;
    const w = item.fontWeight;
    const bold = w === 'bold' || w === 'bolder' || (typeof w === 'number' ? w >= 600 : Number(w) >= 600);
    const width = fontRuns(s, fonts, bold).reduce(
      (a, r) => a + runWidth(r.text, r.face, fonts, size, bold),
      0,
    );
    // Vega truncates labels to `limit` pixels; a truncated label is at most that wide.
    return item.limit && item.limit > 0 && width >= item.limit ? item.limit : width;
  };
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
      return Number.isFinite(cp) ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** The text content of every `<text>` element of an SVG (labels, titles, legends), decoded. */
export function svgTexts(svg: string): string[] {
  const out: string[] = [];
  for (const m of svg.matchAll(/<text\b[^>]*>([\s\S]*?)<\/text>/g)) {
    out.push(decodeXml(m[1].replace(/<[^>]+>/g, '')));
  }
  return out;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Scripts whose glyphs change with shaping (conjuncts, reordering, joining): advance sums are too wide. */
const COMPLEX = /[\u0590-\u08ff\u0900-\u0dff\u0e00-\u0eff\u0f00-\u109f\u1780-\u17ff\ua8e0-\ua8ff]/u;
const shapedCache = new Map<string, number>();

/**
 * Width of a run of one font. For complex scripts the run is shaped by resvg with that font alone and its
 * ink extent (plus the right side bearing of a typical glyph) is taken; otherwise advance widths add up.
 */
function runWidth(text: string, face: FontFace | null, fonts: FontSet, size: number, bold: boolean): number {
  if (!text) return 0;
  if (!face || !COMPLEX.test(text)) return fonts.measure(text, size, bold);
  const key = `${face.file}#${face.index}|${size}|${bold}|${text}`;
  const cached = shapedCache.get(key);
  if (cached !== undefined) return cached;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(size * text.length * 2 + 10)}" height="${Math.ceil(size * 3)}"><text x="0" y="${size * 2}" font-size="${size}" font-family="&quot;${escapeXml(face.family)}&quot;"${bold ? ' font-weight="bold"' : ''}>${escapeXml(text)}</text></svg>`;
  let width = fonts.measure(text, size, bold);
  try {
    const box = new Resvg(svg, {
      font: { loadSystemFonts: false, fontFiles: [face.file], defaultFontFamily: face.family },
    }).getBBox();
    if (box && box.width > 0) width = box.x + box.width + size * 0.06;
  } catch {
    // keep the advance sum
  }
  shapedCache.set(key, width);
  return width;
}

interface Run {
  face: FontFace | null;
  text: string;
}

/**
 * Splits a label into runs of one font each: each character goes to the font that {@link FontSet.faceFor}
 * picks (as the coverage check does); blanks, combining marks and non-ASCII punctuation the current run's font
 * has stay in that run.
 */
function fontRuns(text: string, fonts: FontSet, bold: boolean): Run[] {
  const runs: Run[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const last = runs.at(-1);
    if (
      last &&
      (/[\s\p{M}\p{Cf}]/u.test(ch) || (cp >= 0x80 && /\p{P}/u.test(ch) && (last.face?.has(cp) ?? false)))
    ) {
      last.text += ch;
      continue;
    }
    const face = fonts.faceFor(cp, bold);
    if (last && last.face === face) last.text += ch;
    else runs.push({ face, text: ch });
  }
  return runs;
}

/**
 * Gives each label the font chosen here, so that every renderer draws it with that face. resvg's own fallback
 * takes the first face of its database with the glyph (Japanese Han forms for Chinese), garbles or drops
 * Devanagari mixed with Latin, and gives up on labels needing two fallback fonts. So: a label one font draws gets
 * that font first in its `font-family`; a label needing several is split into `<tspan x=…>` chunks of one font
 * each, placed with the fonts' advance widths (text-anchor applied over the whole label).
 */
export function assignFontRuns(svg: string, fonts: FontSet): string {
  const primary = fonts.defaultFamily;
  const quote = (f: string) => `&quot;${escapeXml(f)}&quot;`;
  return svg.replace(/<text\b([^>]*)>([\s\S]*?)<\/text>/g, (whole, attrs: string, content: string) => {
    if (/^[\x00-\x7f]*$/.test(content) || content.includes('<')) {
      if (!content.includes('<')) return whole;
    }
    const text = decodeXml(content.replace(/<[^>]+>/g, ''));
    const weight = /font-weight="([^"]+)"/.exec(attrs)?.[1];
    const bold = weight === 'bold' || Number(weight) >= 600;
    const runs = fontRuns(text, fonts, bold);
    const family = /font-family="([^"]*)"/.exec(attrs)?.[1] ?? quote(primary);
    const withFamily = (a: string, f: FontFace | null) =>
      !f || f.family === primary
        ? a
        : a.replace(/font-family="[^"]*"/, `font-family="${quote(f.family)}, ${family}"`);
    const faces = [...new Set(runs.map((r) => r.face))];
    if (faces.length <= 1) {
      return faces[0] && faces[0].family !== primary
        ? `<text${withFamily(attrs, faces[0])}>${content}</text>`
        : whole;
    }
    if (content.includes('<')) {
      // multi-line labels (tspans of their own): the font of the first non-primary run leads
      const lead = faces.find((f) => f && f.family !== primary) ?? null;
      return `<text${withFamily(attrs, lead)}>${content}</text>`;
    }
    const size = Number(/font-size="([\d.]+)/.exec(attrs)?.[1] ?? 11);
    // Each chunk is placed absolutely: blanks at its ends do not move the next one (renderers differ in how they
    // keep them), they are measured with the first font.
    const pieces = runs.map((r) => {
      const m = /^(\s*)([\s\S]*?)(\s*)$/.exec(r.text)!;
      const blank = (t: string) => fonts.measure(t.replace(/\s/g, ' '), size, bold);
      return {
        face: r.face,
        lead: blank(m[1]),
        text: m[2],
        blanks: m[3],
        trail: blank(m[3]),
        width: runWidth(m[2], r.face, fonts, size, bold),
      };
    });
    const total = pieces.reduce((a, p) => a + p.lead + p.width + p.trail, 0);
    const anchor = /text-anchor="([^"]+)"/.exec(attrs)?.[1] ?? 'start';
    let x =
      (anchor === 'middle' ? -total / 2 : anchor === 'end' ? -total : 0) +
      Number(/\bx="([-\d.]+)"/.exec(attrs)?.[1] ?? 0);
    const chunks: string[] = [];
    for (const p of pieces) {
      x += p.lead;
      if (p.text) {
        const f = p.face && p.face.family !== primary ? `${quote(p.face.family)}, ${family}` : family;
        chunks.push(`<tspan x="${+x.toFixed(2)}" font-family="${f}">${escapeXml(p.text + p.blanks)}</tspan>`);
      }
      x += p.width + p.trail;
    }
    const startAttrs = /text-anchor="/.test(attrs)
      ? attrs.replace(/text-anchor="[^"]+"/, 'text-anchor="start"')
      : attrs;
    return `<text${startAttrs}>${chunks.join('')}</text>`;
  });
}

function isVegaLite(spec: Record<string, any>): boolean {
  const schema = typeof spec.$schema === 'string' ? spec.$schema : '';
  if (schema.includes('vega-lite')) return true;
  if (schema.includes('/vega/')) return false;
  return !('marks' in spec || 'signals' in spec || 'scales' in spec) || 'mark' in spec || 'layer' in spec;
}

/**
 * Renders a Vega-Lite (or Vega) spec to SVG and PNG. Text is laid out with the resolved fonts' metrics, every
 * character of every label is checked against the fonts, and resvg is given exactly the font files that draw
 * them (no system font lookup), so a figure renders the same on any machine with those fonts. Throws
 * `PlotError` `PLOT_MISSING_GLYPHS` when a label has characters no font has (with `missingGlyphs: 'warn'` it
 * warns instead), `PLOT_BAD_SPEC` when Vega rejects the spec.
 */
export async function renderSpec(spec: Record<string, any>, options: RenderOptions = {}): Promise<Rendered> {
  const scale = options.scale ?? 2;
  if (!Number.isFinite(scale) || scale <= 0 || scale > 10) {
    throw new PlotError('PLOT_BAD_OPTION', `scale must be a number in (0, 10], got ${options.scale}`);
  }
  const missingGlyphs = options.missingGlyphs ?? 'error';
  if (missingGlyphs !== 'error' && missingGlyphs !== 'warn') {
    throw new PlotError('PLOT_BAD_OPTION', `missingGlyphs must be error or warn, got '${missingGlyphs}'`);
  }
  const fonts = resolveFonts(options);
  const warnings: string[] = [];
  const vl = isVegaLite(spec);
  const withFont: Record<string, any> = {
    ...spec,
    config: { ...(spec.config ?? {}), font: spec.config?.font ?? fonts.cssFamily },
  };
  const logger = {
    level: (_?: number) => logger,
    error: (...a: unknown[]) => {
      warnings.push(`vega: ${a.map(String).join(' ')}`);
      return logger;
    },
    warn: (...a: unknown[]) => {
      warnings.push(`vega: ${a.map(String).join(' ')}`);
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  let vgSpec: vega.Spec;
  try {
    vgSpec = vl ? compile(withFont as TopLevelSpec, { logger: logger as any }).spec : (withFont as vega.Spec);
  } catch (e) {
    throw new PlotError('PLOT_BAD_SPEC', `Vega-Lite cannot compile the spec: ${(e as Error).message}`, {
      cause: e,
    });
  }
  installTextMetrics(fonts);
  let svg: string;
  try {
    const view = new vega.View(vega.parse(vgSpec), {
      renderer: 'none',
      logger: logger as any,
      // Figures carry their data inline; nothing is fetched.
      loader: vega.loader({ mode: 'file' }) as vega.Loader,
    } as vega.ViewOptions);
    svg = assignFontRuns(await view.toSVG(), fonts);
    view.finalize();
  } catch (e) {
    throw new PlotError('PLOT_BAD_SPEC', `Vega cannot render the spec: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const width = Number(/<svg\b[^>]*\bwidth="([\d.]+)"/.exec(svg)?.[1] ?? 0);
  const height = Number(/<svg\b[^>]*\bheight="([\d.]+)"/.exec(svg)?.[1] ?? 0);

  const { uses, missing } = fonts.coverage(svgTexts(svg).join('\n'));
  if (missing.length) {
    const message = `no font has ${describeChars(missing)} (used in the figure's labels); install fonts that cover them (Debian/Ubuntu: apt-get install fonts-noto-core fonts-noto-cjk), point POLYGLOT_FONT_DIRS at a folder of fonts, or pass font files`;
    if (missingGlyphs === 'error') throw new PlotError('PLOT_MISSING_GLYPHS', message);
    warnings.push(message);
  }
  let png: Buffer | null = null;
  if (options.png !== false) {
    const resvg = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: scale },
      font: {
        loadSystemFonts: false,
        fontFiles: fonts.filesFor(uses),
        defaultFontFamily: fonts.defaultFamily,
        sansSerifFamily: fonts.defaultFamily,
      },
      background: 'white',
    });
    png = resvg.render().asPng();
  }
  return { spec: withFont, svg, png, width, height, fonts: uses, warnings };
}
