// Child process for the cache tests: writes `count` answers starting at key `from` into the cache file, one
// insert at a time (as judge workers do), and prints "done". With "forever" it keeps writing until killed.
import { JudgeCache } from '../../src/cache.js';

const [file, from, count, mode] = process.argv.slice(2);
const cache = JudgeCache.open(file);
const start = Number(from);
const n = mode === 'forever' ? Number.MAX_SAFE_INTEGER : Number(count);
for (let i = start; i < start + n; i++) {
  cache.put(
    `k${i}`,
    { model: 'm', messages: [{ role: 'user', content: `item ${i}` }] },
    {
      content: `{"score": ${(i % 6) + 1}}`,
      model: 'm',
      fingerprint: null,
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      finish_reason: 'stop',
      created_at: new Date().toISOString(),
    },
  );
  if (i === start + 50 && mode === 'forever') process.stdout.write('writing\n');
}
cache.close();
process.stdout.write('done\n');
