import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SafetensorsFile } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { parseAdapterFlag } from '../src/commands/merge.js';
import { inProcess, spawnCli as polyglot } from './helpers/cli.js';

/** Runs the built binary the way a user does. */

const tiny = (ctx: Mocha.Context, ...parts: string[]) => sharedPath(ctx, 'fixtures', 'tiny-llama', ...parts);

describe('polyglot merge', () => {
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-cli-merge-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('merges the fixture adapter (--verify --json): PEFT’s tensors within 1e-5, progress per shard on stderr', async function () {
    const out = path.join(tmp, 'merged');
    const r = polyglot(
      'merge',
      '--base',
      tiny(this, 'base'),
      '--adapter',
      tiny(this, 'adapter'),
      '--out',
      out,
      '--verify',
      '--json',
    );
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout);
    expect(report).to.include({ tensorsMerged: 14, tensorsCopied: 7, dtype: 'float32', dryRun: false });
    expect(report.verify).to.include({ tensors: 21, identical: 21 });
    const lines = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => `${l.progress} ${l.done}/${l.total}`)).to.deep.equal([
      'merge shards 1/3',
      'merge shards 2/3',
      'merge shards 3/3',
      'verify shards 1/3',
      'verify shards 2/3',
      'verify shards 3/3',
    ]);
    const peft = await SafetensorsFile.open(tiny(this, 'merged-by-peft', 'changed-tensors.safetensors'));
    const ours = await SafetensorsFile.open(path.join(out, 'model-00003-of-00003.safetensors'));
    try {
      for (const name of peft.names()) {
        const want = await peft.readFloat32(name);
        const got = await ours.readFloat32(name);
        for (let i = 0; i < want.length; i++) {
          expect(Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + 1e-3), name).to.be.below(1e-5);
        }
      }
    } finally {
      await peft.close();
      await ours.close();
    }
    expect(readdirSync(out)).to.include.members([
      'config.json',
      'tokenizer.json',
      'model.safetensors.index.json',
    ]);
  });

  it('--dry-run lists the tensors that would change with their scales and writes nothing', function () {
    const out = path.join(tmp, 'dry');
    const r = polyglot(
      'merge',
      '--base',
      tiny(this, 'base-bf16'),
      '--adapter',
      `${tiny(this, 'adapter')}:0.5`,
      '--out',
      out,
      '--dry-run',
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('tensors that would change (14)');
    expect(r.stdout).to.match(
      /model\.layers\.0\.self_attn\.q_proj\.weight BF16 \[64, 64\] in model\.safetensors: \+ 0\.5 × 2·B·A \(r 8, alpha 16\)/,
    );
    expect(r.stdout).to.include('would be written');
    expect(r.stdout).to.match(/tensors that would be copied byte for byte \(7\): lm_head\.weight, /);
    expect(r.stdout).to.include('config.json dtype: bfloat16');
    expect(existsSync(out)).to.equal(false);
  });

  it('several --adapter flags with weights; --dtype; --force replaces the output', async function () {
    const out = path.join(tmp, 'two');
    const args = ['merge', '--base', tiny(this, 'base'), '--out', out, '--json', '--dtype', 'bfloat16'];
    const adapters = ['--adapter', tiny(this, 'adapter'), '--adapter', `${tiny(this, 'adapter')}:-0.5`];
    const r = await inProcess(...args, ...adapters);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout);
    expect(report.merged[0].contributions.map((c: { weight: number }) => c.weight)).to.deep.equal([1, -0.5]);
    expect(report).to.include({ dtype: 'bfloat16', tensorsConverted: 7 });
    const again = await inProcess(...args, ...adapters);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(
      /^polyglot: error: output directory .* already exists.*--force to replace it\n$/,
    );
    const forced = await inProcess(...args, '--adapter', tiny(this, 'adapter'), '--force');
    expect(forced.code, forced.stderr).to.equal(0);
    expect(JSON.parse(forced.stdout).merged[0].contributions).to.have.length(1);
  });

  it('refusals are one line on stderr, exit 1 (a DoRA adapter)', function () {
    const dora = path.join(tmp, 'dora');
    cpSync(tiny(this, 'adapter'), dora, { recursive: true });
    const config = JSON.parse(readFileSync(path.join(dora, 'adapter_config.json'), 'utf8'));
    writeFileSync(path.join(dora, 'adapter_config.json'), JSON.stringify({ ...config, use_dora: true }));
    const r = polyglot(
      'merge',
      '--base',
      tiny(this, 'base'),
      '--adapter',
      dora,
      '--out',
      path.join(tmp, 'x'),
    );
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^polyglot: error: adapter .*dora: it is a DoRA adapter/);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(existsSync(path.join(tmp, 'x'))).to.equal(false);
  });

  it('usage errors exit 2: no --adapter, an unknown --dtype', async () => {
    const none = await inProcess('merge', '--base', '/b', '--out', '/o');
    expect(none.code).to.equal(2);
    expect(none.stderr).to.include('at least one --adapter');
    const dtype = await inProcess(
      'merge',
      '--base',
      '/b',
      '--adapter',
      '/a',
      '--out',
      '/o',
      '--dtype',
      'int4',
    );
    expect(dtype.code).to.equal(2);
    expect(dtype.stderr).to.include('--dtype must be one of keep, float32, float16, bfloat16');
  });

  it('--adapter DIR[:WEIGHT]: the weight only when a number follows the last colon', () => {
    expect(parseAdapterFlag('out/adapter')).to.deep.equal({ dir: 'out/adapter' });
    expect(parseAdapterFlag('out/adapter:0.5')).to.deep.equal({ dir: 'out/adapter', weight: 0.5 });
    expect(parseAdapterFlag('a:-1e-1')).to.deep.equal({ dir: 'a', weight: -0.1 });
    expect(parseAdapterFlag('runs/a:b')).to.deep.equal({ dir: 'runs/a:b' });
  });
});
