// Crash safety of `polyglot sft train`: SIGKILLed at random points while it trains, resumed with --resume each
// time, the run ends with the adapter, checkpoints and log of an uninterrupted run, bit for bit.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  checkNoPartialFiles,
  cli,
  compareTrees,
  countLines,
  readJsonlStrict,
  runWithKills,
  tearLastLine,
} from '../../../tools/crash.js';
import { sharedPath } from '../../../tools/shared.js';

function writeData(file: string, n: number, offset = 0): void {
  const words = ['red', 'green', 'blue', 'cat', 'dog', 'sun', 'moon', 'tree'];
  const lines = Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    const w = `${words[i % 8]} ${words[(i * 3) % 8]} ${words[(i * 5 + 1) % 8]}`;
    return JSON.stringify({ prompt: `### Human: repeat ${w} ### Assistant:`, completion: ` ${w} ${w}` });
  });
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Files without their wall times (train-log.jsonl's `secs`, trainer_state.json's `totals.trainSecs`) or `out`. */
function withoutTimes(rel: string, buf: Buffer): string | Buffer {
  if (rel === 'training_args.json') {
    const { out: _out, ...args } = JSON.parse(buf.toString('utf8'));
    return JSON.stringify(args);
  }
  if (rel.endsWith('trainer_state.json')) {
    const state = JSON.parse(buf.toString('utf8'));
    state.totals.trainSecs = 0;
    return JSON.stringify(state);
  }
  if (rel !== 'train-log.jsonl') return buf;
  return buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const { secs: _secs, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return JSON.stringify(rest);
    })
    .join('\n');
}

describe('crash safety: polyglot sft train', function () {
  this.timeout(300_000);
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-crash-sft-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('killed 4 times mid-training (once before its first checkpoint) and resumed, it ends bit-exact with an uninterrupted run', async function () {
    const base = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const data = path.join(tmp, 'train.jsonl');
    const evalData = path.join(tmp, 'eval.jsonl');
    writeData(data, 64);
    writeData(evalData, 8, 100);
    const steps = 60;
    const evalSteps = 10;
    const flags = (out: string) => [
      'sft',
      'train',
      '--model',
      base,
      '--data',
      data,
      '--eval-data',
      evalData,
      '--out',
      out,
      '--backend',
      'wasm',
      '--lora-r',
      '4',
      '--lora-dropout',
      '0.1',
      '--lr',
      '5e-4',
      '--scheduler',
      'cosine',
      '--warmup-steps',
      '5',
      '--max-steps',
      String(steps),
      '--batch-size',
      '4',
      '--grad-accum',
      '3',
      '--no-sort-by-length',
      '--seed',
      '11',
      '--save-steps',
      '8',
      '--eval-steps',
      String(evalSteps),
    ];
    const whole = path.join(tmp, 'whole');
    const r = spawnSync(process.execPath, cli(...flags(whole)), { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const logLines = countLines(path.join(whole, 'train-log.jsonl'));
    expect(logLines).to.equal(steps + steps / evalSteps + 1);

    const killed = path.join(tmp, 'killed');
    const log = path.join(killed, 'train-log.jsonl');
    let torn = 0;
    // Right after each kill: every file under a final name is complete (the log may end in a cut-off line).
    const atKill: string[] = [];
    const run = await runWithKills({
      args: cli(...flags(killed)),
      resumeArgs: cli(...flags(killed), '--resume'),
      kills: 4,
      // This seed puts the first kill right after step 1, well before the first checkpoint (step 8).
      seed: 8,
      progress: () => countLines(log),
      total: logLines,
      maxDelayMs: 15,
      // Every other kill also leaves a cut-off log line, as a kill in the middle of an append does.
      // The first kill also leaves a half-written checkpoint folder, as a kill while saving one does.
      afterKill: (k, rng) => {
        atKill.push(
          ...checkNoPartialFiles(killed, { allowTemps: true, appendLogs: (f) => f === 'train-log.jsonl' }),
        );
        if (k.attempt % 2 === 1) torn += tearLastLine(log, rng) > 0 ? 1 : 0;
        if (k.attempt === 0) {
          const half = path.join(killed, 'checkpoints', `.checkpoint-999.${k.pid}.0badc0de.tmp`);
          mkdirSync(half, { recursive: true });
          writeFileSync(path.join(half, 'adapter_model.safetensors'), 'partial');
        }
      },
    });
    console.log(`      sft train: ${run.describe()}; ${torn} torn log lines`);
    expect(run.kills).to.have.length(4);
    // Killed before its first checkpoint, the run starts over; later, it resumes from its checkpoints.
    expect(run.kills[0]!.progress).to.be.below(8);
    expect(run.stderrs[1]).to.match(/no checkpoint in .* yet: starting over from step 0/);
    for (const e of run.stderrs.slice(2)) expect(e).to.match(/resumed from .*checkpoint-\d+ at step \d+/);

    expect(atKill).to.deep.equal([]);
    expect(checkNoPartialFiles(killed)).to.deep.equal([]);
    // The adapter, its config, the arguments, every checkpoint (adapter, optimizer moments, trainer state) and the
    // log (but its wall times) are those of the uninterrupted run; the summary tells of this process only.
    expect(
      compareTrees(whole, killed, {
        ignore: (f) => f === 'train_summary.json',
        normalize: withoutTimes,
      }),
    ).to.deep.equal([]);
    const summary = JSON.parse(readFileSync(path.join(killed, 'train_summary.json'), 'utf8'));
    expect(summary).to.include({ steps, halted: false });
    const steps_ = readJsonlStrict(log)
      .filter((l) => l.loss !== undefined)
      .map((l) => l.step);
    expect(steps_).to.deep.equal(Array.from({ length: steps }, (_, i) => i + 1));
  });
});
