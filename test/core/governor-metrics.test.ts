import { describe, expect, it } from 'vitest';
import {
  GOVERNOR_METRICS,
  governorMetrics,
  WHOLE_PROJECT_UNIT,
} from '../../src/core/governor-metrics.js';
import type { Plan } from '../../src/core/plan.js';
import { REGION_NAME } from '../../src/core/units.js';
import type { WriteResult } from '../../src/core/write-result.js';

/** The governor's own metrics of one run: which series, with which labels. */

const EMPTY: Plan = { pools: [], services: [], changes: [] } as unknown as Plan;
const write = (project: string, outcome: WriteResult['outcome']): WriteResult => ({
  project,
  region: 'us-east1',
  name: `s-${outcome}`,
  from: 1,
  planned: 2,
  written: outcome === 'written' ? 2 : null,
  outcome,
  cause: outcome === 'written' ? 'written' : 'other-governor',
  reason: 'test',
});

describe('the unit metrics', () => {
  const writes = [write('acme', 'written'), write('acme', 'failed'), write('other', 'written')];

  it("name the unit's region, so two regional units of a project write apart", () => {
    const east = governorMetrics('acme', EMPTY, writes, 12.5, 'us-east1');
    const west = governorMetrics('acme', EMPTY, writes, 3, 'us-west1');
    const series = (points: typeof east) =>
      points.map((p) => `${p.metric} ${JSON.stringify(p.labels)}`);
    expect(series(east)).toEqual([
      'unit/writes {"unit":"us-east1","outcome":"written"}',
      'unit/writes {"unit":"us-east1","outcome":"skipped"}',
      'unit/writes {"unit":"us-east1","outcome":"failed"}',
      'unit/duration {"unit":"us-east1"}',
    ]);
    // No series of one is a series of the other.
    const mine = new Set(series(east));
    expect(series(west).filter((s) => mine.has(s))).toEqual([]);
    // The project's own writes only.
    expect(east.map((p) => p.value)).toEqual([1, 0, 1, 12.5]);
  });

  it('a run of the whole project says `project`, which is no region, never empty', () => {
    const whole = governorMetrics('acme', EMPTY, writes, -1);
    expect(WHOLE_PROJECT_UNIT).toBe('project');
    expect(REGION_NAME.test(WHOLE_PROJECT_UNIT)).toBe(false);
    expect(whole.map((p) => p.labels['unit'])).toEqual([
      'project',
      'project',
      'project',
      'project',
    ]);
    // Not `region`: that is the pool's label, which the dashboard's region filter narrows.
    for (const p of whole) expect(p.labels).not.toHaveProperty('region');
    // A clock that went back gives 0 s, not a negative duration.
    expect(whole.at(-1)).toMatchObject({ metric: 'unit/duration', value: 0, valueType: 'DOUBLE' });
    for (const p of whole) {
      expect(GOVERNOR_METRICS as readonly string[]).toContain(p.metric);
      for (const v of Object.values(p.labels)) expect(v).not.toBe('');
    }
  });
});

describe('the pool and service metrics', () => {
  // One pool: `up` (2 GPUs an instance) raised 2 → 5 and lowered back to 3 in the same run;
  // `down` (1 GPU) planned 6 → 2 but denied; `short` (1 GPU) planned 1 → 4, written 1 → 3.
  const where = {
    project: 'acme',
    region: 'us-east1',
    accelerator: 'nvidia-l4',
    zonalRedundancy: false,
  };
  const svc = (name: string, gpus: number, from: number, to: number, demand: number) => ({
    ...where,
    name,
    managed: true,
    gpusPerInstance: gpus,
    from,
    to,
    demand,
  });
  const plan = {
    pools: [{ ...where, quota: 30, budget: 30, capsAfter: 2 * 5 + 2 + 4, inUse: 0, demand: 0 }],
    services: [svc('up', 2, 2, 5, 5), svc('down', 1, 6, 2, 2), svc('short', 1, 1, 4, 4)],
    changes: [],
  } as unknown as Plan;
  const w = (
    name: string,
    from: number,
    planned: number,
    written: number | null,
    cause: WriteResult['cause'],
  ): WriteResult => ({
    ...where,
    name,
    from,
    planned,
    written,
    outcome: written === null ? (cause === 'denied' ? 'failed' : 'skipped') : 'written',
    cause,
    reason: 'test',
  });
  const writes = [
    w('down', 6, 2, null, 'denied'),
    w('short', 1, 4, 3, 'written'),
    w('up', 2, 5, 5, 'written'),
    w('up', 5, 3, 3, 'compensated'),
  ];
  const value = (points: ReturnType<typeof governorMetrics>, metric: string, service?: string) =>
    points.find((p) => p.metric === metric && p.labels['service'] === service)?.value;

  it('tell the caps the writes left, not the planned ones', () => {
    const points = governorMetrics('acme', plan, writes, 1);
    // up: lowered back to 3 (6 GPUs); down: kept 6; short: 3 written of the 4 planned.
    expect(value(points, 'service/cap', 'up')).toBe(6);
    expect(value(points, 'service/cap', 'down')).toBe(6);
    expect(value(points, 'service/cap', 'short')).toBe(3);
    expect(value(points, 'pool/caps')).toBe(6 + 6 + 3);
    // up wants 5 instances and is left 3: 2 instances of 2 GPUs refused.
    expect(value(points, 'service/refused', 'up')).toBe(4);
  });
});
