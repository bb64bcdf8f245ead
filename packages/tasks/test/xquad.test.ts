import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readJsonOrJsonl } from '@polyglot/data';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { cleanXquadResponse, exactMatch, f1Score, TasksError, xquadContainment } from '../src/index.js';

interface Squad {
  data: {
    paragraphs: { context: string; qas: { id: string; question: string; answers: { text: string }[] }[] }[];
  }[];
}

describe('XQuAD containment', () => {
  it('cleans quotes, lead-ins and an echo of the question', () => {
    expect(cleanXquadResponse('308".')).to.equal('308.');
    expect(cleanXquadResponse('Based on the passage, the answer to the question is "308".')).to.equal('308.');
    expect(cleanXquadResponse('  «Die Antwort ist: vier»')).to.equal('vier');
    expect(cleanXquadResponse('答案是：308分')).to.equal('308分');
    const question = 'Wie viele Punkte gab die Verteidigung der Panthers ab?';
    expect(cleanXquadResponse(`${question} 308`, { question })).to.equal('308');
    expect(
      cleanXquadResponse(`wie viele punkte gab die verteidigung der panthers ab: 308`, { question }),
    ).to.equal('308');
    expect(cleanXquadResponse('Antwort: 308', { leadIns: [] })).to.equal('Antwort: 308');
  });

  it('scores 1 when the answer is in the first 50 characters of the cleaned response', () => {
    expect(
      xquadContainment('Kawann Short" führte das Team mit 11 Sacks an.', 'Kawann Short', { lang: 'de' }),
    ).to.equal(1);
    expect(xquadContainment('vier Interceptions', 'vier', { lang: 'de' })).to.equal(1);
    const late = `${'Die Verteidigung der Panthers war in dieser Saison'} sehr stark, Kawann Short`;
    expect(xquadContainment(late, 'Kawann Short', { lang: 'de' })).to.equal(0);
    expect(xquadContainment(late, 'Kawann Short', { lang: 'de', window: 200 })).to.equal(1);
    // the lead-in does not count against the 50 characters
    const led = 'Based on the passage, the answer to the question is "Kawann Short".';
    expect(xquadContainment(led, 'Kawann Short')).to.equal(1);
    expect(xquadContainment('The Panthers', 'Denver Broncos')).to.equal(0);
  });

  it('matches whole tokens unless asked for substrings', () => {
    expect(xquadContainment('40 Punkte', '4', { lang: 'de' })).to.equal(0);
    expect(xquadContainment('40 Punkte', '4', { lang: 'de', match: 'substring' })).to.equal(1);
    expect(xquadContainment('308分', '308', { lang: 'zh' })).to.equal(1);
    expect(xquadContainment('黑豹队', '豹队', { lang: 'zh' })).to.equal(1);
    expect(xquadContainment('anything', '!!')).to.equal(0);
  });

  it('rejects bad options', () => {
    expect(() => xquadContainment('a', 'a', { window: 0 })).to.throw(TasksError, /window/);
    expect(() => xquadContainment('a', [])).to.throw(TasksError, /reference/);
    expect(() => xquadContainment('a', 'a', { match: 'fuzzy' as 'tokens' })).to.throw(TasksError, /match/);
  });

  it('scores answers built from the paper sample (English prompt, German passage)', async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'xquad', 'xquad_dev_en_de.head.json');
    const items = await readJsonOrJsonl<{ instruction: string; answer: string }>(file);
    for (const { instruction, answer } of items) {
      expect(instruction.endsWith('the answer to the question is "')).to.equal(true);
      expect(xquadContainment(`${answer}".`, answer, { lang: 'de' })).to.equal(1);
      expect(xquadContainment(`${answer}" (laut Text)`, answer, { lang: 'de' })).to.equal(1);
      expect(xquadContainment('Ich weiß es nicht.', answer, { lang: 'de' })).to.equal(0);
    }
  });

  it('scores every real XQuAD answer against itself in all 12 languages (echoed question, quotes)', async function () {
    const dir = sharedPath(this, 'data', 'xquad');
    for (const lang of ['ar', 'de', 'el', 'en', 'es', 'hi', 'ro', 'ru', 'th', 'tr', 'vi', 'zh']) {
      const squad = JSON.parse(await readFile(path.join(dir, `xquad.${lang}.json`), 'utf8')) as Squad;
      let n = 0;
      let long = 0;
      for (const article of squad.data) {
        for (const paragraph of article.paragraphs) {
          for (const qa of paragraph.qas) {
            const answers = qa.answers.map((a) => a.text);
            const answer = answers[0]!;
            expect(paragraph.context.includes(answer), `${lang} ${qa.id}`).to.equal(true);
            expect(exactMatch(` "${answer}".`, answers, lang), `${lang} ${qa.id} EM`).to.equal(1);
            expect(f1Score(answer, answers, lang), `${lang} ${qa.id} F1`).to.equal(1);
            const response = `${qa.question} "${answer}"`;
            const options = { lang, question: qa.question };
            expect(
              xquadContainment(response, answers, { ...options, window: Infinity }),
              `${lang} ${qa.id}`,
            ).to.equal(1);
            const fits = Array.from(cleanXquadResponse(answer)).length <= 50;
            // an answer longer than the 50-character window can only match if its cut-off tail is punctuation
            if (fits) expect(xquadContainment(response, answers, options), `${lang} ${qa.id} 50`).to.equal(1);
            else long++;
            n++;
          }
        }
      }
      expect(n, lang).to.equal(1190);
      if (lang === 'en') expect(long).to.equal(76);
    }
  });
});
