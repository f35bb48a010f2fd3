import { describe, expect, it } from 'vitest';
import { parseRunRecord, StateCorruptError } from '../../src/ports/state.js';

/** parseStoredKnown (through parseRunRecord): what a newer version added is left out, whatever it holds. */

const record = {
  runId: 'run-1',
  startedAt: '2026-11-27T10:00:00.000Z',
  finishedAt: '2026-11-27T10:00:01.000Z',
  mode: 'enforce',
  outcome: 'ok',
  changes: 0,
  skips: 0,
  alerts: 0,
  error: null,
  pools: { 'p/r/a/zonal': { budget: 5, caps: 5, demand: 6, inUse: 4, status: 'pressure' } },
};

describe('parseRunRecord on a record a newer version wrote', () => {
  it('leaves out an unknown field nested deeper than a copy of the whole record could go', () => {
    const depth = 20_000;
    const text = JSON.stringify({ ...record, future: 0 }).replace(
      '"future":0',
      `"future":${'['.repeat(depth)}${']'.repeat(depth)}`,
    );
    expect(parseRunRecord(JSON.parse(text), 'run record')).toEqual(record);
  });

  it('leaves the stored value as it was, and reads into plain objects', () => {
    const stored = JSON.parse(
      JSON.stringify({ ...record, later: { x: 1 } }).replace(
        '"status":"pressure"}',
        '"status":"pressure","preempted":1}',
      ),
    ) as Record<string, unknown>;
    const before = JSON.stringify(stored);
    const read = parseRunRecord(stored, 'run record');
    expect(read).toEqual(record);
    expect(JSON.stringify(stored)).toBe(before);
    expect(Object.getPrototypeOf(read)).toBe(Object.prototype);
  });

  it('still refuses a value it cannot read, naming it', () => {
    expect(() =>
      parseRunRecord({ ...record, outcome: 'preempted', future: [[1]] }, 'run record'),
    ).toThrow(StateCorruptError);
  });
});
