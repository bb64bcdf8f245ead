import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  classifyRunFile,
  languagesInMix,
  loadRuns,
  type PlotError,
  parseCsv,
  parseRunFileName,
  parseTaskName,
  readEvalCsv,
  readJudgeJsonl,
  readResultsJson,
  readTrainLog,
} from '../src/index.js';
import { runName, writeRuns } from './fixtures.js';

async function rejects(p: Promise<unknown>): Promise<PlotError> {
  try {
    await p;
  } catch (e) {
    return e as PlotError;
  }
  throw new Error('expected a rejection');
}

describe('file names', () => {
  it('parses the paper’s run file names, with .eval and judge suffixes', () => {
    expect(parseRunFileName(`/x/Mono/${runName('de', 42)}.jsonl.eval`)).to.deep.equal({
      testset: 'alpaca_eval_instructions_de',
      lang: 'de',
      prompt: 'guanaco_prompt',
      seed: 42,
      topK: 50,
      topP: 0.9,
      temperature: 0.8,
      batch: 8,
      judge: null,
    });
    expect(parseRunFileName(`${runName('is', 723)}.eval`).seed).to.equal(723);
    const j = parseRunFileName(`${runName('zh', 0)}-l300-ds42-as42-source-system.jsonl`);
    expect(j).to.include({ lang: 'zh', seed: 0, temperature: 0.8 });
    expect(j.judge).to.deep.equal({ limit: 300, dataSeed: 42, apiSeed: 42, fields: 'source-system' });
    expect(parseRunFileName('flores_deu_Latn-none-p-s1.eval').lang).to.equal('deu_Latn');
    expect(parseRunFileName('guanaco_test-none-guanaco_prompt-s0.eval').lang).to.equal(null);
  });

  it('the number of languages of a mix from its name', () => {
    expect(
      [
        'Mono',
        'mono_en',
        'Multi-2',
        'multi_4',
        'Multi6',
        'llama2-7b-multi-3',
        'base',
        'Multi-Guanaco',
        'custom',
      ].map(languagesInMix),
    ).to.deep.equal([1, 1, 2, 4, 6, 3, 0, null, null]);
  });

  it('task names: family, prompt and data language', () => {
    expect(parseTaskName('xnli_de')).to.deep.equal({ family: 'xnli', promptLang: 'de', dataLang: 'de' });
    expect(parseTaskName('xcsqa_dev_en_de')).to.deep.equal({
      family: 'xcsqa',
      promptLang: 'en',
      dataLang: 'de',
    });
    expect(parseTaskName('xquad_zh')).to.deep.equal({ family: 'xquad', promptLang: 'zh', dataLang: 'zh' });
    expect(parseTaskName('hellaswag')).to.deep.equal({
      family: 'hellaswag',
      promptLang: null,
      dataLang: null,
    });
  });

  it('classifies the files of a runs folder', () => {
    expect(
      [
        'a.jsonl.eval',
        `${runName('de', 0)}-l300-ds42-as42-source-system.jsonl`,
        'results.json',
        'results_2024-06-01T12-00-00.json',
        'train-log.jsonl',
        `${runName('de', 0)}.jsonl`,
        'run.json',
      ].map((f) => classifyRunFile(f)),
    ).to.deep.equal(['fidelity', 'judge', 'tasks', 'tasks', 'training', null, null]);
  });
});

describe('readers', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-plots-readers-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('CSV: quotes, doubled quotes, CRLF, BOM', () => {
    expect(parseCsv('\ufeffa,b\r\n"x,1","say ""hi"""\r\n')).to.deep.equal([
      ['a', 'b'],
      ['x,1', 'say "hi"'],
    ]);
  });

  it('.eval: the one-row CSV, empty fields missing, a pandas index ignored', async () => {
    const ev = await readEvalCsv(
      file('a.eval', 'lang_match,tgt_lang,ppl,ppl_model,n,file\n0.938,,,,805,"runs/a,b.jsonl"\n'),
    );
    expect(ev).to.deep.equal({
      lang_match: 0.938,
      tgt_lang: null,
      ppl: null,
      ppl_model: null,
      n: 805,
      file: 'runs/a,b.jsonl',
    });
    const idx = await readEvalCsv(
      file('b.eval', ',lang_match,tgt_lang,ppl,ppl_model,n,file\n0,0.5,0.4,12.5,gpt2,10,x\n'),
    );
    expect(idx).to.include({ lang_match: 0.5, tgt_lang: 0.4, ppl: 12.5, ppl_model: 'gpt2', n: 10 });
  });

  it('.eval: wrong header, several rows, text and out-of-range shares are errors with file:line', async () => {
    const e1 = await rejects(readEvalCsv(file('c.eval', 'score,n\n0.5,3\n')));
    expect(e1.code).to.equal('PLOT_BAD_FILE');
    expect(e1.message).to.match(/c\.eval:1: not a fidelity \.eval CSV/);
    expect((await rejects(readEvalCsv(file('d.eval', 'lang_match,n\n0.5,3\n0.6,3\n')))).message).to.match(
      /has 2/,
    );
    expect((await rejects(readEvalCsv(file('e.eval', 'lang_match,n\nhigh,3\n')))).message).to.match(
      /e\.eval:2: lang_match is "high"/,
    );
    expect((await rejects(readEvalCsv(file('f.eval', 'lang_match,n\n93.8,3\n')))).message).to.match(
      /outside \[0, 1\]/,
    );
    expect((await rejects(readEvalCsv(path.join(dir, 'missing.eval')))).message).to.match(
      /missing\.eval: cannot read/,
    );
  });

  it('judge outputs: mean of parseable scores, unparseable ones skipped, judge model and cost', async () => {
    const lines = [4, null, 6, '5', undefined].map((s) =>
      JSON.stringify({
        instruction: 'q',
        eval_score: s,
        eval_meta: { model: 'gpt-3.5-turbo-1106', cost: 0.001 },
      }),
    );
    const j = await readJudgeJsonl(file('j.jsonl', `${lines.join('\n')}\n`));
    expect(j).to.deep.include({
      n: 5,
      scores: [4, 6, 5],
      skipped: 2,
      mean: 5,
      judgeModel: 'gpt-3.5-turbo-1106',
    });
    expect(j.cost).to.be.closeTo(0.005, 1e-12);
    const partial = await readJudgeJsonl(file('k.jsonl', `${lines[0]}\n{"eval_score": 3, "instr`));
    expect(partial.scores).to.deep.equal([4]);
    expect(partial.warnings[0]).to.match(/k\.jsonl:2: left out a partial last line/);
    expect(
      (await rejects(readJudgeJsonl(file('l.jsonl', '{"eval_score": "great"}\n{}\n')))).message,
    ).to.match(/l\.jsonl:1: eval_score is "great"/);
    expect((await rejects(readJudgeJsonl(file('m.jsonl', 'oops\n{}\n')))).message).to.match(
      /m\.jsonl:1: not JSON/,
    );
    expect((await rejects(readJudgeJsonl(file('n.jsonl', '{"system": "x"}\n')))).message).to.match(
      /no record has an eval_score/,
    );
  });

  it('results.json: metrics with filters and stderrs, model, config, versions, backend', async () => {
    const r = await readResultsJson(
      file(
        'results.json',
        JSON.stringify({
          results: {
            xnli_de: { alias: ' - xnli_de', 'acc,none': 0.44, 'acc_stderr,none': 0.01 },
            xquad_en_de: { 'contains,none': 0.6, 'contains_stderr,none': 'N/A', 'f1,none': 0.5 },
            legacy: { acc: 0.3, acc_stderr: 0.02 },
          },
          config: { model: 'hf', model_args: 'pretrained=runs/Mono/merged,dtype=float16' },
          versions: { xnli_de: 1 },
          backend: 'tensorflow',
        }),
      ),
    );
    expect(r.metrics).to.deep.equal([
      { task: 'xnli_de', metric: 'acc', filter: 'none', value: 0.44, stderr: 0.01 },
      { task: 'xquad_en_de', metric: 'contains', filter: 'none', value: 0.6, stderr: null },
      { task: 'xquad_en_de', metric: 'f1', filter: 'none', value: 0.5, stderr: null },
      { task: 'legacy', metric: 'acc', filter: null, value: 0.3, stderr: 0.02 },
    ]);
    expect(r).to.include({ model: 'runs/Mono/merged', backend: 'tensorflow' });
    expect(r.versions).to.deep.equal({ xnli_de: 1 });
    expect((await rejects(readResultsJson(file('r2.json', '{"acc": 1}')))).message).to.match(
      /expected an lm-evaluation-harness results object/,
    );
  });

  it('train-log.jsonl: train and eval losses, headers ignored, a resumed run keeps its later lines', async () => {
    const lines = [
      { event: 'start', backend: 'wasm' },
      { step: 1, loss: 2.0, grad_norm: 1.2, lr: 1e-6, tokens: 100, secs: 1 },
      { step: 2, loss: 1.8, lr: 2e-6 },
      { step: 2, eval_loss: 1.9 },
      { step: 2, loss: 1.7 },
      { step: 3, loss: 1.5, split: 'eval' },
    ].map((x) => JSON.stringify(x));
    const log = await readTrainLog(file('train-log.jsonl', `${lines.join('\n')}\n`));
    expect(log.points.map((p) => [p.split, p.step, p.loss])).to.deep.equal([
      ['train', 1, 2.0],
      ['train', 2, 1.7],
      ['eval', 2, 1.9],
      ['eval', 3, 1.5],
    ]);
    expect(log.points[0]).to.include({ grad_norm: 1.2, lr: 1e-6, tokens: 100, secs: 1 });
    expect(log.warnings[0]).to.match(/1 step\(s\) logged more than once/);
    const bad = await rejects(readTrainLog(file('t2.jsonl', '{"loss": 1.2}\n')));
    expect(bad.message).to.match(/t2\.jsonl:1: a loss without a step/);
    expect((await rejects(readTrainLog(file('t3.jsonl', '{"step": 1, "loss": "NaN"}\n')))).message).to.match(
      /t3\.jsonl:1: loss is "NaN"/,
    );
  });
});

describe('loadRuns', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-plots-runs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a runs folder: rows, models with their number of languages, metadata', async () => {
    const root = path.join(dir, 'full');
    writeRuns(root);
    // a sibling generation-arguments file adds sampling settings
    writeFileSync(
      path.join(root, 'Mono', `${runName('de', 0)}.json`),
      JSON.stringify({
        temperature: 0.8,
        top_p: 0.9,
        top_k: 50,
        frequency_penalty: 0.2,
        max_tokens: 1024,
        backend: 'wasm',
      }),
    );
    const runs = await loadRuns(root);
    expect(runs.fidelity).to.have.length(4 * 7 * 3);
    expect(runs.helpfulness).to.have.length(4 * 7 * 2);
    expect(runs.tasks.filter((t) => t.family === 'xnli')).to.have.length(4 * 9);
    expect(runs.training.filter((t) => t.split === 'eval')).to.have.length(2 * 4);
    expect(runs.models.map((m) => [m.name, m.nLanguages, m.nLanguagesFrom])).to.deep.equal([
      ['Mono', 1, 'run.json'],
      ['Multi-2', 2, 'run.json'],
      ['Multi-3', 3, 'name'],
      ['Multi-Guanaco', 30, 'run.json'],
    ]);
    expect(runs.models[0].meta).to.deep.equal({ adapter: 'runs/Mono/adapter' });
    const mono = runs.fidelity.find((r) => r.model === 'Mono' && r.lang === 'de' && r.seed === 42)!;
    expect(mono).to.include({ lang_match: 0.406, n: 805, testset: 'alpaca_eval_instructions_de' });
    expect(mono.file).to.equal(path.join('Mono', `${runName('de', 42)}.jsonl.eval`));
    const judged = runs.helpfulness.find((r) => r.model === 'Mono' && r.lang === 'de' && r.seed === 0)!;
    expect(judged).to.include({ n: 4, skipped: 1, judgeModel: 'gpt-3.5-turbo-1106' });
    expect(runs.found.seeds).to.deep.equal([0, 42, 723]);
    expect(runs.found.testsets).to.deep.equal(['alpaca_eval_instructions']);
    expect(runs.found.judgeModels).to.deep.equal(['gpt-3.5-turbo-1106']);
    expect(runs.found.backends).to.deep.equal(['wasm']);
    expect(runs.found.sampling).to.deep.include({
      model: 'Mono',
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      batch: 8,
    });
    expect(runs.found.sampling.some((s) => s.frequency_penalty === 0.2)).to.equal(true);
    expect(runs.meta.base_model).to.equal('meta-llama/Llama-2-7b-hf');
    expect(runs.warnings).to.deep.equal([]);
  });

  it('files directly in the folder belong to a model named after the folder', async () => {
    const root = path.join(dir, 'Multi-4');
    mkdirSync(root);
    writeFileSync(
      path.join(root, `${runName('fr', 0)}.eval`),
      'lang_match,tgt_lang,ppl,ppl_model,n,file\n0.8,0.8,,,805,x\n',
    );
    const runs = await loadRuns(root);
    expect(runs.fidelity.map((r) => [r.model, r.lang, r.seed])).to.deep.equal([['Multi-4', 'fr', 0]]);
    expect(runs.models[0].nLanguages).to.equal(4);
  });

  it('reads @polyglot/tasks results (configs, groups, per-seed chat results) and @polyglot/judge names', async () => {
    const root = path.join(dir, 'tasks');
    mkdirSync(path.join(root, 'Multi-2', 'eval'), { recursive: true });
    writeFileSync(
      path.join(root, 'Multi-2', 'eval', 'results.json'),
      JSON.stringify({
        results: {
          chat_de: {
            alias: 'chat_de',
            'lang_match,none': 0.85,
            'helpfulness,none': 4.2,
            'lang_match_stderr,none': 0.01,
          },
          chat_ko: { alias: 'chat_ko', 'lang_match,none': 0.7 },
          xcsqa_mc_en: { alias: 'xcsqa_mc_en', 'acc,none': 0.5 },
          custom_task: { 'acc,none': 0.4 },
          custom: { 'acc,none': 0.4 },
        },
        group_subtasks: { custom: ['custom_task'] },
        configs: { custom_task: { prompt_language: 'en', data_language: 'de' } },
        per_seed: {
          chat_de: {
            '0': { 'lang_match,none': 0.84, 'helpfulness,none': 4.0 },
            '42': { 'lang_match,none': 0.86, 'helpfulness,none': 4.4 },
          },
        },
        config: { model: 'runs/Multi-2/merged', engine: 'local:runs/Multi-2/merged', backend: 'wasm' },
      }),
    );
    // a judge output as @polyglot/judge names it without --limit and API seed, and a pairwise one (skipped)
    const judged = `${JSON.stringify({ eval_score: 5 })}\n`;
    writeFileSync(
      path.join(root, 'Multi-2', `${runName('ko', 0)}-lall-ds42-asnone-source-system.jsonl`),
      judged,
    );
    writeFileSync(
      path.join(root, 'Multi-2', `${runName('ko', 0)}-l300-ds42-as42-source-system-vs-Mono.jsonl`),
      '{"pref": "A"}\n',
    );
    const runs = await loadRuns(root);
    const custom = runs.tasks.find((t) => t.task === 'custom_task')!;
    expect(custom).to.include({ family: 'custom', promptLang: 'en', dataLang: 'de' });
    expect(runs.tasks.find((t) => t.task === 'xcsqa_mc_en')).to.include({
      family: 'xcsqa_mc',
      promptLang: 'en',
    });
    expect(runs.fidelity.map((r) => [r.lang, r.seed, r.lang_match])).to.deep.equal([
      ['de', 0, 0.84],
      ['de', 42, 0.86],
      ['ko', null, 0.7],
    ]);
    expect(runs.helpfulness.map((r) => [r.lang, r.seed, r.score])).to.deep.equal([
      ['ko', 0, 5],
      ['de', 0, 4.0],
      ['de', 42, 4.4],
    ]);
    expect(runs.files.map((f) => f.kind)).to.deep.equal(['judge', 'tasks']);
    expect(runs.found.backends).to.deep.equal(['wasm']);
  });

  it('empty, missing or contradicting results are clear errors; odd files are warnings', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(path.join(empty, 'Mono'), { recursive: true });
    writeFileSync(path.join(empty, 'Mono', 'notes.txt'), 'nothing here');
    const e = await rejects(loadRuns(empty));
    expect(e.code).to.equal('PLOT_NO_DATA');
    expect(e.message).to.match(/no results in .*: expected <model>\/…-s\{seed\}-….eval/);
    expect((await rejects(loadRuns(path.join(dir, 'nope')))).message).to.match(/does not exist/);

    const dup = path.join(dir, 'dup');
    mkdirSync(path.join(dup, 'Mono'), { recursive: true });
    const ev = 'lang_match,tgt_lang,ppl,ppl_model,n,file\n0.8,0.8,,,805,x\n';
    writeFileSync(path.join(dup, 'Mono', `${runName('de', 0)}.eval`), ev);
    writeFileSync(path.join(dup, 'Mono', `${runName('de', 0)}.jsonl.eval`), ev);
    const d = await rejects(loadRuns(dup));
    expect(d.code).to.equal('PLOT_BAD_DATA');
    expect(d.message).to.match(
      /language fidelity of Mono, alpaca_eval_instructions_de, seed 0 appears twice/,
    );

    const odd = path.join(dir, 'odd');
    mkdirSync(path.join(odd, 'Mono'), { recursive: true });
    mkdirSync(path.join(odd, 'Multi-2'), { recursive: true });
    writeFileSync(path.join(odd, 'Mono', `${runName('de', 0)}.eval`), ev);
    writeFileSync(path.join(odd, 'Mono', `${runName('de', 42)}.eval`), ev.replace('805', '400'));
    writeFileSync(path.join(odd, 'Multi-2', `${runName('de', 0)}.eval`), ev);
    writeFileSync(path.join(odd, 'Multi-2', 'guanaco_test-none-guanaco_prompt-s0.eval'), ev);
    const runs = await loadRuns(odd);
    expect(runs.fidelity).to.have.length(3);
    expect(runs.warnings.join('\n')).to.match(
      /guanaco_test-none-guanaco_prompt-s0\.eval: left out: no test language/,
    );
    expect(runs.warnings.join('\n')).to.match(/different seeds \(Mono: 0, 42; Multi-2: 0\)/);
    expect(runs.warnings.join('\n')).to.match(/different numbers of responses \(805, 400\)/);
  });
});
