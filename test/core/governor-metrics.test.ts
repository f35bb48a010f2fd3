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
