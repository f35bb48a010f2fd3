import { describe, expect, it } from 'vitest';
import { benchQuotaRequests } from '../../bench/quota-requests.js';

/**
 * The bench's quota-request week (bench/quota-requests.ts) with a run every hour: exactly one
 * request, for the pool under sustained pressure, with the evidence in its justification; none
 * for the calm pool; the grant raises the quota, and nothing more is filed the rest of the week.
 */
describe('a simulated week of quota requests', () => {
  it('files exactly one request, for the pool under pressure, with its evidence', async () => {
    const r = await benchQuotaRequests({ everyMinutes: 60, days: 7, grantAfterHours: 48 });
    expect(r.runs).toBe(7 * 24);
    expect(r.requestsHot).toBe(1);
    expect(r.requestsCalm).toBe(0);
    expect(r.preferences).toBe(1);
    // A day of history is needed first.
    expect(r.firstRequestHour).toBeGreaterThanOrEqual(24);
    expect(r.firstRequestHour).toBeLessThan(30);
    expect(r.evidenceInJustification).toBe(true);
    expect(r.justification).toMatch(/^Search inference on Cloud Run GPUs\. /);
    expect(r.preferredValue).toBe(8); // 4 + maxIncrease 4
    expect(r.events['quota.granted']).toBe(1);
    expect(r.events['quota.changed']).toBe(1);
    expect(r.events['quota.denied']).toBeUndefined();
    expect(r.quotaAtEnd).toBe(8);
  });
});
