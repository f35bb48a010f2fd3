import { randomUUID } from 'node:crypto';
import { lstat, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `file` whole or not at all: to a sibling temporary file, then renamed over it,
 * so that a write that fails part-way (a disk that fills up) leaves the file that was there before
 * as it was, not cut short. A file that is not a plain one (`/dev/stdout`, a named pipe, a
 * symbolic link) is written as it is: a rename would replace it, not write to it. The simulation
 * report (`governor simulate --report`) and the function's archive (`npm run package`) are
 * written so.
 */
export async function writeWhole(file: string, data: string | Uint8Array): Promise<void> {
  const found = await lstat(file).catch(() => null);
  if (found !== null && !found.isFile()) {
    await writeFile(file, data);
    return;
  }
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomUUID()}.tmp`);
  try {
    await writeFile(temp, data, { flag: 'wx' });
    await rename(temp, file);
  } catch (e) {
    // The write's failure is the one to report, not the removal's that followed it.
    await rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
}
