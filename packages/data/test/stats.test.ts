import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { countWords, datasetStats } from '../src/index.js';
import { rejectsWith, tempDir } from './helpers/util.js';

describe('dataset statistics', () => {
  it('counts records, characters, words and tokens per language', async () => {
    const dir = tempDir('stats');
    const f = path.join(dir, 'd.jsonl');
    const rows = [
      { text: '### Human: Hallo Welt### Assistant: Guten Tag', lang: 'deu_Latn' },
      { text: '### Human: Hi### Assistant: Hello there, friend', lang: 'en' },
      { text: '### Human: Wie geht es?### Assistant: Gut.### Human: Schön### Assistant: Ja', lang: 'de' },
      { text: '### Human: ?### Assistant: !' },
    ];
    writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n'));
    const s = await datasetStats(f, { countTokens: (t) => t.split(' ').length });
    expect(s.field).to.equal('text');
    expect(s.languages.map((l) => [l.lang, l.records])).to.deep.equal([
      ['de', 2],
      ['en', 1],
      ['untagged', 1],
    ]);
    const de = s.languages[0]!;
    expect(de.turns).to.deep.equal({ total: 6, mean: 3, median: 3, min: 2, max: 4 });
    expect(de.chars.min).to.equal([...rows[0]!.text].length);
    expect(s.all.tokens!.total).to.equal(rows.reduce((a, r) => a + r.text.split(' ').length, 0));
    expect(countWords('我喜欢学习中文')).to.be.greaterThan(1);
    expect(countWords('Hello, world!')).to.equal(2);
    await rejectsWith(datasetStats(f, { field: 'instruction' }), 'missing-field', `${f}:1`);
  });
});
