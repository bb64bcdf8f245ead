// Crash safety of `polyglot tasks run`: SIGKILLed at random points while it evaluates (a generation task with two
// sampling seeds and a log-likelihood task, the local engine), rerun each time, it ends with the results.json
// metrics and the per-sample files of an uninterrupted run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  checkJsonlKeys,
  checkNoPartialFiles,
  cli,
  compareTrees,
  countLines,
  readJsonlStrict,
  runWithKills,
  tearLastLine,
} from '../../../tools/crash.js';
import { sharedPath } from '../../../tools/shared.js';

const VARIANTS = ['xquad_de', 'xnli_de'];

/** results.json without when it ran and for how long. */
function withoutTimes(rel: string, buf: Buffer): string | Buffer {
  if (rel !== 'results.json') return buf;
  const { date: _d, total_evaluation_time_seconds: _t, ...rest } = JSON.parse(buf.toString('utf8'));
  return JSON.stringify(rest);
}

describe('crash safety: polyglot tasks run', function () {
  this.timeout(300_000);
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-crash-tasks-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('killed 4 times mid-run and rerun, results.json and the samples equal an uninterrupted run’s', async function () {
    const model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const data = path.join(tmp, 'data');
    mkdirSync(path.join(data, 'xnli'), { recursive: true });
    symlinkSync(sharedPath(this, 'data', 'xquad'), path.join(data, 'xquad'));
    const premises = ['Der Hund schläft im Garten.', 'Sie kaufte gestern Brot.', 'Es regnet seit Stunden.'];
    const hypotheses = ['Ein Tier ruht draußen.', 'Sie hat nie Brot gekauft.', 'Das Wetter ist schön.'];
    writeFileSync(
      path.join(data, 'xnli', 'xnli.de.jsonl'),
      Array.from(
        { length: 8 },
        (_, i) =>
          `${JSON.stringify({ premise: premises[i % 3], hypothesis: hypotheses[(i * 2) % 3], label: i % 3 })}\n`,
      ).join(''),
    );
    const args = (out: string) =>
      cli(
        'tasks',
        'run',
        '--task',
        'xquad,xnli',
        '--langs',
        'de',
        '--limit',
        '6',
        // Sampling with two seeds: each request's seed is derived from the run's seed and the document's index.
        '--seeds',
        '0,1',
        '--batch-size',
        '2',
        '--engine',
        `local:${model}`,
        '--backend',
        'wasm',
        '--output-dir',
        out,
        '--data-dir',
        data,
        '--gen-kwargs',
        'max_tokens=8',
        '--quiet',
      );
    const whole = path.join(tmp, 'whole');
    const r = spawnSync(process.execPath, args(whole), { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const samples = (dir: string) => VARIANTS.map((v) => path.join(dir, `samples_${v}.jsonl`));
    const total = countLines(...samples(whole));
    expect(total).to.equal(12 + 6);

    const killed = path.join(tmp, 'killed');
    let torn = 0;
    // Right after each kill: every file under a final name is complete (a samples file may end in a cut-off line).
    const atKill: string[] = [];
    const run = await runWithKills({
      args: args(killed),
      kills: 4,
      seed: 1312,
      progress: () => countLines(...samples(killed)),
      total,
      maxDelayMs: 30,
      // Every other kill also leaves a cut-off last line, as a kill in the middle of an append does.
      // The first kill also leaves the temp file of a half-written results.json, as a kill during its atomic write
      // does.
      afterKill: (k, rng) => {
        atKill.push(
          ...checkNoPartialFiles(killed, { allowTemps: true, appendLogs: (f) => f.startsWith('samples_') }),
        );
        if (k.attempt === 0) writeFileSync(path.join(killed, `.results.json.${k.pid}.0badc0de.tmp`), '{"res');
        if (k.attempt % 2 === 1) {
          const growing = samples(killed)
            .filter((f) => countLines(f) > 0)
            .at(-1);
          if (growing) torn += tearLastLine(growing, rng) > 0 ? 1 : 0;
        }
      },
    });
    console.log(`      tasks run: ${run.describe()}; ${torn} torn lines`);
    expect(run.kills).to.have.length(4);

    expect(atKill).to.deep.equal([]);
    expect(checkNoPartialFiles(killed)).to.deep.equal([]);
    const key = (s: Record<string, unknown>) => `${s.doc_index}:${s.seed}`;
    for (const [i, f] of samples(killed).entries()) {
      const expected = readJsonlStrict(samples(whole)[i]!).map(key);
      expect(checkJsonlKeys(f, key, expected)).to.deep.equal([]);
    }
    // Metrics, per-seed values, configs, and every sample (in the same order) are the uninterrupted run's.
    expect(compareTrees(whole, killed, { normalize: withoutTimes })).to.deep.equal([]);
    const a = JSON.parse(readFileSync(path.join(whole, 'results.json'), 'utf8'));
    const b = JSON.parse(readFileSync(path.join(killed, 'results.json'), 'utf8'));
    expect(b.results).to.deep.equal(a.results);
    expect(Object.keys(b.results)).to.include.members(VARIANTS);
  });
});
