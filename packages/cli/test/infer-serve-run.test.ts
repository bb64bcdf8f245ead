import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { bin, spawnCli as polyglot } from './helpers/cli.js';

const rows = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Starts `polyglot infer serve … --port 0` and resolves with its URL once it listens. */
function serve(...args: string[]): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [bin, 'infer', 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve({ child, url: m[1], stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
}

describe('polyglot infer serve / run', () => {
  let model: string;
  let tmp: string;

  before(function () {
    model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-serve-run-'));
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("run (local engine): the paper's file names and lines; running again resumes with nothing to do", function () {
    const input = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const template = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
    const args = [
      'infer',
      'run',
      '--engine',
      `local:${model}`,
      '--model',
      'models/tiny-llama',
      '--input',
      input,
      '--prompt-template',
      template,
      '--output-dir',
      path.join(tmp, 'local'),
      '--max-new-tokens',
      '10',
      '--seeds',
      '0,723',
      '--batch-size',
      '4',
      '--limit',
      '5',
      '--backend',
      'wasm',
    ];
    const r = polyglot(...args);
    expect(r.code, r.stderr).to.equal(0);
    const dir = path.join(tmp, 'local', 'tiny-llama');
    expect(readdirSync(dir).sort()).to.deep.equal([
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s0-k50-p0.9-t0.8-b4.json',
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s0-k50-p0.9-t0.8-b4.jsonl',
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s723-k50-p0.9-t0.8-b4.json',
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s723-k50-p0.9-t0.8-b4.jsonl',
    ]);
    const file = path.join(
      dir,
      'alpaca_eval_instructions_is.head-none-guanaco_prompt-s0-k50-p0.9-t0.8-b4.jsonl',
    );
    const lines = rows(file);
    expect(lines).to.have.length(5);
    expect(Object.keys(lines[0])).to.deep.equal(['prompt', 'system', 'finish_reason', 'source', 'secs']);
    // Progress on stderr (JSON lines: not a TTY), one summary line per file on stdout.
    expect(r.stderr).to.match(/"items_per_s"/);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).generated),
    ).to.deep.equal([5, 5]);
    const again = polyglot(...args);
    expect(again.code, again.stderr).to.equal(0);
    expect(
      again.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).resumed),
    ).to.deep.equal([5, 5]);
    expect(rows(file)).to.deep.equal(lines);
  });

  it('serve + run with an openai: engine; SIGTERM stops the server cleanly', async function () {
    const input = path.join(tmp, 'items.jsonl');
    writeFileSync(
      input,
      ['Hallo!', 'Wie geht es dir?', 'Nenne drei Farben.']
        .map((q) => `${JSON.stringify({ instruction: q, answer: 'x' })}\n`)
        .join(''),
    );
    const server = await serve(
      '--model',
      model,
      '--backend',
      'wasm',
      '--served-model-name',
      'tiny',
      '--quiet',
    );
    try {
      const remote = polyglot(
        'infer',
        'run',
        '--engine',
        `openai:${server.url}`,
        '--input',
        input,
        '--prompt-template',
        sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt'),
        '--tgt-key',
        'answer',
        '--output-dir',
        path.join(tmp, 'remote'),
        '--max-new-tokens',
        '8',
        '--seeds',
        '42',
        '--temperature',
        '0',
        '--quiet',
      );
      expect(remote.code, remote.stderr).to.equal(0);
      // The model name comes from the server; greedy output equals the local engine's.
      const file = path.join(tmp, 'remote', 'tiny', 'items-none-guanaco_prompt-s42-k50-p0.9-t0.0-b8.jsonl');
      const got = rows(file);
      expect(got.map((l) => l.reference)).to.deep.equal(['x', 'x', 'x']);
      const local = polyglot(
        'infer',
        'run',
        '--engine',
        `local:${model}`,
        '--model',
        'tiny',
        '--input',
        input,
        '--prompt-template',
        sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt'),
        '--tgt-key',
        'answer',
        '--output-dir',
        path.join(tmp, 'local-greedy'),
        '--max-new-tokens',
        '8',
        '--seeds',
        '42',
        '--temperature',
        '0',
        '--backend',
        'wasm',
        '--quiet',
      );
      expect(local.code, local.stderr).to.equal(0);
      const want = rows(path.join(tmp, 'local-greedy', 'tiny', path.basename(file)));
      expect(got.map((l) => l.system)).to.deep.equal(want.map((l) => l.system));
    } finally {
      const exited = new Promise<number | null>((resolve) =>
        server.child.on('exit', (code) => resolve(code)),
      );
      server.child.kill('SIGTERM');
      expect(await exited, server.stderr()).to.equal(0);
    }
    expect(server.stderr()).to.include('SIGTERM');
  });

  it('bad flags and specs are one-line errors', () => {
    const seeds = polyglot(
      'infer',
      'run',
      '--engine',
      `local:${model}`,
      '--input',
      'x',
      '--prompt-template',
      'y',
      '--output-dir',
      tmp,
      '--seeds',
      '1,a',
    );
    expect(seeds.code).to.equal(2);
    expect(seeds.stderr).to.include('--seeds');
    const spec = polyglot(
      'infer',
      'run',
      '--engine',
      'vllm:http://x',
      '--input',
      'x',
      '--prompt-template',
      'y',
      '--output-dir',
      tmp,
    );
    expect(spec.code).to.equal(1);
    expect(spec.stderr).to.match(/^polyglot: error: .*unknown engine "vllm"/);
    const temp = polyglot(
      'infer',
      'run',
      '--engine',
      `local:${model}`,
      '--input',
      'x',
      '--prompt-template',
      'y',
      '--output-dir',
      tmp,
      '--top-p',
      '2',
    );
    expect(temp.code).to.equal(2);
    expect(temp.stderr).to.include('--top-p');
    const text = polyglot('infer', 'serve', '--model', model, '--chat-template', path.join(tmp, 'nope.txt'));
    expect(text.code).to.equal(1);
    expect(text.stderr).to.include('no such template file');
    const adapter = polyglot('infer', 'serve', '--model', model, '--adapter', 'just-a-dir');
    expect(adapter.code).to.equal(2);
    expect(adapter.stderr).to.include('NAME=DIR');
  });
});
