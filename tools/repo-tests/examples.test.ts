// The examples run as documented (they use only the packages' public APIs, so they break when an API does).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot, sharedPath } from '../shared.js';

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
