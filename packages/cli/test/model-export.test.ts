// polyglot model export --to gguf: the GGUF export of a checkpoint (and of an adapter), checked with our reader;
// and the exported file as a `llamacpp:` engine of `polyglot infer run`, which samples as the local engine does.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readGgufHeader } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { inProcess } from './helpers/cli.js';

describe('polyglot model export', function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-export-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('--to gguf writes a llama.cpp model file (q8_0) and prints a summary', async function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const out = path.join(tmp, 'tiny.gguf');
    const r = await inProcess(
      'model',
      'export',
      '--to',
      'gguf',
      '--model',
      base,
      '--out',
      out,
      '--dtype',
      'q8_0',
    );
    expect(r.code, r.stderr).to.equal(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).to.include({ file: out, dtype: 'q8_0', tokenizer: 'llama' });
    expect(summary.tensors).to.deep.equal({ F32: 5, Q8_0: 14, F16: 2 });
    const h = await readGgufHeader(out);
    expect(h.metadata.get('general.architecture')).to.equal('llama');
    expect(h.metadata.get('general.file_type')).to.equal(7);
    expect(r.stderr).to.match(/tensors/); // progress lines (JSON off a TTY)
  });

  it('--adapter writes a llama.cpp LoRA adapter; bad flags are usage errors', async function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const adapter = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const out = path.join(tmp, 'lora.gguf');
    const r = await inProcess(
      'model',
      'export',
      '--to',
      'gguf',
      '--model',
      base,
      '--adapter',
      adapter,
      '--out',
      out,
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.include({ alpha: 16, modules: 14 });
    expect((await readGgufHeader(out)).metadata.get('adapter.type')).to.equal('lora');
    const bad = await inProcess(
      'model',
      'export',
      '--to',
      'onnx',
      '--model',
      base,
      '--out',
      path.join(tmp, 'x'),
    );
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('--to must be gguf');
    const badType = await inProcess(
      'model',
      'export',
      '--to',
      'gguf',
      '--model',
      base,
      '--out',
      'x',
      '--dtype',
      'q4',
    );
    expect(badType.code).to.equal(2);
    expect(badType.stderr).to.include('--dtype must be one of f32, f16, q8_0');
    const missing = await inProcess(
      'model',
      'export',
      '--to',
      'gguf',
      '--model',
      path.join(tmp, 'nope'),
      '--out',
      path.join(tmp, 'n.gguf'),
    );
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include('nope');
    expect(existsSync(path.join(tmp, 'n.gguf'))).to.equal(false);
  });

  it('infer run --engine llamacpp:FILE.gguf writes the same runs as local: (same seeds, same text)', async function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const input = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const template = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
    const gguf = path.join(tmp, 'tiny-f32.gguf');
    const e = await inProcess(
      'model',
      'export',
      '--to',
      'gguf',
      '--model',
      base,
      '--out',
      gguf,
      '--dtype',
      'f32',
      '--quiet',
    );
    expect(e.code, e.stderr).to.equal(0);
    const before = process.env.POLYGLOT_LLAMACPP_THREADS;
    process.env.POLYGLOT_LLAMACPP_THREADS = '1'; // a shared test machine: llama.cpp's threads spin
    try {
      const common = [
        '--model',
        'tiny',
        '--input',
        input,
        '--prompt-template',
        template,
        '--max-new-tokens',
        '8',
      ];
      const more = ['--seeds', '0', '--batch-size', '3', '--limit', '3', '--quiet'];
      const runs: Record<string, string[]> = {};
      for (const engine of [`llamacpp:${gguf}`, `local:${base}`]) {
        const out = path.join(tmp, engine.split(':')[0]!);
        const args = ['infer', 'run', '--engine', engine, ...common, '--output-dir', out, ...more];
        const r = await inProcess(...(engine.startsWith('local') ? [...args, '--backend', 'cpu'] : args));
        expect(r.code, r.stderr).to.equal(0);
        const file = JSON.parse(r.stdout.trim().split('\n')[0]!).file as string;
        runs[engine.split(':')[0]!] = readFileSync(path.resolve(file), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).source as string);
      }
      expect(runs.llamacpp).to.have.length(3);
      expect(runs.llamacpp).to.deep.equal(runs.local);
    } finally {
      if (before === undefined) delete process.env.POLYGLOT_LLAMACPP_THREADS;
      else process.env.POLYGLOT_LLAMACPP_THREADS = before;
    }
  });
});
