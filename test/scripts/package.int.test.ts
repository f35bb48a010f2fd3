import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processResult, type CliResult } from '../support/cli-run.js';

/**
 * `npm run package` as a process (needs `npm run build`): a write of the archive that fails part
 * way leaves the archive that was there before whole. A cut archive was uploaded by the next
 * `terraform apply` (its SHA-256 names a new object) and failed only in Google's build.
 */
const root = join(import.meta.dirname, '../..');

let scratch: string | undefined;
afterEach(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** The packager writing to `out`, its files limited to `maxKiB` (the shell's `ulimit -f`). */
async function packageTo(out: string, maxKiB?: number): Promise<CliResult> {
  const node = `exec "${process.execPath}" dist/scripts/package.js "${out}"`;
  const script = maxKiB === undefined ? node : `ulimit -f ${maxKiB} && ${node}`;
  return processResult('sh', ['-c', script], { cwd: root });
}

describe('npm run package', () => {
  it('a write that fails part way (a full disk) leaves the previous archive whole', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'governor-package-write-'));
    const out = join(scratch, 'function.zip');
    expect((await packageTo(out)).code).toBe(0);
    const before = readFileSync(out);
    expect(before.length).toBeGreaterThan(100 * 1024);

    const failed = await packageTo(out, 64);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(out);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(out).equals(before)).toBe(true);
    expect(readdirSync(scratch)).toEqual(['function.zip']);
  }, 60_000);
});
