import { readJsonOrJsonl } from '@polyglot/data';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { extractChoice, TasksError } from '../src/index.js';

const OPTIONS = ['town', 'michigan', 'hospital', 'schools', 'office building'];

describe('X-CSQA answer extraction', () => {
  it('reads the gold answers of the paper sample from plausible responses', async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'xcsqa', 'xcsqa_dev_en_en.head.json');
    const items = await readJsonOrJsonl<{ instruction: string; answer: [string, string]; options: string[] }>(
      file,
    );
    expect(items).to.have.length(5);
    for (const { instruction, answer, options } of items) {
      expect(instruction.endsWith('### Assistant: "')).to.equal(true);
      const [letter, text] = answer;
      const index = options.indexOf(text);
      expect(index).to.equal(letter.charCodeAt(0) - 65);
      const letterResponses = [
        `${letter}"`,
        letter,
        `${letter}".\n\nExplanation: ${text} is the best fit.`,
        `${letter}: ${text}"`,
        `"${letter}"`,
        ` ${letter}.`,
        `(${letter}) ${text}`,
        `**${letter}**`,
        `${letter.toLowerCase()})`,
        `${letter}\n`,
      ];
      for (const r of letterResponses) {
        expect(extractChoice(r, options), JSON.stringify(r)).to.deep.equal({ index, letter, via: 'letter' });
      }
      for (const r of [`${text}"`, `${text.toUpperCase()}.`, `'${text}' is where you would find it`]) {
        expect(extractChoice(r, options), JSON.stringify(r)).to.deep.equal({
          index,
          letter,
          via: 'option-text',
        });
      }
      expect(extractChoice(`I think the answer is ${letter}.`, options)).to.equal(null);
    }
  });

  it('handles tricky responses', () => {
    // "A" as an article before another option's text
    expect(extractChoice('A hospital, because injuries are treated there.', OPTIONS)).to.deep.equal({
      index: 2,
      letter: 'C',
      via: 'option-text',
    });
    expect(extractChoice('A town', OPTIONS)).to.deep.equal({ index: 0, letter: 'A', via: 'letter' });
    expect(extractChoice('A: hospital', OPTIONS)).to.deep.equal({ index: 0, letter: 'A', via: 'letter' });
    // a word that starts with a letter is not the letter
    expect(extractChoice('Certainly! C', OPTIONS)).to.equal(null);
    expect(extractChoice('Doctors come from hospitals', OPTIONS)).to.equal(null);
    // beyond the options, lower case without a bracket, empty
    expect(extractChoice('F"', OPTIONS)).to.equal(null);
    expect(extractChoice('c', OPTIONS)).to.equal(null);
    expect(extractChoice('', OPTIONS)).to.equal(null);
    expect(extractChoice('  "  ', OPTIONS)).to.equal(null);
    // option text must end at a word boundary; the longest option wins
    expect(extractChoice('townhouse', OPTIONS)).to.equal(null);
    expect(extractChoice('office building"', ['office', 'office building'])).to.deep.equal({
      index: 1,
      letter: 'B',
      via: 'option-text',
    });
    expect(extractChoice('office"', ['office', 'office building'])?.index).to.equal(0);
    // a letter followed by text in a script without spaces
    expect(extractChoice('B是正确答案', ['城镇', '医院', '学校'])).to.deep.equal({
      index: 1,
      letter: 'B',
      via: 'letter',
    });
    expect(extractChoice('医院。', ['城镇', '医院', '学校'])).to.deep.equal({
      index: 1,
      letter: 'B',
      via: 'option-text',
    });
    expect(extractChoice('«E»', OPTIONS)?.letter).to.equal('E');
  });

  it('rejects missing options', () => {
    expect(() => extractChoice('A', [])).to.throw(TasksError, /1 to 26 options/);
  });
});
