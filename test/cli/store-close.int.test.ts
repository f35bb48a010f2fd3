import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { cliIn } from '../support/cli-run.js';

/**
 * Read commands of the state store (`status --org`, `quota recommend`, `unlock`) whose store fails
 * to close after a good read: the answer stands with its exit code, and a warning tells of the
 * close; before, the close's rejection replaced the answer's exit code with an error's.
 */

vi.mock('../../src/adapters/file-store.js', async (importOriginal) => {
  const { fileStoreFailingToClose } = await import('../support/failing-close.js');
  return fileStoreFailingToClose(importOriginal, 'the state store failed to close (for the test)');
});

const tmp = mkdtempSync(join(tmpdir(), 'governor-store-close-'));
const policy = join(tmp, 'policy.yaml');
writeFileSync(
  policy,
  'version: 1\nprojects: [store-close-project]\nregions: [us-central1]\nservices: [{match: {}}]\n',
);
const env = { ...process.env, NO_COLOR: '1', GOVERNOR_STATE_DIR: join(tmp, 'state') };
const WARNING =
  'warning: closing the state store failed: the state store failed to close (for the test)';

it.each([
  ['status --org', ['status', '--org', '--policy', policy, '--json']],
  ['quota recommend', ['quota', 'recommend', '--policy', policy]],
  ['unlock', ['unlock', '--policy', policy, '--yes']],
])('governor %s with a store failing to close: its answer, a warning, exit 0', async (_, args) => {
  const r = await cliIn(env, ...args);
  expect(r.stderr).toContain(WARNING);
  expect(r.stderr).not.toContain('error:');
  expect(r.stdout).not.toBe('');
  expect(r.code).toBe(0);
});
