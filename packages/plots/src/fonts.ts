// Fonts for rendering figures: find font files on the system, read their character maps and advance widths
// (OpenType `cmap`, `hmtx`), choose fonts that cover the labels, and measure text for Vega's layout. resvg-js is
// given exactly these files, so a label's glyphs come from a font that has them, and a label no font covers is a
// clear error instead of tofu boxes.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PlotError } from './errors.js';

/** One face of a font file (a `.ttc` collection holds several). */
export interface FontFace {
  file: string;
  /** Face index inside a collection; 0 for single fonts. */
  index: number;
  /** Family name (typographic family where the font has one), e.g. `Noto Sans CJK SC`. */
  family: string;
  /** OS/2 weight class: 400 regular, 700 bold. */
  weight: number;
  italic: boolean;
  unitsPerEm: number;
  /** Glyph id of a code point; 0 (`.notdef`) where the font has none. */
  glyph(cp: number): number;
  has(cp: number): boolean;
  /** Advance width of a glyph in font units. */
  advance(glyph: number): number;
}

// ---------------------------------------------------------------------------------------------------------------
// OpenType parsing (only what is needed: table directory, head, hhea, hmtx, cmap, name, OS/2)

class FileReader {
  private readonly fd: number;
  readonly size: number;
  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
    this.size = statSync(file).size;
  }
  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`read of ${length} bytes at ${offset} is outside the file (${this.size} bytes)`);
    }
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf;
  }
  close(): void {
    closeSync(this.fd);
  }
}

interface TableRecord {
  offset: number;
  length: number;
}

function tableDirectory(r: FileReader, at: number): Map<string, TableRecord> {
  const head = r.read(at, 12);
  const version = head.readUInt32BE(0);
  if (version !== 0x00010000 && version !== 0x4f54544f /* OTTO */ && version !== 0x74727565 /* true */) {
    throw new Error('not a TrueType/OpenType font');
  }
  const numTables = head.readUInt16BE(4);
  const dir = r.read(at + 12, numTables * 16);
  const tables = new Map<string, TableRecord>();
  for (let i = 0; i < numTables; i++) {
    tables.set(dir.toString('latin1', i * 16, i * 16 + 4), {
      offset: dir.readUInt32BE(i * 16 + 8),
      length: dir.readUInt32BE(i * 16 + 12),
    });
  }
  return tables;
}

function table(r: FileReader, tables: Map<string, TableRecord>, tag: string, required = true): Buffer | null {
  const t = tables.get(tag);
  if (!t) {
    if (required) throw new Error(`no '${tag}' table`);
    return null;
  }
  return r.read(t.offset, Math.min(t.length, r.size - t.offset));
}

type CmapLookup = (cp: number) => number;

/** A `cmap` subtable of format 4 (BMP segments) or 12 (groups); the best Unicode one the font has. */
function parseCmap(cmap: Buffer): CmapLookup {
  const n = cmap.readUInt16BE(2);
  const subtables: { platform: number; encoding: number; offset: number; format: number }[] = [];
  for (let i = 0; i < n; i++) {
    const platform = cmap.readUInt16BE(4 + i * 8);
    const encoding = cmap.readUInt16BE(6 + i * 8);
    const offset = cmap.readUInt32BE(8 + i * 8);
    if (offset + 2 > cmap.length) continue;
    subtables.push({ platform, encoding, offset, format: cmap.readUInt16BE(offset) });
  }
  const rank = (s: (typeof subtables)[number]) => {
    const unicode = s.platform === 0 || (s.platform === 3 && (s.encoding === 1 || s.encoding === 10));
    if (!unicode) return -1;
    if (s.format === 12) return 2;
    if (s.format === 4) return 1;
    return -1;
  };
  const best = subtables.filter((s) => rank(s) >= 0).sort((a, b) => rank(b) - rank(a))[0];
  if (!best) throw new Error('no Unicode cmap subtable of format 4 or 12');
  const o = best.offset;
  if (best.format === 12) {
    const groups = cmap.readUInt32BE(o + 12);
    const starts = new Uint32Array(groups);
    const ends = new Uint32Array(groups);
    const glyphs = new Uint32Array(groups);
    for (let i = 0; i < groups; i++) {
      const g = o + 16 + i * 12;
      starts[i] = cmap.readUInt32BE(g);
      ends[i] = cmap.readUInt32BE(g + 4);
      glyphs[i] = cmap.readUInt32BE(g + 8);
    }
    return (cp) => {
      let lo = 0;
      let hi = groups - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (cp < starts[mid]) hi = mid - 1;
        else if (cp > ends[mid]) lo = mid + 1;
        else return glyphs[mid] + (cp - starts[mid]);
      }
      return 0;
    };
  }
  const segCount = cmap.readUInt16BE(o + 6) / 2;
  const endAt = o + 14;
  const startAt = endAt + segCount * 2 + 2;
  const deltaAt = startAt + segCount * 2;
  const rangeAt = deltaAt + segCount * 2;
  return (cp) => {
    if (cp > 0xffff) return 0;
    let lo = 0;
    let hi = segCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const end = cmap.readUInt16BE(endAt + mid * 2);
      const start = cmap.readUInt16BE(startAt + mid * 2);
      if (cp > end) lo = mid + 1;
      else if (cp < start) hi = mid - 1;
      else {
        const delta = cmap.readInt16BE(deltaAt + mid * 2);
        const rangeOffset = cmap.readUInt16BE(rangeAt + mid * 2);
        if (rangeOffset === 0) return (cp + delta) & 0xffff;
        const at = rangeAt + mid * 2 + rangeOffset + (cp - start) * 2;
        if (at + 2 > cmap.length) return 0;
        const g = cmap.readUInt16BE(at);
        return g === 0 ? 0 : (g + delta) & 0xffff;
      }
    }
    return 0;
  };
}

function decodeName(buf: Buffer, platform: number): string {
  if (platform === 0 || platform === 3) {
    let s = '';
    for (let i = 0; i + 1 < buf.length; i += 2) s += String.fromCharCode(buf.readUInt16BE(i));
    return s;
  }
  return buf.toString('latin1');
}

/** The family name: typographic family (nameID 16) else family (1), English (Windows) records preferred. */
function parseFamily(name: Buffer): string | null {
  const count = name.readUInt16BE(2);
  const strings = name.readUInt16BE(4);
  let best: { score: number; text: string } | null = null;
  for (let i = 0; i < count; i++) {
    const rec = 6 + i * 12;
    const platform = name.readUInt16BE(rec);
    const language = name.readUInt16BE(rec + 4);
    const nameId = name.readUInt16BE(rec + 6);
    const length = name.readUInt16BE(rec + 8);
    const offset = name.readUInt16BE(rec + 10);
    if (nameId !== 1 && nameId !== 16) continue;
    if (strings + offset + length > name.length) continue;
    const text = decodeName(name.subarray(strings + offset, strings + offset + length), platform);
    const score =
      (nameId === 16 ? 4 : 0) + (platform === 3 ? 2 : platform === 0 ? 1 : 0) + (language === 0x409 ? 1 : 0);
    if (!best || score > best.score) best = { score, text };
  }
  return best?.text ?? null;
}

function parseFace(r: FileReader, file: string, index: number, at: number): FontFace {
  const tables = tableDirectory(r, at);
  const head = table(r, tables, 'head')!;
  const hhea = table(r, tables, 'hhea')!;
  const hmtx = table(r, tables, 'hmtx')!;
  const cmap = table(r, tables, 'cmap')!;
  const name = table(r, tables, 'name', false);
  const os2 = table(r, tables, 'OS/2', false);
  const unitsPerEm = head.readUInt16BE(18) || 1000;
  const macStyle = head.readUInt16BE(44);
  const numberOfHMetrics = hhea.readUInt16BE(34);
  const lookup = parseCmap(cmap);
  const weight = os2 && os2.length >= 6 ? os2.readUInt16BE(4) : macStyle & 1 ? 700 : 400;
  const italic = os2 && os2.length >= 64 ? (os2.readUInt16BE(62) & 1) !== 0 : (macStyle & 2) !== 0;
  const family = (name && parseFamily(name)) || path.basename(file).replace(/\.[^.]+$/, '');
  const lastAdvance = numberOfHMetrics > 0 ? hmtx.readUInt16BE((numberOfHMetrics - 1) * 4) : unitsPerEm / 2;
  return {
    file,
    index,
    family,
    weight,
    italic,
    unitsPerEm,
    glyph: lookup,
    has: (cp) => lookup(cp) !== 0,
    advance: (g) =>
      g < numberOfHMetrics && g * 4 + 2 <= hmtx.length ? hmtx.readUInt16BE(g * 4) : lastAdvance,
  };
}

const faceCache = new Map<string, FontFace[]>();

/**
 * Reads the faces of a font file (`.ttf`, `.otf`, or every face of a `.ttc`/`.otc` collection). Results are
 * cached per path. Throws `PlotError` `PLOT_BAD_FONT` for files that are not fonts.
 */
export function readFontFaces(file: string): FontFace[] {
  const key = path.resolve(file);
  const cached = faceCache.get(key);
  if (cached) return cached;
  let r: FileReader;
  try {
    r = new FileReader(key);
  } catch (e) {
    throw new PlotError('PLOT_BAD_FONT', `font ${file}: cannot open: ${(e as Error).message}`);
  }
  try {
    const tag = r.read(0, 12);
    const faces: FontFace[] = [];
    if (tag.toString('latin1', 0, 4) === 'ttcf') {
      const n = tag.readUInt32BE(8);
      const offsets = r.read(12, n * 4);
      for (let i = 0; i < n; i++) faces.push(parseFace(r, key, i, offsets.readUInt32BE(i * 4)));
    } else {
      faces.push(parseFace(r, key, 0, 0));
    }
    faceCache.set(key, faces);
    return faces;
  } catch (e) {
    if (e instanceof PlotError) throw e;
    throw new PlotError(
      'PLOT_BAD_FONT',
      `font ${file}: cannot read it as an OpenType font (${(e as Error).message})`,
    );
  } finally {
    r.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Finding fonts

/** Folders searched for fonts (recursively), in order. `POLYGLOT_FONT_DIRS` (path-list) comes first. */
export function systemFontDirs(): string[] {
  const home = os.homedir();
  const env = process.env.POLYGLOT_FONT_DIRS?.split(path.delimiter).filter(Boolean) ?? [];
  const dirs = [
    ...env,
    '/usr/share/fonts',
    '/usr/local/share/fonts',
    path.join(home, '.local/share/fonts'),
    path.join(home, '.fonts'),
    '/Library/Fonts',
    '/System/Library/Fonts',
    path.join(home, 'Library/Fonts'),
  ];
  if (process.env.WINDIR) dirs.push(path.join(process.env.WINDIR, 'Fonts'));
  return [...new Set(dirs)];
}

const FONT_FILE = /\.(ttf|otf|ttc|otc)$/i;
const listCache = new Map<string, string[]>();

/** Font files under the folders (recursively), sorted within each folder; missing folders are skipped. */
export function listFontFiles(dirs: readonly string[]): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    const cached = listCache.get(dir);
    if (cached) {
      out.push(...cached);
      continue;
    }
    const found: string[] = [];
    const walk = (d: string, depth: number) => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const p = path.join(d, e.name);
        if (e.isDirectory() && depth < 8) walk(p, depth + 1);
        else if ((e.isFile() || e.isSymbolicLink()) && FONT_FILE.test(e.name)) found.push(p);
      }
    };
    walk(dir, 0);
    listCache.set(dir, found);
    out.push(...found);
  }
  return [...new Set(out)];
}

/**
 * Preferred font files, by file name, in priority order: Noto Sans for Latin, Greek and Cyrillic (DejaVu and
 * Liberation as fallbacks), Noto Sans Devanagari, then Noto Sans CJK (Han, Kana and Hangul) or Source Han Sans.
 * Debian/Ubuntu: `apt-get install fonts-noto-core fonts-noto-cjk`.
 */
export const PREFERRED_FONT_FILES: readonly string[] = [
  'NotoSans-Regular.ttf',
  'NotoSans-Bold.ttf',
  'NotoSans[wdth,wght].ttf',
  'DejaVuSans.ttf',
  'DejaVuSans-Bold.ttf',
  'LiberationSans-Regular.ttf',
  'LiberationSans-Bold.ttf',
  'NotoSansDevanagari-Regular.ttf',
  'NotoSansDevanagari-Bold.ttf',
  'NotoSansDevanagari[wdth,wght].ttf',
  'NotoSansDevanagariUI-Regular.ttf',
  'Lohit-Devanagari.ttf',
  'NotoSansCJK-Regular.ttc',
  'NotoSansCJK-Bold.ttc',
  'NotoSansCJKsc-Regular.otf',
  'NotoSansCJKkr-Regular.otf',
  'NotoSansCJK-Regular.otc',
  'SourceHanSans-Regular.ttc',
  'SourceHanSansSC-Regular.otf',
  'NotoSansSC-Regular.otf',
  'NotoSansKR-Regular.otf',
  'DroidSansFallbackFull.ttf',
  'wqy-microhei.ttc',
];

/** Sample characters of the scripts figures must render (paper languages and their labels). */
export const SCRIPT_SAMPLES: Readonly<Record<string, string>> = {
  Latin: 'Aéß',
  Greek: 'Ωλ',
  Cyrillic: 'Жщ',
  Devanagari: 'कि',
  Hangul: '한국',
  Han: '中文',
  Kana: 'かカ',
};

export interface FontOptions {
  /** Font files to use first, in priority order. */
  fonts?: readonly string[];
  /** Folders to search instead of {@link systemFontDirs}. */
  fontDirs?: readonly string[];
  /**
   * Search the font folders (default true). With false only `fonts` are used (tests, or a pinned set of
   * bundled fonts).
   */
  systemFonts?: boolean;
}

/** Which font draws which characters of a figure. */
export interface FontUse {
  family: string;
  file: string;
  /** Face index inside a collection. */
  index: number;
  /** The distinct characters of the figure's text this face draws. */
  chars: string;
}

/** An ordered set of faces: text is drawn and measured with the first face that has each character. */
export class FontSet {
  private readonly extra: FontFace[] = [];
  private readonly cache = new Map<number, FontFace | null>();
  constructor(
    /** Faces in priority order. */
    readonly faces: readonly FontFace[],
    private readonly fallbackFiles: readonly string[],
  ) {}

  /** All faces, the preferred first then those found by the fallback scan. */
  get allFaces(): FontFace[] {
    return [...this.faces, ...this.extra];
  }

  /** CSS font-family list for the figures: the preferred families, then `sans-serif`. */
  get cssFamily(): string {
    // One family per font file (a collection's first, e.g. Noto Sans CJK SC), in priority order.
    const seen = new Set<string>();
    const families: string[] = [];
    for (const f of this.allFaces) {
      if (seen.has(f.file)) continue;
      seen.add(f.file);
      if (!families.includes(f.family)) families.push(f.family);
    }
    return [...families.map((f) => (/^[\w-]+$/.test(f) ? f : `"${f}"`)), 'sans-serif'].join(', ');
  }

  /** The family Latin text falls back to (the first face's). */
  get defaultFamily(): string {
    return this.faces[0]?.family ?? 'sans-serif';
  }

  /**
   * The face that draws a code point: the first preferred face with the glyph (a bold one for bold text where
   * the family has it); else the first face of the other font files that has it (read on demand); else null.
   */
  faceFor(cp: number, bold = false): FontFace | null {
    const key = bold ? -cp - 1 : cp;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const pick = (faces: readonly FontFace[]) => {
      const first = faces.find((f) => f.has(cp));
      if (!first) return null;
      const styled = faces.find((f) => f.family === first.family && f.weight >= 600 === bold && f.has(cp));
      return styled ?? first;
    };
    let found = pick(this.faces) ?? pick(this.extra);
    if (!found) {
      // The fallback scan: other font files on the system, in folder order, read lazily.
      for (const file of this.fallbackFiles) {
        if (this.faces.some((f) => f.file === file) || this.extra.some((f) => f.file === file)) continue;
        let faces: FontFace[];
        try {
          faces = readFontFaces(file);
        } catch {
          continue;
        }
        const hit = faces.find((f) => f.has(cp) && !f.italic);
        if (hit) {
          this.extra.push(hit);
          found = hit;
          break;
        }
      }
    }
    this.cache.set(key, found);
    return found;
  }

  /** Width of a text in pixels at a font size (sum of advance widths; no kerning or shaping). */
  measure(text: string, size: number, bold = false): number {
    let units = 0;
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      const face = this.faceFor(cp, bold) ?? this.faces[0];
      if (!face) {
        units += 0.6 * size;
        continue;
      }
      units += (face.advance(face.glyph(cp)) / face.unitsPerEm) * size;
    }
    return units;
  }

  /**
   * Which faces draw the characters of `text`, and which characters no font has. Whitespace, controls and
   * invisible format characters (ZWJ, ZWNJ, variation selectors) need no glyph.
   */
  coverage(text: string): { uses: FontUse[]; missing: string[] } {
    const uses = new Map<FontFace, string[]>();
    const missing: string[] = [];
    for (const ch of new Set(text)) {
      if (/[\s\p{Cc}\p{Cf}\p{M}]/u.test(ch)) continue; // variation selectors are marks too
      const face = this.faceFor(ch.codePointAt(0)!);
      if (!face) missing.push(ch);
      else uses.set(face, [...(uses.get(face) ?? []), ch]);
    }
    // Combining marks are drawn with their base's face; check that one has them.
    for (const ch of new Set(text)) {
      if (!/\p{M}/u.test(ch)) continue;
      const cp = ch.codePointAt(0)!;
      const face = [...uses.keys()].find((f) => f.has(cp)) ?? this.faceFor(cp);
      if (!face) missing.push(ch);
      else uses.set(face, [...(uses.get(face) ?? []), ch]);
    }
    return {
      uses: [...uses].map(([f, chars]) => ({
        family: f.family,
        file: f.file,
        index: f.index,
        chars: chars.join(''),
      })),
      missing,
    };
  }

  /** Font files resvg needs for text: the first face's file plus those drawing `uses`. */
  filesFor(uses: readonly FontUse[]): string[] {
    const files = new Set<string>();
    const first = this.faces[0];
    if (first) {
      files.add(first.file);
      for (const f of this.faces) if (f.family === first.family) files.add(f.file);
    }
    for (const u of uses) {
      files.add(u.file);
      // the bold face of the same family, where it is one of the preferred faces
      for (const f of this.faces) if (f.family === u.family) files.add(f.file);
    }
    return [...files];
  }
}

const setCache = new Map<string, FontSet>();

/**
 * Resolves the fonts figures use: `options.fonts` first, then the preferred files ({@link PREFERRED_FONT_FILES})
 * found in the font folders; characters none of them has are looked up in the folders' other fonts. Throws
 * `PlotError` `PLOT_NO_FONTS` when no font is found at all.
 */
export function resolveFonts(options: FontOptions = {}): FontSet {
  const key = JSON.stringify([options.fonts ?? [], options.fontDirs ?? null, options.systemFonts ?? true]);
  const cached = setCache.get(key);
  if (cached) return cached;
  const faces: FontFace[] = [];
  for (const f of options.fonts ?? []) faces.push(...readFontFaces(f).filter((x) => !x.italic));
  let fallback: string[] = [];
  if (options.systemFonts !== false) {
    const all = listFontFiles(options.fontDirs ?? systemFontDirs());
    const byName = new Map<string, string>();
    for (const f of all) if (!byName.has(path.basename(f))) byName.set(path.basename(f), f);
    for (const name of PREFERRED_FONT_FILES) {
      const file = byName.get(name);
      if (!file || faces.some((x) => x.file === file)) continue;
      try {
        // Collections (Noto Sans CJK): proportional faces only, the Simplified Chinese one first (for zh).
        const inFile = readFontFaces(file).filter((x) => !x.italic && !/\bMono\b/.test(x.family));
        faces.push(
          ...inFile.filter((x) => /\bSC$/.test(x.family)),
          ...inFile.filter((x) => !/\bSC$/.test(x.family)),
        );
      } catch {
        // an unreadable preferred font is skipped; coverage checks report what is then missing
      }
    }
    // Fallbacks: sans-serif regular faces first, then the rest.
    const rank = (f: string) => {
      const b = path.basename(f);
      const kind = /serif|mono|emoji|color/i.test(b) ? 4 : /sans/i.test(b) ? 0 : 2;
      return kind + (/bold|italic|black|light|thin/i.test(b) ? 1 : 0);
    };
    fallback = all.filter((f) => !faces.some((x) => x.file === f)).sort((a, b) => rank(a) - rank(b));
  }
  if (faces.length === 0) {
    throw new PlotError(
      'PLOT_NO_FONTS',
      `no fonts found${options.systemFonts === false ? ' (system fonts are off and no fonts were given)' : ` in ${(options.fontDirs ?? systemFontDirs()).join(', ')}`}; install some (Debian/Ubuntu: apt-get install fonts-noto-core fonts-noto-cjk), set POLYGLOT_FONT_DIRS, or pass font files`,
    );
  }
  // Put the Latin-covering regular face first: it is the default family.
  const latin = faces.findIndex((f) => f.has(0x41) && f.weight < 600);
  if (latin > 0) faces.unshift(...faces.splice(latin, 1));
  const set = new FontSet(faces, fallback);
  setCache.set(key, set);
  return set;
}

export interface ScriptCoverage {
  script: string;
  sample: string;
  /** The face drawing the sample, or null where no font has it. */
  family: string | null;
  file: string | null;
}

/** Which font draws each script figures need (`polyglot plot fonts`). */
export function fontCoverage(options: FontOptions = {}): ScriptCoverage[] {
  const set = resolveFonts(options);
  return Object.entries(SCRIPT_SAMPLES).map(([script, sample]) => {
    const faces = [...sample].map((c) => set.faceFor(c.codePointAt(0)!));
    const ok = faces.every((f) => f !== null);
    return {
      script,
      sample,
      family: ok ? faces[0]!.family : null,
      file: ok ? faces[0]!.file : null,
    };
  });
}

/** `U+0915 'क'` for messages. */
export function describeChars(chars: readonly string[]): string {
  return chars
    .map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} '${c}'`)
    .join(', ');
}
