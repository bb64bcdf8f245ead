// Property-based and fuzz tests of the judge-response parsers (single scores and pairwise verdicts): replies a
// judge model writes (JSON, fenced, embedded, plain text) read back to their score; anything else, however long
// or odd, gives `{ ok: false, error }` — never an exception or a hang (mocha's timeout: the patterns and the brace
// scan must stay fast on long runs of blanks and braces). Case counts are printed (`fuzz: <parser> <N> cases`);
// POLYGLOT_FUZZ_RUNS scales them.
import { expect } from 'chai';
import fc from 'fast-check';
import { fuzz, fuzzCounts, parsesOrTypedSync, recordCases, runs, weirdValue } from '../../../tools/fuzz.js';
import { checkRange, type JudgeParse, parseJudgeResponse, parsePairwiseResponse } from '../src/index.js';

const N = {
  valid: runs(500),
  arbitrary: runs(1000),
  pairwise: runs(500),
  range: runs(200),
};

after(() => {
  console.log(`      fuzz: judge total ${[...fuzzCounts.values()].reduce((a, b) => a + b, 0)} cases`);
});

const rangeArb = fc
  .tuple(fc.integer({ min: -5, max: 5 }), fc.integer({ min: 1, max: 10 }))
  .map(([min, span]) => ({ min, max: min + span }));
/** Prose without braces, backticks or digits (so it cannot hold another score). */
const prose = fc
  .stringMatching(/^[A-Za-zäöüé ,.!?\n]{0,40}$/)
  .filter((s) => !/score|rating|winner|verdict/i.test(s));
const reasoning = fc.string({ maxLength: 30 });

function expectOk(r: JudgeParse, score: number, via?: string): void {
  expect(r.ok, JSON.stringify(r)).to.equal(true);
  if (r.ok) {
    expect(r.score).to.equal(score);
    if (via) expect(r.via).to.equal(via);
  }
}

/** A parse result is well formed: a score in range, or a reason. */
function expectWellFormed(r: JudgeParse, range: { min: number; max: number }): void {
  if (r.ok) {
    expect(
      Number.isInteger(r.score) && r.score >= range.min && r.score <= range.max,
      JSON.stringify(r),
    ).to.equal(true);
    expect(typeof r.reasoning).to.equal('string');
  } else {
    expect(r.error).to.be.a('string').and.not.equal('');
  }
}

describe('fuzz: judge responses', () => {
  it(`reads scores from JSON, fenced JSON, JSON in prose and "Score: N" text (${N.valid} cases)`, async () => {
    await fuzz(
      'judge valid',
      fc.property(
        rangeArb.chain((range) =>
          fc.tuple(fc.constant(range), fc.integer({ min: range.min, max: range.max })),
        ),
        reasoning,
        fc.constantFrom('score', 'Score', 'SCORE'),
        prose,
        prose,
        fc.constantFrom('json', 'fenced-json', 'embedded-json', 'text'),
        ([range, score], why, key, before, after, form) => {
          const json = JSON.stringify({ reasoning: why, [key]: score });
          const text =
            form === 'json'
              ? json
              : form === 'fenced-json'
                ? `${before}\n\`\`\`json\n${json}\n\`\`\`\n${after}`
                : form === 'embedded-json'
                  ? `${before} ${json} ${after}`
                  : `${before}\nScore: ${score}\n${after}`;
          const r = parseJudgeResponse(text, range);
          // the form found is the one written (JSON in blank "prose" is the whole reply: json)
          expectOk(r, score, form === 'embedded-json' && text.trim() === json ? 'json' : form);
          if (r.ok && form !== 'text') expect(r.reasoning).to.equal(why);
        },
      ),
      N.valid,
    );
  });

  it(`arbitrary and adversarial replies give a score in range or a reason, never an exception (${N.arbitrary} cases)`, async () => {
    const piece = fc.constantFrom(
      '{',
      '}',
      '"',
      '\\',
      '```',
      '```json\n',
      'score',
      'Score:',
      'rating',
      ' is ',
      ' out of ',
      '/',
      '**',
      '__',
      '[',
      ']',
      ' ',
      '\t',
      '\n',
      '5',
      '-3',
      '6.0',
      '1e400',
      '"score": ',
      '"reasoning": ',
      ',',
      ':',
    );
    const textArb = fc.oneof(
      fc.array(piece, { maxLength: 16 }).map((p) => p.join('')),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.json({ maxDepth: 3 }),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ score: v, reasoning: v })),
    );
    await fuzz(
      'judge arbitrary',
      fc.property(textArb, rangeArb, (text, range) => {
        expectWellFormed(parseJudgeResponse(text, range), range);
      }),
      N.arbitrary,
    );
    // non-strings: a reason, not an exception
    for (const v of [null, undefined, 5, {}, [], true]) {
      expect(parseJudgeResponse(v as never, { min: 1, max: 6 }).ok).to.equal(false);
    }
  });

  it('stays fast on long runs of blanks, braces, quotes, backticks and fractions (no exponential backtracking)', () => {
    const n = 50_000;
    const range = { min: 1, max: 6 };
    const replies = [
      `score${' '.repeat(n)}x`,
      `Score:${'\t'.repeat(n)}**${' '.repeat(n)}`,
      `rating is${' '.repeat(n)}of${' '.repeat(n)}x`,
      '{'.repeat(n),
      '{"a": "'.repeat(n / 10),
      `{${'"'.repeat(n)}`,
      '```'.repeat(n / 10),
      `\`\`\`${' '.repeat(n)}${'x'.repeat(n)}`,
      `${'1'.repeat(n)}/`,
      `${'1 / '.repeat(n / 4)}`,
      '5/6 '.repeat(n / 4),
      `{"score": 4, "reasoning": "${'x'.repeat(n)}"}`,
      `${'['.repeat(n)}${']'.repeat(n)}`,
      `Winner${' '.repeat(n)}x`,
      `verdict:${' '.repeat(n)}*${' '.repeat(n)}`,
    ];
    for (const text of replies) {
      expectWellFormed(parseJudgeResponse(text, range), range);
      const p = parsePairwiseResponse(text);
      expect(typeof p.ok).to.equal('boolean');
    }
    // a JSON reply after a long unbalanced prefix is still found
    expectOk(parseJudgeResponse(`${'{'.repeat(500)} {"reasoning": "r", "score": 3}`, range), 3);
    recordCases('judge long replies', replies.length);
  });

  it(`reads pairwise verdicts, and answers anything else with a reason (${N.pairwise} cases)`, async () => {
    await fuzz(
      'pairwise valid',
      fc.property(
        fc.constantFrom('A', 'B', 'tie'),
        fc.constantFrom('json', 'fenced', 'embedded', 'mt-bench', 'text'),
        prose,
        reasoning,
        (winner, form, before, why) => {
          const json = JSON.stringify({ reasoning: why, winner });
          const letter = winner === 'tie' ? 'C' : winner;
          const text =
            form === 'json'
              ? json
              : form === 'fenced'
                ? `${before}\n\`\`\`json\n${json}\n\`\`\``
                : form === 'embedded'
                  ? `${before} ${json}`
                  : form === 'mt-bench'
                    ? `${before} [[${letter}]]`
                    : `${before}\nWinner: ${winner}`;
          const r = parsePairwiseResponse(text);
          expect(r.ok, `${JSON.stringify(text)} → ${JSON.stringify(r)}`).to.equal(true);
          if (r.ok) expect(r.winner).to.equal(winner);
        },
      ),
      N.pairwise,
    );
    const piece = fc.constantFrom(
      '{',
      '}',
      '"winner": ',
      '"A"',
      '"tie"',
      '[[A]]',
      '[[B]]',
      '[[C]]',
      'Winner:',
      ' is ',
      '**',
      ' ',
      '```',
      'response ',
      'B',
      '\n',
    );
    await fuzz(
      'pairwise arbitrary',
      fc.property(
        fc.oneof(
          fc.array(piece, { maxLength: 12 }).map((p) => p.join('')),
          fc.string({ maxLength: 30 }),
          fc.json({ maxDepth: 2 }),
        ),
        (text) => {
          const r = parsePairwiseResponse(text);
          if (r.ok) expect(['A', 'B', 'tie']).to.include(r.winner);
          else expect(r.error).to.be.a('string').and.not.equal('');
        },
      ),
      N.pairwise,
    );
  });

  it(`score ranges that are not min < max integers raise JudgeError bad-range (${N.range} cases)`, async () => {
    await fuzz(
      'judge range',
      fc.property(
        fc.record(
          // an object that cannot become a string (YAML/JSON rubric files can hold one) must still be reported
          { min: fc.oneof(weirdValue, fc.constant({ toString: null })), max: weirdValue },
          { requiredKeys: [] },
        ),
        (range) => {
          const r = parsesOrTypedSync(() => checkRange(range as never, 'rubric.yaml'), 'rubric.yaml');
          const { min, max } = range as { min: unknown; max: unknown };
          const valid = Number.isInteger(min) && Number.isInteger(max) && (min as number) < (max as number);
          expect(r.ok).to.equal(valid);
          if (!r.ok) expect(r.error.code).to.equal('bad-range');
        },
      ),
      N.range,
    );
  });
});
