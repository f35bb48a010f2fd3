import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { cliIn } from '../support/cli-run.js';

/**
 * `simulate --report` whose report cannot be put in place, and whose temporary file then cannot be
 * removed either: the error names the failed write, not the removal that followed it; before, the
 * removal's error replaced it.
 */

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const failing = (what: string) => () =>
    Promise.reject(new Error(`${what} failed (for the test)`));
  return { ...real, rename: failing('rename'), rm: failing('rm') };
});

it('a report that cannot be renamed into place: the error names the rename', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'governor-report-cleanup-'));
  const report = join(folder, 'report.html');
  const r = await cliIn(
    { ...process.env, NO_COLOR: '1' },
    'simulate',
    '--policy',
    'examples/sim-policy.yaml',
    '--fleet',
    'examples/sim-mixed.yaml',
    '--hours',
    '1',
    '--report',
    report,
  );
  expect(r.stderr).toContain(
    `error: cannot write the report ${report}: rename failed (for the test)`,
  );
  expect(r.code).toBe(1);
  // The temporary file is left behind: its removal failed.
  expect(readdirSync(folder)).toHaveLength(1);
});
