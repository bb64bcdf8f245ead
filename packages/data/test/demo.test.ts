// The demo dataset in data/demo/ (written by the project): complete, well-formed, in the declared languages,
// and enough to build the paper's Mono and Multi-k mixes.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { loadLidModel } from '@polyglot/lid';
import { expect } from 'chai';
import { repoRoot } from '../../../tools/shared.js';
import {
  buildMix,
  datasetStats,
  langId,
  paperMixNames,
  parseGuanaco,
  readAlpacaEval,
  readJsonlAll,
  readXcsqa,
  readXnli,
  readXquad,
  tagRecord,
} from '../src/index.js';

const demo = path.join(repoRoot, 'data', 'demo');
const MAJOR = ['en', 'es', 'ru', 'de', 'zh', 'fr'];
const MINOR = ['bg', 'is', 'el', 'hi'];
const XNLI = ['en', 'de', 'es', 'ru', 'zh', 'fr', 'bg', 'el', 'hi'];

describe('demo dataset (data/demo)', () => {
  it('chat.jsonl: Guanaco conversations, 40 each of en es ru de zh fr and 20 each of bg is el hi', async () => {
    const rows = await readJsonlAll<{ text: string; lang: string; id: string }>(
      path.join(demo, 'chat.jsonl'),
    );
    const counts: Record<string, number> = {};
    for (const r of rows) counts[r.lang] = (counts[r.lang] ?? 0) + 1;
    expect(counts).to.deep.equal(
      Object.fromEntries([...MAJOR.map((l) => [l, 40]), ...MINOR.map((l) => [l, 20])]),
    );
    expect(new Set(rows.map((r) => r.id)).size).to.equal(rows.length);
    let multiTurn = 0;
    for (const r of rows) {
      const m = parseGuanaco(r.text, { source: r.id });
      expect(m.at(-1)!.role, r.id).to.equal('assistant');
      if (m.length > 2) multiTurn++;
      for (const t of m) expect(t.content.trim().length, r.id).to.be.greaterThan(0);
    }
    expect(multiTurn).to.be.greaterThanOrEqual(20);
  });

  it('lid.176 agrees with the declared language of the conversations and test prompts', async () => {
    const model = await loadLidModel('lid176');
    const rows = await readJsonlAll<{ text: string; lang: string }>(path.join(demo, 'chat.jsonl'));
    const agree: Record<string, [number, number]> = {};
    for (const r of rows) {
      const tagged = tagRecord(r, model);
      agree[r.lang] ??= [0, 0];
      const a = agree[r.lang]!;
      a[1]++;
      if (typeof tagged.lang === 'string' && langId(tagged.lang).code === r.lang) a[0]++;
    }
    for (const [lang, [ok, n]] of Object.entries(agree)) expect(ok / n, lang).to.be.greaterThanOrEqual(0.9);
    const total = Object.values(agree).reduce((s, [ok]) => s + ok, 0);
    expect(total / rows.length).to.be.greaterThanOrEqual(0.97);

    const files = readdirSync(path.join(demo, 'test_prompts')).sort();
    expect(files).to.deep.equal([...MAJOR, ...MINOR].sort().map((l) => `${l}.jsonl`));
    let ok = 0;
    let n = 0;
    for (const f of files) {
      const lang = f.replace('.jsonl', '');
      const items = await readAlpacaEval(path.join(demo, 'test_prompts', f));
      expect(items, f).to.have.length(8);
      for (const it of items) {
        n++;
        const top = model.top(it.instruction);
        if (top && langId(top.label).code === lang) ok++;
      }
    }
    expect(ok / n).to.be.greaterThanOrEqual(0.95);
  });

  it('X-CSQA-style and XQuAD-style items read with the original formats’ readers, parallel across languages', async () => {
    const keys: string[][] = [];
    for (const lang of readdirSync(path.join(demo, 'xcsqa')).sort()) {
      const items = await readXcsqa(path.join(demo, 'xcsqa', lang, 'dev.jsonl'));
      expect(items, lang).to.have.length(5);
      expect(items.every((x) => x.lang === lang && x.options.length === 5)).to.equal(true);
      keys.push(items.map((x) => x.answer!));
    }
    expect(keys).to.have.length(6);
    for (const k of keys) expect(k).to.deep.equal(['B', 'C', 'A', 'D', 'E']);
    const ids: string[][] = [];
    for (const f of readdirSync(path.join(demo, 'xquad')).sort()) {
      const items = await readXquad(path.join(demo, 'xquad', f));
      expect(items, f).to.have.length(6);
      ids.push(items.map((x) => x.id));
    }
    expect(ids).to.have.length(7);
    for (const i of ids) expect(i).to.deep.equal(ids[0]);
  });

  it('XNLI-style pairs: 9 per language (3 of each label), parallel ids, readXnli reads them, lid.176 names each premise', async () => {
    const files = readdirSync(path.join(demo, 'xnli')).sort();
    expect(files).to.deep.equal([...XNLI].sort().map((l) => `xnli.${l}.jsonl`));
    const model = await loadLidModel('lid176');
    let reference: { id: string; label: string }[] | null = null;
    for (const lang of XNLI) {
      const file = path.join(demo, 'xnli', `xnli.${lang}.jsonl`);
      const rows = await readJsonlAll<Record<string, unknown>>(file);
      expect(rows, file).to.have.length(9);
      for (const r of rows) {
        expect(Object.keys(r), `${file} ${String(r.id)}`).to.deep.equal([
          'id',
          'premise',
          'hypothesis',
          'label',
        ]);
        expect(r.id, file).to.match(/^demo-xnli-0[1-9]$/);
        for (const k of ['premise', 'hypothesis']) {
          expect(r[k], `${file} ${String(r.id)} ${k}`)
            .to.be.a('string')
            .and.match(/\S/);
        }
        const top = model.top(r.premise as string);
        expect(top && langId(top.label).code, `${file} ${String(r.id)}: premise in ${lang}`).to.equal(lang);
      }
      const labels = rows.map((r) => ({ id: r.id as string, label: r.label as string }));
      const counts: Record<string, number> = {};
      for (const l of labels) counts[l.label] = (counts[l.label] ?? 0) + 1;
      expect(counts, file).to.deep.equal({ entailment: 3, neutral: 3, contradiction: 3 });
      if (reference)
        expect(labels, `${file}: the same ids and labels as xnli.${XNLI[0]}.jsonl`).to.deep.equal(reference);
      reference ??= labels;
      const items = await readXnli(file);
      expect(items.map((x) => x.label)).to.deep.equal(labels.map((l) => l.label));
    }
  });

  it('is enough for the paper’s Mono and Multi-2 … Multi-6 mixes (and stats)', async () => {
    const rows = await readJsonlAll(path.join(demo, 'chat.jsonl'));
    for (const mix of paperMixNames()) {
      const r = buildMix(rows, { kind: 'paper', mix, total: 40, perLanguage: 6 }, { seed: 0 });
      expect(r.records, mix).to.have.length(40);
    }
    const m6 = buildMix(rows, { kind: 'paper', mix: 'multi-6', total: 40, perLanguage: 6 }, { seed: 0 });
    expect(m6.counts).to.deep.equal({ en: 10, es: 6, ru: 6, de: 6, zh: 6, fr: 6 });
    const stats = await datasetStats(path.join(demo, 'chat.jsonl'));
    expect(stats.records).to.equal(320);
    expect(
      stats.languages
        .map((l) => l.lang)
        .slice(0, 6)
        .sort(),
    ).to.deep.equal([...MAJOR].sort());
    const zh = stats.languages.find((l) => l.lang === 'zh')!;
    expect(zh.words.mean).to.be.greaterThan(5);
    expect(stats.all.turns!.max).to.equal(4);
  });
});
