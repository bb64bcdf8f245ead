import { LidError } from '@polyglot/lid';
import { expect } from 'chai';
import {
  answerTokens,
  exactMatch,
  f1Score,
  isPolyglotError,
  normalizeAnswer,
  TasksError,
} from '../src/index.js';

describe('SQuAD exact match and F1', () => {
  it('normalises English as SQuAD v1.1 does', () => {
    expect(normalizeAnswer('The  Quick, brown fox!')).to.equal('quick brown fox');
    expect(normalizeAnswer('a U.S. "state"')).to.equal('us state');
    expect(normalizeAnswer('Super Bowl 50.')).to.equal('super bowl 50');
  });

  it('scores English exact match and F1 (hand-computed)', () => {
    expect(exactMatch('the Denver Broncos', 'Denver Broncos')).to.equal(1);
    expect(exactMatch('Denver Broncos won', 'Denver Broncos')).to.equal(0);
    // [denver broncos won] vs [denver broncos]: P = 2/3, R = 1, F1 = 0.8
    expect(f1Score('Denver Broncos won', 'the Denver Broncos')).to.be.closeTo(0.8, 1e-12);
    // [carolina] vs [carolina panthers]: P = 1, R = 1/2, F1 = 2/3
    expect(f1Score('Carolina', 'Carolina Panthers')).to.be.closeTo(2 / 3, 1e-12);
    // repeated tokens count once per occurrence: [a a b] → [b b] after articles? use non-articles
    // [x x y] vs [x y y]: overlap x1 y1 = 2, P = R = 2/3
    expect(f1Score('x x y', 'x y y')).to.be.closeTo(2 / 3, 1e-12);
    expect(f1Score('nothing here', 'Denver')).to.equal(0);
    expect(f1Score('the', 'a')).to.equal(0); // both normalise to nothing: 0, as the v1.1 script
    expect(exactMatch('the', 'a')).to.equal(1);
  });

  it('takes the maximum over references', () => {
    expect(exactMatch('Broncos', ['Denver Broncos', 'the Broncos'])).to.equal(1);
    expect(f1Score('Denver', ['Denver Broncos', 'Broncos'])).to.be.closeTo(2 / 3, 1e-12);
  });

  it('removes Unicode punctuation', () => {
    expect(exactMatch('«Paris»', 'Paris')).to.equal(1);
    expect(exactMatch('„Paris“ – France', 'Paris France')).to.equal(1);
    expect(normalizeAnswer('¿Qué?', 'es')).to.equal('qué');
  });

  it('removes the articles of the answer language (MLQA lists)', () => {
    expect(exactMatch('die Panthers', 'Panthers', 'de')).to.equal(1);
    expect(exactMatch('die Panthers', 'Panthers', 'en')).to.equal(0);
    expect(exactMatch('einem Haus', 'Haus', 'deu_Latn')).to.equal(1);
    expect(exactMatch('los Panteras', 'Panteras', 'es')).to.equal(1);
    expect(exactMatch('những con mèo', 'con mèo', 'vi')).to.equal(1);
    expect(exactMatch('الكتاب', 'كتاب', 'ar')).to.equal(1);
    expect(answerTokens('في الكتاب', 'ar')).to.deep.equal(['في', 'كتاب']);
    expect(exactMatch('the Panthers', 'Panthers', 'zh')).to.equal(0);
  });

  it('tokenises Chinese per character (hand-checked)', () => {
    expect(normalizeAnswer('黑豹队，308分', 'zh')).to.equal('黑 豹 队 308 分');
    expect(exactMatch(' 黑豹队。', '黑豹队', 'zh')).to.equal(1);
    // [308 分] vs [308]: P = 1/2, R = 1, F1 = 2/3
    expect(f1Score('308分', '308', 'zh')).to.be.closeTo(2 / 3, 1e-12);
    // six characters vs three: P = 1/2, R = 1
    expect(f1Score('黑豹队的防守', '黑豹队', 'zh')).to.be.closeTo(2 / 3, 1e-12);
    expect(answerTokens('iPhone手机')).to.deep.equal(['iphone', '手', '机']);
  });

  it('tokenises Thai per character, keeping combining vowels with their consonant (hand-checked)', () => {
    expect(answerTokens('สวัสดีครับ', 'th')).to.deep.equal(['ส', 'วั', 'ส', 'ดี', 'ค', 'รั', 'บ']);
    // 4 shared of 7 predicted: P = 4/7, R = 1, F1 = 8/11
    expect(f1Score('สวัสดีครับ', 'สวัสดี', 'th')).to.be.closeTo(8 / 11, 1e-12);
    expect(exactMatch('สวัสดี!', 'สวัสดี', 'th')).to.equal(1);
  });

  it('tokenises Japanese kana and kanji per character', () => {
    expect(answerTokens('東京タワー', 'ja')).to.deep.equal(['東', '京', 'タ', 'ワ', 'ー']);
  });

  it('raises on unknown languages and missing references', () => {
    expect(() => exactMatch('a', 'a', 'xx')).to.throw(LidError, /unknown language "xx"/);
    for (const refs of [[], [1 as unknown as string]]) {
      let caught: unknown;
      try {
        f1Score('a', refs);
      } catch (e) {
        caught = e;
      }
      expect(caught).to.be.instanceOf(TasksError);
      expect(isPolyglotError(caught)).to.equal(true);
      expect((caught as TasksError).code).to.equal('no-references');
    }
  });
});
