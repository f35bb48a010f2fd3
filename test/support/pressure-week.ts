import type { PressureDay, PressureLedger } from '../../src/core/quota-pressure.js';
import type { StateStore } from '../../src/ports/index.js';

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
    runId: 'run-seed',
    startedAt: '2026-11-27T11:55:00.000Z',
    finishedAt: '2026-11-27T11:55:01.000Z',
    mode: 'enforce',
    outcome: 'ok',
    changes: 0,
    skips: 0,
    alerts: 0,
    error: null,
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
