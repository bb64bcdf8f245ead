import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  buildJudgeMessages,
  buildPairwiseMessages,
  combineVerdicts,
  HELPFULNESS_RUBRIC,
  JudgeError,
  loadRubric,
  parsePairwiseResponse,
  renderTemplate,
  resolveRubric,
} from '../src/index.js';

describe('rubric files', () => {
  let tmp: string;
  const file = (name: string, text: string) => {
    const p = path.join(tmp, name);
    writeFileSync(p, text);
    return p;
  };
  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'judge-rubric-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads JSON: criteria with the built-in prompt, or full templates', () => {
    const simple = loadRubric(
      file('c.json', JSON.stringify({ name: 'correctness', min: 0, max: 2, criteria: '0 bad\n2 good' })),
    );
    expect(simple).to.deep.equal({
      kind: 'single',
      rubric: { name: 'correctness', min: 0, max: 2, criteria: '0 bad\n2 good' },
    });
    const paper = loadRubric(
      file(
        'paper.json',
        JSON.stringify({
          name: 'helpfulness',
          min: 1,
          max: 6,
          system: 'Rate on {{min}}-{{max}}. Answer in JSON.',
          user: 'Instruction: {{instruction}}\nResponse: {{response}}',
        }),
      ),
    );
    expect(paper.kind).to.equal('single');
    const messages = buildJudgeMessages('Who is {{response}}?', 'Larry', paper.rubric as never);
    expect(messages).to.deep.equal([
      { role: 'system', content: 'Rate on 1-6. Answer in JSON.' },
      // placeholders inside the filled-in values are left alone
      { role: 'user', content: 'Instruction: Who is {{response}}?\nResponse: Larry' },
    ]);
  });

  it('reads text with front matter: criteria, or a system and user template split by "=== user ==="', () => {
    const criteria = loadRubric(
      file('crit.md', '---\nname: fluency\nmin: 1\nmax: 5\n---\n1 - broken\n5 - native\n'),
    );
    expect(criteria.rubric).to.deep.equal({
      name: 'fluency',
      min: 1,
      max: 5,
      criteria: '1 - broken\n5 - native',
    });
    const tpl = loadRubric(
      file(
        'tpl.txt',
        '---\nmin: 1\nmax: 6\n---\nYou judge {{name}}.\n=== user ===\n{{instruction}}\n---\n{{response}}\n',
      ),
    );
    expect(tpl.rubric).to.deep.include({
      name: 'tpl',
      system: 'You judge {{name}}.',
      user: '{{instruction}}\n---\n{{response}}',
    });
    const userOnly = loadRubric(
      file('u.txt', '---\nmin: 1\nmax: 6\n---\nTask {{instruction}} / answer {{response}}'),
    );
    expect(buildJudgeMessages('t', 'r', userOnly.rubric as never)).to.deep.equal([
      { role: 'user', content: 'Task t / answer r' },
    ]);
  });

  it('reads pairwise rubrics and tells single from pairwise', () => {
    const p = file(
      'pair.json',
      JSON.stringify({ kind: 'pairwise', name: 'helpfulness', criteria: 'more helpful wins' }),
    );
    expect(resolveRubric(p, 'pairwise').kind).to.equal('pairwise');
    expect(() => resolveRubric(p, 'single')).to.throw(
      JudgeError,
      /pairwise rubric, but this command needs a single one/,
    );
    expect(resolveRubric('helpfulness', 'single').rubric).to.equal(HELPFULNESS_RUBRIC);
  });

  it('names the file and the problem', () => {
    const cases: [string, string, RegExp][] = [
      ['norange.md', 'criteria only', /needs "min" and "max"/],
      [
        'typo.json',
        JSON.stringify({ min: 1, max: 6, system: 'x', user: '{{instrution}} {{response}}' }),
        /\{\{instrution\}\}, which is unknown/,
      ],
      [
        'noresp.json',
        JSON.stringify({ min: 1, max: 6, system: 'x', user: '{{instruction}}' }),
        /never show \{\{response\}\}/,
      ],
      ['range.json', JSON.stringify({ min: 6, max: 1, criteria: 'c' }), /min < max/],
      ['bad.json', '{', /invalid JSON/],
    ];
    for (const [name, text, re] of cases) {
      const p = file(name, text);
      expect(() => loadRubric(p), name).to.throw(JudgeError, re);
      try {
        loadRubric(p);
      } catch (e) {
        expect((e as Error).message.startsWith(p), name).to.equal(true);
      }
    }
    expect(() => loadRubric(path.join(tmp, 'missing.json'))).to.throw(JudgeError, /no such file/);
    expect(() => renderTemplate('{{x}}', {})).to.throw(JudgeError, /unknown/);
  });
});

describe('pairwise prompts and verdicts', () => {
  it('shows the responses as A and B in the order given', () => {
    const [system, user] = buildPairwiseMessages('task', 'first', 'second');
    expect(system!.content).to.include('"winner": "A" | "B" | "tie"');
    expect(user!.content).to.equal('[Task]\ntask\n\n[Response A]\nfirst\n\n[Response B]\nsecond');
  });

  it('parses JSON, fenced JSON, MT-Bench [[A]] and "Winner: B"', () => {
    expect(parsePairwiseResponse('{"reasoning": "r", "winner": "A"}')).to.deep.equal({
      ok: true,
      winner: 'A',
      reasoning: 'r',
      via: 'json',
    });
    expect(parsePairwiseResponse('```json\n{"winner": "Response B"}\n```')).to.deep.include({
      ok: true,
      winner: 'B',
      via: 'fenced-json',
    });
    expect(parsePairwiseResponse('Both fine. {"winner": "tie"}')).to.deep.include({
      ok: true,
      winner: 'tie',
      via: 'embedded-json',
    });
    expect(parsePairwiseResponse('B is clearer. [[B]]')).to.deep.include({
      ok: true,
      winner: 'B',
      via: 'text',
    });
    expect(parsePairwiseResponse('[[C]]')).to.deep.include({ winner: 'tie' });
    expect(parsePairwiseResponse('Winner: A')).to.deep.include({ winner: 'A' });
    expect(parsePairwiseResponse('[[A]] or maybe [[B]]')).to.deep.include({ ok: false });
    expect(parsePairwiseResponse('{"winner": "C++"}').ok).to.equal(false);
    expect(parsePairwiseResponse('').ok).to.equal(false);
    expect(parsePairwiseResponse('no idea').ok).to.equal(false);
  });

  it('combines the two orders: agreement wins, disagreement is an inconsistent tie', () => {
    expect(combineVerdicts('A', 'B')).to.deep.equal({ outcome: 'a', consistent: true });
    expect(combineVerdicts('B', 'A')).to.deep.equal({ outcome: 'b', consistent: true });
    expect(combineVerdicts('tie', 'tie')).to.deep.equal({ outcome: 'tie', consistent: true });
    expect(combineVerdicts('A', 'A')).to.deep.equal({ outcome: 'tie', consistent: false });
    expect(combineVerdicts('A', 'tie')).to.deep.equal({ outcome: 'tie', consistent: false });
  });
});
