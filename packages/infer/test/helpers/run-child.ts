// A run of `runInference` in its own process, for the kill-and-resume test: argv[2] is the JSON of
// { model, input, template, outputDir, seeds, batchSize, maxTokens, limit }.
import { LocalEngine, runInference } from '../../src/index.js';

const a = JSON.parse(process.argv[2]) as {
  model: string;
  input: string;
  template: string;
  outputDir: string;
  seeds: number[];
  batchSize: number;
  maxTokens: number;
  limit: number;
};
const engine = await LocalEngine.load({ model: a.model, backend: 'wasm' });
await runInference({
  engine,
  model: a.model,
  input: a.input,
  promptTemplate: a.template,
  outputDir: a.outputDir,
  seeds: a.seeds,
  batchSize: a.batchSize,
  limit: a.limit,
  params: {
    temperature: 0.8,
    top_p: 0.9,
    top_k: 50,
    frequency_penalty: 0.2,
    max_tokens: a.maxTokens,
    stop: ['### Human:', '### Assistant:', '### Human', '### Assistant'],
  },
  quiet: true,
});
await engine.close();
