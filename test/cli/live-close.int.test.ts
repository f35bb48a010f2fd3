import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { cliIn } from '../support/cli-run.js';

/**
 * Read commands (`governor status` without a snapshot file, `governor replay`, `governor check`)
 * whose Google clients fail to close after a good read: the answer stands, exit 0, with a warning
 * about the close; before, the close's rejection replaced the answer with an error and exit 1
 * (the check dropped it without a word).
 */

vi.mock('../../src/adapters/index.js', async (importOriginal) => {
  const { adaptersFailingToClose } = await import('../support/failing-close.js');
  return adaptersFailingToClose(importOriginal, "Google's clients failed to close (for the test)");
});

const PROJECT = 'live-close-project';
const REGION = 'us-central1';
const tmp = mkdtempSync(join(tmpdir(), 'governor-live-close-'));
const policy = join(tmp, 'policy.yaml');
writeFileSync(
  policy,
  `version: 1\nprojects: [${PROJECT}]\nregions: [${REGION}]\ndefaults: {headroom: 0}\nservices: [{match: {}}]\n`,
);
let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({
    speed: 'manual',
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 40,
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 5 }],
          services: [{ name: 'busy', region: REGION, gpu: {}, maxInstances: 2, demand: 1 }],
        },
      ],
    },
  });
});
afterAll(async () => {
  await emulator?.stop();
});

it('Google clients failing to close after a good read: the status, a warning, exit 0', async () => {
  const r = await cliIn(
    { ...process.env, ...emulator.env, NO_COLOR: '1' },
    'status',
    '--policy',
    policy,
    '--json',
  );
  expect(JSON.parse(r.stdout)).toHaveProperty('pools');
  expect(r.stderr).toContain(
    "warning: closing Google's clients failed: Google's clients failed to close (for the test)",
  );
  expect(r.code).toBe(0);
});

it('Google clients failing to close after a good replay read: the replay, a warning, exit 0', async () => {
  const r = await cliIn(
    { ...process.env, ...emulator.env, NO_COLOR: '1' },
    'replay',
    '--policy',
    policy,
    '--since',
    '1h',
    '--json',
  );
  expect(JSON.parse(r.stdout)).toHaveProperty('strategies');
  expect(r.stderr).toContain(
    "warning: closing Google's clients failed: Google's clients failed to close (for the test)",
  );
  expect(r.code).toBe(0);
});

it('Google clients failing to close after a passed check: the report, a warning, exit 0', async () => {
  const r = await cliIn(
    { ...process.env, ...emulator.env, NO_COLOR: '1' },
    'check',
    '--policy',
    policy,
    '--json',
  );
  expect(JSON.parse(r.stdout)).toMatchObject({ passed: true });
  expect(r.stderr).toContain(
    "warning: closing Google's clients failed: Google's clients failed to close (for the test)",
  );
  expect(r.code).toBe(0);
});
