// Small hand-written results in the runs folder layout (README: "The runs folder"), and a PNG decoder for pixel
// checks.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';

export const SEEDS = [0, 42, 723];
export const LANGS = ['en', 'de', 'bg', 'el', 'hi', 'ko', 'zh'];
/** Fidelity per mix and language (seed 42; seeds 0 and 723 are ±0.02), loosely after the paper. */
export const FIDELITY: Record<string, number[]> = {
  Mono: [0.938, 0.406, 0.232, 0.3, 0.25, 0.2, 0.35],
  'Multi-2': [0.935, 0.873, 0.817, 0.75, 0.7, 0.72, 0.8],
  'Multi-3': [0.94, 0.9, 0.86, 0.82, 0.78, 0.8, 0.86],
  'Multi-Guanaco': [0.941, 0.947, 0.948, 0.93, 0.9, 0.92, 0.94],
};

export const runName = (lang: string, seed: number) =>
  `alpaca_eval_instructions_${lang}-none-guanaco_prompt-s${seed}-k50-p0.9-t0.8-b8`;

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

export interface FixtureOptions {
  /** Leave out parts. */
  judge?: boolean;
  tasks?: boolean;
  training?: boolean;
  meta?: boolean;
}

/** Writes a complete small experiment: fidelity, judge outputs, task results, training logs and run.json. */
export function writeRuns(dir: string, options: FixtureOptions = {}): void {
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  for (const [model, values] of Object.entries(FIDELITY)) {
    LANGS.forEach((lang, i) => {
      SEEDS.forEach((seed, j) => {
        const v = clamp(values[i] + (j - 1) * 0.02);
        const file = path.join(dir, model, `${runName(lang, seed)}.jsonl.eval`);
        write(
          file,
          `lang_match,tgt_lang,ppl,ppl_model,n,file\n${v.toFixed(3)},${v.toFixed(3)},,,805,"runs/${model}/${runName(lang, seed)}.jsonl"\n`,
        );
      });
      if (options.judge !== false) {
        for (const seed of [0, 42]) {
          // five judged items; the score tracks fidelity; one unparseable judgement in Mono/de
          const base = 1 + 4 * values[i];
          const lines = [0, 1, 2, 3, 4].map((k) => {
            const score =
              model === 'Mono' && lang === 'de' && k === 4 ? null : Math.round(base + (k - 2) * 0.5);
            return JSON.stringify({
              instruction: 'x',
              system: 'y',
              eval_reasoning: 'ok',
              eval_score: score === null ? null : Math.min(6, Math.max(1, score)),
              eval_meta: {
                model: 'gpt-3.5-turbo-1106',
                prompt_tokens: 100,
                completion_tokens: 20,
                cost: 0.0002,
              },
            });
          });
          write(
            path.join(dir, model, `${runName(lang, seed)}-l300-ds42-as42-source-system.jsonl`),
            `${lines.join('\n')}\n`,
          );
        }
      }
    });
    if (options.tasks !== false) {
      const k = { Mono: 0, 'Multi-2': 1, 'Multi-3': 2, 'Multi-Guanaco': 3 }[model]!;
      const results: Record<string, Record<string, number | string>> = {};
      for (const p of ['en', 'de', 'zh']) {
        for (const d of ['en', 'de', 'zh']) {
          results[`xcsqa_dev_${p}_${d}`] = {
            alias: `xcsqa ${p} ${d}`,
            'acc,none': 0.3 + 0.05 * k + (p === d ? 0.1 : 0) - (d === 'zh' ? 0.05 : 0),
            'acc_stderr,none': 0.014,
          };
          results[`xquad_dev_${p}_${d}`] = {
            'contains,none': 0.4 + 0.06 * k + (p === d ? 0.08 : 0),
            'contains_stderr,none': 'N/A',
          };
        }
      }
      ['bg', 'de', 'el', 'en', 'es', 'fr', 'hi', 'ru', 'zh'].forEach((l, i) => {
        results[`xnli_${l}`] = {
          alias: ` - xnli_${l}`,
          'acc,none': 0.42 + 0.002 * k + (l === 'en' ? 0.1 : 0) - 0.004 * i,
          'acc_stderr,none': 0.0099,
        };
      });
      write(
        path.join(dir, model, 'tasks', 'results.json'),
        JSON.stringify(
          {
            results,
            config: {
              model: 'polyglot',
              model_args: `pretrained=runs/${model}/merged`,
              batch_size: 8,
              backend: 'wasm',
            },
            versions: { xnli_de: 1.0, xcsqa_dev_en_en: 1 },
            date: 1718000000,
          },
          null,
          2,
        ),
      );
    }
    if (options.training !== false && (model === 'Mono' || model === 'Multi-2')) {
      const lines: string[] = [JSON.stringify({ event: 'start', model: 'tiny-llama', backend: 'wasm' })];
      for (let step = 1; step <= 60; step++) {
        const loss = 2.5 * Math.exp(-step / 25) + 0.9 + (model === 'Mono' ? 0.05 : 0) + 0.03 * Math.sin(step);
        lines.push(
          JSON.stringify({ step, loss, grad_norm: 0.5, lr: 1e-5, tokens: step * 4096, secs: step * 1.5 }),
        );
        if (step % 15 === 0) lines.push(JSON.stringify({ step, eval_loss: loss + 0.1 }));
      }
      write(path.join(dir, model, 'train-log.jsonl'), `${lines.join('\n')}\n`);
    }
  }
  if (options.meta !== false) {
    write(
      path.join(dir, 'run.json'),
      JSON.stringify(
        {
          title: 'Llama-2 7B: how much multilinguality?',
          base_model: 'meta-llama/Llama-2-7b-hf',
          models: {
            Mono: { adapter: 'runs/Mono/adapter', languages: ['en'] },
            'Multi-2': { adapter: 'runs/Multi-2/adapter', languages: ['en', 'es'] },
            'Multi-Guanaco': { n_languages: 30, adapter: 'runs/Multi-Guanaco/adapter' },
          },
          sampling: { temperature: 0.8, top_p: 0.9, top_k: 50, frequency_penalty: 0.2, max_new_tokens: 1024 },
          seeds: SEEDS,
          backend: 'wasm',
          versions: { '@polyglot/cli': '0.1.0' },
        },
        null,
        2,
      ),
    );
  }
}

export interface Png {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel. */
  data: Uint8Array;
}

/** Decodes an 8-bit RGBA or RGB, non-interlaced PNG (what resvg writes). */
export function decodePng(buf: Uint8Array): Png {
  const b = Buffer.from(buf);
  if (b.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    const type = b.toString('latin1', off + 4, off + 8);
    const data = b.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced PNGs');
      colorType = data[9];
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  if (!channels) throw new Error(`unsupported PNG colour type ${colorType}`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  const prev = new Uint8Array(stride);
  const cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? cur[x - channels] : 0;
      const up = prev[x];
      const c = x >= channels ? prev[x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += up;
      else if (filter === 3) v += (a + up) >> 1;
      else if (filter === 4) {
        const p = a + up - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
      }
      cur[x] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      out[o] = cur[x * channels];
      out[o + 1] = cur[x * channels + 1];
      out[o + 2] = cur[x * channels + 2];
      out[o + 3] = channels === 4 ? cur[x * channels + 3] : 255;
    }
    prev.set(cur);
  }
  return { width, height, data: out };
}

/** Share of pixels that are not (near) white, and the number of distinct colours (quantised). */
export function inkStats(png: Png, region?: { x0: number; y0: number; x1: number; y1: number }) {
  const { x0 = 0, y0 = 0, x1 = png.width, y1 = png.height } = region ?? {};
  let ink = 0;
  const colours = new Set<number>();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * png.width + x) * 4;
      const [r, g, b] = [png.data[o], png.data[o + 1], png.data[o + 2]];
      if (r < 235 || g < 235 || b < 235) ink++;
      colours.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
    }
  }
  return { ink: ink / Math.max(1, (x1 - x0) * (y1 - y0)), inkPixels: ink, colours: colours.size };
}

/** Whether the image has pixels close to a colour (`#4c78a8`). */
export function hasColour(png: Png, hex: string, tolerance = 12, minPixels = 20): boolean {
  const want = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let o = 0; o < png.data.length; o += 4) {
    if (
      Math.abs(png.data[o] - want[0]) <= tolerance &&
      Math.abs(png.data[o + 1] - want[1]) <= tolerance &&
      Math.abs(png.data[o + 2] - want[2]) <= tolerance &&
      ++n >= minPixels
    ) {
      return true;
    }
  }
  return false;
}

/** The data colours an SVG uses (fills and strokes, greys left out), most used first, as `#rrggbb`. */
export function svgColours(svg: string): string[] {
  const counts = new Map<string, number>();
  for (const m of svg.matchAll(/(?:fill|stroke)="(#[0-9a-f]{6}|rgb\(\d+, ?\d+, ?\d+\))"/gi)) {
    let hex = m[1].toLowerCase();
    if (hex.startsWith('rgb')) {
      hex = `#${hex
        .slice(4, -1)
        .split(',')
        .map((x) => Number(x).toString(16).padStart(2, '0'))
        .join('')}`;
    }
    const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
    if (Math.max(r, g, b) - Math.min(r, g, b) < 16) continue; // grey
    counts.set(hex, (counts.get(hex) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([c]) => c);
}
