import { expect } from 'chai';
import { findStop, pyStrip, SequenceState, StopChecker, samplingParams } from '../src/index.js';

const PAPER_STOPS = ['### Human:', '### Assistant:', '### Human', '### Assistant'];

describe('stop strings', () => {
  it('findStop cuts at the earliest stop string and strips like Python', () => {
    expect(findStop(' Hallo Welt!\n### Human: und dann', PAPER_STOPS)).to.deep.equal({
      text: 'Hallo Welt!',
      stop: '### Human:',
    });
    expect(findStop('a ### Assistant b ### Human: c', PAPER_STOPS)).to.deep.equal({
      text: 'a',
      stop: '### Assistant',
    });
    expect(findStop('  no stop here \n', PAPER_STOPS)).to.deep.equal({ text: 'no stop here', stop: null });
    expect(findStop('### Human: at once', PAPER_STOPS)).to.deep.equal({ text: '', stop: '### Human:' });
  });

  it('strips Python whitespace, not JavaScript whitespace', () => {
    expect(pyStrip('\x1c\x85 text \u3000\n')).to.equal('text');
    expect(pyStrip('\ufefftext')).to.equal('\ufefftext');
  });

  it('the streaming checker holds back a possible start of a stop string', () => {
    const c = new StopChecker(PAPER_STOPS);
    expect(c.push('Hello #')).to.equal('Hello ');
    expect(c.push('## Hu')).to.equal('');
    expect(c.push('go')).to.equal('### Hugo');
    expect(c.push(' done ##')).to.equal(' done ');
    expect(c.stopped).to.equal(null);
    expect(c.push('# Assist')).to.equal('');
    expect(c.push('ant: more')).to.equal('');
    // Both '### Assistant:' and '### Assistant' start at 20; on a tie the one listed first is reported.
    expect(c.stopped).to.deep.equal({ stop: '### Assistant:', index: 20 });
    expect(c.text).to.equal('Hello ### Hugo done ');
    expect(c.push('ignored')).to.equal('');
  });

  it('streams to the same text as findStop for any chunking', () => {
    const full = 'Antwort: 42 ## nicht ### Hum ### Human: weiter';
    const expected = findStop(full, PAPER_STOPS);
    for (const size of [1, 2, 3, 5, 8, 100]) {
      const c = new StopChecker(PAPER_STOPS);
      let shown = '';
      for (let i = 0; i < full.length && !c.stopped; i += size) shown += c.push(full.slice(i, i + size));
      expect(shown, `chunk size ${size}`).to.equal(c.text);
      expect(pyStrip(shown)).to.equal(expected.text);
      // '### Human' completes first, unless the ':' arrives in the same chunk as its final 'n'.
      const n = full.indexOf('### Human:') + 8;
      const sameChunk = Math.floor(n / size) === Math.floor((n + 1) / size);
      expect(c.stopped?.stop).to.equal(sameChunk ? '### Human:' : '### Human');
    }
  });

  it('pushUnchecked: no stop string may end in text of the first min_tokens tokens (vLLM)', () => {
    const c = new StopChecker(['STOP', 'ab']);
    expect(c.pushUnchecked('xx STOP y')).to.equal('xx STOP y');
    expect(c.pushUnchecked(' a')).to.equal(' ');
    expect(c.stopped).to.equal(null);
    // 'ab' begins in the unchecked text and ends in checked text: found.
    expect(c.push('b STOP')).to.equal('');
    expect(c.stopped).to.deep.equal({ stop: 'ab', index: 10 });
    expect(c.text).to.equal('xx STOP y ');
    const d = new StopChecker(['STOP']);
    expect(d.pushUnchecked('STOP')).to.equal('STOP');
    expect(d.push(' STOP')).to.equal(' ');
    expect(d.text).to.equal('STOP ');
    expect(d.stopped).to.deep.equal({ stop: 'STOP', index: 5 });
  });

  it('flush releases the held-back tail when generation ends without a stop', () => {
    const c = new StopChecker(['</s>']);
    expect(c.push('bye </')).to.equal('bye ');
    expect(c.flush()).to.equal('</');
    expect(c.flush()).to.equal('');
    const none = new StopChecker([]);
    expect(none.push('###')).to.equal('###');
  });

  it('finish reasons: stop token beats the length limit, nothing stops before min_tokens', () => {
    const params = samplingParams({ max_tokens: 3, min_tokens: 2 });
    const s = new SequenceState([], [2]);
    s.append(2);
    expect(s.finishReason(params)).to.equal(null);
    s.append(1);
    expect(s.finishReason(params)).to.equal(null);
    s.append(2);
    expect(s.finishReason(params)).to.equal('stop');
    const t = new SequenceState([], [2]);
    for (const tok of [0, 1, 0]) t.append(tok);
    expect(t.finishReason(params)).to.equal('length');
    expect(t.finishReason({ ...params, stop_token_ids: [0] })).to.equal('stop');
  });
});
