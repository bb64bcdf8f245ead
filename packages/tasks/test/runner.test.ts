import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { itemSeed, LocalEngine } from '@polyglot/infer';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  type HelpfulnessJudge,
  isPolyglotError,
  type ResultsFile,
  type RunProgress,
  runTasks,
  type SampleRecord,
  TaskRegistry,
} from '../src/index.js';
import { writeTaskData } from './helpers.js';

const readSamples = (file: string): SampleRecord[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));

const BUILTINS = ['chat', 'xcsqa', 'xcsqa_mc', 'xquad', 'xnli'];

describe('runTasks on the tiny fixture model (local engine)', () => {
  let engine: LocalEngine;
  let tmp: string;
  let dataDir: string;
  const registry = TaskRegistry.withBuiltins();

  before(async function () {
    engine = await LocalEngine.load({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      backend: 'wasm',
      seed: 1,
    });
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-tasks-'));
    dataDir = writeTaskData(path.join(tmp, 'data'), {
      xquad: sharedPath(this, 'data', 'xquad'),
      alpacaIs: sharedPath(
        this,
        'data',
        'paper-samples',
        'alpaca_eval',
        'alpaca_eval_instructions_is.head.json',
      ),
    });
  });
  after(async () => {
    await engine?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const run = (outputDir: string, extra: Partial<Parameters<typeof runTasks>[0]> = {}) =>
    runTasks({
      tasks: registry.resolve(BUILTINS, ['de']),
      engine,
      engineSpec: 'local:tiny-llama',
      outputDir,
      dataDir,
      limit: 3,
      seeds: [0, 42],
      genKwargs: { max_tokens: 5 },
      batchSize: 2,
      ...extra,
    });

  let full: ResultsFile;
  let fullDir: string;

  it('runs every built-in task and writes results.json in the lm-evaluation-harness shape', async () => {
    fullDir = path.join(tmp, 'full');
    full = await run(fullDir);
    const onDisk = JSON.parse(readFileSync(path.join(fullDir, 'results.json'), 'utf8')) as ResultsFile;
    expect(onDisk.results).to.deep.equal(full.results);
    const variants = ['chat_de', 'xcsqa_de', 'xcsqa_mc_de', 'xquad_de', 'xnli_de'];
    expect(Object.keys(full.results)).to.deep.equal(variants);
    const metrics: Record<string, string[]> = {
      chat_de: ['lang_match', 'tgt_lang'],
      xcsqa_de: ['acc'],
      xcsqa_mc_de: ['acc', 'acc_norm'],
      xquad_de: ['containment', 'exact_match', 'f1'],
      xnli_de: ['acc'],
    };
    for (const v of variants) {
      const e = full.results[v]!;
      expect(e.alias).to.equal(v);
      for (const m of metrics[v]!) {
        expect(e[`${m},none`], `${v} ${m}`).to.be.a('number').within(0, 1);
        expect(typeof e[`${m}_stderr,none`] === 'number' || e[`${m}_stderr,none`] === 'N/A').to.equal(true);
      }
      expect(full.versions[v]).to.equal('1.0');
      expect(full['n-shot'][v]).to.equal(0);
      expect(full.samples[v]).to.equal(`samples_${v}.jsonl`);
    }
    // Generation tasks ran under both seeds: per-seed values and their spread; log-likelihood tasks once.
    expect(Object.keys(full.per_seed.xquad_de!)).to.deep.equal(['0', '42']);
    expect(full.results.xquad_de).to.have.property('containment_seed_std,none');
    expect(full.per_seed).to.not.have.property('xnli_de');
    expect(full['n-samples'].xquad_de).to.deep.equal({ original: 1190, effective: 3 });
    expect(full['n-samples'].xnli_de).to.deep.equal({ original: 3, effective: 3 });
    expect(full.higher_is_better.xquad_de).to.deep.equal({ containment: true, exact_match: true, f1: true });
    expect(full.config).to.deep.include({
      engine: 'local:tiny-llama',
      engine_kind: 'local',
      backend: 'wasm',
      model: engine.info.model,
      limit: 3,
      batch_size: 2,
    });
    expect(full.configs.xnli_de).to.deep.include({
      task: 'xnli_de',
      dataset_name: 'de',
      output_type: 'multiple_choice',
    });
    expect(full.polyglot_version).to.match(/^\d+\.\d+\.\d+/);
  });

  it('writes one sample line per document and seed, whose scores give the reported values', () => {
    const xquad = readSamples(path.join(fullDir, 'samples_xquad_de.jsonl'));
    expect(xquad).to.have.length(6);
    const first = xquad.find((s) => s.doc_index === 1 && s.seed === 42)!;
    expect(first).to.include.keys(
      'doc_id',
      'doc',
      'target',
      'request',
      'response',
      'filtered_response',
      'scores',
      'doc_hash',
      'request_hash',
    );
    expect(first.doc_id).to.equal('56beb4343aeaaa14008c925c');
    expect(first.target).to.deep.equal(['136']);
    expect(first.request.type === 'generate_until' && first.request.params).to.deep.include({
      temperature: 0.001,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 5,
      seed: itemSeed(42, 1),
    });
    expect(first.response.type).to.equal('generate_until');
    expect(first.filtered_responses).to.have.keys('none', 'answer_span');
    const mean = (k: string) => xquad.reduce((a, s) => a + (s.scores[k] as number), 0) / xquad.length;
    expect(full.results.xquad_de!['f1,none']).to.be.closeTo(mean('f1,none'), 1e-12);
    const xnli = readSamples(path.join(fullDir, 'samples_xnli_de.jsonl'));
    expect(xnli.map((s) => s.seed)).to.deep.equal([null, null, null]);
    for (const s of xnli) {
      expect(s.request).to.deep.include({ type: 'multiple_choice', context: '' });
      const r = s.response.type === 'multiple_choice' ? s.response : null;
      expect(r!.logprobs).to.have.length(3);
      const best = r!.logprobs.indexOf(Math.max(...r!.logprobs));
      expect(s.filtered_response).to.equal(best);
      expect(s.scores['acc,none']).to.equal(best === (s.doc as { label: number }).label ? 1 : 0);
    }
    const req = xnli[0]!.request;
    expect(req.type === 'multiple_choice' && req.choices[2]).to.equal(
      ' Der Hund schläft im Garten., richtig? Nein, Ein Tier ruht draußen.',
    );
  });

  it('resumes a run that was cut short (a partial last line included) to what an uninterrupted run gives', async () => {
    const dir = path.join(tmp, 'resumed');
    await run(dir, { tasks: registry.resolve(['xquad', 'xcsqa_mc'], ['de']) });
    // Keep 2 of the 6 xquad lines and 1 of the 3 xcsqa_mc lines, the next one cut mid-line as a kill leaves it.
    for (const [name, keep] of [
      ['samples_xquad_de.jsonl', 2],
      ['samples_xcsqa_mc_de.jsonl', 1],
    ] as const) {
      const lines = readFileSync(path.join(dir, name), 'utf8').split('\n');
      writeFileSync(path.join(dir, name), `${lines.slice(0, keep).join('\n')}\n${lines[keep]!.slice(0, 40)}`);
    }
    rmSync(path.join(dir, 'results.json'));
    const progress: RunProgress[] = [];
    const again = await run(dir, {
      tasks: registry.resolve(['xquad', 'xcsqa_mc'], ['de']),
      onProgress: (p) => progress.push(p),
    });
    expect(
      progress.filter((p) => p.done === p.resumed).map((p) => [p.variant, p.resumed, p.total]),
    ).to.deep.equal([
      ['xquad_de', 2, 6],
      ['xcsqa_mc_de', 1, 3],
    ]);
    for (const v of ['xquad_de', 'xcsqa_mc_de']) {
      expect(again.results[v]).to.deep.equal(full.results[v]);
      const sort = (rows: SampleRecord[]) => rows.map((r) => JSON.stringify(r)).sort();
      expect(sort(readSamples(path.join(dir, `samples_${v}.jsonl`)))).to.deep.equal(
        sort(readSamples(path.join(fullDir, `samples_${v}.jsonl`))),
      );
    }
  });

  it('refuses to resume with other settings or another engine', async () => {
    const fail = async (p: Promise<unknown>, fragment: string) => {
      try {
        await p;
      } catch (e) {
        expect(isPolyglotError(e)).to.equal(true);
        expect((e as { code: string }).code).to.equal('resume-mismatch');
        expect((e as Error).message).to.include(fragment);
        return;
      }
      throw new Error('expected resume-mismatch');
    };
    await fail(run(fullDir, { genKwargs: { max_tokens: 6 } }), 'samples_chat_de.jsonl:1');
    await fail(run(fullDir, { engineSpec: 'openai:http://elsewhere' }), 'another --output-dir');
  });

  it('judges chat helpfulness on a seeded sample of items', async () => {
    const seen: string[] = [];
    const judge: HelpfulnessJudge = {
      name: 'fake',
      async judge(items) {
        seen.push(...items.map((i) => i.instruction));
        return items.map((_, k) => (k === 0 ? 5 : null));
      },
    };
    const r = await run(path.join(tmp, 'judged'), {
      tasks: registry.resolve(['chat'], ['de']),
      seeds: [0],
      judge,
      taskOptions: { judge_items: 2 },
    });
    expect(seen).to.have.length(2);
    expect(r.results.chat_de).to.deep.include({ 'helpfulness,none': 5, 'helpfulness_n,none': 1 });
    expect(r.config.judge).to.equal('fake');
  });

  it('fits prompts longer than the context by dropping words from the start of the instruction', () => {
    const xquad = readSamples(path.join(fullDir, 'samples_xquad_de.jsonl'));
    for (const s of xquad) {
      const prompt = s.request.type === 'generate_until' ? s.request.prompt : '';
      expect(prompt.startsWith('### Human: ')).to.equal(true);
      expect(
        prompt.endsWith('### Assistant: Basierend auf dem Text lautet die Antwort auf die Frage "'),
      ).to.equal(true);
      expect(prompt).to.include((s.doc as { question: string }).question);
      expect(engine.tokenizer.encode(prompt).length).to.be.at.most(512 - 5);
    }
  });

  it('rejects task options no selected task knows', async () => {
    try {
      await run(path.join(tmp, 'opts'), { taskOptions: { windw: 10 } });
    } catch (e) {
      expect((e as Error).message).to.match(/unknown task option "windw".*known: template/);
      return;
    }
    throw new Error('expected an error');
  });
});
