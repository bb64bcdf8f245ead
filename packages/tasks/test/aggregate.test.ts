import { expect } from 'chai';
import {
  aggregateSamples,
  buildResults,
  meanOfSubtasks,
  resultsEntry,
  type ScoredSample,
} from '../src/index.js';

describe('aggregation into results.json', () => {
  // Three documents under two seeds.
  const samples: ScoredSample[] = [
    { docIndex: 0, seed: 0, scores: { 'acc,none': 1, 'judge,none': 4 } },
    { docIndex: 1, seed: 0, scores: { 'acc,none': 0, 'judge,none': null } },
    { docIndex: 2, seed: 0, scores: { 'acc,none': 1, 'judge,none': 6 } },
    { docIndex: 0, seed: 42, scores: { 'acc,none': 1 } },
    { docIndex: 1, seed: 42, scores: { 'acc,none': 1 } },
    { docIndex: 2, seed: 42, scores: { 'acc,none': 0 } },
  ];

  it('means per seed, then over seeds; stderr over documents; spread over seeds (hand-computed)', () => {
    const [acc, judge] = aggregateSamples(samples, [{ name: 'acc' }, { name: 'judge' }]);
    // per seed 2/3 and 2/3; per document means 1, 0.5, 0.5 → sd 0.2887, se 0.1667
    expect(acc).to.deep.include({ key: 'acc,none', metric: 'acc', filter: 'none', n: 3 });
    expect(acc!.value).to.be.closeTo(2 / 3, 1e-12);
    expect(acc!.stderr).to.be.closeTo(Math.sqrt(1 / 12) / Math.sqrt(3), 1e-12);
    expect(acc!.perSeed).to.deep.equal({ '0': 2 / 3, '42': 2 / 3 });
    expect(acc!.seedStd).to.equal(0);
    // null values are left out: 2 judged documents, mean 5, se = sd(4, 6)/√2 = 1
    expect(judge).to.deep.include({ value: 5, n: 2, stderr: 1, seedStd: null });
    const entry = resultsEntry('t', [acc!, judge!], 3);
    expect(entry).to.deep.include({
      alias: 't',
      'acc,none': acc!.value,
      'acc_seed_std,none': 0,
      'judge,none': 5,
      'judge_n,none': 2,
    });
    expect(entry).to.not.have.property('acc_n,none');
  });

  it('perplexity and median aggregations, bootstrap intervals, N/A for a single document', () => {
    const ll: ScoredSample[] = [-1, -2, -3].map((v, i) => ({
      docIndex: i,
      seed: null,
      scores: { 'perplexity,none': v },
    }));
    const [ppl] = aggregateSamples(
      ll,
      [{ name: 'perplexity', aggregation: 'perplexity', higherIsBetter: false }],
      ['none'],
      {
        bootstrapIters: 200,
      },
    );
    expect(ppl!.value).to.be.closeTo(Math.exp(2), 1e-12);
    expect(ppl!.stderr).to.be.a('number').greaterThan(0);
    expect(ppl!.ci!.low).to.be.at.most(ppl!.value);
    expect(ppl!.ci!.high).to.be.at.least(ppl!.value);
    expect(ppl!.perSeed).to.deep.equal({});
    const [med] = aggregateSamples(ll, [{ name: 'perplexity', aggregation: 'median' }]);
    expect(med!.value).to.equal(-2);
    const [one] = aggregateSamples(
      [{ docIndex: 0, seed: null, scores: { 'acc,none': 1 } }],
      [{ name: 'acc' }],
    );
    expect(resultsEntry('x', [one!], 1)).to.deep.equal({
      alias: 'x',
      'acc,none': 1,
      'acc_stderr,none': 'N/A',
    });
  });

  it("averages a task's languages into a group entry with the stderr of the mean", () => {
    expect(
      meanOfSubtasks([
        { value: 0.4, stderr: 0.03 },
        { value: 0.5, stderr: 0.04 },
      ]),
    ).to.deep.equal({
      value: 0.45,
      stderr: 0.025,
    });
    const task = { name: 'xnli', version: '1.0', metrics: [{ name: 'acc' }] } as never;
    const outcome = (lang: string, value: number) => ({
      task,
      variant: { task: 'xnli', name: `xnli_${lang}`, lang, promptLang: lang },
      docsTotal: 10,
      docsUsed: 10,
      seeds: [null],
      summaries: [
        {
          key: 'acc,none',
          metric: 'acc',
          filter: 'none',
          value,
          stderr: 0.1,
          n: 10,
          perSeed: {},
          seedStd: null,
        },
      ],
      config: {},
    });
    const r = buildResults(
      [outcome('de', 0.4), outcome('en', 0.6)],
      { model: 'm', engine: 'e', engine_kind: null, backend: null },
      { version: '0.1.0', startedAt: Date.now() },
    );
    expect(r.results.xnli).to.deep.include({ alias: 'xnli', 'acc,none': 0.5 });
    expect(r.results.xnli!['acc_stderr,none']).to.be.closeTo(Math.sqrt(0.02) / 2, 1e-12);
    expect(r.group_subtasks).to.deep.equal({ xnli: ['xnli_de', 'xnli_en'] });
    expect(r.groups.xnli).to.deep.equal(r.results.xnli);
  });
});
