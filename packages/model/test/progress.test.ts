import { expect } from 'chai';
import { formatDuration, Progress, type ProgressStream } from '../src/index.js';

function sink(isTTY: boolean): ProgressStream & { text: string } {
  const s = {
    text: '',
    isTTY,
    columns: 200,
    write(t: string) {
      s.text += t;
      return true;
    },
  };
  return s;
}

/** A clock the test moves by hand (milliseconds). */
function clock() {
  const c = { t: 1000, now: () => c.t };
  return c;
}

describe('Progress', () => {
  it('not on a TTY: a JSON line at most every 10 s and one at the end', () => {
    const stream = sink(false);
    const c = clock();
    const p = new Progress({ total: 100, label: 'generate', stream, now: c.now });
    expect(stream.text).to.equal('');
    c.t += 2000;
    p.tick(10);
    expect(stream.text, 'nothing before 10 s').to.equal('');
    c.t += 8000; // 10 s after the start
    p.tick(10);
    const lines = () =>
      stream.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    expect(lines()).to.deep.equal([
      { progress: 'generate', done: 20, total: 100, items_per_s: 2, eta_s: 40 },
    ]);
    c.t += 5000;
    p.tick(5);
    expect(lines()).to.have.length(1);
    c.t += 5000; // 20 s
    p.tick(5);
    expect(lines()[1]).to.deep.equal({
      progress: 'generate',
      done: 30,
      total: 100,
      items_per_s: 1.5,
      eta_s: 46.7,
    });
    c.t += 1000;
    p.tick(70);
    p.done();
    p.done(); // idempotent
    p.tick(); // ignored after done
    expect(lines()).to.have.length(3);
    expect(lines()[2]).to.deep.equal({
      progress: 'generate',
      done: 100,
      total: 100,
      items_per_s: 4.76,
      eta_s: 0,
    });
    expect(p.count).to.equal(100);
  });

  it('on a TTY: one line rewritten in place with count/total, items/s and ETA, ended by a newline', () => {
    const stream = sink(true);
    const c = clock();
    const p = new Progress({ total: 50, label: 'score', stream, now: c.now });
    c.t += 2000;
    p.tick(10);
    c.t += 50; // within the redraw interval: no redraw
    p.tick(1);
    const frames = stream.text.split('\r').filter(Boolean);
    expect(frames).to.have.length(2);
    expect(frames[1]).to.equal('score 10/50  20% 5.00 items/s ETA 8s\x1b[K');
    expect(stream.text).to.not.include('\n');
    c.t += 1000;
    p.tick(39);
    p.done();
    expect(stream.text.endsWith('\n')).to.equal(true);
    expect(stream.text.trimEnd().split('\r').pop()).to.match(
      /^score 50\/50 100% 16\.\d+ items\/s in 3s\x1b\[K$/,
    );
  });

  it('unknown totals have no ETA; quiet writes nothing', () => {
    const stream = sink(false);
    const c = clock();
    const p = new Progress({ label: 'lines', stream, now: c.now });
    c.t += 4000;
    p.tick(8);
    p.done();
    expect(JSON.parse(stream.text)).to.deep.equal({
      progress: 'lines',
      done: 8,
      total: null,
      items_per_s: 2,
      eta_s: null,
    });
    const quiet = sink(true);
    const q = new Progress({ total: 3, label: 'x', stream: quiet, quiet: true, now: c.now });
    c.t += 20000;
    q.tick(3);
    q.done();
    expect(quiet.text).to.equal('');
  });

  it('formats durations', () => {
    expect(formatDuration(12.4)).to.equal('12s');
    expect(formatDuration(187)).to.equal('3m07s');
    expect(formatDuration(3720)).to.equal('1h02m');
  });
});
