import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import {
  buildMix,
  type JsonObject,
  type MixStrategy,
  manifestPathFor,
  PAPER_LANGUAGE_ORDER,
  paperMixNames,
  planMix,
  Rng,
  readJsonlAll,
  readMixSources,
  writeJsonlAtomic,
  writeMix,
} from '../src/index.js';
import { rejectsWith, tempDir } from './helpers/util.js';

/** A pool: `n` records per language, tags as OpenLID writes them or as ISO codes, with confidences. */
function pool(spec: Record<string, number>, prob = 0.99): JsonObject[] {
  const rows: JsonObject[] = [];
  for (const [lang, n] of Object.entries(spec)) {
    for (let i = 0; i < n; i++)
      rows.push({
        text: `### Human: ${lang} ${i}### Assistant: ok`,
        lang,
        lang_prob: prob,
        id: `${lang}-${i}`,
      });
  }
  return rows;
}

const GUANACO_LIKE = pool({
  eng_Latn: 400,
  spa_Latn: 300,
  rus_Cyrl: 60,
  deu_Latn: 40,
  zho_Hans: 30,
  fra_Latn: 25,
  cat_Latn: 10,
});
const ids = (rows: JsonObject[]) => rows.map((r) => r.id as string);

describe('mix builder', () => {
  it("the paper's recipe: Mono, Multi-2 … Multi-6 with exact per-language counts", () => {
    expect(paperMixNames()).to.deep.equal(['mono', 'multi-2', 'multi-3', 'multi-4', 'multi-5', 'multi-6']);
    const opts = { total: 200, perLanguage: 20 };
    const expected: Record<string, Record<string, number>> = {
      mono: { en: 200 },
      'multi-2': { en: 180, es: 20 },
      'multi-3': { en: 160, es: 20, ru: 20 },
      'multi-4': { en: 140, es: 20, ru: 20, de: 20 },
      'multi-5': { en: 120, es: 20, ru: 20, de: 20, zh: 20 },
      'multi-6': { en: 100, es: 20, ru: 20, de: 20, zh: 20, fr: 20 },
    };
    for (const [mix, counts] of Object.entries(expected)) {
      const r = buildMix(GUANACO_LIKE, { kind: 'paper', mix, ...opts }, { seed: 1 });
      expect(r.records, mix).to.have.length(200);
      expect(r.counts, mix).to.deep.equal(counts);
      expect(new Set(ids(r.records)).size, `${mix}: no record twice`).to.equal(200);
    }
    expect(
      buildMix(GUANACO_LIKE, { kind: 'paper', mix: 'multi-1', ...opts }, { seed: 1 }).counts,
    ).to.deep.equal({ en: 200 });
  });

  it('leave-one-out and all', () => {
    const loo = buildMix(
      GUANACO_LIKE,
      { kind: 'paper', mix: 'loo-de', total: 200, perLanguage: 20 },
      { seed: 3 },
    );
    expect(loo.counts).to.deep.equal({ en: 120, es: 20, ru: 20, zh: 20, fr: 20 });
    const all = buildMix([...GUANACO_LIKE, { text: 'untagged' }], { kind: 'paper', mix: 'all' }, { seed: 3 });
    expect(all.records).to.have.length(GUANACO_LIKE.length + 1);
    expect(all.counts.untagged).to.equal(1);
    expect(all.counts.ca).to.equal(10);
  });

  it('is deterministic by seed; different seeds differ; mixes nest (Multi-3 English ⊂ Multi-2 English)', () => {
    const s: MixStrategy = { kind: 'paper', mix: 'multi-3', total: 200, perLanguage: 20 };
    const a = buildMix(GUANACO_LIKE, s, { seed: 42 });
    const b = buildMix(GUANACO_LIKE, s, { seed: 42 });
    const c = buildMix(GUANACO_LIKE, s, { seed: 43 });
    expect(ids(a.records)).to.deep.equal(ids(b.records));
    expect(ids(a.records)).to.not.deep.equal(ids(c.records));
    expect(new Set(ids(a.records))).to.not.deep.equal(new Set(ids(c.records)));
    const m2 = buildMix(GUANACO_LIKE, { ...s, mix: 'multi-2' }, { seed: 42 });
    const en = (r: typeof a) => new Set(ids(r.records).filter((x) => x.startsWith('eng')));
    const es = (r: typeof a) => new Set(ids(r.records).filter((x) => x.startsWith('spa')));
    for (const x of en(a)) expect(en(m2).has(x)).to.equal(true);
    expect(es(a)).to.deep.equal(es(m2));
    // input order does not matter for which records are drawn
    const reversed = buildMix([...GUANACO_LIKE].reverse(), s, { seed: 42 });
    expect(reversed.counts).to.deep.equal(a.counts);
  });

  it('refuses clearly when a quota cannot be met, counting what the confidence filter left out', () => {
    const rows = [...pool({ en: 100, es: 30 }), ...pool({ es: 15, ru: 5 }, 0.5)];
    let err = null as unknown as Error;
    try {
      buildMix(
        rows,
        { kind: 'paper', mix: 'multi-3', total: 100, perLanguage: 40 },
        { seed: 1, minConfidence: 0.8 },
      );
    } catch (e) {
      err = e as Error;
    }
    expect((err as { code?: string }).code).to.equal('quota-unmet');
    expect(err.message).to.include('es: needs 40, the input has 30 (15 more are below the confidence 0.8)');
    expect(err.message).to.include('ru: needs 40, the input has 0 (5 more are below the confidence 0.8)');
    expect(() => buildMix(rows, { kind: 'quota', quotas: { en: 101 } }, { seed: 1 })).to.throw(
      /en: needs 101, the input has 100/,
    );
    // with repeats allowed, a short language repeats its records
    const rep = buildMix(
      pool({ en: 10, is: 3 }),
      { kind: 'quota', quotas: { en: 5, is: 7 } },
      { seed: 1, replacement: true },
    );
    expect(rep.counts).to.deep.equal({ is: 7, en: 5 });
    expect(new Set(ids(rep.records).filter((x) => x.startsWith('is'))).size).to.equal(3);
  });

  it('bad recipes are refused before anything is drawn', () => {
    const bad = (s: MixStrategy, re: RegExp) =>
      expect(() => buildMix(GUANACO_LIKE, s, { seed: 0 })).to.throw(re);
    bad({ kind: 'paper', mix: 'multi-7' }, /k must be between 1 and 6/);
    bad({ kind: 'paper', mix: 'loo-it' }, /it is not in the language order/);
    bad({ kind: 'paper', mix: 'multi-6', total: 50, perLanguage: 20 }, /exceed the total 50/);
    bad({ kind: 'paper', mix: 'tri' }, /unknown paper mix/);
    bad({ kind: 'quota', quotas: { en: 10, es: 10 }, total: 30 }, /add up to 20, not the total 30/);
    bad({ kind: 'quota', quotas: { en: 10 }, fill: 'en', total: 30 }, /must not also have a quota/);
    bad({ kind: 'quota', quotas: { de: 10, deu_Latn: 5 } }, /given twice/);
    bad({ kind: 'temperature', total: 10, alpha: -1 }, /alpha must be a number/);
    expect(() => buildMix(GUANACO_LIKE, { kind: 'uniform', total: 3 }, { seed: -1 })).to.throw(
      /seed must be a non-negative integer/,
    );
  });

  it('quotas with a fill language; language tags are compared through the language table', () => {
    const r = buildMix(
      GUANACO_LIKE,
      { kind: 'quota', quotas: { deu_Latn: 7, zh: 5 }, fill: 'eng_Latn', total: 50 },
      { seed: 9 },
    );
    expect(r.counts).to.deep.equal({ en: 38, de: 7, zh: 5 });
  });

  it('proportional, temperature and uniform plans', () => {
    const available = new Map([
      ['en', 600],
      ['es', 300],
      ['is', 100],
    ]);
    const counts = (s: MixStrategy) =>
      Object.fromEntries(planMix(available, s).map((p) => [p.lang, p.count]));
    expect(counts({ kind: 'proportional', total: 100 })).to.deep.equal({ en: 60, es: 30, is: 10 });
    expect(counts({ kind: 'uniform', total: 100 })).to.deep.equal({ en: 34, es: 33, is: 33 });
    expect(counts({ kind: 'temperature', total: 100, alpha: 1 })).to.deep.equal({ en: 60, es: 30, is: 10 });
    expect(counts({ kind: 'temperature', total: 100, alpha: 0 })).to.deep.equal({ en: 34, es: 33, is: 33 });
    const t = counts({ kind: 'temperature', total: 1000, alpha: 0.5 });
    // weights sqrt(0.6), sqrt(0.3), sqrt(0.1): 0.775, 0.548, 0.316 of 1.639
    expect(t).to.deep.equal({ en: 473, es: 334, is: 193 });
    expect(counts({ kind: 'uniform', total: 10, languages: ['is', 'en'] })).to.deep.equal({ is: 5, en: 5 });
    // sums always hit the total exactly
    for (const total of [1, 7, 99, 1001]) {
      for (const s of [
        { kind: 'proportional', total },
        { kind: 'temperature', total, alpha: 0.3 },
        { kind: 'uniform', total },
      ] as MixStrategy[]) {
        expect(Object.values(counts(s)).reduce((a, b) => a + b, 0)).to.equal(total);
      }
    }
    // a temperature mix that needs more Icelandic than there is is refused, or repeats with replacement
    const rows = pool({ en: 600, es: 300, is: 100 });
    expect(() => buildMix(rows, { kind: 'temperature', total: 900, alpha: 0 }, { seed: 1 })).to.throw(
      /is: needs 300, the input has 100/,
    );
    expect(
      buildMix(rows, { kind: 'temperature', total: 900, alpha: 0 }, { seed: 1, replacement: true }).counts,
    ).to.deep.equal({ en: 300, es: 300, is: 300 });
  });

  it('output order: shuffled (seeded), input order, or grouped by language', () => {
    const s: MixStrategy = { kind: 'quota', quotas: { en: 10, es: 10 } };
    const input = buildMix(GUANACO_LIKE, s, { seed: 5, order: 'input' });
    const idx = input.indices;
    expect([...idx].sort((a, b) => a - b)).to.deep.equal(idx);
    const grouped = buildMix(GUANACO_LIKE, s, { seed: 5, order: 'language' });
    expect(
      ids(grouped.records)
        .slice(0, 10)
        .every((x) => x.startsWith('eng')),
    ).to.equal(true);
    const shuffled = buildMix(GUANACO_LIKE, s, { seed: 5 });
    expect(new Set(shuffled.indices)).to.deep.equal(new Set(idx));
    expect(shuffled.indices).to.not.deep.equal(idx);
  });

  it('writes JSON Lines and a manifest with counts, seed and source hashes, byte-identical on rebuild', async () => {
    const dir = tempDir('mix');
    const src = path.join(dir, 'pool.jsonl');
    await writeJsonlAtomic(src, GUANACO_LIKE);
    const { records, sources } = await readMixSources([src]);
    expect(sources[0]).to.include({ path: src, records: GUANACO_LIKE.length });
    expect(sources[0]!.sha256).to.match(/^[0-9a-f]{64}$/);
    const build = async (name: string) => {
      const r = buildMix(
        records,
        { kind: 'paper', mix: 'multi-2', total: 100, perLanguage: 10 },
        { seed: 7, minConfidence: 0.8 },
      );
      return writeMix(path.join(dir, name, 'multi-2.jsonl'), r, sources);
    };
    const w1 = await build('a');
    const w2 = await build('b');
    expect(w1.manifest).to.equal(manifestPathFor(w1.path));
    expect(path.basename(w1.manifest)).to.equal('multi-2.manifest.json');
    expect(readFileSync(w1.path)).to.deep.equal(readFileSync(w2.path));
    expect(readFileSync(w1.manifest)).to.deep.equal(readFileSync(w2.manifest));
    const m = JSON.parse(readFileSync(w1.manifest, 'utf8'));
    expect(m).to.deep.include({
      format: 'polyglot-mix/1',
      name: 'multi-2',
      seed: 7,
      total: 100,
      counts: { en: 90, es: 10 },
    });
    expect(m.options).to.deep.include({ minConfidence: 0.8, langField: 'lang' });
    expect(m.sources[0].sha256).to.equal(sources[0]!.sha256);
    expect(m.output.records).to.equal(100);
    expect(m.available).to.deep.include({ en: 400, es: 300 });
    expect(await readJsonlAll(w1.path)).to.have.length(100);
    await rejectsWith(readMixSources([]), 'bad-recipe');
  });

  it('the random streams are stable across platforms (golden values)', () => {
    const r = new Rng(42, 'lang:eng');
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).to.deep.equal([1773115374, 1053948411, 2506865375]);
    expect(new Rng(2 ** 40 + 3).shuffle([...Array(10).keys()])).to.deep.equal([2, 8, 6, 1, 4, 5, 9, 7, 3, 0]);
    // the same seed and stream give the same permutation; another stream a different one
    const perm = (seed: number, stream: string) => new Rng(seed, stream).shuffle([...Array(20).keys()]);
    expect(perm(1, 'a')).to.deep.equal(perm(1, 'a'));
    expect(perm(1, 'a')).to.not.deep.equal(perm(1, 'b'));
    expect(perm(1, 'a')).to.not.deep.equal(perm(2, 'a'));
    const counts = [0, 0, 0, 0];
    const g = new Rng(7);
    for (let i = 0; i < 4000; i++) counts[g.int(4)]!++;
    for (const c of counts) expect(c).to.be.within(850, 1150);
    expect(PAPER_LANGUAGE_ORDER).to.deep.equal(['es', 'ru', 'de', 'zh', 'fr']);
  });
});
