// One merge in a process of its own (so that its peak RSS is the merge's alone), for merge.bench.ts.
// usage: node --import tsx bench/merge-child.ts BASE ADAPTER OUT [verify]
import { peakRssMiB } from '../../../tools/bench.js';
import { mergeAdapter } from '../src/index.js';

const [base, adapter, out, verify] = process.argv.slice(2);
const r = await mergeAdapter({ base, adapters: [adapter], out, force: true, verify: verify === 'verify' });
console.log(
  JSON.stringify({
    seconds: r.seconds,
    bytes: r.bytesWritten,
    kernel: r.kernel,
    threads: r.threads,
    merged: r.tensorsMerged,
    verifySeconds: r.verify?.seconds ?? null,
    peakRssMiB: peakRssMiB(),
  }),
);
