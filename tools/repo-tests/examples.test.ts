// The examples run as documented (they use only the packages' public APIs, so they break when an API does).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot, sharedPath } from '../shared.js';

/** The TypeScript compiler's CLI script, resolved as the repository's devDependency. */
function tscBin(): string {
  return createRequire(path.join(repoRoot, 'package.json')).resolve('typescript/bin/tsc');
}

describe('examples', () => {
  it('inspect-checkpoint.ts reads the fixture checkpoint, adapter and tokenizer', function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const adapter = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join('examples', 'inspect-checkpoint.ts'), base, adapter],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('LlamaForCausalLM: 2 layers, hidden 64');
    expect(r.stdout).to.include('parameters: 4,188,480 in 3 shard(s)');
    expect(r.stdout).to.include('adapter: r 8, alpha 16, 14 modules, scale 2');
    expect(r.stdout).to.include('"### Human: Wie spät ist es?### Assistant:"');
  });
});

describe('examples type-check', () => {
  it('examples/*.ts and examples/lib/*.ts against the packages’ published types (tsc --noEmit)', function () {
    this.timeout(120_000);
    const r = spawnSync(process.execPath, [tscBin(), '-p', path.join('examples', 'tsconfig.json')], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
  });
});

// The numbered examples, in order, on the embedded defaults (demo data, the CLI's smoke base model): each reads
// what the previous one wrote in one shared work folder. Asserts on the files each writes (they exist and parse),
// not on timings or scores (a model this small scores noise).
describe('examples 01–09 chain on the embedded defaults', function () {
  this.timeout(300_000);
  let work = '';
  let runs = '';
  // The smoke base model is pretrained once and cached; shared by the examples (and by reruns of this suite).
  const baseCache = path.join(os.tmpdir(), 'polyglot-examples-base-cache');
  const MODELS = ['Mono', 'Multi-2'];
  const CHAT_LANGS = ['en', 'es', 'ru', 'de', 'zh', 'fr', 'bg', 'is', 'el', 'hi'];

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'polyglot-examples-'));
    runs = path.join(work, 'runs');
  });
  after(() => {
    if (work && !process.env.POLYGLOT_KEEP_EXAMPLES) rmSync(work, { recursive: true, force: true });
  });

  function runExample(script: string, ...args: string[]): string {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join('examples', script), '--work', work, ...args],
      { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 },
    );
    expect(
      r.status,
      `${script} failed (exit ${r.status}, ${r.signal ?? 'no signal'}):\n${r.stdout}\n${r.stderr}`,
    ).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`${script.replace('.', '\\.')}: done in \\d`));
    return r.stdout;
  }
  // POLYGLOT_EXAMPLES_MODEL=DIR runs the chain on another base model (a Hugging Face Llama folder) instead.
  const withBase = process.env.POLYGLOT_EXAMPLES_MODEL
    ? ['--model', process.env.POLYGLOT_EXAMPLES_MODEL]
    : ['--base-cache', baseCache];
  const json = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
  const jsonl = (f: string) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l, i) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch (e) {
          throw new Error(`${f}:${i + 1}: ${(e as Error).message}`);
        }
      });

  it('01-build-mixes: Mono and Multi-2 … Multi-6 of 40 demo conversations, with manifests', () => {
    const out = runExample('01-build-mixes.ts');
    expect(out).to.include('multi-6');
    for (const mix of ['mono', 'multi-2', 'multi-3', 'multi-4', 'multi-5', 'multi-6']) {
      const rows = jsonl(path.join(work, 'mixes', `${mix}.jsonl`));
      expect(rows, mix).to.have.length(40);
      for (const r of rows)
        expect(r.text, mix)
          .to.be.a('string')
          .and.match(/^### Human: /);
      const manifest = json(path.join(work, 'mixes', `${mix}.manifest.json`));
      const counts = manifest.counts as Record<string, number>;
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).to.equal(40);
      expect(Object.keys(counts)).to.have.length(mix === 'mono' ? 1 : Number(mix.slice(6)));
    }
  });

  it('02-train: a LoRA adapter per mix with its training log, and run.json', () => {
    runExample('02-train.ts', ...withBase);
    for (const m of MODELS) {
      const dir = path.join(runs, m, 'adapter');
      expect(json(path.join(dir, 'adapter_config.json')).peft_type).to.equal('LORA');
      expect(existsSync(path.join(dir, 'adapter_model.safetensors')), dir).to.equal(true);
      const log = jsonl(path.join(dir, 'train-log.jsonl')).filter((r) => 'loss' in r);
      expect(log.length, m).to.be.greaterThan(0);
      for (const r of log) expect(r.loss).to.be.a('number').and.satisfy(Number.isFinite);
    }
    const run = json(path.join(runs, 'run.json'));
    expect(run.models.Mono.languages).to.deep.equal(['en']);
    expect(run.models['Multi-2'].languages).to.have.members(['en', 'es']);
  });

  it('03-merge: a merged Hugging Face model folder per adapter', () => {
    runExample('03-merge.ts', ...withBase);
    for (const m of MODELS) {
      const dir = path.join(work, 'models', m);
      expect(json(path.join(dir, 'config.json')).architectures).to.deep.equal(['LlamaForCausalLM']);
      expect(
        readdirSync(dir).some((n) => n.endsWith('.safetensors')),
        dir,
      ).to.equal(true);
    }
  });

  it('04-chat-fidelity: run files named as the paper, their arguments and .eval CSVs', () => {
    const out = runExample('04-chat-fidelity.ts', ...withBase);
    expect(out).to.include('language fidelity (lang_match');
    for (const m of MODELS) {
      for (const lang of CHAT_LANGS) {
        const stem = path.join(runs, m, `demo_prompts_${lang}-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8`);
        const rows = jsonl(`${stem}.jsonl`);
        expect(rows, stem).to.have.length(8);
        for (const r of rows) {
          expect(r, stem).to.include.keys('prompt', 'system', 'finish_reason', 'source', 'secs');
          expect(r.prompt).to.equal(`### Human: ${r.source}### Assistant:`);
        }
        expect(json(`${stem}.json`)).to.be.an('object');
        const [head, row, ...rest] = readFileSync(`${stem}.eval`, 'utf8').trim().split('\n');
        expect(head).to.equal('lang_match,tgt_lang,ppl,ppl_model,n,file');
        expect(rest).to.deep.equal([]);
        const cells = row!.split(',');
        expect(Number(cells[0])).to.be.within(0, 1);
        expect(Number(cells[4])).to.equal(8);
      }
    }
  });

  function checkResults(task: string, variants: string[], metric: string): void {
    for (const m of ['base', ...MODELS]) {
      const dir = path.join(runs, m, task);
      const results = json(path.join(dir, 'results.json')).results as Record<string, Record<string, unknown>>;
      for (const v of variants) {
        expect(results[v], `${dir}: ${v}`).to.be.an('object');
        expect(results[v]![`${metric},none`], `${dir}: ${v}`).to.be.within(0, 1);
        // A group entry (`xnli`: the mean over languages) has no samples file of its own.
        if (v.includes('_')) {
          expect(jsonl(path.join(dir, `samples_${v}.jsonl`)).length, `${dir}: ${v}`).to.be.greaterThan(0);
        }
      }
    }
  }

  it('05-xcsqa: results.json and samples for the base and each tuned model', () => {
    runExample('05-xcsqa.ts', ...withBase);
    checkResults('xcsqa', ['xcsqa_en', 'xcsqa_de', 'xcsqa_zh', 'xcsqa'], 'acc');
  });

  it('06-xquad: results.json (containment, exact match, F1), monolingual and cross-lingual', () => {
    runExample('06-xquad.ts', ...withBase);
    checkResults('xquad', ['xquad_en', 'xquad_hi', 'xquad_en_de'], 'containment');
    checkResults('xquad', ['xquad_en', 'xquad_en_de'], 'f1');
  });

  it('07-xnli: results.json over the nine demo XNLI languages and their mean', () => {
    runExample('07-xnli.ts', ...withBase);
    checkResults('xnli', ['xnli_bg', 'xnli_en', 'xnli_hi', 'xnli_zh', 'xnli'], 'acc');
    const samples = jsonl(path.join(runs, 'base', 'xnli', 'samples_xnli_de.jsonl'));
    expect(samples).to.have.length(9);
  });

  it('08-judge: judge outputs named as the paper, every item scored or counted unparseable', () => {
    const out = runExample('08-judge.ts', ...withBase);
    expect(out).to.match(/\d+ files: \d+ answers scored, \d+ unparseable, \d+ failed/);
    for (const m of MODELS) {
      for (const lang of CHAT_LANGS) {
        const f = path.join(
          runs,
          m,
          `demo_prompts_${lang}-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8-l4-ds42-as42-source-system.jsonl`,
        );
        const rows = jsonl(f);
        expect(rows, f).to.have.length(4);
        for (const r of rows) {
          expect(r, f).to.include.keys('eval_score', 'eval_reasoning', 'eval_meta');
          expect(
            r.eval_score === null ||
              (typeof r.eval_score === 'number' && r.eval_score >= 1 && r.eval_score <= 6),
          ).to.equal(true);
        }
      }
    }
  });

  it('09-plots: the report with its figures and tables', () => {
    const out = runExample('09-plots.ts');
    for (const kind of [
      'fidelity-bars',
      'fidelity-lines',
      'xcsqa-heatmap',
      'xquad-heatmap',
      'xnli-bars',
      'loss-curves',
    ]) {
      expect(out).to.match(new RegExp(`drawn\\s+${kind}`));
      const png = readFileSync(path.join(work, 'report', 'figures', `${kind}.png`));
      expect(png.subarray(1, 4).toString('latin1'), kind).to.equal('PNG');
      expect(readFileSync(path.join(work, 'report', 'figures', `${kind}.svg`), 'utf8')).to.include('<svg');
    }
    expect(readFileSync(path.join(work, 'report', 'index.html'), 'utf8')).to.include('<html');
    expect(readFileSync(path.join(work, 'report', 'report.md'), 'utf8')).to.include('fidelity');
    expect(
      readdirSync(path.join(work, 'report', 'tables')).filter((n) => n.endsWith('.csv')).length,
    ).to.be.greaterThan(0);
  });
});
