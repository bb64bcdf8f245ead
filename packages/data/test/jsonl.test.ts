import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  appendJsonl,
  DataError,
  isPolyglotError,
  readJsonl,
  readJsonlAll,
  readJsonOrJsonl,
  type TruncatedTail,
  writeJsonlAtomic,
} from '../src/index.js';

async function expectDataError(p: Promise<unknown>, code: string, ...mentions: string[]): Promise<DataError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').to.be.instanceOf(DataError);
  expect(isPolyglotError(caught)).to.equal(true);
  expect((caught as DataError).code).to.equal(code);
  for (const m of mentions) expect((caught as DataError).message).to.include(m);
  return caught as DataError;
}

async function rowsWithLines(file: string, options = {}) {
  const out: Array<[unknown, number]> = [];
  for await (const { value, line } of readJsonl(file, options)) out.push([value, line]);
  return out;
}

describe('JSON Lines', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'polyglot-data-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const at = (name: string) => path.join(dir, name);

  describe('readJsonl', () => {
    it('yields objects with their line numbers, skipping blank lines, BOM and CRLF', async () => {
      await writeFile(at('a.jsonl'), '\uFEFF{"a":1}\r\n\n  \n{"b":"x\\ny"}\n{"c":[1]}');
      expect(await rowsWithLines(at('a.jsonl'))).to.deep.equal([
        [{ a: 1 }, 1],
        [{ b: 'x\ny' }, 4],
        [{ c: [1] }, 5],
      ]);
    });

    it('names file:line for invalid JSON', async () => {
      await writeFile(at('bad.jsonl'), '{"a":1}\n{"a":2}\n{"a":,}\n{"a":4}\n');
      await expectDataError(readJsonlAll(at('bad.jsonl')), 'bad-json', `${at('bad.jsonl')}:3`, '{\\"a\\":,}');
    });

    it('names file:line for values that are not objects', async () => {
      for (const [text, kind] of [
        ['[1,2]', 'an array'],
        ['42', 'a number'],
        ['null', 'null'],
        ['"s"', 'a string'],
      ]) {
        await writeFile(at('v.jsonl'), `{"ok":true}\n\n${text}\n`);
        await expectDataError(readJsonlAll(at('v.jsonl')), 'not-an-object', `${at('v.jsonl')}:3`, kind!);
      }
    });

    it('raises cannot-read for a missing file', async () => {
      await expectDataError(
        readJsonlAll(at('missing.jsonl')),
        'cannot-read',
        'missing.jsonl',
        'no such file',
      );
    });

    it('accepts a last line without newline when it is complete', async () => {
      await writeFile(at('t.jsonl'), '{"a":1}\n{"a":2}');
      expect(await readJsonlAll(at('t.jsonl'))).to.deep.equal([{ a: 1 }, { a: 2 }]);
    });

    it('raises on a truncated last line unless told to tolerate it, then reports and skips it', async () => {
      await writeFile(at('crash.jsonl'), '{"a":1}\n{"a":2}\n{"a":3,"te');
      await expectDataError(
        readJsonlAll(at('crash.jsonl')),
        'bad-json',
        `crash.jsonl:3`,
        'allowTruncatedTail',
      );
      const tails: TruncatedTail[] = [];
      const rows = await readJsonlAll(at('crash.jsonl'), {
        allowTruncatedTail: true,
        onTruncatedTail: (t) => tails.push(t),
      });
      expect(rows).to.deep.equal([{ a: 1 }, { a: 2 }]);
      expect(tails).to.deep.equal([{ path: at('crash.jsonl'), line: 3, text: '{"a":3,"te' }]);
    });

    it('still raises on a bad line that is not the last one', async () => {
      await writeFile(at('mid.jsonl'), '{"a":1}\n{"a":\n{"a":3}\n');
      await expectDataError(
        readJsonlAll(at('mid.jsonl'), { allowTruncatedTail: true }),
        'bad-json',
        'mid.jsonl:2',
      );
    });

    it('streams a large file with multi-byte text across chunk boundaries', async () => {
      const rows = Array.from({ length: 3000 }, (_, i) => ({
        i,
        text: `Привет 你好 🙂 ${'é'.repeat(i % 97)}`,
      }));
      await writeFile(at('big.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
      const read = await rowsWithLines(at('big.jsonl'));
      expect(read.map(([v]) => v)).to.deep.equal(rows);
      expect(read[2999]![1]).to.equal(3000);
    });
  });

  describe('readJsonOrJsonl', () => {
    it('reads a JSON array of objects', async () => {
      await writeFile(at('arr.json'), '\n [\n {"a": 1},\n {"a": 2}\n]\n');
      expect(await readJsonOrJsonl(at('arr.json'))).to.deep.equal([{ a: 1 }, { a: 2 }]);
    });

    it('reads JSON Lines in a .json file', async () => {
      await writeFile(at('lines.json'), '{"a":1}\n{"a":2}\n');
      expect(await readJsonOrJsonl(at('lines.json'))).to.deep.equal([{ a: 1 }, { a: 2 }]);
    });

    it('reads the paper samples (pandas lines=True)', async function () {
      const base = sharedPath(this, 'data', 'paper-samples');
      const guanaco = await readJsonOrJsonl<{ text: string; lang: string; id: number }>(
        path.join(base, 'guanaco_test.head.json'),
      );
      expect(guanaco.map((r) => r.id)).to.deep.equal([9846, 9847, 9848, 9849, 9850]);
      expect(guanaco[0]!.lang).to.equal('rus_Cyrl');
      const alpaca = await readJsonOrJsonl<{ instruction: string }>(
        path.join(base, 'alpaca_eval', 'alpaca_eval_instructions_is.head.json'),
      );
      expect(alpaca).to.have.length(25);
      expect(alpaca[7]!.instruction).to.equal('"Hver er Larry Page?"');
      const xcsqa = await readJsonOrJsonl<{ answer: [string, string]; options: string[] }>(
        path.join(base, 'xcsqa', 'xcsqa_dev_en_en.head.json'),
      );
      expect(xcsqa[0]!.answer).to.deep.equal(['C', 'hospital']);
      expect(xcsqa[0]!.options).to.have.length(5);
      const xquad = await readJsonOrJsonl<{ answer: string }>(
        path.join(base, 'xquad', 'xquad_dev_en_de.head.json'),
      );
      expect(xquad.map((r) => r.answer)).to.deep.equal(['308', '136', '118', 'vier', 'Kawann Short']);
    });

    it('names line and column of a broken array, and rejects non-object elements', async () => {
      await writeFile(at('broken.json'), '[\n {"a": 1},\n {"a" 2}\n]');
      await expectDataError(readJsonOrJsonl(at('broken.json')), 'bad-json', `${at('broken.json')}:3:`);
      await writeFile(at('nums.json'), '[{"a": 1}, 2]');
      await expectDataError(readJsonOrJsonl(at('nums.json')), 'not-an-object', 'element 1 is a number');
    });

    it('rejects a pretty-printed single object as JSON Lines, naming the line', async () => {
      await writeFile(at('obj.json'), '{\n  "data": []\n}\n');
      await expectDataError(readJsonOrJsonl(at('obj.json')), 'bad-json', 'obj.json:1');
      await expectDataError(readJsonOrJsonl(at('nothing.json')), 'cannot-read');
    });
  });

  describe('writeJsonlAtomic', () => {
    it('writes rows from an iterable or async iterable and leaves no temp file', async () => {
      const rows = [
        { a: 1, s: 'line\nbreak' },
        { b: [1, 2], u: '\u2028' },
      ];
      expect(await writeJsonlAtomic(at('out.jsonl'), rows)).to.equal(2);
      expect(await readJsonlAll(at('out.jsonl'))).to.deep.equal(rows);
      expect((await readFile(at('out.jsonl'), 'utf8')).split('\n')).to.have.length(3);
      async function* gen() {
        yield { x: 1 };
        yield { x: 2 };
      }
      expect(await writeJsonlAtomic(at('out.jsonl'), gen())).to.equal(2);
      expect(await readJsonlAll(at('out.jsonl'))).to.deep.equal([{ x: 1 }, { x: 2 }]);
      expect(await readdir(dir)).to.deep.equal(['out.jsonl']);
    });

    it('raises cannot-write when the folder is missing', async () => {
      await expectDataError(
        writeJsonlAtomic(at('no/such/out.jsonl'), [{ a: 1 }]),
        'cannot-write',
        'folder does not exist',
      );
      await expectDataError(
        appendJsonl(at('no/such/log.jsonl'), [{ a: 1 }]),
        'cannot-write',
        'no/such/log.jsonl',
      );
    });

    it('leaves the old file untouched when a row is bad', async () => {
      await writeJsonlAtomic(at('keep.jsonl'), [{ v: 'old' }]);
      await expectDataError(
        writeJsonlAtomic(at('keep.jsonl'), [{ v: 'new' }, [1]]),
        'not-an-object',
        'row 1',
      );
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await expectDataError(writeJsonlAtomic(at('keep.jsonl'), [circular]), 'unserialisable', 'row 0');
      expect(await readJsonlAll(at('keep.jsonl'))).to.deep.equal([{ v: 'old' }]);
      expect(await readdir(dir)).to.deep.equal(['keep.jsonl']);
    });
  });

  describe('appendJsonl', () => {
    it('creates the file and appends to it', async () => {
      expect(await appendJsonl(at('log.jsonl'), [{ i: 0 }])).to.deep.equal({ appended: 1 });
      expect(await appendJsonl(at('log.jsonl'), [{ i: 1 }, { i: 2 }])).to.deep.equal({ appended: 2 });
      expect(await readJsonlAll(at('log.jsonl'))).to.deep.equal([{ i: 0 }, { i: 1 }, { i: 2 }]);
    });

    it('cuts off a partial line left by a crash before appending, and reports it', async () => {
      await writeFile(at('log.jsonl'), '{"i":0}\n{"i":1}\n{"i":2,"out');
      const result = await appendJsonl(at('log.jsonl'), [{ i: 2 }]);
      expect(result).to.deep.equal({
        appended: 1,
        droppedTail: { path: at('log.jsonl'), line: 3, text: '{"i":2,"out' },
      });
      expect(await readFile(at('log.jsonl'), 'utf8')).to.equal('{"i":0}\n{"i":1}\n{"i":2}\n');
    });

    it('cuts off a partial first line', async () => {
      await writeFile(at('log.jsonl'), '{"i":0,"tru');
      const result = await appendJsonl(at('log.jsonl'), [{ i: 0 }]);
      expect(result.droppedTail?.line).to.equal(1);
      expect(await readJsonlAll(at('log.jsonl'))).to.deep.equal([{ i: 0 }]);
    });

    it('keeps a complete last line that lacks its newline', async () => {
      await writeFile(at('log.jsonl'), '{"i":0}');
      expect(await appendJsonl(at('log.jsonl'), [{ i: 1 }])).to.deep.equal({ appended: 1 });
      expect(await readFile(at('log.jsonl'), 'utf8')).to.equal('{"i":0}\n{"i":1}\n');
    });

    it('writes nothing when a row cannot be serialised', async () => {
      await appendJsonl(at('log.jsonl'), [{ i: 0 }]);
      await expectDataError(appendJsonl(at('log.jsonl'), [{ i: 1 }, 'oops']), 'not-an-object', 'row 1');
      expect(await readFile(at('log.jsonl'), 'utf8')).to.equal('{"i":0}\n');
    });
  });
});
