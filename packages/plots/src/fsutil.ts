// Atomic writes: nothing is half-written (a temp file in the same folder, fsync, rename).
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PlotError } from './errors.js';

/** Writes a file atomically, creating its folder. Throws `PlotError` `PLOT_WRITE` when it cannot. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw new PlotError('PLOT_WRITE', `cannot write ${target}: ${(e as Error).message}`, { cause: e });
  }
}
