// The checks of tools/crash.ts catch what they are meant to (so that the crash tests' empty lists mean something).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  checkJsonlKeys,
  checkNoPartialFiles,
  compareTrees,
  countLines,
  mulberry32,
  runWithKills,
  tearLastLine,
} from '../../../tools/crash.js';

describe('crash harness (tools/crash.ts)', () => {
  let tmp = '';
  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-crash-harness-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('checkNoPartialFiles flags cut-off JSON Lines, bad JSON, short safetensors and temp files', () => {
    const ok = path.join(tmp, 'ok');
    mkdirSync(path.join(ok, 'sub'), { recursive: true });
    writeFileSync(path.join(ok, 'a.jsonl'), '{"a":1}\n{"a":2}\n');
    writeFileSync(path.join(ok, 'sub', 'b.json'), '{"b": [1, 2]}\n');
    writeFileSync(path.join(ok, 'lines.json'), '{"x":1}\n{"x":2}\n');
    const header = Buffer.from(JSON.stringify({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(path.join(ok, 'm.safetensors'), Buffer.concat([len, header, Buffer.alloc(8)]));
    expect(checkNoPartialFiles(ok)).to.deep.equal([]);

    writeFileSync(path.join(ok, 'a.jsonl'), '{"a":1}\n{"a":');
    writeFileSync(path.join(ok, 'sub', 'b.json'), '{"b": [1,');
    writeFileSync(path.join(ok, 'm.safetensors'), Buffer.concat([len, header, Buffer.alloc(4)]));
    writeFileSync(path.join(ok, '.results.json.123.0badc0de.tmp'), '{');
    mkdirSync(path.join(ok, 'sub', '.checkpoint-4.1.abcdef01.tmp'));
    const problems = checkNoPartialFiles(ok);
    expect(problems).to.have.length(5);
    expect(problems.join('\n')).to.match(/a\.jsonl: .*no newline/);
    expect(problems.join('\n')).to.match(/b\.json: not complete JSON/);
    expect(problems.join('\n')).to.match(
      /m\.safetensors: 28 bytes, expected 32|m\.safetensors: \d+ bytes, expected \d+/,
    );
    expect(problems.join('\n')).to.match(/\.results\.json\.123\.0badc0de\.tmp: a temp file/);
    expect(problems.join('\n')).to.match(/\.checkpoint-4\.1\.abcdef01\.tmp: a temp folder/);
  });

  it('checkJsonlKeys, compareTrees, tearLastLine and countLines', () => {
    const f = path.join(tmp, 'x.jsonl');
    writeFileSync(f, '{"k":1}\n{"k":2}\n{"k":2}\n');
    expect(checkJsonlKeys(f, (r) => String(r.k), ['1', '2', '3'])).to.deep.equal([
      `${f}:3: key 2 duplicates line 2`,
      `${f}: key 3 missing`,
    ]);
    expect(countLines(f, path.join(tmp, 'none'))).to.equal(3);
    const cut = tearLastLine(f, mulberry32(1));
    expect(cut).to.be.within(1, 6);
    expect(countLines(f)).to.equal(3);
    expect(readFileSync(f, 'utf8').endsWith('\n')).to.equal(false);

    mkdirSync(path.join(tmp, 'a'));
    mkdirSync(path.join(tmp, 'b'));
    writeFileSync(path.join(tmp, 'a', 'same'), 'x');
    writeFileSync(path.join(tmp, 'b', 'same'), 'x');
    writeFileSync(path.join(tmp, 'a', 'diff'), '{"v":1,"secs":1}');
    writeFileSync(path.join(tmp, 'b', 'diff'), '{"v":1,"secs":2}');
    writeFileSync(path.join(tmp, 'b', 'extra'), '');
    const d = compareTrees(path.join(tmp, 'a'), path.join(tmp, 'b'));
    expect(d).to.have.length(2);
    expect(d[0]).to.match(/^extra: only in /);
    expect(d[1]).to.match(/^diff: differs at byte 14/);
    const noSecs = (_rel: string, buf: Buffer) => buf.toString().replace(/"secs":\d+/, '');
    expect(
      compareTrees(path.join(tmp, 'a'), path.join(tmp, 'b'), {
        normalize: noSecs,
        ignore: (r) => r === 'extra',
      }),
    ).to.deep.equal([]);
  });

  it('runWithKills kills at the progress targets, restarts, and lets the last attempt finish', async () => {
    // A job that appends one line every 20 ms up to 30 lines, resuming from what is there.
    const file = path.join(tmp, 'job.jsonl');
    const script = `
      const fs = require('node:fs');
      const f = ${JSON.stringify(file)};
      let n = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\\n').length - 1 : 0;
      const t = setInterval(() => {
        if (n >= 30) { clearInterval(t); console.log('done ' + n); return; }
        fs.appendFileSync(f, JSON.stringify({ i: n++ }) + '\\n');
      }, 20);`;
    const run = await runWithKills({
      args: ['-e', script],
      kills: 3,
      seed: 5,
      progress: () => countLines(file),
      total: 30,
    });
    expect(run.kills).to.have.length(3);
    expect(run.attempts).to.equal(4);
    run.kills.forEach((k, i) => {
      expect(k.progress).to.be.at.least(k.target!);
      expect(k.target).to.be.within(Math.max(1, Math.floor((29 / 3) * i)), Math.ceil((29 / 3) * (i + 1)));
    });
    expect(run.stdout.trim()).to.equal('done 30');
    expect(run.describe()).to.match(/^3 kills at progress \d+\/30/);
    expect(
      checkJsonlKeys(
        file,
        (r) => String(r.i),
        Array.from({ length: 30 }, (_, i) => String(i)),
      ),
    ).to.deep.equal([]);
  });
});
