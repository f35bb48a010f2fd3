import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { cliIn } from '../support/cli-run.js';
import { QUICK_POLL_ENV } from '../support/fixtures.js';

/**
 * `governor apply` whose state store fails to close after a run that wrote: the run is done, so
 * the command says what it wrote and exits 0, with a WARNING about the close; before, the close's
 * rejection replaced the summary with an error and exit 1, hiding the writes it made.
 */

vi.mock('../../src/adapters/file-store.js', async (importOriginal) => {
  const { fileStoreFailingToClose } = await import('../support/failing-close.js');
  return fileStoreFailingToClose(importOriginal, 'the state store failed to close (for the test)');
});

const PROJECT = 'close-project';
const REGION = 'us-central1';
const tmp = mkdtempSync(join(tmpdir(), 'governor-apply-close-'));
const policy = join(tmp, 'policy.yaml');
writeFileSync(
  policy,
  `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\ndefaults: {headroom: 0}\nservices: [{match: {}}]\nlimits: {writesPerMinute: 6000}\n`,
);
let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({
    speed: 'manual',
    operationDelayMs: 20,
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 5 }],
          services: [
            { name: 'idle', region: REGION, gpu: {}, maxInstances: 4, demand: 0 },
            { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: 3 },
          ],
        },
      ],
    },
  });
});
afterAll(async () => {
  await emulator?.stop();
});

it('a state store failing to close after the writes: the summary, a WARNING, exit 0', async () => {
  const r = await cliIn(
    {
      ...process.env,
      ...emulator.env,
      ...QUICK_POLL_ENV,
      NO_COLOR: '1',
      GOVERNOR_STATE_DIR: join(tmp, 'state'),
    },
    'apply',
    '--policy',
    policy,
    '--yes',
  );
  expect(emulator.writes().map((w) => w.service.name)).toEqual(['idle', 'busy']);
  expect(r.stdout).toMatch(/\(enforce\): 2 written, 0 skipped, 0 failed/);
  expect(r.stderr).toContain(
    "closing the run's clients failed: the state store failed to close (for the test)",
  );
  expect(r.code).toBe(0);
});
