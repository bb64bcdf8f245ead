// `polyglot reproduce --preset smoke` end to end, as CI runs it: every stage's files exist and parse, the report's
// figures exist, fidelity is in [0, 1] and is what LID says of the actual generations, a rerun is served from the
// caches, `--from` reruns what it names, and a run SIGKILLed at random points (in training and after) resumes to the
// same outputs as the uninterrupted run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readJsonl } from '@polyglot/data';
import { fidelityOfFile, loadLidModel } from '@polyglot/lid';
import { expect } from 'chai';
import {
  checkNoPartialFiles,
  cli,
  cliBin,
  compareTrees,
  countLines,
  listFiles,
  runWithKills,
} from '../../../tools/crash.js';
import { startJudgeServer } from '../../../tools/judge-server.js';

interface Stage {
  stage: string;
  cached: boolean;
  resumed: boolean;
  secs: number;
}
interface Result {
  out: string;
  preset: string;
  stages: Stage[];
  report: string;
  summary: string;
  models: Record<
    string,
    { fidelity: Record<string, number | null>; fidelityMean: number | null; tasks: Record<string, number> }
  >;
  judged: boolean;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-reproduce-'));
const cache = path.join(tmp, 'cache');
const env = { ...process.env, POLYGLOT_CACHE: cache, OPENAI_API_KEY: '' };

function reproduce(out: string, ...more: string[]) {
  const r = spawnSync(
    process.execPath,
    [cliBin, 'reproduce', '--preset', 'smoke', '--backend', 'wasm', '--out', out, '--json', ...more],
    { encoding: 'utf8', env, maxBuffer: 64 << 20 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function parse(r: { code: number | null; stdout: string; stderr: string }): Result {
  expect(r.code, r.stderr.slice(-3000)).to.equal(0);
  return JSON.parse(r.stdout) as Result;
}

const MODELS = ['base', 'Mono', 'Multi-2', 'Multi-3'];
const MIXES = ['Mono', 'Multi-2', 'Multi-3'];

/**
 * Everything a run writes, with what may differ between two runs of the same settings taken out: the output folder's
 * own path, timings and dates; the report and the state files (timings) are compared through the summaries.
 */
function normalizer(...roots: string[]) {
  return (rel: string, buf: Buffer): Buffer | string => {
    if (/(^|\/)report\//.test(rel) || rel === 'reproduce.json' || rel === 'summary.json') return '';
    if (!/\.(json|jsonl|eval|csv|md)$/.test(rel)) return buf;
    let text = buf.toString('utf8');
    for (const r of roots) text = text.split(r).join('<out>');
    return text.replace(
      /"(secs|trainSecs|tokensPerSec|peakRssMiB|date|total_evaluation_time_seconds|forwardMs|backwardMs|optimizerMs|timings|resumedFrom)"\s*:\s*("[^"]*"|[-0-9.e+]+|null|\{[^}]*\})/g,
      '"$1":0',
    );
  };
}

describe('polyglot reproduce --preset smoke', function () {
  this.timeout(900_000);
  const a = path.join(tmp, 'a');
  let first: Result;

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('runs every stage and writes every stage’s files', () => {
    first = parse(reproduce(a));
    expect(first.stages.map((s) => s.stage)).to.deep.equal([
      'mixes',
      'base',
      'train',
      'merge',
      'generate',
      'fidelity',
      'tasks',
      'judge',
      'report',
    ]);
    expect(first.stages.every((s) => !s.cached)).to.equal(true);
    // mixes
    for (const m of MIXES) {
      const manifest = JSON.parse(readFileSync(path.join(a, 'mixes', `${m}.manifest.json`), 'utf8'));
      expect(manifest.format).to.equal('polyglot-mix/1');
      expect(countLines(path.join(a, 'mixes', `${m}.jsonl`))).to.equal(manifest.total);
    }
    const multi3 = JSON.parse(readFileSync(path.join(a, 'mixes', 'Multi-3.manifest.json'), 'utf8'));
    expect(Object.keys(multi3.counts).sort()).to.deep.equal(['en', 'es', 'ru']);
    // adapters, merged models, training logs
    for (const m of MIXES) {
      const cfg = JSON.parse(readFileSync(path.join(a, 'train', m, 'adapter_config.json'), 'utf8'));
      expect(cfg.peft_type).to.equal('LORA');
      expect(existsSync(path.join(a, 'train', m, 'adapter_model.safetensors'))).to.equal(true);
      expect(JSON.parse(readFileSync(path.join(a, 'models', m, 'config.json'), 'utf8')).model_type).to.equal(
        'llama',
      );
      expect(countLines(path.join(a, 'runs', m, 'train-log.jsonl'))).to.be.greaterThan(0);
    }
    // generations: 4 languages × 3 seeds per model, 3 prompts each, parsed as the paper's run files
    for (const m of MODELS) {
      const gens = readdirSync(path.join(a, 'runs', m)).filter(
        (f) => f.endsWith('.jsonl') && f.startsWith('test_prompts_'),
      );
      expect(gens, m).to.have.length(12);
      for (const g of gens) {
        const lines = readFileSync(path.join(a, 'runs', m, g), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(lines).to.have.length(3);
        for (const l of lines) expect(l).to.include.keys('prompt', 'system', 'source');
        expect(existsSync(path.join(a, 'runs', m, g.replace(/\.jsonl$/, '.eval')))).to.equal(true);
      }
      const results = JSON.parse(
        readFileSync(path.join(a, 'runs', m, 'tasks', 'xnli', 'results.json'), 'utf8'),
      );
      expect(results.results).to.have.property('xnli_en');
    }
    // the report
    for (const f of [
      'index.html',
      'report.md',
      'figures/fidelity-lines.png',
      'figures/fidelity-bars.svg',
      'figures/loss-curves.png',
    ]) {
      expect(existsSync(path.join(a, 'report', f)), f).to.equal(true);
    }
    const png = readFileSync(path.join(a, 'report', 'figures', 'fidelity-lines.png'));
    expect(png.subarray(1, 4).toString('latin1')).to.equal('PNG');
    const html = readFileSync(first.report, 'utf8');
    expect(html).to.include('Multi-3');
    expect(html).to.match(/not scored: no judge configured/);
    expect(first.judged).to.equal(false);
    expect(checkNoPartialFiles(a)).to.deep.equal([]);
  });

  it('reports fidelity in [0, 1], computed from the actual generations', async () => {
    const lid = await loadLidModel('lid176');
    for (const m of MODELS) {
      for (const [lang, v] of Object.entries(first.models[m]!.fidelity)) {
        expect(v, `${m} ${lang}`).to.be.a('number');
        expect(v).to.be.within(0, 1);
      }
      // Recompute one language from the generation files and compare with the summary and the .eval files.
      const dir = path.join(a, 'runs', m);
      const files = readdirSync(dir).filter((f) => /^test_prompts_ru-.*\.jsonl$/.test(f));
      const shares: number[] = [];
      for (const f of files) {
        const res = await fidelityOfFile(path.join(dir, f), lid, { empty: 'fail' });
        const evalRow = readFileSync(path.join(dir, f.replace(/\.jsonl$/, '.eval')), 'utf8')
          .trim()
          .split('\n')[1]!;
        expect(Number(evalRow.split(',')[0])).to.be.closeTo(res.lang_match!, 5e-4);
        // and the responses are really what LID saw: each record's response language is counted once
        let n = 0;
        for await (const _ of readJsonl(path.join(dir, f))) n++;
        expect(res.n).to.equal(n);
        shares.push(res.lang_match!);
      }
      const meanShare = shares.reduce((x, y) => x + y, 0) / shares.length;
      expect(first.models[m]!.fidelity.ru).to.be.closeTo(meanShare, 1e-9);
    }
  });

  it('a rerun is served from the caches; --from reruns that stage and every later one', () => {
    const again = parse(reproduce(a));
    expect(again.stages.filter((s) => !s.cached).map((s) => s.stage)).to.deep.equal([]);
    expect(again.stages.every((s) => s.secs === 0)).to.equal(true);
    expect(again.models).to.deep.equal(first.models);
    const fromFid = parse(reproduce(a, '--from', 'fidelity'));
    expect(fromFid.stages.filter((s) => !s.cached).map((s) => s.stage)).to.deep.equal([
      'fidelity',
      'tasks',
      'judge',
      'report',
    ]);
    expect(fromFid.models).to.deep.equal(first.models);
  });

  it('scores helpfulness with a configured judge, and the key appears nowhere', async () => {
    const server = await startJudgeServer();
    const key = 'sk-polyglot-TEST-KEY-7d1e0c';
    const keyFile = path.join(tmp, 'judge.key');
    writeFileSync(keyFile, `${key}\n`);
    try {
      // Async spawn: the judge server answers from this process's event loop.
      const child = spawn(
        process.execPath,
        [
          cliBin,
          'reproduce',
          '--preset',
          'smoke',
          '--backend',
          'wasm',
          '--out',
          a,
          '--json',
          '--from',
          'judge',
          '--judge-url',
          server.url,
          '--judge-model',
          'judge-test',
          '--judge-api-key-file',
          keyFile,
        ],
        { env },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const code = await new Promise<number | null>((res) => child.on('close', res));
      const judged = parse({ code, stdout, stderr });
      expect(judged.judged).to.equal(true);
      expect(judged.stages.filter((s) => !s.cached).map((s) => s.stage)).to.deep.equal(['judge', 'report']);
      // 4 models × 12 generation files × 3 responses are judged; identical (prompt, response) pairs come from the
      // judge cache, so at most that many requests, each with the key.
      const requests = server.chat();
      expect(requests.length).to.be.within(1, MODELS.length * 12 * 3);
      expect(requests.every((r) => r.headers.authorization === `Bearer ${key}`)).to.equal(true);
      const summary = JSON.parse(readFileSync(judged.summary, 'utf8'));
      for (const m of MODELS) {
        for (const v of Object.values(summary.models[m].helpfulness as Record<string, number>))
          expect(v).to.be.within(1, 6);
        const outs = readdirSync(path.join(a, 'runs', m)).filter((f) =>
          /-l300-ds42-as42-source-system\.jsonl$/.test(f),
        );
        expect(outs, m).to.have.length(12);
        for (const o of outs) expect(countLines(path.join(a, 'runs', m, o)), o).to.equal(3);
      }
      expect(existsSync(path.join(a, 'report', 'figures', 'helpfulness-heatmap.png'))).to.equal(true);
      expect(stdout + stderr).to.not.include(key);
      for (const root of [a, cache]) {
        for (const f of listFiles(root)) {
          if (!f.endsWith('.safetensors'))
            expect(readFileSync(path.join(root, f)).includes(key), f).to.equal(false);
        }
      }
    } finally {
      await server.close();
      // Back to the unjudged state for the tests below (whatever happened above).
      const back = parse(reproduce(a, '--from', 'judge'));
      expect(back.judged).to.equal(false);
      expect(back.models).to.deep.equal(first.models);
    }
  });

  it('refuses bad flags with a clear message', () => {
    const paper = reproduce(path.join(tmp, 'p'), '--preset', 'paper');
    expect(paper.code).to.equal(2);
    expect(paper.stderr).to.match(/--preset paper needs --model/);
    const from = reproduce(path.join(tmp, 'p'), '--from', 'nowhere');
    expect(from.code).to.equal(2);
    expect(from.stderr).to.match(/--from/);
    const data = reproduce(path.join(tmp, 'q'), '--data', path.join(tmp, 'missing.jsonl'));
    expect(data.code).to.equal(2);
    expect(data.stderr).to.include('missing.jsonl');
  });

  it('resumes after SIGKILLs at random points (training and later) to the same outputs', async () => {
    const b = path.join(tmp, 'b');
    // Progress: training updates logged, then generated lines; kills land across both.
    const progress = () => {
      const files: string[] = [];
      for (const m of MIXES) files.push(path.join(b, 'train', m, 'train-log.jsonl'));
      for (const m of MODELS) {
        const dir = path.join(b, 'runs', m);
        if (existsSync(dir))
          for (const f of readdirSync(dir)) if (f.endsWith('.jsonl')) files.push(path.join(dir, f));
      }
      return countLines(...files);
    };
    const total = 6 * MIXES.length + MODELS.length * 12 * 3 + MIXES.length * 6;
    const res = await runWithKills({
      args: cli('reproduce', '--preset', 'smoke', '--backend', 'wasm', '--out', b, '--json', '--quiet'),
      env,
      kills: 3,
      seed: 12,
      progress,
      total: Math.floor(total * 0.8),
      attemptTimeoutMs: 300_000,
    });
    console.log(`      reproduce: ${res.describe()}`);
    expect(res.kills.length).to.equal(3);
    const state = JSON.parse(readFileSync(path.join(b, 'reproduce.json'), 'utf8'));
    const attempts = Object.values(state.stages as Record<string, { attempts: number; status: string }>);
    expect(attempts.every((s) => s.status === 'done')).to.equal(true);
    expect(
      attempts.some((s) => s.attempts > 1),
      'some stage was resumed',
    ).to.equal(true);
    expect(checkNoPartialFiles(b)).to.deep.equal([]);
    const diff = compareTrees(a, b, {
      normalize: normalizer(a, b),
      ignore: (rel: string) => /\/checkpoints\//.test(rel),
    });
    expect(diff, diff.slice(0, 10).join('\n')).to.deep.equal([]);
    expect(listFiles(path.join(b, 'report')).length).to.be.greaterThan(5);
  });
});
