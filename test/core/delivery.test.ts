import { describe, expect, it } from 'vitest';
import { Alert } from '../../src/core/alert.js';
import { deliveryFailedAlert, heldDeliveryCondition } from '../../src/core/run-alerts.js';
import { deliveryVerdict } from '../../src/core/work.js';

/** The unit's last delivery (organisation scale): when it is known, and what the alert says. */

describe('deliveryVerdict', () => {
  it('is the last delivery once the attempt reaches the max, retried before', () => {
    expect(deliveryVerdict(5, 5)).toEqual({ kind: 'last', attempt: 5, maxAttempts: 5 });
    // Pub/Sub counts at best effort: a count past the max is the last too.
    expect(deliveryVerdict(7, 5)).toMatchObject({ kind: 'last', attempt: 7 });
    expect(deliveryVerdict(4, 5)).toEqual({ kind: 'retried', attempt: 4, maxAttempts: 5 });
    expect(deliveryVerdict(1, 100)).toMatchObject({ kind: 'retried' });
  });

  it('fails safe: without an attempt (or 0, no dead-letter policy) or a max, it may be the last', () => {
    for (const [attempt, max] of [
      [undefined, 5],
      [0, 5],
      [3, null],
      [undefined, null],
    ] as const) {
      const v = deliveryVerdict(attempt, max);
      expect(v.kind, `${attempt}/${max}`).toBe('unknown');
    }
    expect(deliveryVerdict(undefined, 5)).toMatchObject({ attempt: null, maxAttempts: 5 });
    expect(deliveryVerdict(3, null)).toMatchObject({ attempt: 3, maxAttempts: null });
    expect(deliveryVerdict(undefined, 5)).toMatchObject({ why: /no deliveryAttempt/ });
    expect(deliveryVerdict(3, null)).toMatchObject({ why: /GOVERNOR_MAX_DELIVERY_ATTEMPTS/ });
  });
});

describe('deliveryFailedAlert', () => {
  const ctx = { at: '2026-12-02T01:00:00.000Z', runId: 'run-1' };
  const base = { project: 'gpu-proj-0001', messageId: '42', dispatchId: 'd-1' };

  it('names the project, the attempt and the cause, as a governor.degraded condition', () => {
    const a = deliveryFailedAlert(ctx, {
      ...base,
      verdict: { kind: 'last', attempt: 5, maxAttempts: 5 },
      cause: 'the run deadline passed while observing',
    });
    expect(Alert.parse(a)).toEqual(a);
    expect(a).toMatchObject({
      type: 'governor.degraded',
      status: 'firing',
      severity: 'ERROR',
      project: 'gpu-proj-0001',
      region: null,
      dedupKey: 'governor.degraded:gpu-proj-0001:delivery',
      details: {
        reason: 'delivery',
        attempt: 5,
        maxAttempts: 5,
        deadLettered: true,
        cause: 'the run deadline passed while observing',
        messageId: '42',
        dispatchId: 'd-1',
      },
    });
    expect(a.summary).toBe(
      'gpu-proj-0001 is not governed: its unit failed its last delivery (5 of 5); the work message goes to the dead-letter topic: the run deadline passed while observing',
    );
  });

  it('says why an unknown attempt may be the last; one key per project whatever the attempt', () => {
    const a = deliveryFailedAlert(ctx, {
      ...base,
      verdict: deliveryVerdict(undefined, 5) as Extract<
        ReturnType<typeof deliveryVerdict>,
        { kind: 'unknown' }
      >,
      cause: 'x',
    });
    expect(a.summary).toMatch(/may be its last \(the push request carried no deliveryAttempt/);
    expect(a.details).toMatchObject({ attempt: null, maxAttempts: 5, deadLettered: null });
    expect(a.dedupKey).toBe('governor.degraded:gpu-proj-0001:delivery');
  });

  it('keeps a hostile or huge cause on one line, capped', () => {
    const a = deliveryFailedAlert(ctx, {
      ...base,
      verdict: { kind: 'last', attempt: 5, maxAttempts: 5 },
      cause: `boom\n\u001b[31mred\u0007${'x'.repeat(5_000)}`,
    });
    const cause = String(a.details['cause']);
    // Each run of control characters is one space; what is left is plain text.
    expect(cause).toMatch(/^boom \[31mred x+$/);
    expect(cause.length).toBeLessThanOrEqual(500);
    expect(a.summary).not.toMatch(/\p{Cc}/u);
    const empty = deliveryFailedAlert(ctx, {
      ...base,
      verdict: { kind: 'last', attempt: 5, maxAttempts: 5 },
      cause: '\n\n',
    });
    expect(empty.details['cause']).toBe('unknown');
  });
});

describe('a regional unit', () => {
  it('names its region, keys its own condition, and a failed run holds it', () => {
    const ctx = { at: '2026-12-02T01:00:00.000Z', runId: 'run-2' };
    const a = deliveryFailedAlert(ctx, {
      project: 'gpu-proj-0001',
      region: 'europe-west4',
      verdict: { kind: 'last', attempt: 5, maxAttempts: 5 },
      cause: 'boom',
      messageId: null,
      dispatchId: 'd-2',
    });
    expect(a.summary).toMatch(/^gpu-proj-0001 \(europe-west4\) is not governed/);
    expect(a.dedupKey).toBe('governor.degraded:gpu-proj-0001/europe-west4:delivery');
    const kept = {
      type: a.type,
      severity: a.severity,
      project: a.project,
      region: a.region,
      accelerator: a.accelerator,
      zonalRedundancy: a.zonalRedundancy,
      service: a.service,
      summary: a.summary,
      details: a.details,
      firingSince: a.time,
      lastNotifiedAt: a.time,
      lastSeenAt: a.time,
      notifications: 1,
    };
    const held = heldDeliveryCondition(ctx, 'gpu-proj-0001', { [a.dedupKey]: kept });
    expect(held.map((h) => [h.dedupKey, h.status])).toEqual([[a.dedupKey, 'firing']]);
    expect(heldDeliveryCondition(ctx, 'gpu-proj-0002', { [a.dedupKey]: kept })).toEqual([]);
  });
});
