// The reference implementation for parity tests: Debian's `fasttext` CLI (0.9.2), installed by CI from
// scripts/system-packages.txt. Tests train small models on text they write and compare predictions.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const FASTTEXT = process.env.POLYGLOT_FASTTEXT_BIN ?? '/usr/bin/fasttext';

/** Skips the test (reason printed; CI counts a skip as a failure) when the fastText CLI is not installed. */
export function requireFasttext(ctx: Mocha.Context): void {
  if (existsSync(FASTTEXT)) return;
  const reason = `skipped: the fastText CLI (${FASTTEXT}) is not installed (apt-get install fasttext; see scripts/system-packages.txt)`;
  console.log(`      ${reason}`);
  if (ctx.test) (ctx.test as unknown as { polyglotSkipReason: string }).polyglotSkipReason = reason;
  ctx.skip();
}

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `polyglot-lid-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Alphabets of five made-up languages, in five scripts. */
export const ALPHABETS: Record<string, string[]> = {
  lat: [...'abcdefghijklmnoprstu'],
  acc: [...'àáâãäåæçèéêëìíîïñòóô'],
  cyr: [...'абвгдежзиклмнопрстуф'],
  grk: [...'αβγδεζηθικλμνξοπρστυ'],
  cjk: [...'的一是不了人我在有他这中大来上国个到说们'],
};

export function randomWord(r: () => number, alphabet: string[], max = 7): string {
  const n = 1 + Math.floor(r() * max);
  let w = '';
  for (let i = 0; i < n; i++) w += alphabet[Math.floor(r() * alphabet.length)];
  return w;
}

/** `__label__<lang> words…` lines for training. */
export function trainingText(seed: number, lines: number): string {
  const r = rng(seed);
  const langs = Object.keys(ALPHABETS);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const lang = langs[Math.floor(r() * langs.length)]!;
    const n = 1 + Math.floor(r() * 12);
    const words = Array.from({ length: n }, () => randomWord(r, ALPHABETS[lang]!));
    out.push(`__label__${lang} ${words.join(' ')}`);
  }
  return `${out.join('\n')}\n`;
}

/** Training text with `labels` labels (for quantized output matrices, which need ≥ 256 rows). */
export function manyLabelText(seed: number, lines: number, labels: number): string {
  const r = rng(seed);
  const letters = [...'abcdefghijklmnopqrstuvwxyz'];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const l = Math.floor(r() * labels);
    const alphabet = letters.slice(l % 20, (l % 20) + 6);
    const n = 1 + Math.floor(r() * 8);
    const words = Array.from({ length: n }, () => `${randomWord(r, alphabet, 5)}${l % 7}`);
    out.push(`__label__L${l} ${words.join(' ')}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * Test input as raw bytes, one line per case: in-language sentences, unknown words, mixed scripts, emoji,
 * empty and whitespace-only lines, every separator fastText knows, invalid UTF-8, labels and `</s>` inside the
 * text, very long lines, and a last line without a newline.
 */
export function testLines(seed: number, count: number): Buffer {
  const r = rng(seed);
  const langs = Object.keys(ALPHABETS);
  const parts: Buffer[] = [];
  const text = (s: string) => parts.push(Buffer.from(s, 'utf8'));
  const sentence = (lang: string, n: number) =>
    Array.from({ length: n }, () => randomWord(r, ALPHABETS[lang]!)).join(' ');
  for (let i = 0; i < count; i++) {
    const lang = langs[i % langs.length]!;
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
        text(`${sentence(lang, 1 + Math.floor(r() * 15))}\n`);
        break;
      case 3: // mixed scripts within a line and within words
        text(
          `${sentence(lang, 4)} ${sentence(langs[(i + 2) % langs.length]!, 4)} ${randomWord(r, ALPHABETS.lat!)}${randomWord(r, ALPHABETS.cyr!)}\n`,
        );
        break;
      case 4: // emoji, ZWJ sequences, skin tones, flags, symbols
        text(`${sentence(lang, 3)} 😀 🎉👍🏽 👩‍👩‍👧‍👦 🇩🇪 ${randomWord(r, ALPHABETS[lang]!)}✨ ∑∞ ${i}\n`);
        break;
      case 5: // separators: tabs, CR, VT, FF, NUL, runs of spaces; leading/trailing blanks
        text(
          `\t ${sentence(lang, 2)}\r${sentence(lang, 2)}\v${sentence(lang, 1)}\f  ${sentence(lang, 2)}\0${sentence(lang, 1)} \r\n`,
        );
        break;
      case 6: // empty, blank and whitespace-only lines
        text(['\n', '   \n', '\t\t\n', '\r\n'][Math.floor(i / 10) % 4]!);
        break;
      case 7: // invalid UTF-8: stray continuation bytes, a cut multibyte sequence, 0xff
        text(sentence(lang, 2));
        parts.push(Buffer.from([0x20, 0x80, 0x81, 0x41, 0xff, 0xfe, 0x20, 0xe4, 0xb8, 0x20, 0xc3, 0x0a]));
        break;
      case 8: // labels and the end-of-line token inside the text, punctuation
        text(
          [
            `${sentence(lang, 3)} __label__${lang} ${sentence(lang, 2)}\n`,
            `__label__zz ${sentence(lang, 3)} (${randomWord(r, ALPHABETS[lang]!)}), «${sentence(lang, 1)}»!\n`,
            `${sentence(lang, 2)} </s> ${sentence(lang, 3)}\n`,
            `${sentence(lang, 2)} </s>\n`,
          ][Math.floor(i / 10) % 4]!,
        );
        break;
      default: // long lines: many words (past 1024 tokens), or one very long word
        text(
          Math.floor(i / 10) % 2 === 0
            ? `${sentence(lang, 1500 + Math.floor(r() * 1000))}\n`
            : `${Array.from({ length: 3000 }, () => ALPHABETS[lang]![Math.floor(r() * 20)]).join('')} ${sentence(lang, 2)}\n`,
        );
    }
  }
  text(`${sentence('lat', 5)} the last line has no newline`);
  return Buffer.concat(parts);
}

/** Trains `name.bin` in `dir` with `fasttext supervised`; returns its path. */
export function train(dir: string, name: string, input: string, args: string[]): string {
  const out = path.join(dir, name);
  execFileSync(
    FASTTEXT,
    ['supervised', '-input', input, '-output', out, '-thread', '1', '-verbose', '0', ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return `${out}.bin`;
}

/** Quantizes `name.bin` to `name.ftz`; returns its path. */
export function quantize(dir: string, name: string, input: string, args: string[]): string {
  const out = path.join(dir, name);
  execFileSync(FASTTEXT, ['quantize', '-input', input, '-output', out, '-verbose', '0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return `${out}.ftz`;
}

export interface RefPrediction {
  labels: string[];
  probs: number[];
}

/** `fasttext predict-prob model file k [threshold]`, parsed: one entry per printed line. */
export function referencePredict(
  model: string,
  file: string,
  k: number,
  threshold?: number,
): RefPrediction[] {
  const args = ['predict-prob', model, file, String(k)];
  if (threshold !== undefined) args.push(String(threshold));
  const r = spawnSync(FASTTEXT, args, { encoding: 'latin1', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`fasttext ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const out = Buffer.from(r.stdout, 'latin1').toString('utf8');
  const lines = out.split('\n');
  lines.pop(); // after the last newline
  return lines.map((line) => {
    const tok = line === '' ? [] : line.split(' ');
    const labels: string[] = [];
    const probs: number[] = [];
    for (let i = 0; i < tok.length; i += 2) {
      labels.push(tok[i]!);
      probs.push(Number(tok[i + 1]));
    }
    return { labels, probs };
  });
}

export function writeBytes(file: string, bytes: Uint8Array | string): string {
  writeFileSync(file, bytes);
  return file;
}
