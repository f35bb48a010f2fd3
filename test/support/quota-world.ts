import { mkdtempSync } from 'node:fs';
import type { CloudQuotasClient, protos } from '@google-cloud/cloudquotas';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createGooglePorts, type GooglePorts } from '../../src/adapters/index.js';
import {
  createQuotaPreferenceAdapter,
  type QuotaPreferenceAdapter,
} from '../../src/adapters/quota-preferences.js';
import type { RetryPolicy } from '../../src/adapters/retry.js';
import type { PressureDay, PressureLedger } from '../../src/core/quota-pressure.js';
import {
  startEmulator,
  type EmulatorOptions,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import { memoryLogger } from '../../src/log.js';
import type { StateStore } from '../../src/ports/index.js';
import { QUICK_POLL_MS, quietRun } from './fixtures.js';

/** The two pools of {@link twoRegionFleet}: us-central1's (`hot`) and europe-west4's (`calm`). */
export function quotaPools(project: string): { hot: string; calm: string } {
  return {
    hot: `${project}/us-central1/nvidia-l4/zonal`,
    calm: `${project}/europe-west4/nvidia-l4/zonal`,
  };
}

/** What a quota-request run needs, over gRPC with the real clients, and how to close it. */
export interface QuotaWorld {
  emulator: RunningEmulator;
  ports: GooglePorts;
  prefs: QuotaPreferenceAdapter;
  store: StateStore;
  log: ReturnType<typeof memoryLogger>;
  /** The file state store's folder. */
  dir: string;
  close(): Promise<void>;
}

/**
 * The emulator (manual time) on {@link twoRegionFleet} unless told another fleet, with the
 * emulator options given (faults, operation delays); Google's clients and the Cloud Quotas adapter
 * on it (its retries as given); a file state store in a folder of its own seeded with
 * {@link seedPressureWeek} unless `seed` is false.
 */
export async function openQuotaWorld(
  project: string,
  options: {
    emulator?: Partial<EmulatorOptions>;
    retry?: Partial<RetryPolicy>;
    /** False: the store starts empty, for a test that seeds it its own way. */
    seed?: boolean;
  } = {},
): Promise<QuotaWorld> {
  const emulator = await startEmulator({
    fleet: twoRegionFleet(project),
    speed: 'manual',
    ...options.emulator,
  });
  const ports = createGooglePorts({
    emulatorHost: emulator.host,
    emulatorOperationPollMs: QUICK_POLL_MS,
  });
  const prefs = createQuotaPreferenceAdapter({
    emulatorHost: emulator.host,
    ...(options.retry ? { retry: options.retry } : {}),
  });
  const dir = mkdtempSync(join(tmpdir(), `governor-${project}-`));
  const store = createFileStateStore({ dir });
  if (options.seed !== false) await seedPressureWeek(store, project, quotaPools(project));
  return {
    emulator,
    ports,
    prefs,
    store,
    log: memoryLogger(),
    dir,
    close: async () => {
      await Promise.all([ports.close(), prefs.close(), store.close()]);
      await emulator.stop();
    },
  };
}

/**
 * The two-region project the quota-request and unit-handover tests run (an emulator fleet file's
 * content): us-central1 and europe-west4 at a quota of 4 each; `busy` in us-central1 capped at 4
 * and wanting 8 (it is refused at its cap: pressure), `quiet` in europe-west4 capped at 2 and
 * wanting 1. `extra` adds a third service in europe-west4, capped at 4 and wanting 1, so that the
 * pool is over its quota (caps 6 on 4) and every run has a cap to lower there; `denied` lists
 * permissions the project's IAM refuses.
 */
export function twoRegionFleet(
  project: string,
  options: { extra?: boolean; denied?: string[] } = {},
) {
  const denied = options.denied ?? [];
  return {
    start: '2026-11-27T12:00:00Z',
    startupSeconds: 30,
    idleMinutes: 0,
    warmupMinutes: 40,
    projects: [
      {
        id: project,
        ...(denied.length > 0 ? { iam: { denied } } : {}),
        pools: [
          { region: 'us-central1', quota: 4 },
          { region: 'europe-west4', quota: 4 },
        ],
        services: [
          { name: 'busy', region: 'us-central1', gpu: {}, maxInstances: 4, demand: 8 },
          { name: 'quiet', region: 'europe-west4', gpu: {}, maxInstances: 2, demand: 1 },
          ...(options.extra
            ? [{ name: 'extra', region: 'europe-west4', gpu: {}, maxInstances: 4, demand: 1 }]
            : []),
        ],
      },
    ],
  };
}

/**
 * The run record the quota-request tests start from: a week of pressure in the newest record of
 * project `project`, its us-central1 pool (`hot`) at its budget of 4 for 6 hours a day with a
 * peak of 7 wanted, its europe-west4 pool (`calm`) never pressed. Recorded at 11:55 on
 * 2026-11-27, a run before the tests' start.
 */
export async function seedPressureWeek(
  store: StateStore,
  project: string,
  pools: { hot: string; calm: string },
): Promise<void> {
  await store.recordRun(project, {
    ...quietRun('run-seed', '2026-11-27T11:55:00.000Z'),
    finishedAt: '2026-11-27T11:55:01.000Z',
    quotas: { [pools.hot]: 4, [pools.calm]: 4 },
    pressure: pressureWeek(project, pools),
  });
}

function pressureWeek(project: string, pools: { hot: string; calm: string }): PressureLedger {
  const days = ['2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26'];
  const day = (d: string, atBudget: number, refused: number, peak: number): PressureDay => ({
    day: d,
    minutes: 1440,
    minutesAtBudget: atBudget,
    refusedGpuMinutes: refused,
    peakWanted: peak,
    quota: 4,
    budget: 4,
  });
  const pool = (region: string, rows: PressureDay[]) => ({
    project,
    region,
    accelerator: 'nvidia-l4',
    zonalRedundancy: true,
    days: rows,
  });
  return {
    at: '2026-11-27T11:55:00.000Z',
    pools: {
      [pools.hot]: pool(
        'us-central1',
        days.map((d) => day(d, 360, 1440, 7)),
      ),
      [pools.calm]: pool(
        'europe-west4',
        days.map((d) => day(d, 0, 0, 1)),
      ),
    },
  };
}

/**
 * A quota preference for Cloud Run's L4 GPU quota that someone else files through Cloud Quotas'
 * own client, as a person or another tool would: for `region`, or for every region when it is
 * null. Returns Google's answer.
 */
export async function filedBySomeone(
  client: CloudQuotasClient,
  project: string,
  preference: {
    id: string;
    value: number;
    region: string | null;
    contactEmail?: string;
  },
): Promise<protos.google.api.cloudquotas.v1.IQuotaPreference> {
  const [answer] = await client.createQuotaPreference({
    parent: `projects/${project}/locations/global`,
    quotaPreferenceId: preference.id,
    quotaPreference: {
      service: 'run.googleapis.com',
      quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
      ...(preference.region !== null ? { dimensions: { region: preference.region } } : {}),
      quotaConfig: { preferredValue: String(preference.value) },
      contactEmail: preference.contactEmail ?? 'someone@example.com',
    },
  });
  return answer;
}
