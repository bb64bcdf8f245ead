import { expect } from 'chai';
import {
  defineTask,
  isPolyglotError,
  type Task,
  TaskRegistry,
  taskVariants,
  xcsqaTask,
  xnliTask,
  xquadTask,
} from '../src/index.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isPolyglotError(e), String(e)).to.equal(true);
    return (e as { code: string }).code;
  }
  throw new Error('expected an error');
}

const names = (t: Task, specs?: string[]) => taskVariants(t, specs).map((v) => v.name);

describe('language variants', () => {
  it('read de, en:de, all and en:all', () => {
    expect(names(xquadTask, ['de', 'en:de', 'de'])).to.deep.equal(['xquad_de', 'xquad_en_de']);
    expect(taskVariants(xquadTask, ['en:zh'])[0]).to.deep.equal({
      task: 'xquad',
      name: 'xquad_en_zh',
      lang: 'zh',
      promptLang: 'en',
    });
    expect(names(xquadTask, ['all'])).to.have.length(12);
    expect(names(xquadTask, ['en:all']))
      .to.include.members(['xquad_en', 'xquad_en_th'])
      .and.have.length(12);
    expect(names(xnliTask)).to.deep.equal([
      'xnli_bg',
      'xnli_de',
      'xnli_el',
      'xnli_en',
      'xnli_es',
      'xnli_fr',
      'xnli_hi',
      'xnli_ru',
      'xnli_zh',
    ]);
  });

  it('refuse unknown languages, pairs on tasks without them, and data without a prompt template', () => {
    expect(code(() => taskVariants(xquadTask, ['xx']))).to.equal('unknown-language');
    expect(code(() => taskVariants(xquadTask, ['en:is']))).to.equal('unknown-language');
    expect(code(() => taskVariants(xnliTask, ['en:de']))).to.equal('not-cross-lingual');
    expect(code(() => taskVariants(xcsqaTask, ['sw']))).to.equal('unknown-language');
    expect(names(xcsqaTask, ['en:sw'])).to.deep.equal(['xcsqa_en_sw']);
    expect(names(xcsqaTask, ['all'])).to.not.include('xcsqa_sw');
  });
});

describe('task registry', () => {
  it('holds the built-ins and resolves tasks, variant names and groups', () => {
    const r = TaskRegistry.withBuiltins();
    expect(r.list().map((t) => t.name)).to.deep.equal(['chat', 'xcsqa', 'xcsqa_mc', 'xquad', 'xnli']);
    const sel = r.resolve(['xquad_en_de', 'xquad_de', 'xcsqa_mc_fr', 'xnli'], ['de']);
    expect(sel.map((s) => [s.task.name, s.variants.map((v) => v.name)])).to.deep.equal([
      ['xquad', ['xquad_en_de', 'xquad_de']],
      ['xcsqa_mc', ['xcsqa_mc_fr']],
      ['xnli', ['xnli_de']],
    ]);
    r.registerGroup('paper', ['xnli', 'xquad']);
    expect(r.resolve(['paper'], ['en']).map((s) => s.variants[0]!.name)).to.deep.equal([
      'xnli_en',
      'xquad_en',
    ]);
    expect(code(() => r.resolve(['nope']))).to.equal('unknown-task');
    expect(code(() => r.register(xnliTask))).to.equal('duplicate-task');
  });

  it('checks task definitions', () => {
    const ok = {
      name: 'mine',
      outputType: 'generate_until' as const,
      metrics: [{ name: 'acc' }],
      loadDocs: async () => [],
      buildRequest: () => ({ type: 'generate_until' as const, prompt: 'x', params: {} }),
      process: () => ({ filtered: {}, scores: {} }),
    };
    expect(defineTask(ok)).to.deep.include({ name: 'mine', version: 1, languages: [] });
    expect(code(() => defineTask({ ...ok, name: 'a b' }))).to.equal('bad-task');
    expect(code(() => defineTask({ ...ok, metrics: [] }))).to.equal('bad-task');
    expect(code(() => defineTask({ ...ok, languages: ['German'] }))).to.equal('bad-task');
    expect(code(() => defineTask({ ...ok, outputType: 'greedy' as never }))).to.equal('bad-task');
  });
});
