import { describe, expect, it } from 'vitest';
import { memoryRunWhole, MEMORY_RUN_CHANGES } from '../../bench/memory.js';

/**
 * The memory bench measures a run that wrote what its policy lets it (bench/memory.ts): a run
 * that wrote fewer changes, skipped or failed some, measured less work than its figure claims.
 */
describe('memoryRunWhole', () => {
  const answer = (body: Record<string, unknown>) => ({
    outcome: 'ok',
    written: 50,
    skipped: 0,
    failed: 0,
    deferred: 162,
    ...body,
  });

  it("expects the policy's changes a run, the default limit", () => {
    expect(MEMORY_RUN_CHANGES).toBe(50);
  });

  it('accepts a run that wrote its limit, others deferred, or every change planned', () => {
    expect(memoryRunWhole(answer({}))).toBeNull();
    expect(memoryRunWhole(answer({ written: 12, deferred: 0 }))).toBeNull();
  });

  it('names a run that wrote fewer than it was due, skipped, failed or ended otherwise', () => {
    expect(memoryRunWhole(answer({ written: 49 }))).toBe(
      'it wrote 49 changes where 50 were due (limits.maxChangesPerRun; 162 more deferred)',
    );
    expect(memoryRunWhole(answer({ written: 48, skipped: 2, deferred: 0 }))).toBe(
      'it wrote 48 changes where 50 were due (limits.maxChangesPerRun; 0 more deferred), 2 skipped, 0 failed',
    );
    expect(memoryRunWhole(answer({ written: 49, failed: 1 }))).toBe(
      'it wrote 49 changes where 50 were due (limits.maxChangesPerRun; 162 more deferred), 0 skipped, 1 failed',
    );
    expect(memoryRunWhole(answer({ outcome: 'partial' }))).toBe('it ended partial, not ok');
    expect(memoryRunWhole({ outcome: 'ok' })).toBe(
      'it wrote ? changes where ? were due (limits.maxChangesPerRun; ? more deferred)',
    );
  });
});
