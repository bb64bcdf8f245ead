import { isPolyglotError } from '@polyglot/model';
import { expect } from 'chai';
import { SamplingParamError, samplingParams } from '../src/index.js';

function rejects(input: Record<string, unknown>, param: string, message: RegExp): void {
  let caught: unknown;
  try {
    samplingParams(input);
  } catch (e) {
    caught = e;
  }
  expect(caught, JSON.stringify(input)).to.be.instanceOf(SamplingParamError);
  const err = caught as SamplingParamError;
  expect(isPolyglotError(err)).to.equal(true);
  expect(err.code).to.equal('INFER_BAD_PARAM');
  expect(err.param).to.equal(param);
  expect(err.message).to.match(message);
  expect(err.message).to.contain(param);
}

describe('samplingParams', () => {
  it("fills vLLM's defaults", () => {
    expect(samplingParams()).to.deep.equal({
      temperature: 1,
      top_p: 1,
      top_k: 0,
      min_p: 0,
      presence_penalty: 0,
      frequency_penalty: 0,
      repetition_penalty: 1,
      max_tokens: 16,
      min_tokens: 0,
      stop: [],
      stop_token_ids: [],
      ignore_eos: false,
      seed: null,
      logprobs: null,
    });
  });

  it("keeps the paper's chat settings and treats null as the default", () => {
    const p = samplingParams({
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 1024,
      stop: ['### Human:', '### Assistant:', '### Human', '### Assistant'],
      seed: 723,
      logprobs: null,
      presence_penalty: null,
    });
    expect(p).to.include({
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 1024,
      seed: 723,
    });
    expect(p.presence_penalty).to.equal(0);
    expect(p.stop).to.have.length(4);
  });

  it('normalises as vLLM does: top_k -1 is off, a single stop string becomes a list, greedy drops truncation', () => {
    expect(samplingParams({ top_k: -1 }).top_k).to.equal(0);
    expect(samplingParams({ stop: '###' }).stop).to.deep.equal(['###']);
    expect(samplingParams({ temperature: 0, top_p: 0.5, top_k: 3, min_p: 0.1 })).to.include({
      top_p: 1,
      top_k: 0,
      min_p: 0,
    });
    expect(samplingParams({ temperature: 0.001, top_p: 0.5 }).top_p).to.equal(0.5);
  });

  it('accepts the edges of every range', () => {
    expect(() =>
      samplingParams({
        temperature: 0,
        top_p: 1,
        top_k: 1,
        min_p: 1,
        presence_penalty: -2,
        frequency_penalty: 2,
        repetition_penalty: 1e-3,
        max_tokens: 0,
        min_tokens: 0,
        logprobs: 0,
        seed: -1,
      }),
    ).to.not.throw();
  });

  it('names the parameter that is out of range', () => {
    rejects({ temperature: -0.1 }, 'temperature', /non-negative, got -0\.1/);
    rejects({ temperature: Number.NaN }, 'temperature', /finite number/);
    rejects({ top_p: 0 }, 'top_p', /\(0, 1\]/);
    rejects({ top_p: 1.01 }, 'top_p', /\(0, 1\]/);
    rejects({ top_k: -2 }, 'top_k', /-1 or 0 \(off\) or at least 1/);
    rejects({ top_k: 2.5 }, 'top_k', /integer/);
    rejects({ min_p: 1.5 }, 'min_p', /\[0, 1\]/);
    rejects({ presence_penalty: 2.5 }, 'presence_penalty', /\[-2, 2\]/);
    rejects({ frequency_penalty: -3 }, 'frequency_penalty', /\[-2, 2\]/);
    rejects({ repetition_penalty: 0 }, 'repetition_penalty', /greater than 0/);
    rejects({ max_tokens: -1 }, 'max_tokens', /at least 1/);
    rejects({ max_tokens: '16' }, 'max_tokens', /finite number, got "16"/);
    rejects({ min_tokens: 5, max_tokens: 4 }, 'min_tokens', /at most max_tokens \(4\)/);
    rejects({ stop: ['ok', ''] }, 'stop', /empty strings/);
    rejects({ stop: [1] }, 'stop', /list of strings/);
    rejects({ stop_token_ids: [2, -1] }, 'stop_token_ids', /non-negative/);
    rejects({ seed: 1.5 }, 'seed', /integer/);
    rejects({ logprobs: -1 }, 'logprobs', /non-negative/);
    rejects({ ignore_eos: 'yes' }, 'ignore_eos', /true or false/);
    rejects({ topP: 0.9 }, 'topP', /unknown parameter; known ones are temperature, top_p/);
  });
});
