import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** A temp path next to `target` (same directory, so that rename is atomic). */
export function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
}

/** Write a file atomically: to a temp file in the same directory, fsync, then rename over the target. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fsp.rename(tmp, target);
}

/** JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(target: string, value: unknown, indent = 2): Promise<void> {
  await writeFileAtomic(target, `${JSON.stringify(value, null, indent)}\n`);
}
