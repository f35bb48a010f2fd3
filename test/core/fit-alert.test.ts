import { describe, expect, it } from 'vitest';
import { alertBytes, fitAlert, fitWhole, type Alert } from '../../src/core/alert.js';
import { makeAlert } from '../../src/core/conditions.js';
import { utf8Length } from '../../src/core/text.js';

const pool = {
  project: 'p',
  region: 'us-central1',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
};
const applied = (writes: number, skipped: number): Alert =>
  makeAlert({ at: '2026-11-27T10:00:00.000Z', runId: 'run-1' }, pool, {
    type: 'rebalance.applied',
    status: 'event',
    severity: 'INFO',
    summary: `${writes} caps changed in us-central1 nvidia-l4`,
    details: {
      writes: Array.from({ length: writes }, (_, i) => ({ service: `w-${i}`, from: 3, to: 1 })),
      skipped: Array.from({ length: skipped }, (_, i) => ({ service: `s-${i}`, reason: 'é' })),
      budget: 7,
    },
  });

describe('fitAlert', () => {
  it('returns an alert that fits as it is', () => {
    const a = applied(3, 1);
    expect(fitAlert(a, alertBytes(a))).toEqual({ alert: a, truncated: null });
    expect(fitAlert(a, alertBytes(a)).alert).toBe(a);
  });

  it('cuts the longest list from its end, then the next, and says how many it kept of how many', () => {
    const a = applied(1_000, 200);
    const max = alertBytes(a) - 20_000;
    const { alert: fitted, truncated } = fitAlert(a, max);
    expect(alertBytes(fitted)).toBeLessThanOrEqual(max);
    const writes = fitted.details['writes'] as unknown[];
    expect(writes).toEqual((a.details['writes'] as unknown[]).slice(0, writes.length));
    expect(truncated).toEqual({ writes: { kept: writes.length, of: 1_000 } });
    expect(fitted.details['truncated']).toEqual(truncated);
    // Nothing else changed; the summary still counts all.
    expect({ ...fitted, details: { ...fitted.details, writes: [], truncated: null } }).toEqual({
      ...a,
      details: { ...a.details, writes: [], truncated: null },
    });
    // Very little room: the longest goes whole, then the next as much as it must.
    const { alert: tiny, truncated: cut } = fitAlert(a, 1_000);
    expect(alertBytes(tiny)).toBeLessThanOrEqual(1_000);
    expect((tiny.details['skipped'] as unknown[]).length).toBeLessThan(200);
    expect(cut).toEqual({
      writes: { kept: 0, of: 1_000 },
      skipped: { kept: (tiny.details['skipped'] as unknown[]).length, of: 200 },
    });
    expect(tiny.details['truncated']).toEqual(cut);
  });

  it('fitted again (a planned event settled), keeps the counts of the first cut', () => {
    const a = applied(1_000, 0);
    const once = fitAlert(a, alertBytes(a) - 10_000).alert;
    const grown = { ...once, details: { ...once.details, outcome: 'x'.repeat(5_000) } };
    const { alert: twice, truncated } = fitAlert(grown, alertBytes(a) - 10_000);
    expect(truncated).toEqual({
      writes: { kept: (twice.details['writes'] as unknown[]).length, of: 1_000 },
    });
    expect(twice.details['truncated']).toEqual(truncated);
  });

  it('cuts a list one level down, named by its path (a resolved message of a large pool)', () => {
    const floorsBy = Array.from({ length: 2_000 }, (_, i) => ({ service: `s-${i}`, gpus: 1 }));
    const a = {
      ...applied(0, 0),
      status: 'resolved' as const,
      details: { resolvedAt: '2026-11-27T10:00:00.000Z', lastDetails: { floors: 9, floorsBy } },
    };
    const { alert: fitted, truncated } = fitAlert(a, alertBytes(a) - 10_000);
    expect(alertBytes(fitted)).toBeLessThanOrEqual(alertBytes(a) - 10_000);
    const kept = (fitted.details['lastDetails'] as { floorsBy: unknown[] }).floorsBy;
    expect(kept).toEqual(floorsBy.slice(0, kept.length));
    expect(truncated).toEqual({ 'lastDetails.floorsBy': { kept: kept.length, of: 2_000 } });
    expect(fitted.details['lastDetails']).toMatchObject({ floors: 9 });
    expect(fitted.details['resolvedAt']).toBe('2026-11-27T10:00:00.000Z');
    // The alert given is left as it was.
    expect((a.details.lastDetails.floorsBy as unknown[]).length).toBe(2_000);
  });

  it('leaves an alert with no list to cut as it is, for the store to refuse', () => {
    const a = { ...applied(0, 0), summary: 'x'.repeat(5_000) };
    expect(fitAlert(a, 1_000)).toEqual({ alert: a, truncated: null });
    expect(fitAlert(a, 1_000).alert).toBe(a);
  });

  it('counts bytes as UTF-8', () => {
    expect(utf8Length('aé€😀')).toBe(Buffer.byteLength('aé€😀'));
    expect(utf8Length('\ud800x')).toBe(Buffer.byteLength('\ud800x'));
  });
});

/** Half of a UTF-16 pair without the other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('fitWhole', () => {
  it('is fitAlert when cutting lists is enough', () => {
    const a = applied(1_000, 200);
    const max = alertBytes(a) - 20_000;
    expect(fitWhole(a, max)).toEqual({ ...fitAlert(a, max), omitted: null, summaryCut: null });
    const small = applied(3, 1);
    expect(fitWhole(small).alert).toBe(small);
  });

  it('then leaves out the largest details, naming each with its size', () => {
    const a = {
      ...applied(0, 0),
      details: { from: 3, to: 4, note: 'x'.repeat(50_000), more: { text: 'y'.repeat(20_000) } },
    };
    const { alert: fitted, omitted, summaryCut } = fitWhole(a, 40_000);
    expect(alertBytes(fitted)).toBeLessThanOrEqual(40_000);
    expect(fitted.details).toEqual({
      from: 3,
      to: 4,
      more: { text: 'y'.repeat(20_000) },
      omitted: { note: 50_002 },
    });
    expect(omitted).toEqual({ note: 50_002 });
    expect(summaryCut).toBeNull();
    // Less room: the next largest goes too; the rest of the alert is as it was.
    const tighter = fitWhole(a, 1_000);
    expect(alertBytes(tighter.alert)).toBeLessThanOrEqual(1_000);
    expect(tighter.alert.details).toEqual({
      from: 3,
      to: 4,
      omitted: { note: 50_002, more: 20_011 },
    });
    expect({ ...tighter.alert, details: {} }).toEqual({ ...a, details: {} });
  });

  it('then cuts the summary, and returns over the size only an alert whose ids alone are', () => {
    const a = { ...applied(0, 0), summary: '€'.repeat(5_000) };
    const { alert: fitted, summaryCut } = fitWhole(a, 1_000);
    expect(alertBytes(fitted)).toBeLessThanOrEqual(1_000);
    expect(summaryCut).toBe(5_000);
    expect(fitted.summary.endsWith('…')).toBe(true);
    expect(a.summary.startsWith(fitted.summary.slice(0, -1))).toBe(true);
    // Cut between characters, never inside one (a pair of UTF-16 halves).
    for (let max = 5_000; max < 5_004; max += 1) {
      const emoji = fitWhole({ ...applied(0, 0), summary: '😀'.repeat(2_000) }, max).alert;
      expect(alertBytes(emoji)).toBeLessThanOrEqual(max);
      expect(emoji.summary).not.toMatch(LONE_SURROGATE);
    }
    // A stored record whose own `truncated` is too large: the details go whole, their size said.
    const counts = Object.fromEntries(
      Array.from({ length: 2_000 }, (_, i) => [`list-${i}`, { kept: 1, of: 2 }]),
    );
    const edited = { ...applied(0, 0), details: { truncated: counts, from: 1 } };
    const whole = fitWhole(edited, 1_000);
    expect(alertBytes(whole.alert)).toBeLessThanOrEqual(1_000);
    expect(whole.alert.details).toEqual({
      omitted: { details: utf8Length(JSON.stringify(edited.details)) },
    });
    const ids = { ...applied(0, 0), id: 'i'.repeat(2_000) };
    expect(alertBytes(fitWhole(ids, 1_000).alert)).toBeGreaterThan(1_000);
  });
});
