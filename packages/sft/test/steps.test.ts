import { expect } from 'chai';
import { computeTrainingSteps } from '../src/index.js';

describe('computeTrainingSteps (transformers Trainer)', () => {
  it("the paper's Llama-2 7B run: 3,200 examples, batch 4, accumulation 4, 2 GPUs, 10 epochs", () => {
    expect(
      computeTrainingSteps({ examples: 3200, batchSize: 4, gradAccum: 4, worldSize: 2, epochs: 10 }),
    ).to.deep.equal({
      batchesPerEpoch: 400,
      updateStepsPerEpoch: 100,
      maxSteps: 1000,
      epochs: 10,
      totalBatchSize: 32,
    });
  });

  it('a last short accumulation window makes an update (ceil), or not in older Trainers (floor)', () => {
    const args = { examples: 1000, batchSize: 4, gradAccum: 4 };
    expect(computeTrainingSteps(args)).to.include({
      batchesPerEpoch: 250,
      updateStepsPerEpoch: 63,
      maxSteps: 189,
    });
    expect(computeTrainingSteps({ ...args, rounding: 'floor' })).to.include({
      updateStepsPerEpoch: 62,
      maxSteps: 186,
    });
  });

  it('max_steps overrides epochs', () => {
    // Guanaco's 9,846 conversations: ceil(9846 / 8) = 1231 batches, ceil(1231 / 4) = 308 updates per epoch.
    const s = computeTrainingSteps({
      examples: 9846,
      batchSize: 4,
      gradAccum: 4,
      worldSize: 2,
      epochs: 10,
      maxSteps: 2000,
    });
    expect(s).to.include({ batchesPerEpoch: 1231, updateStepsPerEpoch: 308, maxSteps: 2000, epochs: 7 });
  });

  it('fractional epochs round the step count up', () => {
    expect(computeTrainingSteps({ examples: 400, batchSize: 4, epochs: 2.5 })).to.include({
      maxSteps: 250,
      epochs: 3,
    });
    expect(computeTrainingSteps({ examples: 10, batchSize: 4, epochs: 1.5 })).to.include({
      maxSteps: 5,
      epochs: 2,
    });
  });

  it('at least one update per epoch; drop_last drops the partial batch', () => {
    const tiny = { examples: 3, batchSize: 4, gradAccum: 8 };
    expect(computeTrainingSteps(tiny)).to.include({ batchesPerEpoch: 1, updateStepsPerEpoch: 1 });
    expect(computeTrainingSteps({ ...tiny, rounding: 'floor' })).to.include({ updateStepsPerEpoch: 1 });
    expect(computeTrainingSteps({ examples: 10, batchSize: 4, dropLast: true })).to.include({
      batchesPerEpoch: 2,
    });
    expect(() => computeTrainingSteps({ ...tiny, dropLast: true })).to.throw(/no full batch/);
  });

  it('rejects bad arguments by name', () => {
    expect(() => computeTrainingSteps({ examples: 0, batchSize: 4 })).to.throw(/examples must be at least 1/);
    expect(() => computeTrainingSteps({ examples: 10, batchSize: 2.5 })).to.throw(
      /batchSize must be a non-negative integer/,
    );
    expect(() => computeTrainingSteps({ examples: 10, batchSize: 2, epochs: 0 })).to.throw(
      /epochs must be a positive/,
    );
  });
});
