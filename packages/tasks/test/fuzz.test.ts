// Property-based and fuzz tests of YAML task files (lm-evaluation-harness format): YAML parsing (aliases,
// recursion, deep nesting), `include` chains, the task built from a config (doc_to_*, metric_list, filter_list,
// generation_kwargs), the Jinja it renders and the Python literals it reads back. Every input must load (and
// then build requests and score) or raise a TasksError — never another exception or a hang (mocha's timeout).
// Case counts are printed (`fuzz: <parser> <N> cases`); POLYGLOT_FUZZ_RUNS scales them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyMutations,
  deepJson,
  fuzz,
  fuzzCounts,
  mutationsArb,
  parsesOrTyped,
  parsesOrTypedSync,
  recordCases,
  runs,
  weirdValue,
} from '../../../tools/fuzz.js';
import {
  parsePythonLiteral,
  readYamlConfig,
  renderJinja,
  type Task,
  type TaskContext,
  type TaskResponse,
  yamlTask,
} from '../src/index.js';
import { parseYaml } from '../src/yaml-task.js';

const N = {
  yamlText: runs(200),
  fields: runs(300),
  include: runs(100),
  literal: runs(400),
  jinja: runs(300),
};

let tmp: string;
let fileNo = 0;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-tasks-fuzz-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  console.log(`      fuzz: tasks total ${[...fuzzCounts.values()].reduce((a, b) => a + b, 0)} cases`);
});

const ctx: TaskContext = { dataDir: '/nonexistent', options: {} };

const SEEDS = [
  `task: arith_gen
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
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
metadata:
  version: 2.0
`,
  `task: arith_mc
output_type: multiple_choice
doc_to_text: "{{ question }}"
doc_to_choice: "{{ choices }}"
doc_to_target: label
num_fewshot: 0
target_delimiter: " "
metric_list:
  - metric: acc
  - metric: acc_norm
`,
  `task: arith_ll
output_type: loglikelihood
doc_to_text: question
doc_to_target: answer
metric_list:
  - metric: perplexity
  - metric: acc
`,
];

const DOCS: Record<string, unknown>[] = [
  { question: '2+2?', answer: '4', choices: ['3', '4'], label: 1 },
  { question: 'Grüße 😀', answer: '#### 12', choices: ['a'], label: 0 },
  { question: '', answer: '', choices: [], label: 7 },
  { question: ['x'], answer: null, choices: 'abc', label: 'b' },
];

function responseFor(task: Task, doc: Record<string, unknown>): TaskResponse {
  if (task.outputType === 'generate_until')
    return { type: 'generate_until', text: `#### ${String(doc.answer)} 4` };
  if (task.outputType === 'multiple_choice')
    return { type: 'multiple_choice', logprobs: [-1, -0.5], is_greedy: [false, true] };
  return { type: 'loglikelihood', logprob: -1.25, is_greedy: true };
}

/** A config must give a task or a TasksError; a task must build requests and score documents, or raise TasksError. */
async function exercise(config: unknown, file: string): Promise<void> {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return;
  const r = parsesOrTypedSync(
    () => yamlTask(config as Record<string, unknown>, { file, baseDir: tmp }),
    file,
  );
  if (!r.ok) return;
  const task = r.value;
  for (const [i, doc] of DOCS.entries()) {
    parsesOrTypedSync(() => task.target?.(doc as never, {} as never));
    const req = parsesOrTypedSync(() => task.buildRequest(doc as never, {} as never, ctx, i));
    const response = responseFor(task, doc);
    if (
      req.ok &&
      req.value.type === 'multiple_choice' &&
      response.type === 'multiple_choice' &&
      i % 2 === 0
    ) {
      // as an engine answers: one log-probability per choice (odd documents keep a mismatched count)
      response.logprobs = req.value.choices.map((_, k) => -k);
      response.is_greedy = req.value.choices.map((_, k) => k === 0);
    }
    await parsesOrTyped(() => task.process(doc as never, response, {} as never, ctx));
  }
  await parsesOrTyped(() => task.loadDocs({} as never, ctx));
}

describe('fuzz: YAML task files', () => {
  // The yaml package reports odd-but-parseable input (unknown tags, ambiguous aliases) as process warnings; the
  // mutated files are full of them: keep them out of the test output.
  let warningListeners: NodeJS.WarningListener[] = [];
  before(() => {
    warningListeners = process.listeners('warning');
    process.removeAllListeners('warning');
  });
  after(() => {
    for (const l of warningListeners) process.on('warning', l);
  });

  it(`mutated task YAML parses and builds a task, or raises TasksError (${N.yamlText} cases)`, async () => {
    const seeds = SEEDS.map((s) => new TextEncoder().encode(s));
    await fuzz(
      'yaml text',
      fc.asyncProperty(
        fc
          .nat({ max: seeds.length - 1 })
          .chain((i) => fc.tuple(fc.constant(i), mutationsArb(seeds[i]!.length))),
        async ([i, ms]) => {
          const text = Buffer.from(applyMutations(seeds[i]!, ms)).toString('utf8');
          const parsed = parsesOrTypedSync(() => parseYaml(text, 'mut.yaml'), 'mut.yaml');
          if (parsed.ok) await exercise(parsed.value, 'mut.yaml');
        },
      ),
      N.yamlText,
    );
  });

  it('refuses recursive aliases, alias bombs and deep nesting with TasksError', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      bomb.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const cases = [
      'task: &a [*a]',
      'a: &x {b: *x}\ntask: *x',
      'task: t\nmetric_list: &m [{metric: acc, nested: *m}]',
      `${bomb.join('\n')}\ntask: t`,
      deepJson(50_000, 'array'),
      `task: t\ndoc_to_text: ${deepJson(20_000, 'object')}`,
      '\u0000\uFFFE\uD800',
      'task: [unclosed',
    ];
    for (const text of cases) {
      const r = parsesOrTypedSync(() => parseYaml(text, 'bad.yaml'), 'bad.yaml');
      if (r.ok) {
        // what parses must still be usable: a task or a TasksError
        parsesOrTypedSync(() => yamlTask(r.value as Record<string, unknown>, { file: 'bad.yaml' }));
      }
    }
    for (const text of cases.slice(0, 4)) {
      expect(parsesOrTypedSync(() => parseYaml(text, 'bad.yaml')).ok, text).to.equal(false);
    }
    recordCases('yaml odd documents', cases.length);
  });

  it(`configs with fields of wrong types, unknown metrics and filters, odd Jinja build a task or raise TasksError (${N.fields} cases)`, async () => {
    const seeds = SEEDS.map((s) => parseYaml(s) as Record<string, unknown>);
    const jinjaPiece = fc.constantFrom(
      '{{',
      '}}',
      '{%',
      '%}',
      ' question ',
      ' if ',
      ' else ',
      ' endif ',
      'answer',
      ' | upper',
      '{#',
      '#}',
      'x',
      '[1, 2]',
      ' choices[0] ',
      ' nope ',
    );
    const templateArb = fc.array(jinjaPiece, { maxLength: 6 }).map((p) => p.join(''));
    const fieldValue = fc.oneof(
      weirdValue,
      templateArb,
      fc.constantFrom('question', 'answer', 'choices', 'label', '__proto__', 'constructor', 'toString'),
      fc.array(fc.oneof(templateArb, fc.nat({ max: 3 })), { maxLength: 3 }),
      fc.constantFrom<unknown>(
        [{ metric: 'constructor' }],
        [{ metric: '__proto__' }],
        [{ metric: 'acc', aggregation: 'max' }],
        [{ name: 'f', filter: [{ function: 'regex', regex_pattern: '(' }] }],
        [{ name: 'f', filter: [{ function: 'toString' }] }],
        [{ name: 'f', filter: [{ function: 'regex', group_select: 99 }, { function: 'take_first' }] }],
        { until: 5 },
        { max_gen_toks: -1 },
        { max_gen_toks: 'many' },
        { do_sample: true, temperature: 'hot' },
        { do_sample: true, top_p: [] },
        { '!function': 'utils.process' },
      ),
    );
    const fields = [
      'task',
      'output_type',
      'doc_to_text',
      'doc_to_target',
      'doc_to_choice',
      'description',
      'target_delimiter',
      'fewshot_delimiter',
      'num_fewshot',
      'metric_list',
      'filter_list',
      'generation_kwargs',
      'metadata',
      'test_split',
      'dataset_path',
      'dataset_kwargs',
      'fewshot_config',
      'repeats',
    ];
    await fuzz(
      'yaml task fields',
      fc.asyncProperty(
        fc.nat({ max: seeds.length - 1 }),
        fc.dictionary(fc.constantFrom(...fields), fieldValue, { maxKeys: 3 }),
        async (i, over) => {
          await exercise({ ...seeds[i], ...over }, 'fields.yaml');
        },
      ),
      N.fields,
    );
  });

  it(`include chains (cycles, missing files, folders, non-mappings) merge or raise TasksError (${N.include} cases)`, async () => {
    const targets = ['a.yaml', 'b.yaml', 'c.yaml', 'missing.yaml', '.', 'sub', '../x.yaml', '/dev/null'];
    const bodyArb = fc.oneof(
      fc.record(
        { include: fc.oneof(fc.constantFrom(...targets), weirdValue), task: fc.constantFrom('t', 'u') },
        { requiredKeys: [] },
      ),
      weirdValue,
    );
    await fuzz(
      'yaml include',
      fc.asyncProperty(fc.tuple(bodyArb, bodyArb, bodyArb), async (bodies) => {
        const dir = path.join(tmp, `inc-${fileNo++}`);
        mkdirSync(path.join(dir, 'sub'), { recursive: true });
        ['a.yaml', 'b.yaml', 'c.yaml'].forEach((name, i) => {
          const body = bodies[i];
          writeFileSync(
            path.join(dir, name),
            typeof body === 'object' && body !== null && !Array.isArray(body)
              ? Object.entries(body)
                  .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
                  .join('\n')
              : (JSON.stringify(body) ?? ''),
          );
        });
        const r = await parsesOrTyped(() => readYamlConfig(path.join(dir, 'a.yaml')));
        if (r.ok) expect(r.value).to.not.have.property('include');
      }),
      N.include,
    );
  });

  it(`parsePythonLiteral reads back printed literals, and reads or refuses anything else with TasksError (${N.literal} cases)`, async () => {
    const py = (v: unknown): string => {
      if (v === null) return 'None';
      if (v === true) return 'True';
      if (v === false) return 'False';
      if (typeof v === 'number') return String(v);
      if (typeof v === 'string')
        return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
      if (Array.isArray(v)) return `[${v.map(py).join(', ')}]`;
      return `{${Object.entries(v as object)
        .map(([k, x]) => `${py(k)}: ${py(x)}`)
        .join(', ')}}`;
    };
    const valueArb = fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('-0') || true);
    await fuzz(
      'python literal round-trip',
      fc.property(valueArb, (v) => {
        const normal = JSON.parse(JSON.stringify(v));
        expect(parsePythonLiteral(py(normal))).to.deep.equal(normal);
      }),
      N.literal,
    );
    const piece = fc.constantFrom(
      '[',
      ']',
      '(',
      ')',
      '{',
      '}',
      ',',
      ':',
      "'",
      '"',
      '\\',
      'True',
      'None',
      '1',
      '-2.5e3',
      '_',
      'x',
      ' ',
      '__proto__',
      '\\u12',
      '\\x4',
    );
    await fuzz(
      'python literal text',
      fc.property(
        fc.oneof(
          fc.array(piece, { maxLength: 12 }).map((p) => p.join('')),
          fc.string({ maxLength: 10 }),
        ),
        (text) => {
          const r = parsesOrTypedSync(() => parsePythonLiteral(text, 'doc_to_choice'), 'doc_to_choice');
          if (r.ok && typeof r.value === 'object' && r.value !== null && !Array.isArray(r.value)) {
            // a dict is a plain object whose keys are its own properties (a "__proto__" key included)
            expect(Object.getPrototypeOf(r.value)).to.equal(Object.prototype);
          }
        },
      ),
      N.literal,
    );
    for (const deep of [
      '['.repeat(100_000),
      `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
      '{1:'.repeat(50_000),
    ]) {
      expect(parsesOrTypedSync(() => parsePythonLiteral(deep)).ok).to.equal(false);
    }
    const proto = parsePythonLiteral("{'__proto__': 1, 'a': 2}") as Record<string, unknown>;
    expect(Object.keys(proto)).to.deep.equal(['__proto__', 'a']);
    expect(Object.getPrototypeOf(proto)).to.equal(Object.prototype);
    recordCases('python literal odd', 4);
  });

  it(`renderJinja renders or raises TasksError on broken templates and odd documents (${N.jinja} cases)`, async () => {
    const piece = fc.constantFrom(
      '{{',
      '}}',
      '{%',
      '%}',
      '{#',
      '#}',
      ' a ',
      ' b.c ',
      ' if ',
      ' for ',
      ' in ',
      ' endfor ',
      ' endif ',
      ' | ',
      'upper',
      'join',
      '(',
      ')',
      '"',
      "'",
      '[',
      ']',
      ' + ',
      ' ~ ',
      '1',
      'none',
      'x\n',
    );
    await fuzz(
      'jinja',
      fc.property(
        fc.array(piece, { maxLength: 10 }).map((p) => p.join('')),
        fc.dictionary(fc.constantFrom('a', 'b', 'x', 'constructor', '__proto__'), weirdValue, { maxKeys: 3 }),
        (template, vars) => {
          parsesOrTypedSync(
            () => renderJinja(template, vars, 'fields.yaml: doc_to_text'),
            'fields.yaml: doc_to_text',
          );
        },
      ),
      N.jinja,
    );
  });
});
