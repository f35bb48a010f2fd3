import { describe, expect, it } from 'vitest';
import { NOT_WRITTEN_LISTED, quotaRequestPrompt, summary } from '../../src/cli/apply-command.js';
import { summaryFields } from '../../src/function/handler.js';
import type { WriteResult } from '../../src/core/write-result.js';
import type { RunReport } from '../../src/reconcile/reconcile.js';

/**
 * What `governor apply` prints after a run that could not make all its writes: every write not
 * made, with its reason; past a few for the same reason (a large fleet's run that reached its
 * deadline), one line naming the first.
 */

function write(i: number, over: Partial<WriteResult> = {}): WriteResult {
  return {
    project: 'p',
    region: 'us-central1',
    name: `svc-${String(i).padStart(4, '0')}`,
    from: 4,
    planned: 2,
    written: null,
    outcome: 'skipped',
    cause: 'deadline',
    reason: 'the run deadline was reached before this write',
    ...over,
  };
}

function report(writes: WriteResult[]): RunReport {
  return {
    runId: 'r1',
    mode: 'enforce',
    outcome: 'ok',
    plan: null,
    writes,
    published: 0,
    alerts: [],
    governorId: null,
    leaseHeld: [],
    problems: [],
    findings: [],
    error: null,
    undelivered: [],
    pressure: {},
  };
}

describe('governor apply: writes not made', () => {
  it('prints many skipped for the same reason as one line, and each other one on its own', () => {
    const writes = [
      ...Array.from({ length: 120 }, (_, i) =>
        write(i, { outcome: 'written', cause: 'written', written: 2 }),
      ),
      ...Array.from({ length: 1_910 }, (_, i) => write(200 + i)),
      write(9_000, { outcome: 'failed', cause: 'denied', reason: 'permission denied' }),
    ];
    const lines = summary(report(writes)).split('\n');
    expect(lines).toEqual([
      'Run r1 (enforce): 120 written, 1910 skipped, 1 failed, 0 deferred; 0 misconfigured service(s); 0 alert message(s).',
      expect.stringMatching(/^ {2}not written, by cause: run deadline 1910, /),
      '  skipped: 1910 changes (p/us-central1/svc-0200 4 → 2, p/us-central1/svc-0201 4 → 2, p/us-central1/svc-0202 4 → 2 and 1907 more): the run deadline was reached before this write',
      '  failed: p/us-central1/svc-9000 4 → 2: permission denied',
    ]);
  });

  it('lists each of a few writes not made', () => {
    const writes = Array.from({ length: NOT_WRITTEN_LISTED }, (_, i) => write(i));
    const lines = summary(report(writes)).split('\n');
    expect(lines.filter((l) => l.startsWith('  skipped: p/us-central1/svc-'))).toHaveLength(
      NOT_WRITTEN_LISTED,
    );
  });
});

describe('governor apply and the function: a raise written short of the plan', () => {
  // Planned 1 → 6, room for 3 only: the plan printed before said 6, the fleet holds 3.
  const writes = [
    write(1, {
      from: 1,
      planned: 6,
      written: 3,
      outcome: 'written',
      cause: 'written',
      reason: 'demand 6; smaller than planned (6): only room for 3',
    }),
    write(2, { from: 1, planned: 2, written: 2, outcome: 'written', cause: 'written' }),
  ];

  it('is named in the summary with the cap written and the one planned', () => {
    expect(summary(report(writes)).split('\n')).toEqual([
      'Run r1 (enforce): 2 written, 0 skipped, 0 failed, 0 deferred; 0 misconfigured service(s); 0 alert message(s).',
      '  written short: p/us-central1/svc-0001 1 → 3 (6 planned): demand 6; smaller than planned (6): only room for 3',
    ]);
  });

  it("is counted in the function's answer", () => {
    expect(summaryFields(report(writes))).toMatchObject({ written: 2, writtenShort: 1 });
  });
});

describe('quotaRequestPrompt', () => {
  it('names the pool, the quota now, the value asked and the preference; the justification on one line', () => {
    const text = quotaRequestPrompt({
      project: 'acme',
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: false,
      from: 4,
      preferredValue: 8,
      kind: 'update',
      preference: 'projects/acme/locations/global/quotaPreferences/by-hand',
      justification: 'Search.\n\u001b[2JWanted 12.',
    });
    expect(text).toBe(
      '\nQuota request (quotaRequests.enabled): ask Google for a GPU quota of 8 in acme us-central1 nvidia-l4 (no zonal redundancy), now 4, as raising projects/acme/locations/global/quotaPreferences/by-hand.\n  Justification: Search. [2JWanted 12.\n',
    );
  });
});
