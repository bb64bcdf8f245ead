import { expect } from 'chai';
import { buildJudgeMessages, HELPFULNESS_RUBRIC, JudgeError, parseJudgeResponse } from '../src/index.js';

function judgeError(fn: () => unknown, code: string, mention: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).to.be.instanceOf(JudgeError);
  expect((caught as JudgeError).code).to.equal(code);
  expect((caught as JudgeError).message).to.include(mention);
}

describe('helpfulness rubric and judge messages', () => {
  it('defines six points from not helpful to highly helpful', () => {
    expect(HELPFULNESS_RUBRIC).to.deep.include({ name: 'helpfulness', min: 1, max: 6 });
    const lines = HELPFULNESS_RUBRIC.criteria.split('\n');
    expect(lines.map((l) => l[0])).to.deep.equal(['1', '2', '3', '4', '5', '6']);
    expect(lines[0]).to.include('Not helpful');
    for (const word of ['Highly helpful', 'complete', 'detailed', 'insightful', 'well organised']) {
      expect(lines[5]).to.include(word);
    }
  });

  it('builds a system message with the rubric and format, and a user message with task and response', () => {
    const messages = buildJudgeMessages('"Hver er Larry Page?"', 'Larry Page er annar stofnenda Google.');
    expect(messages.map((m) => m.role)).to.deep.equal(['system', 'user']);
    const [system, user] = messages;
    expect(system!.content).to.include(HELPFULNESS_RUBRIC.criteria);
    expect(system!.content).to.include('from 1 to 6');
    expect(system!.content).to.include(
      '{"reasoning": "<a few sentences>", "score": <an integer from 1 to 6>}',
    );
    expect(user!.content).to.equal(
      '[Task]\n"Hver er Larry Page?"\n\n[Response]\nLarry Page er annar stofnenda Google.',
    );
    expect(buildJudgeMessages('Task', '')[1]!.content.endsWith('[Response]\n')).to.equal(true);
  });

  it('uses a custom rubric, whose range the parser then checks', () => {
    const rubric = {
      name: 'correctness',
      min: 0,
      max: 2,
      criteria: '0 - wrong\n1 - partly right\n2 - right',
    };
    const [system] = buildJudgeMessages('2+2?', '4', rubric);
    expect(system!.content).to.include('Rate the correctness of the response on a scale from 0 to 2');
    expect(parseJudgeResponse('{"reasoning": "right", "score": 2}', rubric)).to.deep.include({
      ok: true,
      score: 2,
    });
    expect(parseJudgeResponse('{"reasoning": "r", "score": 3}', rubric).ok).to.equal(false);
  });

  it('rejects bad items and rubrics', () => {
    judgeError(() => buildJudgeMessages('  ', 'x'), 'bad-item', 'instruction');
    judgeError(() => buildJudgeMessages('task', undefined as unknown as string), 'bad-item', 'response');
    judgeError(
      () => buildJudgeMessages('t', 'r', { ...HELPFULNESS_RUBRIC, criteria: '' }),
      'bad-rubric',
      'criteria',
    );
    judgeError(() => buildJudgeMessages('t', 'r', { ...HELPFULNESS_RUBRIC, name: '' }), 'bad-rubric', 'name');
    judgeError(() => buildJudgeMessages('t', 'r', { ...HELPFULNESS_RUBRIC, max: 1 }), 'bad-range', '1..1');
  });
});
