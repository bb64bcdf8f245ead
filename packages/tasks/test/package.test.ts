import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalEngine } from '@polyglot/infer';
import { expect } from 'chai';
import { repoRoot, sharedPath } from '../../../tools/shared.js';
import { isPolyglotError, loadTaskPackage, runTasks, TaskRegistry } from '../src/index.js';

const EXAMPLE = path.join(repoRoot, 'examples', 'task-package');

describe('task packages', () => {
  it('loads the example package by path: its JavaScript tasks and its YAML folder', async () => {
    const p = await loadTaskPackage(EXAMPLE);
    expect(p).to.deep.include({ name: 'polyglot-task-example', version: '0.1.0' });
    expect(p.tasks.map((t) => [t.name, t.outputType, t.source])).to.deep.equal([
      ['capitals', 'generate_until', 'polyglot-task-example'],
      ['capitals_mc', 'multiple_choice', `polyglot-task-example (${path.join('yaml', 'capitals_mc.yaml')})`],
    ]);
    expect(p.groups).to.deep.equal({ capitals_suite: ['capitals_mc'] });
    // by a relative path too, and by name where installed
    const rel = await loadTaskPackage('./task-package', path.join(repoRoot, 'examples'));
    expect(rel.tasks).to.have.length(2);
    try {
      await loadTaskPackage('polyglot-task-not-installed', repoRoot);
      throw new Error('expected an error');
    } catch (e) {
      expect(isPolyglotError(e)).to.equal(true);
      expect((e as Error).message).to.include('npm install polyglot-task-not-installed');
    }
  });

  it("runs the example's tasks on the tiny fixture model", async function () {
    const engine = await LocalEngine.load({
      model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
      backend: 'wasm',
    });
    const out = mkdtempSync(path.join(tmpdir(), 'polyglot-pkg-'));
    try {
      const registry = TaskRegistry.withBuiltins();
      await registry.addTaskPackage(EXAMPLE);
      const r = await runTasks({
        tasks: registry.resolve(['capitals', 'capitals_suite'], ['is']),
        engine,
        outputDir: out,
        limit: 2,
        genKwargs: { max_tokens: 4 },
      });
      expect(Object.keys(r.results)).to.deep.equal(['capitals_is', 'capitals_mc']);
      expect(r.results.capitals_is).to.have.keys(
        'alias',
        'exact_match,none',
        'exact_match_stderr,none',
        'f1,none',
        'f1_stderr,none',
      );
      expect(r.results.capitals_mc).to.have.property('acc,none');
      expect(r.configs.capitals_mc).to.deep.include({ task: 'capitals_mc', output_type: 'multiple_choice' });
    } finally {
      await engine.close();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
