import { expect } from 'chai';
import { JudgeError, type JudgeParse, parseJudgeResponse } from '../src/index.js';

const R = { min: 1, max: 6 };

function ok(text: string, score: number, via: string, reasoning?: string): void {
  const r = parseJudgeResponse(text, R);
  expect(r, text).to.deep.include({ ok: true, score, via });
  if (reasoning !== undefined) expect((r as Extract<JudgeParse, { ok: true }>).reasoning).to.equal(reasoning);
}

function bad(text: unknown, reason: RegExp): void {
  const r = parseJudgeResponse(text as string, R);
  expect(r.ok, String(text)).to.equal(false);
  expect((r as Extract<JudgeParse, { ok: false }>).error).to.match(reason);
}

describe('parseJudgeResponse', () => {
  it('reads strict JSON', () => {
    ok('{"reasoning": "Clear and complete.", "score": 5}', 5, 'json', 'Clear and complete.');
    ok('  {"score": 6, "reasoning": "Great"}\n', 6, 'json', 'Great');
    ok('{"Reasoning": "x", "Score": 2}', 2, 'json', 'x');
    ok('{"score": 3}', 3, 'json', '');
    ok('{"reasoning": ["a", "b"], "score": 4}', 4, 'json', '["a","b"]');
  });

  it('accepts numeric strings and integral floats', () => {
    ok('{"reasoning": "r", "score": "4"}', 4, 'json');
    ok('{"reasoning": "r", "score": " 6 "}', 6, 'json');
    ok('{"reasoning": "r", "score": 5.0}', 5, 'json');
  });

  it('reads JSON inside code fences', () => {
    ok('```json\n{"reasoning": "Fine.", "score": 4}\n```', 4, 'fenced-json', 'Fine.');
    ok('Here is my verdict:\n```\n{"reasoning": "Fine.", "score": 3}\n```\nThanks.', 3, 'fenced-json');
    ok('```JSON {"score": 2, "reasoning": "weak"} ```', 2, 'fenced-json', 'weak');
  });

  it('reads JSON embedded in prose, braces inside strings included', () => {
    ok(
      'Sure! {"reasoning": "Uses {braces} and \\"quotes\\".", "score": 5} Hope this helps.',
      5,
      'embedded-json',
      'Uses {braces} and "quotes".',
    );
    ok('Analysis: the code prints {x}.\nVerdict: {"reasoning": "ok", "score": 4}', 4, 'embedded-json');
    ok('{"verdict": {"reasoning": "nested", "score": 3}}', 3, 'embedded-json', 'nested');
    ok('[{"reasoning": "in an array", "score": 4}]', 4, 'embedded-json');
  });

  it('reads plain-text scores', () => {
    ok('The response is accurate and well structured.\nScore: 5', 5, 'text');
    ok('**Score:** 4', 4, 'text');
    ok('Rating: 4/6', 4, 'text');
    ok('rating: 3 out of 6', 3, 'text');
    ok('I think the score is 2 because it is vague.', 2, 'text');
    ok('Overall I would give it 5/6.', 5, 'text');
    ok('Score: [6]', 6, 'text');
    ok('4', 4, 'text', '4');
    ok('Score: 5. The score is 5 because ...', 5, 'text');
  });

  it('records unparseable answers with a reason', () => {
    bad('', /empty/);
    bad('   \n', /empty/);
    bad(null, /expected text/);
    bad('This response is quite good.', /no score found/);
    bad('{"reasoning": "forgot the score"}', /json: no "score" field/);
    bad('{"reasoning": "r", "score": "five"}', /not a number/);
    bad('{"reasoning": "r", "score": null}', /not a number/);
    bad('{"reasoning": "r", "score": 4.5}', /4.5 is not an integer/);
    bad('{"reasoning": "r", "score": 7}', /7 is outside the range 1-6/);
    bad('{"reasoning": "r", "score": 0}', /outside/);
    bad('```json\n{"reasoning": "r", "score": -1}\n```', /fenced-json: score -1 is outside/);
    bad('Score: 9', /text: score 9 is outside/);
    bad('Rating: 4/10', /another scale/);
    bad('Score: 4. On reflection, Score: 5.', /ambiguous, found the scores 4, 5/);
    bad('{"reasoning": "truncated", "sco', /no score found/);
    bad('It is 3/10 at best', /no score found/);
    bad('{"reasoning": "r", "score": }', /no score found/);
    bad('Score: 5.5', /5.5 is not an integer/);
    bad('It scored 4/6.5', /no score found/);
  });

  it('checks the range it is given', () => {
    expect(parseJudgeResponse('Score: 9', { min: 1, max: 10 })).to.deep.include({ ok: true, score: 9 });
    expect(parseJudgeResponse('8/10', { min: 1, max: 10 })).to.deep.include({ ok: true, score: 8 });
    for (const range of [{ min: 6, max: 1 }, { min: 1, max: 1 }, { min: 1.5, max: 6 }, undefined]) {
      let caught: unknown;
      try {
        parseJudgeResponse('Score: 3', range as unknown as { min: number; max: number });
      } catch (e) {
        caught = e;
      }
      expect(caught).to.be.instanceOf(JudgeError);
      expect((caught as JudgeError).code).to.equal('bad-range');
      expect((caught as JudgeError).isPolyglotError).to.equal(true);
    }
  });
});
