import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { repoRoot, sharedPath } from '../../../tools/shared.js';
import { inProcess, spawnCli as polyglot } from './helpers/cli.js';

const version = JSON.parse(
  readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../package.json'), 'utf8'),
).version;

/** Runs the built binary the way a user does. */

const FAMILIES = ['model', 'data', 'lid', 'sft', 'merge', 'infer', 'tasks', 'judge', 'plot', 'reproduce'];

describe('polyglot binary', () => {
  it('--version prints the package version', () => {
    const r = polyglot('--version');
    expect(r.code).to.equal(0);
    expect(r.stdout.trim()).to.equal(version);
  });

  it('--help lists every command family', () => {
    const r = polyglot('--help');
    expect(r.code).to.equal(0);
    for (const f of FAMILIES) expect(r.stdout).to.match(new RegExp(`^\\s+${f}\\b`, 'm'));
  });

  it('every family and subcommand has --help', async () => {
    for (const f of FAMILIES) {
      const r = await inProcess(f, '--help');
      expect(r.code, f).to.equal(0);
      expect(r.stdout, f).to.include(`Usage: polyglot ${f}`);
    }
    for (const sub of [
      ['model', 'inspect'],
      ['model', 'tokenize'],
      ['infer', 'generate'],
      ['sft', 'train'],
    ]) {
      const r = await inProcess(...sub, '--help');
      expect(r.code, sub.join(' ')).to.equal(0);
      expect(r.stdout).to.include(`Usage: polyglot ${sub.join(' ')}`);
    }
  });

  it('an unknown command is a usage error (exit 2)', () => {
    const r = polyglot('frobnicate');
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include("unknown command 'frobnicate'");
  });

  it('a missing required option is a usage error', async () => {
    const r = await inProcess('model', 'tokenize', '/tmp');
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('--text');
  });

  it('runs from the repository root as `pnpm polyglot`', () => {
    const r = spawnSync('pnpm', ['--silent', 'polyglot', '--version'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).to.equal(0);
    expect(r.stdout.trim()).to.equal(version);
  });
});

describe('polyglot model', () => {
  it('inspect prints the architecture of the tiny fixture', function () {
    const dir = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const r = polyglot('model', 'inspect', dir);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('LlamaForCausalLM');
    expect(r.stdout).to.match(/hidden\w*\W+64\b/i);
    expect(r.stdout).to.match(/layers\W+2\b/i);
    expect(r.stdout).to.include('model-00001-of-00003.safetensors');
    expect(r.stdout).to.include('32000');
  });

  it('inspect --json gives the parameter count from the shapes and a tokenizer summary', async function () {
    const dir = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const r = await inProcess('model', 'inspect', dir, '--json');
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout);
    // embed + lm_head + 2 × (q,k,v,o + gate,up,down + 2 norms) + final norm
    const h = 64;
    const kv = 2 * 16;
    const layer = h * h + 2 * h * kv + h * h + 3 * h * 176 + 2 * h;
    expect(report.parameterCount).to.equal(2 * 32000 * h + 2 * layer + h);
    expect(report.tokenizer.vocabSize).to.equal(32000);
  });

  it('inspect of a PEFT adapter directory summarises the adapter', async function () {
    const dir = sharedPath(this, 'fixtures', 'tiny-llama', 'adapter');
    const r = await inProcess('model', 'inspect', dir, '--json');
    expect(r.code, r.stderr).to.equal(0);
    const s = JSON.parse(r.stdout);
    expect(s).to.include({ kind: 'PEFT LoRA adapter', r: 8, loraAlpha: 16, modules: 14 });
    expect(s.scales).to.deep.equal([2]);
    // 2 layers × (q,k,v,o: r·(64+64|32) …): A is [8, in], B is [out, 8]
    const per = (i: number, o: number) => 8 * i + o * 8;
    expect(s.parameters).to.equal(2 * (per(64, 64) * 2 + per(64, 32) * 2 + per(64, 176) * 2 + per(176, 64)));
  });

  it('tokenize prints the ids of the reference tokenizer', function () {
    const dir = sharedPath(this, 'fixtures', 'llama2-tokenizer');
    const ref = JSON.parse(readFileSync(path.join(dir, 'reference.json'), 'utf8'));
    const c = ref.cases.find((x: { text: string }) => x.text.length > 5 && !x.text.includes('\n'));
    const r = polyglot('model', 'tokenize', dir, '--text', c.text);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal(c.ids);
    const noBos = polyglot('model', 'tokenize', dir, '--text', c.text, '--no-special');
    expect(JSON.parse(noBos.stdout)).to.deep.equal(c.ids.slice(1));
    const dec = polyglot('model', 'decode', dir, '--ids', JSON.stringify(c.ids), '--skip-special');
    expect(JSON.parse(dec.stdout)).to.equal(c.decoded);
  });

  it('inspect of a missing directory is one clear line, no stack trace, exit 1', () => {
    const r = polyglot('model', 'inspect', '/nonexistent/model-dir');
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^polyglot: error: .*\/nonexistent\/model-dir/);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.not.include('    at ');
  });

  it('decode rejects ids that are not a JSON integer array', async function () {
    const dir = sharedPath(this, 'fixtures', 'llama2-tokenizer');
    const r = await inProcess('model', 'decode', dir, '--ids', '[1, "a"]');
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('--ids must be a JSON array');
  });
});
