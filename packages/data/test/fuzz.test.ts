// Property-based and fuzz tests of the dataset readers: JSON Lines and JSON arrays (jsonl.ts, records.ts), the
// JSON error locator (jsonpos.ts), Guanaco conversations, AlpacaEval, oasst1 trees (plain and gzip), SQuAD/XQuAD,
// X-CSQA and XNLI (.tsv and .jsonl). Every input must read correctly or raise a DataError that names the file —
// never another exception or a hang (mocha's timeout). Case counts are printed (`fuzz: <parser> <N> cases`);
// POLYGLOT_FUZZ_RUNS scales them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyMutations,
  deepJson,
  fuzz,
  fuzzCounts,
  mutationsArb,
  parsesOrTyped,
  parsesOrTypedSync,
  recordCases,
  runs,
  weirdValue,
} from '../../../tools/fuzz.js';
import {
  formatGuanaco,
  type Message,
  oasstBestPath,
  parseGuanaco,
  readAlpacaEval,
  readGuanaco,
  readJsonl,
  readJsonlAll,
  readJsonOrJsonl,
  readLines,
  readOasstTrees,
  readPaperXcsqa,
  readPaperXquad,
  readPlacedRecords,
  readSquad,
  readXcsqa,
  readXnli,
  writeJsonlAtomic,
} from '../src/index.js';
import { jsonErrorOffset, lineColumn } from '../src/jsonpos.js';

const N = {
  jsonl: runs(150),
  jsonlText: runs(200),
  jsonpos: runs(1000),
  guanaco: runs(300),
  records: runs(150),
  oasst: runs(300),
  squad: runs(150),
  xnli: runs(150),
};

let tmp: string;
let fileNo = 0;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-data-fuzz-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  console.log(`      fuzz: data total ${[...fuzzCounts.values()].reduce((a, b) => a + b, 0)} cases`);
});

function tempFile(name: string, content: Uint8Array | string): string {
  const file = path.join(tmp, `${fileNo++}-${name}`);
  writeFileSync(file, content);
  return file;
}

/** Drains an async iterator into an array. */
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** JSON as it reads back (-0 becomes 0, as JSON.stringify writes it). */
const normal = (v: unknown) => JSON.parse(JSON.stringify(v));

const objectArb = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
const unicodeText = fc.string({ unit: 'grapheme', maxLength: 12 });

// ------------------------------------------------------------------------------------------------------------

describe('fuzz: JSON Lines and JSON arrays', () => {
  it(`writeJsonlAtomic → readJsonl returns the rows (${N.jsonl} cases)`, async () => {
    await fuzz(
      'jsonl round-trip',
      fc.asyncProperty(fc.array(objectArb, { maxLength: 6 }), async (rows) => {
        const file = path.join(tmp, `${fileNo++}-rt.jsonl`);
        await writeJsonlAtomic(file, rows);
        expect(await readJsonlAll(file)).to.deep.equal(normal(rows));
        expect(await readJsonOrJsonl(file)).to.deep.equal(normal(rows));
        const lines = await all(readJsonl(file));
        expect(lines.map((l) => l.line)).to.deep.equal(rows.map((_, i) => i + 1));
      }),
      N.jsonl,
    );
  });

  it(`reads JSON Lines with CRLF, BOM, blank lines, long lines; a JSON array gives the same rows (${N.jsonl} cases)`, async () => {
    await fuzz(
      'jsonl layout',
      fc.asyncProperty(
        fc.array(objectArb, { maxLength: 5 }),
        fc.boolean(),
        fc.constantFrom('\n', '\r\n'),
        fc.array(fc.constantFrom('', ' ', '\t', '  \r'), { maxLength: 3 }),
        fc.boolean(),
        fc.nat({ max: 200_000 }),
        async (rows, bom, eol, blanks, finalNewline, pad) => {
          const padded = rows.map((r, i) => (i === 0 && pad > 0 ? { ...r, pad: 'x'.repeat(pad) } : r));
          const lines = padded.map((r) => JSON.stringify(r));
          const text =
            (bom ? '\uFEFF' : '') +
            [...blanks, ...lines].join(eol) +
            (finalNewline && lines.length ? eol : '');
          const file = tempFile('layout.jsonl', text);
          expect(await readJsonlAll(file)).to.deep.equal(normal(padded));
          const arr = tempFile('layout.json', (bom ? '\uFEFF' : '') + JSON.stringify(padded));
          expect(await readJsonOrJsonl(arr)).to.deep.equal(normal(padded));
          const placed = await readPlacedRecords(arr);
          expect(placed.map((p) => p.value)).to.deep.equal(normal(padded));
          // readLines gives back the text's lines (without \r) and numbers them from 1
          const got = await all(readLines(file));
          const expected = text.replace(/^\uFEFF/, '').split('\n');
          if (expected.at(-1) === '') expected.pop();
          expect(got.map((l) => l.text)).to.deep.equal(expected.map((l) => l.replace(/\r$/, '')));
        },
      ),
      N.jsonl,
    );
  });

  it(`mutated, truncated and non-UTF-8 JSON Lines / JSON files read or raise DataError naming file:line (${N.jsonlText} cases)`, async () => {
    const seedRows = [
      { a: 1, b: 'two', c: [3, { d: null }] },
      { text: 'Grüße 😀', n: -1.5e-7 },
      {},
      { x: true },
    ];
    const jsonl = new TextEncoder().encode(`${seedRows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const array = new TextEncoder().encode(JSON.stringify(seedRows, null, 1));
    await fuzz(
      'jsonl mutation',
      fc.asyncProperty(
        fc.constantFrom(jsonl, array).chain((seed) => fc.tuple(fc.constant(seed), mutationsArb(seed.length))),
        fc.boolean(),
        async ([seed, ms], allowTail) => {
          const file = tempFile('mut.jsonl', applyMutations(seed, ms));
          const r = await parsesOrTyped(() => readJsonlAll(file, { allowTruncatedTail: allowTail }), file);
          if (r.ok)
            for (const row of r.value)
              expect(typeof row === 'object' && row !== null && !Array.isArray(row)).to.equal(true);
          if (!r.ok && r.error.code === 'bad-json') expect(r.error.message).to.match(/:\d+/);
          await parsesOrTyped(() => readJsonOrJsonl(file), file);
          await parsesOrTyped(() => readPlacedRecords(file), file);
        },
      ),
      N.jsonlText,
    );
  });

  it('reads deep nesting or refuses it with DataError; refuses non-objects', async () => {
    // [text, whether it is a valid file of objects]
    const cases: [string, boolean][] = [
      [`${deepJson(200_000, 'array')}\n`, false],
      [`{"a":${deepJson(100_000, 'object')}}\n`, true],
      [`[${deepJson(200_000, 'array')}]`, false],
      [`[${'['.repeat(100_000)}`, false],
      [`[{"a":${deepJson(100_000, 'array')}}]`, true],
      ['[1, 2]', false],
      ['"text"\n', false],
      ['[{"a": 1} {"b": 2}]', false],
    ];
    for (const [text, valid] of cases) {
      const file = tempFile('deep.json', text);
      const r = await parsesOrTyped(() => readJsonOrJsonl(file), file);
      expect(r.ok, text.slice(0, 20)).to.equal(valid);
      await parsesOrTyped(() => readJsonlAll(file), file);
    }
    // the error locator recurses: with little stack left it still answers (a place, not a RangeError)
    const nested = (n: number): number | null =>
      n === 0 ? jsonErrorOffset(`${'['.repeat(9999)}x`) : nested(n - 1);
    expect(nested(3000)).to.be.a('number');
    recordCases('jsonl odd files', cases.length + 1);
  });

  it(`jsonErrorOffset finds an error exactly where JSON.parse fails (${N.jsonpos} cases)`, async () => {
    const textArb = fc.oneof(
      fc.json({ maxDepth: 3 }),
      fc
        .json({ maxDepth: 3 })
        .chain((j) =>
          mutationsArb(j.length).map((ms) =>
            Buffer.from(applyMutations(Buffer.from(j, 'latin1'), ms)).toString('latin1'),
          ),
        ),
      fc.string({ maxLength: 12 }),
      fc.stringMatching(/^[\s[\]{}",:0-9eE.+\-tfnrul\\]{0,16}$/),
    );
    await fuzz(
      'jsonpos',
      fc.property(textArb, (text) => {
        let parses = true;
        try {
          JSON.parse(text);
        } catch {
          parses = false;
        }
        const offset = jsonErrorOffset(text);
        expect(offset === null, `${JSON.stringify(text)} → ${offset}`).to.equal(parses);
        if (offset !== null) {
          expect(offset).to.be.within(0, text.length);
          expect(lineColumn(text, offset)).to.match(/^\d+:\d+$/);
        }
      }),
      N.jsonpos,
    );
  });
});

// ------------------------------------------------------------------------------------------------------------

const contentArb = fc
  .oneof(unicodeText, fc.constantFrom('', ' ', '\n', '###', '### Human', 'Human:', '## Assistant:', ' lead'))
  .filter((s) => !/### (Human|Assistant):/.test(s));
const conversationArb = fc
  .array(contentArb, { minLength: 1, maxLength: 6 })
  .map((contents): Message[] =>
    contents.map((content, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content })),
  );

describe('fuzz: Guanaco conversations', () => {
  it(`parseGuanaco(formatGuanaco(messages)) gives the messages back (${N.guanaco} cases)`, async () => {
    await fuzz(
      'guanaco round-trip',
      fc.property(conversationArb, (messages) => {
        expect(parseGuanaco(formatGuanaco(messages))).to.deep.equal(messages);
      }),
      N.guanaco,
    );
  });

  it(`arbitrary and mangled texts parse or raise DataError bad-conversation (${N.guanaco} cases)`, async () => {
    const piece = fc.oneof(
      unicodeText,
      fc.constantFrom('### Human:', '### Assistant:', '### Human: ', '###', '\n'),
    );
    await fuzz(
      'guanaco text',
      fc.property(
        fc.oneof(
          fc.array(piece, { maxLength: 8 }).map((p) => p.join('')),
          weirdValue,
        ),
        (text) => {
          const r = parsesOrTypedSync(
            () => parseGuanaco(text as string, { source: 'g.jsonl:7' }),
            'g.jsonl:7',
          );
          if (r.ok) {
            expect(r.value.length).to.be.greaterThan(0);
            expect(r.value[0]!.role).to.equal('user');
            for (let i = 1; i < r.value.length; i++)
              expect(r.value[i]!.role).to.not.equal(r.value[i - 1]!.role);
          } else {
            expect(r.error.code).to.equal('bad-conversation');
          }
        },
      ),
      N.guanaco,
    );
    await fuzz(
      'guanaco format',
      fc.property(
        fc.array(
          fc.record({
            role: fc.oneof(fc.constantFrom('user', 'assistant'), weirdValue),
            content: fc.oneof(contentArb, weirdValue),
          }),
          {
            maxLength: 4,
          },
        ),
        (messages) => {
          parsesOrTypedSync(() => formatGuanaco(messages as Message[]));
        },
      ),
      N.guanaco,
    );
  });
});

// ------------------------------------------------------------------------------------------------------------

/** A record whose fields are valid values or, some of the time, values of the wrong type. */
function recordArb(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.fromEntries(
    Object.entries(fields).map(([k, a]) => [
      k,
      fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: weirdValue }),
    ]),
  );
  return fc.record(entries, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
}

/** Rows as JSON Lines or as a JSON array, sometimes with a line that is not an object. */
function fileText(rows: unknown[], asArray: boolean): string {
  return asArray ? JSON.stringify(rows) : `${rows.map((r) => JSON.stringify(r) ?? 'null').join('\n')}\n`;
}

describe('fuzz: dataset format readers', () => {
  it(`Guanaco, AlpacaEval, paper XQuAD / X-CSQA and X-CSQA files with odd fields read or raise DataError (${N.records} cases)`, async () => {
    const guanacoRow = recordArb({
      text: conversationArb.map(formatGuanaco),
      lang: fc.constantFrom('deu_Latn', 'rus_Cyrl'),
      lang_prob: fc.double({ min: 0, max: 1, noNaN: true }),
      id: fc.oneof(fc.nat(), fc.string({ maxLength: 4 })),
    });
    const alpacaRow = recordArb({
      instruction: unicodeText,
      output: unicodeText,
      generator: unicodeText,
      dataset: unicodeText,
    });
    const xquadRow = recordArb({ instruction: unicodeText, answer: unicodeText });
    const paperXcsqaRow = recordArb({
      instruction: unicodeText,
      question: unicodeText,
      options: fc.array(fc.constantFrom('x', 'y', 'z'), { maxLength: 5 }),
      answer: fc.oneof(
        fc.tuple(fc.constantFrom('A', 'B', 'C', 'Z', '', 'AB'), fc.constantFrom('x', 'y', 'z')),
        fc.array(fc.string({ maxLength: 2 })),
      ),
    });
    const xcsqaRow = recordArb({
      id: fc.string({ maxLength: 4 }),
      lang: fc.constantFrom('en', 'zh', 'jap'),
      answerKey: fc.constantFrom('A', 'B', 'E', ''),
      question: recordArb({
        stem: unicodeText,
        choices: fc.array(recordArb({ label: fc.constantFrom('A', 'B', 'C'), text: unicodeText }), {
          maxLength: 4,
        }),
      }),
    });
    const kinds = {
      guanaco: { row: guanacoRow, read: async (f: string) => all(readGuanaco(f)), arrays: false },
      alpaca: { row: alpacaRow, read: (f: string) => readAlpacaEval(f, { quotes: 'strip' }), arrays: true },
      xquad: { row: xquadRow, read: readPaperXquad, arrays: true },
      paperXcsqa: { row: paperXcsqaRow, read: readPaperXcsqa, arrays: true },
      xcsqa: { row: xcsqaRow, read: readXcsqa, arrays: false },
    };
    for (const [name, kind] of Object.entries(kinds)) {
      await fuzz(
        `records ${name}`,
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              { weight: 8, arbitrary: kind.row as fc.Arbitrary<unknown> },
              { weight: 1, arbitrary: weirdValue },
            ),
            {
              maxLength: 4,
            },
          ),
          fc.boolean(),
          async (rows, asArray) => {
            const file = tempFile(`${name}.json`, fileText(rows, asArray && kind.arrays));
            const r = await parsesOrTyped(() => (kind.read as (f: string) => Promise<unknown[]>)(file), file);
            if (r.ok) expect(r.value.length).to.be.at.most(rows.length);
          },
        ),
        N.records,
      );
    }
  });

  it(`oasst1 trees (odd nodes, replies that are not lists) give the best path or raise DataError (${N.oasst} cases)`, async () => {
    const nodeArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        recordArb({
          role: fc.constantFrom('prompter', 'assistant'),
          text: contentArb,
          rank: fc.oneof(fc.nat({ max: 3 }), fc.constant(null)),
          deleted: fc.boolean(),
          lang: fc.constantFrom('de', 'en'),
          replies: fc.array(tie('node'), { maxLength: 3 }),
        }),
        weirdValue,
      ),
    })).node;
    const treeArb = fc.oneof(
      recordArb({ message_tree_id: fc.string({ maxLength: 4 }), prompt: nodeArb }),
      weirdValue,
    );
    await fuzz(
      'oasst tree',
      fc.property(treeArb, (tree) => {
        const r = parsesOrTypedSync(() => oasstBestPath(tree as never, 'trees.jsonl:3'), 'trees.jsonl:3');
        if (r.ok && r.value) {
          expect(r.value.messages.at(-1)!.role).to.equal('assistant');
          expect(parseGuanaco(r.value.text)).to.deep.equal(r.value.messages);
        }
      }),
      N.oasst,
    );
    await fuzz(
      'oasst file',
      fc.asyncProperty(
        fc.array(treeArb, { maxLength: 3 }),
        fc.boolean(),
        fc.option(mutationsArb(400)),
        async (trees, gz, ms) => {
          let bytes: Uint8Array = new TextEncoder().encode(fileText(trees, false));
          if (gz) bytes = gzipSync(bytes);
          if (ms) bytes = applyMutations(bytes, ms);
          const file = tempFile(gz ? 'trees.jsonl.gz' : 'trees.jsonl', bytes);
          await parsesOrTyped(() => all(readOasstTrees(file)), file);
        },
      ),
      N.oasst,
    );
  });

  it(`SQuAD/XQuAD documents with odd fields and spans read or raise DataError naming the JSON path (${N.squad} cases)`, async () => {
    const context = fc.constantFrom('Der Rhein fließt 😀 durch Basel.', 'abc', '');
    const answer = recordArb({
      text: fc.constantFrom('Rhein', 'Basel', '😀', 'abc', 'x'),
      answer_start: fc.oneof(fc.nat({ max: 40 }), fc.constant(-1), fc.constant(1.5)),
    });
    const qa = recordArb({
      id: fc.oneof(fc.string({ maxLength: 3 }), fc.nat()),
      question: unicodeText,
      answers: fc.array(answer, { maxLength: 2 }),
    });
    const para = recordArb({ context, qas: fc.array(qa, { maxLength: 2 }) });
    const article = recordArb({ title: unicodeText, paragraphs: fc.array(para, { maxLength: 2 }) });
    const doc = fc.oneof(
      recordArb({ version: fc.constant('1.1'), data: fc.array(article, { maxLength: 2 }) }),
      weirdValue,
    );
    await fuzz(
      'squad',
      fc.asyncProperty(doc, fc.boolean(), fc.option(mutationsArb(200)), async (d, checkSpans, ms) => {
        let bytes: Uint8Array = new TextEncoder().encode(JSON.stringify(d) ?? 'null');
        if (ms) bytes = applyMutations(bytes, ms);
        const file = tempFile('squad.json', bytes);
        const r = await parsesOrTyped(() => readSquad(file, { checkSpans }), file);
        if (r.ok && checkSpans) {
          for (const item of r.value) {
            for (const a of item.answers) {
              expect(
                [...item.context].slice(a.answer_start, a.answer_start + [...a.text].length).join(''),
              ).to.equal(a.text);
            }
          }
        }
      }),
      N.squad,
    );
  });

  it(`XNLI .tsv and .jsonl files with odd rows read or raise DataError naming file:line (${N.xnli} cases)`, async () => {
    const cell = fc.oneof(
      unicodeText.map((s) => s.replace(/[\t\n]/g, ' ')),
      fc.constantFrom('entailment', 'neutral', 'contradiction', '-', '0', '1', 'de', '\r'),
    );
    const header = fc.oneof(
      fc.constant(['language', 'gold_label', 'sentence1', 'sentence2', 'pairID']),
      fc.shuffledSubarray([
        'language',
        'gold_label',
        'sentence1',
        'sentence2',
        'pairID',
        'genre',
        '__proto__',
        'constructor',
      ]),
    );
    const tsv = fc
      .tuple(header, fc.array(fc.array(cell, { minLength: 3, maxLength: 6 }), { maxLength: 5 }))
      .map(([h, rows]) => [h.join('\t'), ...rows.map((r) => r.join('\t'))].join('\n'));
    const jsonRow = recordArb({
      language: fc.constantFrom('de', 'en'),
      premise: unicodeText,
      hypothesis: unicodeText,
      label: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.constantFrom('entailment', 'neutral', 'x')),
      gold_label: fc.constantFrom('entailment', 'contradiction'),
      sentence1: unicodeText,
      sentence2: unicodeText,
    });
    await fuzz(
      'xnli',
      fc.asyncProperty(
        fc.oneof(
          tsv.map((t) => ({ ext: 'tsv', text: t })),
          fc.array(jsonRow, { maxLength: 4 }).map((rows) => ({ ext: 'jsonl', text: fileText(rows, false) })),
        ),
        fc.option(mutationsArb(100)),
        async ({ ext, text }, ms) => {
          let bytes: Uint8Array = new TextEncoder().encode(text);
          if (ms) bytes = applyMutations(bytes, ms);
          const file = tempFile(`xnli.${ext}`, bytes);
          const r = await parsesOrTyped(() => readXnli(file), file);
          if (r.ok)
            for (const item of r.value)
              expect(['entailment', 'neutral', 'contradiction']).to.include(item.label);
        },
      ),
      N.xnli,
    );
  });
});
