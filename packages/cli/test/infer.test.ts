import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { spawnCli as polyglot } from './helpers/cli.js';

/** Runs the built binary the way a user does. */

interface RefEntry {
  input_ids: number[];
  token_logprobs: number[];
  sum_logprob: number;
  greedy_new_ids: number[];
}

interface Reference {
  prompts: string[];
  base: RefEntry[];
  adapter: RefEntry[];
}

const TOL = 1e-4;

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).to.equal(b.length);
  return Math.max(0, ...a.map((v, i) => Math.abs(v - b[i])));
}

const jsonl = (rows: unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
const parseLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('polyglot infer', () => {
  let ref: Reference;
  let model: string;
  let tmp: string;

  before(function () {
    model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    ref = JSON.parse(readFileSync(sharedPath(this, 'fixtures', 'tiny-llama', 'reference.json'), 'utf8'));
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-infer-'));
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('score: input_ids lines and text lines give the reference log-probs; fields pass through', () => {
    const input = path.join(tmp, 'score.jsonl');
    writeFileSync(
      input,
      jsonl([
        ...ref.base.map((e, i) => ({ id: `ids-${i}`, input_ids: e.input_ids })),
        ...ref.prompts.map((text, i) => ({ id: `text-${i}`, text })),
      ]),
    );
    const r = polyglot(
      'infer',
      'score',
      '--model',
      model,
      '--input',
      input,
      '--backend',
      'cpu',
      '--batch-size',
      '3',
    );
    expect(r.code, r.stderr).to.equal(0);
    const rows = parseLines(r.stdout);
    expect(rows).to.have.length(10);
    rows.forEach((row, k) => {
      const i = k % 5;
      expect(row.id).to.equal(k < 5 ? `ids-${i}` : `text-${i}`);
      expect(row.input_ids).to.deep.equal(ref.base[i].input_ids);
      expect(maxAbsDiff(row.token_logprobs, ref.base[i].token_logprobs), row.id).to.be.below(TOL);
      expect(row.sum_logprob).to.be.closeTo(ref.base[i].sum_logprob, 1e-3);
      expect(row.backend).to.equal('cpu');
    });
    // Not a TTY: progress is a JSON line on stderr.
    const progress = parseLines(r.stderr).pop();
    expect(progress).to.include({ progress: 'infer score', done: 10, total: 10 });
  });

  it('score with --adapter and --out (written atomically, nothing on stdout)', function () {
    const adapter = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const input = path.join(tmp, 'adapter.jsonl');
    const out = path.join(tmp, 'adapter-out.jsonl');
    writeFileSync(input, jsonl(ref.adapter.map((e) => ({ input_ids: e.input_ids }))));
    const r = polyglot(
      'infer',
      'score',
      '--model',
      model,
      '--adapter',
      adapter,
      '--input',
      input,
      '--out',
      out,
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('');
    const rows = parseLines(readFileSync(out, 'utf8'));
    rows.forEach((row, i) => {
      expect(maxAbsDiff(row.token_logprobs, ref.adapter[i].token_logprobs)).to.be.below(TOL);
      expect(row.backend).to.equal('wasm'); // auto on a host without GPU backends
    });
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('generate: greedy prompt lines give greedy_new_ids, with text, finish_reason and the backend', () => {
    const input = path.join(tmp, 'gen.jsonl');
    writeFileSync(input, jsonl(ref.prompts.map((prompt, i) => ({ id: i, prompt }))));
    const r = polyglot(
      'infer',
      'generate',
      '--model',
      model,
      '--input',
      input,
      '--max-new-tokens',
      '12',
      '--temperature',
      '0',
      '--ignore-eos',
      '--batch-size',
      '2',
      '--backend',
      'cpu',
    );
    expect(r.code, r.stderr).to.equal(0);
    const rows = parseLines(r.stdout);
    expect(rows.map((x) => x.id)).to.deep.equal([0, 1, 2, 3, 4]);
    expect(rows.map((x) => x.output_ids)).to.deep.equal(ref.base.map((e) => e.greedy_new_ids));
    for (const row of rows) {
      expect(row).to.include({ finish_reason: 'length', backend: 'cpu', stop_reason: null });
      expect(row.text).to.be.a('string').and.not.equal('');
      expect(row.prompt).to.be.a('string');
    }
  });

  it('generate: stop strings, seeds (per line or from --seed) and log-probs', () => {
    const input = path.join(tmp, 'gen2.jsonl');
    writeFileSync(
      input,
      jsonl([
        { input_ids: ref.base[0].input_ids },
        { prompt: ref.prompts[1], seed: 5 },
        { prompt: ref.prompts[2] },
      ]),
    );
    const args = ['infer', 'generate', '--model', model, '--input', input, '--max-new-tokens', '10'];
    const a = polyglot(...args, '--temperature', '0.8', '--top-k', '40', '--seed', '3', '--logprobs', '2');
    const b = polyglot(...args, '--temperature', '0.8', '--top-k', '40', '--seed', '3', '--batch-size', '1');
    expect(a.code, a.stderr).to.equal(0);
    expect(b.code, b.stderr).to.equal(0);
    const ra = parseLines(a.stdout);
    const rb = parseLines(b.stdout);
    expect(rb.map((x) => x.output_ids)).to.deep.equal(ra.map((x) => x.output_ids));
    expect(ra[1].seed).to.equal(5);
    expect(ra[0].token_logprobs).to.have.length(ra[0].output_ids.length);
    expect(ra[0].top_logprobs[0]).to.have.length(2);
    expect(rb[0].token_logprobs).to.equal(undefined);
    // Greedy with a stop string taken from the greedy text: cut there, stripped, finish_reason stop.
    const greedy = polyglot(
      ...args.slice(0, 6),
      '--max-new-tokens',
      '12',
      '--temperature',
      '0',
      '--ignore-eos',
    );
    const text: string = parseLines(greedy.stdout)[0].text;
    const words = text.split(' ');
    const stop = words[2];
    const s = polyglot(
      ...args.slice(0, 6),
      '--max-new-tokens',
      '12',
      '--temperature',
      '0',
      '--stop',
      stop,
      'never-there',
    );
    expect(s.code, s.stderr).to.equal(0);
    const row = parseLines(s.stdout)[0];
    expect(row).to.include({ finish_reason: 'stop', stop_reason: stop, text: words.slice(0, 2).join(' ') });
  });

  it('a bad JSONL line is one message naming file:line, exit 1', () => {
    const cases: [string, string, RegExp][] = [
      ['{"input_ids": [1, 2]}\n{"input_ids": [1, 2\n', 'score', /:2: invalid JSON/],
      [
        '{"text": "a"}\n\n{"text": "b", "input_ids": [1]}\n',
        'score',
        /:3: give either "text" or "input_ids"/,
      ],
      [
        '{"input_ids": [1, 2]}\n{"input_ids": [1, -2]}\n',
        'score',
        /:2: input_ids\[1\] = -2 is not a non-negative/,
      ],
      [
        '{"input_ids": [1, 32000]}\n',
        'score',
        /:1: input_ids\[1\] = 32000 is outside the model's vocabulary/,
      ],
      ['{"prompt": "a"}\n{"prompt": ""}\n', 'generate', /:2: "prompt" is empty/],
      ['{"prompt": "a"}\n{"input_ids": []}\n', 'generate', /:2: "input_ids" is empty/],
      ['{"prompt": "a", "seed": 1.5}\n', 'generate', /:1: "seed" must be an integer/],
      [
        `{"prompt": "a"}\n${JSON.stringify({ input_ids: new Array(600).fill(5) })}\n`,
        'generate',
        /:2: the prompt has 600 tokens/,
      ],
      [
        `${JSON.stringify({ input_ids: new Array(505).fill(5) })}\n`,
        'generate',
        /:1: .*lower max_tokens to at most 7/,
      ],
    ];
    for (const [text, cmd, pattern] of cases) {
      const input = path.join(tmp, 'bad.jsonl');
      writeFileSync(input, text);
      const extra = cmd === 'generate' ? ['--max-new-tokens', '8'] : [];
      const r = polyglot('infer', cmd, '--model', model, '--input', input, ...extra);
      expect(r.code, `${cmd} ${text}: ${r.stderr}`).to.equal(1);
      expect(r.stderr).to.match(
        new RegExp(`^polyglot: error: ${input.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      );
      expect(r.stderr).to.match(pattern);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stdout).to.equal('');
    }
  });

  it('bad flags are usage errors naming the flag (exit 2)', () => {
    const input = path.join(tmp, 'ok.jsonl');
    writeFileSync(input, '{"prompt": "a"}\n');
    const base = ['infer', 'generate', '--model', model, '--input', input];
    const topP = polyglot(...base, '--max-new-tokens', '4', '--top-p', '2');
    expect(topP.code).to.equal(2);
    expect(topP.stderr).to.match(
      /^polyglot: error: --top-p: invalid sampling parameter top_p: must be in \(0, 1\]/,
    );
    const notInt = polyglot(...base, '--max-new-tokens', 'many');
    expect(notInt.code).to.equal(2);
    expect(notInt.stderr).to.include('--max-new-tokens must be an integer');
    const minMax = polyglot(...base, '--max-new-tokens', '4', '--min-new-tokens', '5');
    expect(minMax.code).to.equal(2);
    expect(minMax.stderr).to.include('--min-new-tokens');
    const backend = polyglot(...base, '--max-new-tokens', '4', '--backend', 'gpu');
    expect(backend.code).to.equal(2);
    expect(backend.stderr).to.include('auto, tensorflow, webgpu, wasm, cpu');
    const missing = polyglot('infer', 'generate', '--model', model, '--input', input);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.include('--max-new-tokens');
  });

  it('--help lists the flags', () => {
    const gen = polyglot('infer', 'generate', '--help');
    expect(gen.code).to.equal(0);
    for (const flag of [
      '--model',
      '--adapter',
      '--input',
      '--out',
      '--backend',
      '--batch-size',
      '--max-new-tokens',
      '--min-new-tokens',
      '--temperature',
      '--top-k',
      '--top-p',
      '--frequency-penalty',
      '--presence-penalty',
      '--repetition-penalty',
      '--seed',
      '--stop',
      '--ignore-eos',
      '--logprobs',
    ]) {
      expect(gen.stdout).to.include(flag);
    }
    const score = polyglot('infer', 'score', '--help');
    expect(score.code).to.equal(0);
    for (const flag of ['--model', '--adapter', '--input', '--out', '--backend', '--batch-size']) {
      expect(score.stdout).to.include(flag);
    }
    const family = polyglot('infer', '--help');
    expect(family.stdout)
      .to.match(/score/)
      .and.match(/generate/)
      .and.match(/serve/)
      .and.match(/run/);
    expect(family.stdout).to.not.match(/score.*planned/);
    expect(family.stdout).to.not.match(/planned/);
    // serve and run are available (infer-serve-run.test.ts): without their required flags, usage errors.
    const serve = polyglot('infer', 'serve');
    expect(serve.code).to.equal(2);
    expect(serve.stderr).to.include('--model');
  });
});
