import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processResult } from '../support/cli-run.js';

/** `npm run schema` as a process (needs `npm run build`). */
const root = join(import.meta.dirname, '../..');

let cwd: string | undefined;
afterEach(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
  cwd = undefined;
});

describe('npm run schema', () => {
  it('cannot write schema/: one line naming it, exit 1, no stack trace', async () => {
    cwd = mkdtempSync(join(tmpdir(), 'governor-write-schemas-'));
    // A file where the folder should be.
    writeFileSync(join(cwd, 'schema'), '');
    const failed = await processResult(
      process.execPath,
      [join(root, 'dist/scripts/write-schemas.js')],
      {
        cwd,
      },
    );
    expect(failed.code).toBe(1);
    const stderr = failed.stderr;
    expect(stderr).toMatch(/^write-schemas: /);
    expect(stderr).toContain(join(cwd, 'schema'));
    expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
  });
});
