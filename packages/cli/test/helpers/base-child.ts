// Child process for reproduce-base.test.ts: builds the smoke base model into the cache dir given as argv[2]
// (argv[3] pre-training updates), printing progress as JSON lines, so that the test can kill it mid-run.
import { ensureBaseModel } from '../../src/reproduce/base.js';

await ensureBaseModel({
  preset: 'smoke',
  cacheDir: process.argv[2],
  steps: Number(process.argv[3]),
  onProgress: (p) => process.stdout.write(`${JSON.stringify(p)}\n`),
});
