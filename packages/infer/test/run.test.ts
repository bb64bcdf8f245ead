import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  itemSeed,
  LocalEngine,
  modelId,
  PAPER_SAMPLING,
  promptName,
  pyFloat,
  runFileName,
  runInference,
  testsetName,
} from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const STOP = ['### Human:', '### Assistant:', '### Human', '### Assistant'];

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const withoutSecs = (rows: Record<string, unknown>[]) => rows.map(({ secs: _, ...rest }) => rest);

describe('infer run: file names', () => {
  it("Python's str(float) for top_p and temperature", () => {
    // What CPython 3 prints (repr: shortest round trip, exponent below 1e-4 and from 1e16 on).
    const python: [number, string][] = [
      [0.8, '0.8'],
      [0.9, '0.9'],
      [0.001, '0.001'],
      [1, '1.0'],
      [0, '0.0'],
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [0.1 + 0.2, '0.30000000000000004'],
      [123456789, '123456789.0'],
      [1e16, '1e+16'],
      [2.5e-7, '2.5e-07'],
    ];
    for (const [x, want] of python) expect(pyFloat(x), String(x)).to.equal(want);
  });

  it("the paper's convention, with the settings PAPER.md gives", function () {
    const paper = readFileSync(sharedPath(this, 'PAPER.md'), 'utf8');
    const pattern =
      /`(\{testset\}-none-\{prompt\}-s\{seed\}-k\{top_k\}-p\{top_p\}-t\{temperature\}-b\{batch\}\.jsonl)`/.exec(
        paper,
      )?.[1];
    expect(pattern, 'the file name pattern in PAPER.md').to.be.a('string');
    const chat = /temperature (\d+\.\d+), top-p (\d+\.\d+), top-k (\d+)/.exec(paper)!;
    const seeds = /seeds (\d+), (\d+) and (\d+), batch (\d+)/.exec(paper)!;
    const tasks = /X-CSQA\/XQuAD:\s+the\s+rendered\s+instruction\s+as\s+is,\s+temperature\s+(\d+\.\d+)/.exec(
      paper,
    )!;
    const [, t, p, k] = chat;
    const [, s0, s1, s2, b] = seeds;
    const fill = (testset: string, prompt: string, seed: string, temperature: string) =>
      pattern!
        .replace('{testset}', testset)
        .replace('{prompt}', prompt)
        .replace('{seed}', seed)
        .replace('{top_k}', k)
        .replace('{top_p}', p)
        .replace('{temperature}', temperature)
        .replace('{batch}', b);
    for (const seed of [s0, s1, s2]) {
      expect(
        runFileName({
          testset: testsetName('data/alpaca_eval/alpaca_eval_instructions_is.json'),
          prompt: promptName('data/prompts/guanaco_prompt.txt'),
          seed: Number(seed),
          topK: Number(k),
          topP: Number(p),
          temperature: Number(t),
          batchSize: Number(b),
        }),
      ).to.equal(fill('alpaca_eval_instructions_is', 'guanaco_prompt', seed, t));
    }
    expect(
      runFileName({
        testset: testsetName('xcsqa_dev_en_en.jsonl'),
        prompt: promptName('prompts/plain.txt'),
        seed: 42,
        topK: Number(k),
        topP: Number(p),
        temperature: Number(tasks[1]),
        batchSize: Number(b),
      }),
    ).to.equal(fill('xcsqa_dev_en_en', 'plain', '42', tasks[1]));
    expect(modelId('models/llama-2-7b-hf/')).to.equal('llama-2-7b-hf');
    expect(modelId('meta-llama/Llama-2-7b-hf')).to.equal('Llama-2-7b-hf');
    expect(PAPER_SAMPLING).to.include({ temperature: Number(t), top_p: Number(p), top_k: Number(k) });
  });

  it('item seeds depend on the run seed and the index only', () => {
    expect(itemSeed(42, 0)).to.equal(itemSeed(42, 0));
    const all = new Set<number>();
    for (const s of [0, 42, 723]) for (let i = 0; i < 1000; i++) all.add(itemSeed(s, i));
    expect(all.size).to.equal(3000);
    for (const v of all) expect(Number.isSafeInteger(v) && v >= 0 && v < 2 ** 48).to.equal(true);
  });
});

describe('infer run on the local engine (tiny fixture)', () => {
  let engine: LocalEngine;
  let model: string;
  let tmp: string;

  before(async function () {
    model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    engine = await LocalEngine.load({ model, backend: 'wasm' });
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-run-'));
  });

  after(async () => {
    await engine?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("writes the paper's run files: prompt, system, finish_reason, source, secs; a .json of arguments", async function () {
    const input = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const template = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
    const outputDir = path.join(tmp, 'chat');
    const params = { ...PAPER_SAMPLING, max_tokens: 12 };
    const results = await runInference({
      engine,
      model,
      input,
      promptTemplate: template,
      outputDir,
      params,
      seeds: [0, 42],
      batchSize: 4,
      limit: 6,
      quiet: true,
    });
    expect(results.map((r) => path.basename(r.file))).to.deep.equal([
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s0-k50-p0.9-t0.8-b4.jsonl',
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s42-k50-p0.9-t0.8-b4.jsonl',
    ]);
    const instructions = readFileSync(input, 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(0, 6)
      .map((l) => JSON.parse(l).instruction as string);
    const outputs: string[][] = [];
    for (const r of results) {
      expect(path.dirname(r.file)).to.equal(path.join(outputDir, 'base'));
      expect(r).to.include({ resumed: 0, generated: 6, total: 6, droppedTail: false });
      const rows = lines(r.file);
      expect(rows).to.have.length(6);
      rows.forEach((row, i) => {
        expect(Object.keys(row)).to.deep.equal(['prompt', 'system', 'finish_reason', 'source', 'secs']);
        // The quotes the translations keep stay in the prompt, as in the paper; no space before the second ###.
        expect(row.prompt).to.equal(`### Human: ${instructions[i]}### Assistant:`);
        expect(row.source).to.equal(instructions[i]);
        expect(row.finish_reason).to.be.oneOf(['stop', 'length']);
        expect(row.system).to.equal((row.system as string).trim());
        for (const s of STOP) expect(row.system as string).to.not.include(s);
        expect(row.secs).to.be.a('number').and.at.least(0);
      });
      outputs.push(rows.map((row) => row.system as string));
      const args = JSON.parse(readFileSync(r.argsFile, 'utf8'));
      expect(args).to.include({ seed: r.seed, batch_size: 4, src_key: 'instruction', input_file: input });
      expect(args.sampling).to.include({
        temperature: 0.8,
        top_p: 0.9,
        top_k: 50,
        frequency_penalty: 0.2,
        max_tokens: 12,
      });
    }
    expect(outputs[0]).to.not.deep.equal(outputs[1]);

    // Run again: everything is there, nothing is generated.
    const again = await runInference({
      engine,
      model,
      input,
      promptTemplate: template,
      outputDir,
      params,
      seeds: [0],
      batchSize: 4,
      limit: 6,
      quiet: true,
    });
    expect(again[0]).to.include({ resumed: 6, generated: 0 });
    // Other generation arguments for the same file: refused, nothing touched.
    let error: unknown;
    try {
      await runInference({
        engine,
        model,
        input,
        promptTemplate: template,
        outputDir,
        params: { ...params, max_tokens: 13 },
        seeds: [0],
        batchSize: 4,
        limit: 6,
        quiet: true,
      });
    } catch (e) {
      error = e;
    }
    expect((error as { code: string }).code).to.equal('RUN_ARGS_MISMATCH');
    expect(lines(results[0].file)).to.have.length(6);
  });

  it('--tgt-key adds the reference; over-long prompts lose words from the start', async function () {
    const input = sharedPath(this, 'data', 'paper-samples', 'xcsqa', 'xcsqa_dev_en_en.head.json');
    const [r] = await runInference({
      engine,
      model: 'org/tiny-llama',
      input,
      promptTemplate: 'guanaco',
      tgtKey: 'answer',
      outputDir: path.join(tmp, 'xcsqa'),
      params: { temperature: 0.001, max_tokens: 4 },
      seeds: [42],
      batchSize: 8,
      maxPromptTokens: 40,
      quiet: true,
    });
    expect(path.basename(r.file)).to.equal('xcsqa_dev_en_en.head-none-guanaco-s42-k-1-p1.0-t0.001-b8.jsonl');
    expect(path.basename(path.dirname(r.file))).to.equal('tiny-llama');
    const rows = lines(r.file);
    expect(rows).to.have.length(5);
    expect(rows[0].reference).to.deep.equal(['C', 'hospital']);
    for (const row of rows) {
      expect(engine.tokenizer.encode(row.prompt as string).length).to.be.at.most(40);
      // The end of the instruction is kept.
      expect(row.prompt as string).to.match(/### Assistant: "### Assistant:$/);
    }
  });

  it('killed mid-run and resumed: the same file as an uninterrupted run', async function () {
    this.timeout(120_000);
    const input = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const template = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
    const job = { model, input, template, seeds: [723], batchSize: 1, maxTokens: 48, limit: 16 };
    const params = { ...PAPER_SAMPLING, max_tokens: job.maxTokens };
    const run = (outputDir: string) =>
      runInference({
        engine,
        model,
        input,
        promptTemplate: template,
        outputDir,
        params,
        seeds: job.seeds,
        batchSize: job.batchSize,
        limit: job.limit,
        quiet: true,
      });
    const [whole] = await run(path.join(tmp, 'whole'));

    // The same run in a child process, killed (SIGKILL) once a few lines are on disk.
    const outputDir = path.join(tmp, 'killed');
    const file = path.join(outputDir, 'base', path.basename(whole.file));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'helpers', 'run-child.ts'), JSON.stringify({ ...job, outputDir })],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let seen = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 5));
      // Complete lines only (an append may be under way).
      seen = existsSync(file) ? (readFileSync(file, 'utf8').match(/\n/g) ?? []).length : 0;
      if (seen >= 3 || child.exitCode !== null) break;
    }
    child.kill('SIGKILL');
    await exited;
    expect(stderr).to.equal('');
    const before = lines(file).length;
    expect(before, 'killed before the end').to.be.below(job.limit);
    // As if the kill had landed in the middle of an append.
    appendFileSync(file, '{"prompt": "### Human: \\"Hva');

    const [resumed] = await run(outputDir);
    expect(resumed).to.include({
      resumed: before,
      generated: job.limit - before,
      total: job.limit,
      droppedTail: true,
    });
    const got = lines(file);
    expect(got).to.have.length(job.limit);
    expect(withoutSecs(got)).to.deep.equal(withoutSecs(lines(whole.file)));
    expect(readFileSync(file, 'utf8').endsWith('\n')).to.equal(true);
  });
});
