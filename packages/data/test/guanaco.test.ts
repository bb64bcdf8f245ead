import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  DataError,
  formatGuanaco,
  isPolyglotError,
  type Message,
  parseGuanaco,
  readJsonl,
} from '../src/index.js';

function expectBad(fn: () => unknown, ...mentions: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').to.be.instanceOf(DataError);
  expect(isPolyglotError(caught)).to.equal(true);
  expect((caught as DataError).code).to.equal('bad-conversation');
  for (const m of mentions) expect((caught as DataError).message).to.include(m);
}

describe('Guanaco conversations', () => {
  it('round-trips every record of the paper sample losslessly', async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'guanaco_test.head.json');
    let n = 0;
    for await (const { value, line } of readJsonl<{ text: string; id: number }>(file)) {
      const messages = parseGuanaco(value.text, { source: `${file}:${line}` });
      expect(messages.length).to.be.greaterThanOrEqual(2);
      messages.forEach((m, i) => {
        expect(m.role).to.equal(i % 2 === 0 ? 'user' : 'assistant');
        expect(m.content.startsWith(' ')).to.equal(false);
      });
      expect(formatGuanaco(messages)).to.equal(value.text);
      if (value.id === 9849) {
        expect(messages).to.have.length(4);
        expect(messages[0]!.content).to.equal('What do you think about ChatGPT?');
        expect(messages[2]!.content.startsWith('What ar')).to.equal(true);
      }
      n++;
    }
    expect(n).to.equal(5);
  });

  it('splits multi-turn text at the markers and keeps content exactly', () => {
    const text =
      '### Human: Hi there?### Assistant: Hello!\n\nHow can I help?\n### Human:  two spaces### Assistant:no space';
    const messages = parseGuanaco(text);
    expect(messages).to.deep.equal([
      { role: 'user', content: 'Hi there?' },
      { role: 'assistant', content: 'Hello!\n\nHow can I help?\n' },
      { role: 'user', content: ' two spaces' },
      { role: 'assistant', content: 'no space' },
    ]);
    // the marker without its space is the one form that is normalised
    expect(formatGuanaco(messages)).to.equal(text.replace('### Assistant:no', '### Assistant: no'));
  });

  it('reads a prompt that ends with an open assistant turn', () => {
    expect(parseGuanaco('### Human: Hvað er þetta?### Assistant:')).to.deep.equal([
      { role: 'user', content: 'Hvað er þetta?' },
      { role: 'assistant', content: '' },
    ]);
  });

  it('leaves headings that are not markers inside the content', () => {
    const messages = parseGuanaco('### Human: Explain### Humanity\n### Assistant: ok');
    expect(messages[0]!.content).to.equal('Explain### Humanity\n');
  });

  it('rejects malformed conversations, naming the record', () => {
    expectBad(
      () => parseGuanaco('just text', { source: 'train.json:7' }),
      'train.json:7',
      'no "### Human:" turn',
    );
    expectBad(
      () => parseGuanaco('### Assistant: only me', { source: 'id 12' }),
      'id 12',
      'no "### Human:" turn',
    );
    expectBad(
      () => parseGuanaco('Intro ### Human: hi### Assistant: yo', { source: 'r1' }),
      'r1',
      'text before the first marker',
      '"Intro "',
    );
    expectBad(
      () => parseGuanaco('### Human: a### Human: b### Assistant: c', { source: 'r2' }),
      'r2',
      'turns 1 and 2',
    );
    expectBad(
      () => parseGuanaco('### Human: a### Assistant: b### Assistant: c'),
      'conversation',
      'turns 2 and 3',
    );
    expectBad(() => parseGuanaco('### Assistant: a### Human: b'), 'starts with an "### Assistant:" turn');
    expectBad(() => parseGuanaco(undefined as unknown as string), 'expected a string');
  });

  it('formats messages and rejects what would not parse back', () => {
    const ok: Message[] = [
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: 'A' },
    ];
    expect(formatGuanaco(ok)).to.equal('### Human: Q### Assistant: A');
    expectBad(() => formatGuanaco([]), 'no messages');
    expectBad(() => formatGuanaco([{ role: 'assistant', content: 'A' }]), 'message 1', 'first message');
    expectBad(() => formatGuanaco([ok[0]!, ok[0]!]), 'message 2', 'two consecutive user');
    expectBad(
      () => formatGuanaco([{ role: 'system' as 'user', content: 'x' }]),
      'role must be user or assistant',
    );
    expectBad(() => formatGuanaco([{ role: 'user', content: 'a ### Assistant: b' }]), 'marker');
  });
});
