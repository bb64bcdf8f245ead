import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@polyglot/model';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  collate,
  epochBatches,
  epochOrder,
  formatRecord,
  IGNORE,
  loadSftDataset,
  packExamples,
  SftError,
} from '../src/index.js';

async function expectError(
  p: Promise<unknown> | (() => unknown),
  code: string,
  text?: RegExp,
): Promise<Error> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (e) {
    expect(e).to.be.instanceOf(SftError);
    expect((e as SftError).code).to.equal(code);
    if (text) expect((e as Error).message).to.match(text);
    return e as Error;
  }
  throw new Error(`expected an SftError ${code}`);
}

/** The contiguous runs of target tokens, decoded. */
function targetRuns(tok: Tokenizer, ids: number[], targets: Uint8Array): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  for (let i = 0; i <= ids.length; i++) {
    if (i < ids.length && targets[i]) cur.push(ids[i]);
    else if (cur.length > 0) {
      runs.push(tok.decode(cur));
      cur = [];
    }
  }
  return runs;
}

describe('data: formats and target masks', () => {
  let tok: Tokenizer;
  let tmp: string;
  before(async function () {
    tok = await Tokenizer.fromDir(sharedPath(this, 'fixtures', 'tiny-llama', 'base'));
    tmp = mkdtempSync(path.join(os.tmpdir(), 'sft-data-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('text: BOS + tokens + EOS, every token but the first a target', () => {
    const ex = formatRecord(
      { text: '### Human: Hi ### Assistant: Hello.' },
      { tokenizer: tok, maxLength: 64 },
    );
    const plain = tok.encode('### Human: Hi ### Assistant: Hello.');
    expect(ex.ids).to.deep.equal([...plain, tok.eosId]);
    expect(ex.ids[0]).to.equal(tok.bosId);
    expect(Array.from(ex.targets)).to.deep.equal([0, ...new Array(ex.ids.length - 1).fill(1)]);
    expect(ex.format).to.equal('text');
  });

  it('text already ending with EOS gets no second one', () => {
    const ex = formatRecord({ text: 'Hello</s>' }, { tokenizer: tok, maxLength: 64 });
    expect(ex.ids.filter((t) => t === tok.eosId)).to.have.length(1);
    expect(ex.ids.at(-1)).to.equal(tok.eosId);
  });

  it('prompt/completion: exactly the prompt tokens are masked; the completion and EOS are targets', () => {
    const prompt = '### Human: What is 2 + 2? ### Assistant:';
    const completion = ' It is 4.';
    const ex = formatRecord({ prompt, completion }, { tokenizer: tok, maxLength: 64 });
    const p = tok.encode(prompt).length;
    expect(ex.ids).to.deep.equal([...tok.encode(prompt + completion), tok.eosId]);
    expect(Array.from(ex.targets)).to.deep.equal([
      ...new Array(p).fill(0),
      ...new Array(ex.ids.length - p).fill(1),
    ]);
    expect(targetRuns(tok, ex.ids, ex.targets)).to.deep.equal(['It is 4.</s>']);
    expect(ex.boundaryMismatch).to.equal(false);
    // --loss full trains on the prompt too.
    const full = formatRecord({ prompt, completion }, { tokenizer: tok, maxLength: 64, loss: 'full' });
    expect(
      Array.from(full.targets)
        .slice(1)
        .every((t) => t === 1),
    ).to.equal(true);
  });

  it('messages: with a chat template, only the assistant turns (and the final EOS) are targets', () => {
    const messages = [
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: 'Blue.' },
      { role: 'user', content: 'Another one?' },
      { role: 'assistant', content: 'Green.' },
    ];
    const ex = formatRecord({ messages }, { tokenizer: tok, maxLength: 128, chatTemplate: 'guanaco' });
    const text = tok.applyChatTemplate(messages, { chatTemplate: 'guanaco' });
    expect(text).to.equal(
      '### Human: Name a colour.### Assistant: Blue. ### Human: Another one?### Assistant: Green.',
    );
    expect(ex.ids).to.deep.equal([...tok.encode(text, { addSpecialTokens: false }), tok.eosId]);
    expect(targetRuns(tok, ex.ids, ex.targets)).to.deep.equal(['Blue.', 'Green.</s>']);
    // Everything else (the human turns and the "### Assistant:" headers) is masked.
    const masked = ex.ids.filter((_, i) => !ex.targets[i]);
    expect(tok.decode(masked)).to.equal(
      '### Human: Name a colour.### Assistant: ### Human: Another one?### Assistant:',
    );
  });

  it('messages with a template that writes EOS itself (llama-2-chat): no second EOS', () => {
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ];
    const ex = formatRecord({ messages }, { tokenizer: tok, maxLength: 128, chatTemplate: 'llama-2-chat' });
    expect(ex.ids.filter((t) => t === tok.eosId)).to.have.length(1);
    const runs = targetRuns(tok, ex.ids, ex.targets);
    expect(runs).to.have.length(1);
    expect(runs[0]).to.match(/Hello!/);
  });

  it('--loss completion is refused for text records', async () => {
    await expectError(
      () => formatRecord({ text: 'x' }, { tokenizer: tok, maxLength: 8, loss: 'completion' }),
      'SFT_BAD_RECORD',
      /no completion/,
    );
  });

  it('truncates to max length, keeping the start, and counts it', async () => {
    const file = path.join(tmp, 'long.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify({ text: 'one two three four five six seven eight nine ten' })}\n${JSON.stringify({ text: 'hi' })}\n`,
    );
    const ds = await loadSftDataset(file, { tokenizer: tok, maxLength: 6 });
    expect(ds.stats.truncated).to.equal(1);
    expect(ds.examples[0].truncated).to.equal(true);
    expect(ds.examples[0].ids).to.have.length(6);
    expect(ds.examples[0].ids).to.deep.equal(
      tok.encode('one two three four five six seven eight nine ten').slice(0, 6),
    );
    expect(ds.examples[0].fullLength).to.be.greaterThan(6);
    expect(ds.stats.longest).to.equal(ds.examples[0].fullLength);
    expect(ds.examples[1].truncated).to.equal(false);
  });

  it('bad input: an empty dataset, a line without a usable field (file:line), bad JSON, a missing file', async () => {
    const empty = path.join(tmp, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    await expectError(
      loadSftDataset(empty, { tokenizer: tok, maxLength: 8 }),
      'SFT_EMPTY_DATASET',
      /no records/,
    );
    const noField = path.join(tmp, 'nofield.jsonl');
    writeFileSync(noField, '{"text": "a"}\n\n{"instruction": "b"}\n');
    await expectError(
      loadSftDataset(noField, { tokenizer: tok, maxLength: 8 }),
      'SFT_BAD_RECORD',
      new RegExp(
        `${noField.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: no usable field \\(found "instruction"\\)`,
      ),
    );
    const badType = path.join(tmp, 'badtype.jsonl');
    writeFileSync(badType, '{"prompt": "a", "completion": 3}\n');
    await expectError(
      loadSftDataset(badType, { tokenizer: tok, maxLength: 8 }),
      'SFT_BAD_RECORD',
      /:1: "prompt" and "completion"/,
    );
    const badMsgs = path.join(tmp, 'badmsgs.jsonl');
    writeFileSync(badMsgs, '{"messages": [{"role": "user"}]}\n');
    await expectError(
      loadSftDataset(badMsgs, { tokenizer: tok, maxLength: 8 }),
      'SFT_BAD_RECORD',
      /:1: messages\[0\]/,
    );
    const badJson = path.join(tmp, 'badjson.jsonl');
    writeFileSync(badJson, '{"text": "a"}\n{"text": \n');
    await expectError(
      loadSftDataset(badJson, { tokenizer: tok, maxLength: 8 }),
      'SFT_BAD_JSON',
      /:2: invalid JSON/,
    );
    await expectError(
      loadSftDataset(path.join(tmp, 'missing.jsonl'), { tokenizer: tok, maxLength: 8 }),
      'SFT_DATA_READ',
      /no such file/,
    );
  });
});

describe('batches', () => {
  const ex = (ids: number[], targets?: number[]) => ({
    ids,
    targets: Uint8Array.from(targets ?? ids.map((_, i) => (i === 0 ? 0 : 1))),
  });

  it('collate: right padding with the pad id, attention mask, labels -100 on padding and non-targets', () => {
    const b = collate([ex([1, 5, 6, 2]), ex([1, 7, 2], [0, 0, 1])], 2);
    expect(b.batch).to.equal(2);
    expect(b.length).to.equal(4);
    expect(Array.from(b.inputIds)).to.deep.equal([1, 5, 6, 2, 1, 7, 2, 2]);
    expect(Array.from(b.attentionMask)).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 0]);
    expect(Array.from(b.labels)).to.deep.equal([IGNORE, 5, 6, 2, IGNORE, IGNORE, 2, IGNORE]);
    expect(Array.from(b.segments)).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 0]);
    expect(b.tokens).to.equal(7);
    expect(b.targetTokens).to.equal(4);
  });

  it('packing: best-fit decreasing, a segment per example, no target at an example start', () => {
    const rows = packExamples([ex([1, 3, 2]), ex([1, 4, 4, 4, 2]), ex([1, 5, 2]), ex([1, 6, 6, 2])], 8);
    expect(rows.map((r) => r.ids.length).sort()).to.deep.equal([7, 8]);
    for (const r of rows) {
      const segs = Array.from(r.segments!);
      for (let i = 0; i < segs.length; i++) {
        if (i === 0 || segs[i] !== segs[i - 1]) expect(r.targets[i], `row start ${i}`).to.equal(0);
        else expect(r.targets[i]).to.equal(1);
      }
    }
    const b = collate(rows, 0);
    expect(b.targetTokens).to.equal(2 + 4 + 2 + 3); // every token but each example's first
  });

  it('epoch order: sorted by length (stable), or a seeded shuffle that changes per epoch', () => {
    const examples = [ex([1, 2, 3]), ex([1, 2]), ex([1, 2, 3]), ex([1])];
    expect(epochOrder(examples, 0, { sortByLength: true })).to.deep.equal([3, 1, 0, 2]);
    expect(epochOrder(examples, 5, { sortByLength: true, shuffle: true })).to.deep.equal([3, 1, 0, 2]);
    const many = Array.from({ length: 50 }, (_, i) => ex([i]));
    const a = epochOrder(many, 0, { shuffle: true, seed: 1 });
    expect(epochOrder(many, 0, { shuffle: true, seed: 1 })).to.deep.equal(a);
    expect(epochOrder(many, 1, { shuffle: true, seed: 1 })).to.not.deep.equal(a);
    expect(epochOrder(many, 0, { shuffle: true, seed: 2 })).to.not.deep.equal(a);
    expect([...a].sort((x, y) => x - y)).to.deep.equal(many.map((_, i) => i));
    expect(epochOrder(many, 0, { shuffle: false })).to.deep.equal(many.map((_, i) => i));
    expect(epochBatches([0, 1, 2, 3, 4], 2)).to.deep.equal([[0, 1], [2, 3], [4]]);
  });
});
