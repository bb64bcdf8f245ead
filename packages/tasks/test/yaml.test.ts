import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalEngine } from '@polyglot/infer';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  applyFilterPipeline,
  isPolyglotError,
  loadYamlDir,
  parsePythonLiteral,
  readYamlConfig,
  renderJinja,
  runTasks,
  stringifyYaml,
  type Task,
  type TaskContext,
  TaskRegistry,
  taskVariants,
  yamlTask,
} from '../src/index.js';

async function rejects(p: Promise<unknown>, code: string, fragment = ''): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(isPolyglotError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code, String(e)).to.equal(code);
    expect((e as Error).message).to.include(fragment);
    return (e as Error).message;
  }
  throw new Error(`expected ${code}`);
}

const ctx: TaskContext = { dataDir: '/nonexistent', options: {} };

function write(dir: string, rel: string, text: string): string {
  const f = path.join(dir, rel);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, text);
  return f;
}

const common = (data: string) => `dataset_path: json
dataset_kwargs:
  data_files:
    test: ${data}
    train: ${data}
test_split: test
metadata:
  version: 2.0
`;

const GEN = `include: _common_yaml
task: arith_gen
tag: [arith_suite]
output_type: generate_until
description: "Solve.\\n\\n"
doc_to_text: "Q: {{ question }}\\nA:"
doc_to_target: "{{ answer }}"
generation_kwargs:
  until: ["\\n\\n", "Q:"]
  max_gen_toks: 12
  do_sample: false
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: take_first
  - name: flexible
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
        group_select: -1
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
`;

const MC = `include: ../_common_yaml
task: arith_mc
output_type: multiple_choice
num_fewshot: 1
fewshot_config:
  sampler: first_n
doc_to_text: "{{ question }} ="
doc_to_choice: "{{ [wrong, answer, 'never ' + answer] }}"
doc_to_target: 1
`;

const LL = `include: _common_yaml
task: arith_ll
output_type: loglikelihood
doc_to_text: question
doc_to_target: answer
`;

const PY = `task: needs_python
dataset_path: json
dataset_kwargs: {data_files: {test: ../data/arith.jsonl}}
test_split: test
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
`;

const ARITH = [
  { question: '2 + 2', answer: '4', wrong: '5' },
  { question: '3 * 3', answer: '9', wrong: '6' },
  { question: '10 - 7', answer: '3', wrong: '2' },
];

describe('YAML tasks (lm-evaluation-harness format)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'polyglot-yaml-'));
    write(dir, 'data/arith.jsonl', `${ARITH.map((r) => JSON.stringify(r)).join('\n')}\n`);
    write(dir, 'tasks/_common_yaml', common(path.join(dir, 'data', 'arith.jsonl')));
    write(dir, 'tasks/arith_gen.yaml', GEN);
    write(dir, 'tasks/mc/arith_mc.yaml', MC);
    write(dir, 'tasks/arith_ll.yml', LL);
    write(dir, 'tasks/needs_python.yaml', PY);
    write(dir, 'tasks/group.yaml', 'group: arith_all\ntask: [arith_gen, arith_mc]\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a folder: includes merged, tags and groups registered, fragments skipped', async () => {
    const r = await loadYamlDir(path.join(dir, 'tasks'));
    expect(r.tasks.map((t) => t.name).sort()).to.deep.equal([
      'arith_gen',
      'arith_ll',
      'arith_mc',
      'needs_python',
    ]);
    expect(r.groups).to.deep.equal({ arith_all: ['arith_gen', 'arith_mc'], arith_suite: ['arith_gen'] });
    const gen = r.tasks.find((t) => t.name === 'arith_gen')!;
    expect(gen).to.deep.include({ version: 2, outputType: 'generate_until', numFewshot: 0 });
    expect(gen.filters).to.deep.equal(['strict-match', 'flexible']);
    expect(gen.generation!.params).to.deep.equal({ stop: ['\n\n', 'Q:'], max_tokens: 12, temperature: 0 });
    const registry = TaskRegistry.withBuiltins();
    await registry.addIncludePath(path.join(dir, 'tasks'));
    expect(registry.resolve(['arith_all']).map((s) => s.task.name)).to.deep.equal(['arith_gen', 'arith_mc']);
  });

  it('builds requests with descriptions, few-shot examples, Jinja choices and delimiters', async () => {
    const r = await loadYamlDir(path.join(dir, 'tasks'));
    const get = (n: string) => r.tasks.find((t) => t.name === n)!;
    const run = async (t: Task) => {
      const [v] = taskVariants(t);
      const docs = await t.loadDocs(v!, ctx);
      return { v: v!, docs, reqs: docs.map((d, i) => t.buildRequest(d, v!, ctx, i)) };
    };
    const gen = await run(get('arith_gen'));
    expect(gen.reqs[0]).to.deep.equal({
      type: 'generate_until',
      prompt: 'Solve.\n\nQ: 2 + 2\nA:',
      params: { stop: ['\n\n', 'Q:'], max_tokens: 12, temperature: 0 },
      trim: false,
    });
    const mc = await run(get('arith_mc'));
    expect(mc.reqs[1]).to.deep.equal({
      type: 'multiple_choice',
      context: '2 + 2 = 4\n\n3 * 3 =',
      choices: [' 6', ' 9', ' never 9'],
    });
    expect(mc.reqs[0]).to.deep.include({ context: '3 * 3 = 9\n\n2 + 2 =' });
    const ll = await run(get('arith_ll'));
    expect(ll.reqs[2]).to.deep.equal({ type: 'loglikelihood', context: '10 - 7', continuation: ' 3' });
  });

  it('filters and scores responses as lm-evaluation-harness does', async () => {
    const r = await loadYamlDir(path.join(dir, 'tasks'));
    const gen = r.tasks.find((t) => t.name === 'arith_gen')!;
    const [v] = taskVariants(gen);
    const doc = ARITH[0]!;
    const p = await gen.process(doc, { type: 'generate_until', text: 'We add: 2 and 2.\n#### 4' }, v!, ctx);
    expect(p.filtered).to.deep.equal({ 'strict-match': '4', flexible: '4' });
    expect(p.scores).to.deep.equal({ 'exact_match,strict-match': 1, 'exact_match,flexible': 1 });
    const q = await gen.process(doc, { type: 'generate_until', text: 'It is 5, or maybe 4' }, v!, ctx);
    expect(q.filtered).to.deep.equal({ 'strict-match': '[invalid]', flexible: '4' });
    const mc = r.tasks.find((t) => t.name === 'arith_mc')!;
    const m = await mc.process(
      doc,
      { type: 'multiple_choice', logprobs: [-3, -2, -1], is_greedy: [false, false, false] },
      v!,
      ctx,
    );
    // acc: choice 2 (−1) is the most likely, not the gold 1; acc_norm (per character of '6', '9', 'never 9'): −1/7 wins.
    expect(m.scores).to.deep.equal({ 'acc,none': 0, 'acc_norm,none': 0 });
    const m2 = await mc.process(
      doc,
      { type: 'multiple_choice', logprobs: [-3, -1.5, -20], is_greedy: [false, true, false] },
      v!,
      ctx,
    );
    expect(m2.scores).to.deep.equal({ 'acc,none': 1, 'acc_norm,none': 1 });
    const ll = r.tasks.find((t) => t.name === 'arith_ll')!;
    const l = await ll.process(doc, { type: 'loglikelihood', logprob: -2.5, is_greedy: true }, v!, ctx);
    expect(l.scores).to.deep.equal({ 'perplexity,none': -2.5, 'acc,none': 1 });
  });

  it('regex filters follow Python re.findall: groups, group_select, fallback', () => {
    const pipe = (step: Record<string, unknown>) => ({
      name: 'x',
      filter: [{ function: 'regex', ...step }, { function: 'take_first' }],
    });
    expect(applyFilterPipeline(pipe({ regex_pattern: '(\\d+)' }), ['a 1 b 22'])).to.equal('1');
    expect(applyFilterPipeline(pipe({ regex_pattern: '(\\d+)', group_select: -1 }), ['a 1 b 22'])).to.equal(
      '22',
    );
    expect(applyFilterPipeline(pipe({ regex_pattern: '(a)|(b)' }), ['b'])).to.equal('b');
    expect(applyFilterPipeline(pipe({ regex_pattern: 'x+', fallback: 'none' }), ['abc'])).to.equal('none');
    expect(
      applyFilterPipeline(
        {
          name: 'l',
          filter: [{ function: 'lowercase' }, { function: 'majority_vote' }, { function: 'take_first' }],
        },
        ['A', 'b', 'a'],
      ),
    ).to.equal('a');
  });

  it('renders Jinja strictly and reads Python literals', () => {
    expect(renderJinja('{{ a }} and {{ b|upper }}\n', { a: 1, b: 'x' })).to.equal('1 and X\n');
    expect(() => renderJinja('{{ missing }}', { a: 1 }, 'task t: doc_to_text')).to.throw(
      /undefined variable "missing".*fields a/,
    );
    expect(parsePythonLiteral("['a', \"b'c\", 3, True, None, (1, 2)]")).to.deep.equal([
      'a',
      "b'c",
      3,
      true,
      null,
      [1, 2],
    ]);
    expect(() => parsePythonLiteral('[1, 2')).to.throw(/Python literal/);
  });

  it('names what cannot run here: Python hooks, hub datasets, unknown metrics', async () => {
    const r = await loadYamlDir(path.join(dir, 'tasks'));
    const py = r.tasks.find((t) => t.name === 'needs_python')!;
    await rejects(py.loadDocs(taskVariants(py)[0]!, ctx), 'unsupported-task', 'utils.doc_to_text');
    const hub = yamlTask({
      task: 'hub',
      dataset_path: 'facebook/xnli',
      test_split: 'test',
      doc_to_text: 'x',
    });
    await rejects(hub.loadDocs(taskVariants(hub)[0]!, ctx), 'data-missing', 'local data only');
    expect(() =>
      yamlTask({ task: 'bad', output_type: 'multiple_choice', metric_list: [{ metric: 'bleu' }] }),
    ).to.throw(/not available/);
    expect(() => yamlTask({ task: 'bad', output_type: 'guess' })).to.throw(/output_type/);
  });

  it('round-trips: a loaded task written back as YAML loads to the same requests and scores', async () => {
    const file = path.join(dir, 'tasks', 'mc', 'arith_mc.yaml');
    const a = yamlTask(await readYamlConfig(file), { file });
    const copy = write(
      dir,
      'tasks/mc/copy/arith_mc_copy.yaml',
      stringifyYaml({ ...a.config!(taskVariants(a)[0]!), task: 'arith_mc_copy' }),
    );
    expect(readFileSync(copy, 'utf8')).to.include('doc_to_choice:');
    const b = yamlTask(await readYamlConfig(copy), { file: copy, baseDir: path.dirname(file) });
    const [va] = taskVariants(a);
    const [vb] = taskVariants(b);
    const da = await a.loadDocs(va!, ctx);
    const db = await b.loadDocs(vb!, ctx);
    expect(db).to.deep.equal(da);
    expect(db.map((d, i) => b.buildRequest(d, vb!, ctx, i))).to.deep.equal(
      da.map((d, i) => a.buildRequest(d, va!, ctx, i)),
    );
    expect(b.metrics).to.deep.equal(a.metrics);
  });

  describe('multiple choice on the tiny fixture model', () => {
    let engine: LocalEngine;
    before(async function () {
      engine = await LocalEngine.load({
        model: sharedPath(this, 'fixtures', 'tiny-llama', 'base'),
        backend: 'wasm',
        seed: 1,
      });
    });
    after(async () => engine?.close());

    it('picks the option that is the greedy continuation, forced by construction', async function () {
      const ref = JSON.parse(
        readFileSync(sharedPath(this, 'fixtures', 'tiny-llama', 'reference.json'), 'utf8'),
      ) as {
        prompts: string[];
        base: { greedy_new_ids: number[] }[];
      };
      const tok = engine.tokenizer;
      const distractors = [
        ' the weather is nice today and tomorrow it will rain again',
        ' Lorem ipsum dolor sit amet consectetur adipiscing elit sed do',
      ];
      // Prompts whose greedy continuation tokenizes back to the same ids after the prompt (checked below).
      const rows = [0, 1, 3].map((k, i) => {
        const prompt = ref.prompts[k]!;
        const ids = tok.encode(prompt);
        const greedy = tok.decode([...ids, ...ref.base[k]!.greedy_new_ids].slice(1)).slice(prompt.length);
        expect(tok.encode(prompt + greedy).slice(ids.length)).to.deep.equal(ref.base[k]!.greedy_new_ids);
        const choices = [...distractors];
        choices.splice(i, 0, greedy);
        return { prompt, choices, label: i };
      });
      write(dir, 'forced/data.jsonl', `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
      write(
        dir,
        'forced/forced.yaml',
        'task: forced\ndataset_path: ./data.jsonl\ntest_split: test\noutput_type: multiple_choice\n' +
          'doc_to_text: prompt\ndoc_to_choice: choices\ndoc_to_target: label\ntarget_delimiter: ""\n',
      );
      const registry = new TaskRegistry();
      await registry.addIncludePath(path.join(dir, 'forced'));
      const out = path.join(dir, 'forced-out');
      const results = await runTasks({
        tasks: registry.resolve(['forced']),
        engine,
        outputDir: out,
        engineSpec: 'local:tiny',
      });
      expect(results.results.forced).to.deep.include({ 'acc,none': 1, 'acc_norm,none': 1 });
      const samples = readFileSync(path.join(out, 'samples_forced.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(samples).to.have.length(3);
      for (const s of samples) {
        expect(s.response.is_greedy[s.doc.label], 'the forced continuation is greedy').to.equal(true);
        expect(s.filtered_response).to.equal(s.doc.label);
      }
    });
  });
});
