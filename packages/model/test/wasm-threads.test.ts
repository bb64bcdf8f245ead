import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { BackendError, initBackend, wasmThreadCount } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('wasm backend threads (opt-in)', () => {
  it('the threaded SIMD build matches the reference, and its process exits by itself', function () {
    this.timeout(180_000);
    const dir = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    const ref = sharedPath(this, 'fixtures', 'tiny-llama', 'reference.json');
    // A process whose pool workers held the event loop would never end: the timeout would kill it.
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'wasm-threads-child.ts'), dir, ref, '2'],
      { cwd: path.dirname(here), encoding: 'utf8', timeout: 150_000 },
    );
    expect(r.error, `child did not exit by itself: ${r.error?.message}`).to.equal(undefined);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(out.backend).to.equal('wasm');
    expect(out.threads).to.equal(2);
    expect(out.worst as number).to.be.below(1e-4);
    expect(out.greedyExact).to.equal(true);
    expect(out.batchedExact).to.equal(true);
  });

  it('bad thread counts are typed errors; the count is fixed once the backend has started', async () => {
    for (const bad of [0, 9, 1.5, Number.NaN]) {
      let err: unknown;
      try {
        await initBackend('wasm', { wasmThreads: bad });
      } catch (e) {
        err = e;
      }
      expect(err, String(bad)).to.be.instanceOf(BackendError);
      expect((err as BackendError).code).to.equal('BACKEND_BAD_OPTION');
    }
    const saved = process.env.POLYGLOT_WASM_THREADS;
    process.env.POLYGLOT_WASM_THREADS = 'many';
    try {
      let err: unknown;
      try {
        await initBackend('wasm');
      } catch (e) {
        err = e;
      }
      expect((err as BackendError).code).to.equal('BACKEND_BAD_OPTION');
      expect((err as Error).message).to.include('POLYGLOT_WASM_THREADS');
    } finally {
      if (saved === undefined) delete process.env.POLYGLOT_WASM_THREADS;
      else process.env.POLYGLOT_WASM_THREADS = saved;
    }
    // This process runs wasm single-threaded (the default).
    await initBackend('wasm', { wasmThreads: 1 });
    expect(wasmThreadCount()).to.equal(1);
    let err: unknown;
    try {
      await initBackend('wasm', { wasmThreads: 2 });
    } catch (e) {
      err = e;
    }
    expect((err as BackendError).code).to.equal('BACKEND_THREADS_FIXED');
    expect(await initBackend('wasm')).to.equal('wasm');
  });
});
