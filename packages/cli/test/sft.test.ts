import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { bin, inProcess, spawnCli as polyglot } from './helpers/cli.js';

function writeData(file: string, n: number): void {
  const words = ['red', 'green', 'blue', 'cat', 'dog', 'sun', 'moon', 'tree'];
  const lines = Array.from({ length: n }, (_, i) => {
    const w = `${words[i % 8]} ${words[(i * 3) % 8]} ${words[(i * 5 + 1) % 8]}`;
    return JSON.stringify({ prompt: `### Human: repeat ${w} ### Assistant:`, completion: ` ${w} ${w}` });
  });
  writeFileSync(file, `${lines.join('\n')}\n`);
}

function logWithoutTimes(out: string): unknown[] {
  return readFileSync(path.join(out, 'train-log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { secs: _secs, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
}

describe('polyglot sft', function () {
  this.timeout(300_000);
  let tmp = '';
  let data = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-cli-sft-'));
    data = path.join(tmp, 'train.jsonl');
    writeData(data, 64);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('train --help lists the paper defaults', async () => {
    const r = await inProcess('sft', 'train', '--help');
    expect(r.code).to.equal(0);
    for (const flag of [
      '--lora-r',
      '--target-modules',
      '--warmup-ratio',
      '--grad-accum',
      '--resume',
      '--loss',
      '--packing',
    ]) {
      expect(r.stdout).to.include(flag);
    }
    expect(r.stdout).to.match(/LoRA rank \(default 64\)/);
  });

  it('killed with SIGKILL after its first checkpoint, --resume ends with the adapter of an uninterrupted run', async function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const flags = (out: string) => [
      'sft',
      'train',
      '--model',
      base,
      '--data',
      data,
      '--out',
      out,
      '--backend',
      'wasm',
      '--lora-r',
      '4',
      '--lr',
      '5e-4',
      '--max-steps',
      '60',
      '--batch-size',
      '4',
      '--grad-accum',
      '2',
      '--no-sort-by-length',
      '--seed',
      '11',
      '--save-steps',
      '3',
    ];
    const whole = path.join(tmp, 'whole');
    const r = polyglot(...flags(whole));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/trained 60\/60 steps/);

    const killed = path.join(tmp, 'killed');
    const first = path.join(killed, 'checkpoints', 'checkpoint-3');
    const child = spawn(process.execPath, [bin, ...flags(killed)], { stdio: 'ignore' });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
      const timer = setInterval(() => {
        if (existsSync(first)) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 5);
      child.on('exit', (_code, sig) => {
        clearInterval(timer);
        resolve(sig);
      });
    });
    expect(signal, 'the run finished before it could be killed').to.equal('SIGKILL');
    expect(existsSync(path.join(killed, 'adapter_model.safetensors'))).to.equal(false);
    // Only complete checkpoints exist (written to a temporary folder, then renamed).
    expect(existsSync(path.join(first, 'trainer_state.json'))).to.equal(true);

    const resumed = polyglot(...flags(killed), '--resume');
    expect(resumed.code, resumed.stderr).to.equal(0);
    expect(resumed.stderr).to.match(/resumed from .*checkpoint-\d+ at step \d+/);
    expect(readFileSync(path.join(killed, 'adapter_model.safetensors'))).to.deep.equal(
      readFileSync(path.join(whole, 'adapter_model.safetensors')),
    );
    expect(readFileSync(path.join(killed, 'adapter_config.json'), 'utf8')).to.equal(
      readFileSync(path.join(whole, 'adapter_config.json'), 'utf8'),
    );
    expect(logWithoutTimes(killed)).to.deep.equal(logWithoutTimes(whole));

    // The adapter flows on: polyglot merge reads it.
    const merged = polyglot('merge', '--base', base, '--adapter', whole, '--out', path.join(tmp, 'merged'));
    expect(merged.code, merged.stderr).to.equal(0);
    expect(merged.stdout).to.match(/merged 14 tensors/);
  });

  it('bad flags and bad data are one-line errors', async function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const bad = path.join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"text": "ok"}\n{"question": "no"}\n');
    let r = await inProcess('sft', 'train', '--model', base, '--data', bad, '--out', path.join(tmp, 'o1'));
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^polyglot: error: .*bad\.jsonl:2: no usable field/);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    r = await inProcess(
      'sft',
      'train',
      '--model',
      base,
      '--data',
      data,
      '--out',
      path.join(tmp, 'o2'),
      '--target-modules',
      'q_proj,embed_tokens',
    );
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/unknown target module "embed_tokens"/);
    r = await inProcess(
      'sft',
      'train',
      '--model',
      base,
      '--data',
      data,
      '--out',
      path.join(tmp, 'o3'),
      '--lora-r',
      '0',
    );
    expect(r.code).to.equal(2);
  });

  it('export --to trl writes train_config.json and train_trl.py', async () => {
    const out = path.join(tmp, 'trl');
    const r = await inProcess(
      'sft',
      'export',
      '--to',
      'trl',
      '--model',
      '/m',
      '--data',
      data,
      '--out',
      out,
      '--lora-r',
      '16',
    );
    expect(r.code, r.stderr).to.equal(0);
    const cfg = JSON.parse(readFileSync(path.join(out, 'train_config.json'), 'utf8'));
    expect(cfg.lora.r).to.equal(16);
    expect(cfg.sft_config.learning_rate).to.equal(1e-5);
    expect(existsSync(path.join(out, 'train_trl.py'))).to.equal(true);
  });
});
