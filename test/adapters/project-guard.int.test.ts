import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { createMonitoringAdapter } from '../../src/adapters/monitoring.js';
import { createQuotaPreferenceAdapter } from '../../src/adapters/quota-preferences.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import { ProjectId } from '../../src/core/units.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { InputError } from '../../src/core/errors.js';
import { PROJECT } from '../emulator/helpers.js';

/**
 * Every adapter checks the project it puts in a resource name or a filter by one rule, the
 * policy's (`ProjectId`): a project a policy may list is sent, anything else is an InputError
 * naming `project` before any call reaches the emulator. Before, each adapter had its own regex
 * (Cloud Run took spaces; Cloud Quotas, Monitoring and the preferences each another).
 */

const US = 'us-central1';
const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [{ id: PROJECT, pools: [{ region: US, quota: 4 }], services: [] }],
};
const quick = { maxAttempts: 1, minBackoffMs: 10, maxBackoffMs: 10, attemptTimeoutMs: 5_000 };
const window = { startMs: Date.parse(fleet.start) - 600_000, endMs: Date.parse(fleet.start) };

let emulator: RunningEmulator;
let close: (() => Promise<void>)[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual' });
});

afterAll(async () => {
  await Promise.all(close.map((c) => c()));
  close = [];
  await emulator?.stop();
});

function adapters() {
  const options = { emulatorHost: emulator.host, retry: quick };
  const run = createCloudRunAdapter({ emulatorHost: emulator.host });
  const quotas = createQuotaAdapter(options);
  const monitoring = createMonitoringAdapter(options);
  const preferences = createQuotaPreferenceAdapter(options);
  close.push(
    () => run.close(),
    () => quotas.close(),
    () => monitoring.close(),
    () => preferences.close(),
  );
  const query = { region: US, accelerator: 'nvidia-l4', zonalRedundancy: true };
  return {
    'Cloud Run listServices': (p: string) => run.listServices(p, US),
    'Cloud Run listRegions': (p: string) => run.listRegions(p),
    'Cloud Quotas gpuQuota': (p: string) => quotas.gpuQuota({ project: p, ...query }),
    'Monitoring instanceCounts': (p: string) => monitoring.instanceCounts(p, window),
    'Monitoring writeGovernorMetrics': async (p: string) => {
      expect(monitoring.writeGovernorMetrics).toBeDefined();
      return monitoring.writeGovernorMetrics?.(p, window.endMs, []);
    },
    'quota preferences listPreferences': (p: string) => preferences.listPreferences(p),
  };
}

describe('the project an adapter sends', () => {
  it.each(['a/b', 'my project', '../x', '', 'My-Project', `p${'a'.repeat(40)}`])(
    'is refused, naming project, before any call: %j',
    async (project) => {
      expect(ProjectId.safeParse(project).success).toBe(false);
      emulator.resetCalls();
      for (const [what, call] of Object.entries(adapters())) {
        const error = await call(project).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error, what).toBeInstanceOf(InputError);
        expect((error as InputError).faults, what).toEqual([
          { path: 'project', message: `must be a project id, not "${project}"` },
        ]);
      }
      expect(emulator.calls()).toEqual([]);
    },
  );

  it('is sent when a policy may list it', async () => {
    expect(ProjectId.safeParse(PROJECT).success).toBe(true);
    emulator.resetCalls();
    for (const [what, call] of Object.entries(adapters())) {
      const error = await call(PROJECT).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, what).not.toBeInstanceOf(InputError);
    }
    expect(emulator.calls().length).toBeGreaterThan(0);
  });
});
