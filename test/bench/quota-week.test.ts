import { describe, expect, it } from 'vitest';
import { quotaWeekMet, quotaWeekWhy, type QuotaWeekResult } from '../../bench/quota-requests.js';

/** The quota-request week's verdict (bench/quota-requests.ts): a miss says which part missed. */
const week = (over: Partial<QuotaWeekResult> = {}): QuotaWeekResult => ({
  runs: 336,
  everyMinutes: 30,
  requestsHot: 1,
  requestsCalm: 0,
  preferences: 1,
  firstRequestHour: 24,
  preferredValue: 8,
  justification:
    'at its budget for 60 minutes; 120 GPU-minutes of demand did not fit; wanted up to 8 GPUs',
  evidenceInJustification: true,
  events: {},
  quotaAtEnd: 8,
  wallMs: 1000,
  ...over,
});

describe("the quota-request week's verdict", () => {
  it('is met with one request for the pressured pool, with its evidence, and none elsewhere', () => {
    expect(quotaWeekMet(week())).toBe(true);
    expect(quotaWeekWhy(week())).toBe('');
  });

  it('says each part that missed', () => {
    const r = week({
      requestsHot: 0,
      requestsCalm: 2,
      preferences: 2,
      evidenceInJustification: false,
      justification: null,
    });
    expect(quotaWeekMet(r)).toBe(false);
    expect(quotaWeekWhy(r)).toBe(
      'the pressured pool got 0 requests, not 1; the calm pool got 2, not 0; 2 quota preferences in the project at the end, not 1; no request for the pressured pool to carry the evidence',
    );
    expect(
      quotaWeekWhy(week({ requestsHot: 3, preferences: 1, evidenceInJustification: false })),
    ).toBe(
      "the pressured pool got 3 requests, not 1; its request's justification lacks the evidence (minutes at its budget, GPU-minutes that did not fit, GPUs wanted)",
    );
  });
});
