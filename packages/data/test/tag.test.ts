import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadLidModel } from '@polyglot/lid';
import { expect } from 'chai';
import { type LanguageIdentifier, readJsonlAll, tagFile, tagRecord } from '../src/index.js';
import { rejectsWith, tempDir } from './helpers/util.js';

/** A model that answers from a table: text → [label, prob]. */
function fake(table: Record<string, [string, number]>): LanguageIdentifier {
  return {
    top: (text: string) => {
      const hit = table[text];
      return hit ? { label: `__label__${hit[0]}`, prob: hit[1] } : null;
    },
  };
}

describe('language tagging', () => {
  it('adds label and confidence of any field; below the threshold the label is null', () => {
    const model = fake({ 'Hallo Welt': ['deu_Latn', 0.97], 'ok ok': ['eng_Latn', 0.41] });
    expect(tagRecord({ q: 'Hallo Welt', id: 1 }, model, { field: 'q', threshold: 0.8 })).to.deep.equal({
      q: 'Hallo Welt',
      id: 1,
      lang: 'deu_Latn',
      lang_prob: 0.97,
    });
    expect(tagRecord({ text: 'ok ok' }, model, { threshold: 0.8 })).to.deep.include({
      lang: null,
      lang_prob: 0.41,
    });
    expect(tagRecord({ text: 'ok ok' }, model, { labelKey: 'l', probKey: 'p' })).to.deep.include({
      l: 'eng_Latn',
      p: 0.41,
    });
    // the paper's cleaning: markers and newlines go before identification
    expect(
      tagRecord({ text: '### Human: Hallo\nWelt### Assistant:' }, fake({ 'Hallo Welt': ['deu_Latn', 1] })),
    ).to.deep.include({ lang: 'deu_Latn' });
    expect(tagRecord({ text: '' }, model)).to.deep.include({ lang: null, lang_prob: null });
    expect(() => tagRecord({ text: 'x' }, model, { threshold: 2 })).to.throw(/threshold must be in \[0, 1\]/);
  });

  it('tags a file with lid.176 atomically; a record without the field names file:line', async () => {
    const dir = tempDir('tag');
    const input = path.join(dir, 'in.jsonl');
    writeFileSync(
      input,
      [
        { instruction: 'Wie kann ich meine Zeit besser einteilen?' },
        { instruction: 'Как лучше всего учить новый язык?' },
        { instruction: 'Hvernig get ég lært að elda betur?' },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const model = await loadLidModel('lid176');
    const out = path.join(dir, 'out.jsonl');
    const summary = await tagFile(input, out, model, { field: 'instruction', threshold: 0.5 });
    expect(summary).to.deep.include({ records: 3, belowThreshold: 0, empty: 0 });
    const rows = await readJsonlAll<{ lang: string; lang_prob: number }>(out);
    expect(rows.map((r) => r.lang)).to.deep.equal(['de', 'ru', 'is']);
    for (const r of rows) expect(r.lang_prob).to.be.greaterThan(0.5);
    writeFileSync(input, `${JSON.stringify({ instruction: 'Hallo' })}\n${JSON.stringify({ prompt: 'x' })}\n`);
    const out2 = path.join(dir, 'out2.jsonl');
    await rejectsWith(
      tagFile(input, out2, model, { field: 'instruction' }),
      'missing-field',
      `${input}:2`,
      '"instruction"',
    );
    const { existsSync } = await import('node:fs');
    expect(existsSync(out2), 'nothing half-written').to.equal(false);
  });
});
