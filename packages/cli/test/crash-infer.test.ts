// Crash safety of `polyglot infer run`: SIGKILLed at random points while it generates (sampling, two seeds, the local
// engine), rerun with the same arguments each time, the run files end as an uninterrupted run's: the same lines in
// the same order (but `secs`), none twice, none missing, no cut-off line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

/** Run files without wall times (`secs`) and paths that name the output folder (`output_file`). */
function withoutTimes(rel: string, buf: Buffer): string | Buffer {
  if (rel.endsWith('.jsonl')) {
    return buf
      .toString('utf8')
      .split('\n')
      .map((l) => {
        if (l === '') return l;
        const { secs: _secs, ...rest } = JSON.parse(l) as Record<string, unknown>;
        return JSON.stringify(rest);
      })
      .join('\n');
  }
  if (rel.endsWith('.json')) {
    const { output_file: _f, ...rest } = JSON.parse(buf.toString('utf8'));
    return JSON.stringify(rest);
  }
  return buf;
}

describe('crash safety: polyglot infer run', function () {
  this.timeout(300_000);
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-crash-infer-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('killed 4 times mid-generation and rerun, its run files equal an uninterrupted run’s', async function () {
    const model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const input = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const template = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
    const args = (out: string) =>
      cli(
        'infer',
        'run',
        '--engine',
        `local:${model}`,
        '--model',
        'tiny-llama',
        '--input',
        input,
        '--prompt-template',
        template,
        '--output-dir',
        out,
        // The paper's sampling settings (temperature 0.8, top-p 0.9, top-k 50): each item's seed is derived from
        // the run's seed and its index, so sampling is deterministic across restarts.
        '--max-new-tokens',
        '16',
        '--seeds',
        '0,42',
        '--batch-size',
        '3',
        '--backend',
        'wasm',
        '--quiet',
      );
    const whole = path.join(tmp, 'whole');
    const r = spawnSync(process.execPath, args(whole), { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const dir = path.join(whole, 'tiny-llama');
    const runFiles = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    expect(runFiles).to.have.length(2);
    const total = countLines(...runFiles.map((f) => path.join(dir, f)));
    expect(total).to.equal(50);

    const killed = path.join(tmp, 'killed');
    const files = runFiles.map((f) => path.join(killed, 'tiny-llama', f));
    let torn = 0;
    // Right after each kill: every file under a final name is complete (a run file may end in a cut-off line).
    const atKill: string[] = [];
    const run = await runWithKills({
      args: args(killed),
      kills: 4,
      seed: 4242,
      progress: () => countLines(...files),
      total,
      maxDelayMs: 20,
      // Every other kill also leaves a cut-off last line, as a kill in the middle of an append does.
      // The second kill also leaves the temp file of a half-written .json, as a kill during its atomic write does.
      afterKill: (k, rng) => {
        atKill.push(
          ...checkNoPartialFiles(killed, { allowTemps: true, appendLogs: (f) => f.endsWith('.jsonl') }),
        );
        if (k.attempt === 1) {
          const json = runFiles[0]!.replace(/\.jsonl$/, '.json');
          writeFileSync(path.join(killed, 'tiny-llama', `.${json}.${k.pid}.0badc0de.tmp`), '{"model": ');
        }
        if (k.attempt % 2 === 0) {
          const growing = files.filter((f) => countLines(f) > 0 && countLines(f) < 25).at(-1);
          if (growing) torn += tearLastLine(growing, rng) > 0 ? 1 : 0;
        }
      },
    });
    console.log(`      infer run: ${run.describe()}; ${torn} torn lines`);
    expect(run.kills).to.have.length(4);
    const summary = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(summary.map((s) => s.total)).to.deep.equal([25, 25]);

    expect(atKill).to.deep.equal([]);
    expect(checkNoPartialFiles(killed)).to.deep.equal([]);
    for (const f of runFiles) {
      const expected = readJsonlStrict(path.join(dir, f)).map((x) => x.prompt as string);
      expect(
        checkJsonlKeys(path.join(killed, 'tiny-llama', f), (x) => x.prompt as string, expected),
      ).to.deep.equal([]);
    }
    expect(compareTrees(whole, killed, { normalize: withoutTimes })).to.deep.equal([]);
  });
});
