import { describe, expect, it } from 'vitest';
import { Alert } from '../../src/core/alert.js';
import type { QuotaRecommendation, TrackedRequest } from '../../src/core/quota-pressure.js';
import {
  judgeRequest,
  plannedQuotaRequest,
  quotaDecidedAlert,
  quotaRequestedAlert,
  redateDecisions,
  requestToFile,
  settlePlannedRequest,
  QuotaRequestsSettings,
} from '../../src/core/quota-requests.js';

/** When a request is filed, how Google's answer is read, and the alerts it makes. */

const AT = '2026-11-30T12:00:00.000Z';
const on = QuotaRequestsSettings.parse({
  enabled: true,
  contactEmail: 'o@example.com',
  maxIncrease: 3,
});

const rec = (over: Partial<QuotaRecommendation> = {}): QuotaRecommendation => ({
  key: 'p/us-central1/nvidia-l4/zonal',
  project: 'p',
  region: 'us-central1',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
  status: 'recommend',
  daysCovered: 7,
  daysSeen: 7,
  minutesCovered: 10080,
  minutesAtBudget: 2000,
  refusedGpuMinutes: 5000,
  peakWanted: 12,
  quota: 8,
  budget: 8,
  recommended: 12,
  why: 'pressure',
  ...over,
});

const req = (over: Partial<TrackedRequest> = {}): TrackedRequest => ({
  name: 'projects/p/locations/global/quotaPreferences/x',
  quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
  preferredValue: 11,
  from: 8,
  filedAt: '2026-11-20T12:00:00.000Z',
  by: 'governor',
  state: 'pending',
  decidedAt: null,
  grantedValue: null,
  stateDetail: '',
  traceId: 't-1',
  ...over,
});

describe('requestToFile', () => {
  it('files the recommendation, at most maxIncrease above the quota', () => {
    expect(requestToFile(rec(), undefined, on, AT)).toEqual({ file: true, preferredValue: 11 });
    expect(requestToFile(rec({ recommended: 9 }), undefined, on, AT)).toEqual({
      file: true,
      preferredValue: 9,
    });
  });

  it('files nothing when off, without pressure, while one is pending, or within the cooldown', () => {
    const off = QuotaRequestsSettings.parse({ enabled: false });
    expect(requestToFile(rec(), undefined, off, AT)).toMatchObject({ file: false });
    expect(
      requestToFile(rec({ status: 'no-pressure', recommended: null }), undefined, on, AT),
    ).toMatchObject({ file: false });
    expect(
      requestToFile(rec({ status: 'too-little-history', recommended: null }), undefined, on, AT),
    ).toMatchObject({ file: false });
    expect(requestToFile(rec(), req(), on, AT)).toEqual({
      file: false,
      why: 'a request is pending: projects/p/locations/global/quotaPreferences/x for 11',
    });
    const decided = req({ state: 'denied', decidedAt: '2026-11-25T12:00:00.000Z' });
    expect(requestToFile(rec(), decided, on, AT)).toMatchObject({
      file: false,
      why: expect.stringMatching(/within 7 days/) as unknown,
    });
    expect(requestToFile(rec(), decided, on, '2026-12-02T12:00:00.000Z')).toEqual({
      file: true,
      preferredValue: 11,
    });
  });
});

describe('a decision dated later than now (a wrong clock or a hand edit)', () => {
  const future = req({ state: 'denied', decidedAt: '2099-01-01T00:00:00.000Z' });

  it('files nothing and says why, and is dated now, so the cooldown ends 7 days later', () => {
    expect(requestToFile(rec(), future, on, AT)).toEqual({
      file: false,
      why: 'the last request was denied at 2099-01-01T00:00:00.000Z, later than now (a wrong clock or a hand edit): the cooldown of 7 days starts now',
    });
    const redated = redateDecisions({ k: future, pending: req() }, AT);
    expect(redated).toEqual({ k: { ...future, decidedAt: AT }, pending: req() });
    // Taken at its word, the decision in 2099 would hold every request until 2099.
    const later = '2026-12-07T12:00:01.000Z';
    expect(requestToFile(rec(), redated['k'], on, later)).toEqual({
      file: true,
      preferredValue: 11,
    });
  });

  it('keeps a decision within the clock skew two machines may have (a minute)', () => {
    const skewed = req({ state: 'denied', decidedAt: '2026-11-30T12:00:30.000Z' });
    expect(redateDecisions({ k: skewed }, AT)).toEqual({ k: skewed });
    expect(requestToFile(rec(), skewed, on, AT)).toMatchObject({
      file: false,
      why: expect.stringMatching(/within 7 days/) as unknown,
    });
  });
});

describe('judgeRequest', () => {
  it('reads pending, granted (all of it, or unlimited) and denied (nothing or part)', () => {
    expect(judgeRequest({ reconciling: true, grantedValue: null, preferredValue: 11 })).toBe(
      'pending',
    );
    expect(judgeRequest({ reconciling: false, grantedValue: 11, preferredValue: 11 })).toBe(
      'granted',
    );
    expect(judgeRequest({ reconciling: false, grantedValue: -1, preferredValue: 11 })).toBe(
      'granted',
    );
    expect(judgeRequest({ reconciling: false, grantedValue: 9, preferredValue: 11 })).toBe(
      'denied',
    );
    expect(judgeRequest({ reconciling: false, grantedValue: null, preferredValue: 11 })).toBe(
      'denied',
    );
  });
});

describe('quota alerts', () => {
  const ctx = { at: AT, runId: 'run-1' };
  it('quota.requested carries the evidence and the justification; it parses as an alert', () => {
    const a = Alert.parse(quotaRequestedAlert(ctx, rec(), req(), 'because'));
    expect(a).toMatchObject({
      type: 'quota.requested',
      status: 'event',
      severity: 'INFO',
      region: 'us-central1',
    });
    expect(a.details).toMatchObject({
      preferredValue: 11,
      from: 8,
      justification: 'because',
      evidence: { refusedGpuMinutes: 5000, peakWanted: 12 },
    });
  });
  it('quota.granted is INFO, quota.denied WARNING with the state detail in its summary', () => {
    const g = Alert.parse(
      quotaDecidedAlert(ctx, rec(), req({ state: 'granted', grantedValue: 11 })),
    );
    expect(g).toMatchObject({ type: 'quota.granted', severity: 'INFO' });
    const d = Alert.parse(
      quotaDecidedAlert(
        ctx,
        rec(),
        req({ state: 'denied', grantedValue: 8, stateDetail: 'no capacity' }),
      ),
    );
    expect(d).toMatchObject({ type: 'quota.denied', severity: 'WARNING' });
    expect(d.summary).toContain('no capacity');
    expect(d.summary).toContain('did not grant the GPU quota of 11');
  });
  it('a partial grant says what Google granted of what was asked, not that nothing was', () => {
    const d = Alert.parse(
      quotaDecidedAlert(
        ctx,
        rec(),
        req({ state: 'denied', grantedValue: 10, stateDetail: 'partially approved' }),
      ),
    );
    expect(d).toMatchObject({ type: 'quota.denied', severity: 'WARNING' });
    expect(d.summary).toBe(
      'Google granted part of the GPU quota asked in us-central1 nvidia-l4: 10 of 11 (it was 8): partially approved',
    );
    expect(d.details).toMatchObject({ from: 8, grantedValue: 10, preferredValue: 11 });
  });
  it('a request someone lowered below the quota it was filed at is no grant: the summary says the quota fell', () => {
    // A preference below the quota is a decrease, applied at once (no longer reconciling, granted
    // what it asks): read as "granted", it must not read as Google raising the quota.
    const g = Alert.parse(
      quotaDecidedAlert(ctx, rec(), req({ state: 'granted', preferredValue: 6, grantedValue: 6 })),
    );
    expect(g.summary).toBe(
      'The GPU quota request in us-central1 nvidia-l4 now asks 6, below the 8 it was filed at: someone lowered it, and the quota is 6',
    );
    expect(g.severity).toBe('WARNING');
  });
});

describe('a planned request settled against the preferences listed', () => {
  const ctx = { at: AT, runId: 'run-1' };
  const planned = plannedQuotaRequest(
    ctx,
    rec(),
    req({ name: 'projects/p/locations/global/quotaPreferences/gpu-governor-us-central1-1' }),
    'because',
  );
  const seen = (name: string, preferredValue = 11) => ({
    name,
    quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
    region: 'us-central1',
    preferredValue,
    grantedValue: null,
    reconciling: true,
  });
  it('is confirmed when Google lists the preference under the project number', () => {
    // Google's own examples name preferences by project number
    // (https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).
    const listed = seen(
      'projects/123456/locations/global/quotaPreferences/gpu-governor-us-central1-1',
    );
    const { alert, confirmed } = settlePlannedRequest(planned, [listed], 'run-2');
    expect(confirmed).toBe(listed);
    expect(alert.details['outcome']).toBe('confirmed-by-observation');
  });
  it('is confirmed when filed under the project number and listed under the id', () => {
    const byNumber = plannedQuotaRequest(
      ctx,
      rec(),
      req({ name: 'projects/123456/locations/global/quotaPreferences/old' }),
      'because',
    );
    const listed = seen('projects/p/locations/global/quotaPreferences/old');
    expect(settlePlannedRequest(byNumber, [listed], 'run-2').confirmed).toBe(listed);
  });
  it("is not confirmed by another preference id, or another project's", () => {
    for (const name of [
      'projects/123456/locations/global/quotaPreferences/gpu-governor-us-central1-2',
      'projects/q/locations/global/quotaPreferences/gpu-governor-us-central1-1',
    ]) {
      const { alert, confirmed } = settlePlannedRequest(planned, [seen(name)], 'run-2');
      expect(confirmed).toBeNull();
      expect(alert.details['outcome']).toBe('not-confirmed');
    }
  });
  it('says the preferences were not read when the run had none to read (quota requests off)', () => {
    const { alert, confirmed } = settlePlannedRequest(planned, undefined, 'run-2');
    expect(confirmed).toBeNull();
    expect(alert.details).toMatchObject({ outcome: 'not-confirmed', seenNow: null });
    expect(alert.summary).toBe(
      'The GPU quota request for 11 in us-central1 nvidia-l4 is not confirmed (run run-1 ended before reporting; the quota preferences could not be read)',
    );
  });
});
