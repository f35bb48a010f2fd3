import { status } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import {
  checkRetryPolicy,
  defaultRetryPolicy,
  definedOnly,
  MAX_RETRY_INFO_DELAY_MS,
  withRetryInfo,
} from '../../src/adapters/retry.js';
import type { RetryPolicy } from '../../src/adapters/retry.js';

/**
 * How long a refused call waits in all. The errors have the shape google-gax gives a
 * RESOURCE_EXHAUSTED whose trailer carries a google.rpc.RetryInfo (the wire itself is tested
 * through the real clients in monitoring.int.test.ts and cloud-run.int.test.ts); here only the
 * arithmetic of the waits, with a recorded sleep.
 */
function refused(delaySeconds: number): Error & { code: number; statusDetails: unknown[] } {
  return Object.assign(new Error('8 RESOURCE_EXHAUSTED: Quota exceeded'), {
    code: status.RESOURCE_EXHAUSTED,
    statusDetails: [{ retryDelay: { seconds: String(delaySeconds), nanos: 0 } }],
  });
}

/** RESOURCE_EXHAUSTED with no RetryInfo: the policy's backoff alone. */
function refusedWithoutDelay(): Error & { code: number } {
  return Object.assign(new Error('8 RESOURCE_EXHAUSTED: Quota exceeded'), {
    code: status.RESOURCE_EXHAUSTED,
  });
}

/** A sleep that waits for nothing and records each wait asked of it, in `waits`. */
function recordedSleep(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return {
    waits,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
}

describe('waiting the retry delay Google asks for', () => {
  it('waits each delay asked, then succeeds', async () => {
    const { waits, sleep } = recordedSleep();
    let calls = 0;
    const answer = await withRetryInfo(
      defaultRetryPolicy,
      () => (++calls < 3 ? Promise.reject(refused(10)) : Promise.resolve('ok')),
      sleep,
    );
    expect(answer).toBe('ok');
    expect(waits).toHaveLength(2);
    // The delay asked, plus a jittered backoff of at most the policy's.
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(10_000);
    expect(waits[0]).toBeLessThan(10_000 + defaultRetryPolicy.minBackoffMs);
  });

  it('waits a minute in all at the most: a delay that would pass it fails the call, naming it', async () => {
    const { waits, sleep } = recordedSleep();
    let calls = 0;
    const call = () => {
      calls++;
      return Promise.reject(refused(40));
    };
    await expect(withRetryInfo(defaultRetryPolicy, call, sleep)).rejects.toThrow(
      /retry after 40 s, past the 60 s a call waits in all/,
    );
    // One wait of 40 s; a second would have made 80.
    expect(calls).toBe(2);
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(MAX_RETRY_INFO_DELAY_MS);
  });

  it('keeps the backoff added to the delays asked within the minute', async () => {
    // The jitter at its top: the delays asked fill the minute, and the backoff may not pass it.
    const random = vi.spyOn(Math, 'random').mockReturnValue(1);
    try {
      for (const asked of [[60], [20, 39.5]]) {
        const { waits, sleep } = recordedSleep();
        let calls = 0;
        const answer = await withRetryInfo(
          defaultRetryPolicy,
          () => {
            const delay = asked[calls++];
            return delay === undefined ? Promise.resolve('ok') : Promise.reject(refused(delay));
          },
          sleep,
        );
        expect(answer).toBe('ok');
        expect(waits).toHaveLength(asked.length);
        expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(MAX_RETRY_INFO_DELAY_MS);
      }
    } finally {
      random.mockRestore();
    }
  });

  it('takes a negative delay asked as none: it cannot stretch the minute a call waits in all', async () => {
    const { waits, sleep } = recordedSleep();
    const asked = [-100, 100];
    let calls = 0;
    const call = () => Promise.reject(refused(asked[calls++] ?? 0));
    await expect(withRetryInfo(defaultRetryPolicy, call, sleep)).rejects.toThrow(
      /retry after 100 s, past the 60 s a call waits in all/,
    );
    // The negative delay waited the backoff alone; the 100 s one was never waited.
    expect(calls).toBe(2);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(0);
    expect(waits[0]).toBeLessThan(defaultRetryPolicy.minBackoffMs);
  });

  it('does not retry what is not a refusal for quota', async () => {
    let calls = 0;
    const denied = Object.assign(new Error('7 PERMISSION_DENIED'), {
      code: status.PERMISSION_DENIED,
    });
    await expect(
      withRetryInfo(defaultRetryPolicy, () => {
        calls++;
        return Promise.reject(denied);
      }),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
  });
});

describe('the backoff between refusals that ask for no delay', () => {
  it('doubles from minBackoffMs up to maxBackoffMs', async () => {
    // The jitter at its top (Math.random() just below 1 taken as 1), so each wait is the backoff.
    const random = vi.spyOn(Math, 'random').mockReturnValue(1);
    try {
      const { waits, sleep } = recordedSleep();
      const policy = { maxAttempts: 5, minBackoffMs: 100, maxBackoffMs: 300, attemptTimeoutMs: 1 };
      const noDelay = refusedWithoutDelay();
      await expect(withRetryInfo(policy, () => Promise.reject(noDelay), sleep)).rejects.toBe(
        noDelay,
      );
      // Five attempts, four waits: 100, 200, then held at 300.
      expect(waits).toEqual([100, 200, 300, 300]);
    } finally {
      random.mockRestore();
    }
  });
});

describe('a policy whose backoffs alone pass the minute', () => {
  it('sends nothing more once the minute is spent, rather than again at once', async () => {
    // The jitter at its top: 8 s waits, so the minute is spent after eight of them.
    const random = vi.spyOn(Math, 'random').mockReturnValue(1);
    try {
      const { waits, sleep } = recordedSleep();
      let calls = 0;
      const policy = {
        maxAttempts: 30,
        minBackoffMs: 8_000,
        maxBackoffMs: 8_000,
        attemptTimeoutMs: 1,
      };
      const noDelay = refusedWithoutDelay();
      await expect(
        withRetryInfo(
          policy,
          () => {
            calls++;
            return Promise.reject(noDelay);
          },
          sleep,
        ),
      ).rejects.toBe(noDelay);
      expect(waits.reduce((a, b) => a + b, 0)).toBe(MAX_RETRY_INFO_DELAY_MS);
      expect(waits.every((w) => w > 0)).toBe(true);
      expect(calls).toBe(waits.length + 1);
    } finally {
      random.mockRestore();
    }
  });
});

describe('a caller that has given up', () => {
  it('is answered at once: no wait and no other attempt once its signal is aborted', async () => {
    const { waits, sleep } = recordedSleep();
    let calls = 0;
    const gaveUp = new AbortController();
    gaveUp.abort();
    await expect(
      withRetryInfo(
        defaultRetryPolicy,
        () => {
          calls++;
          return Promise.reject(refused(1));
        },
        sleep,
        gaveUp.signal,
      ),
    ).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect(calls).toBe(1);
    expect(waits).toEqual([]);
  });
});

describe('retry options', () => {
  it('an option left undefined keeps its default, rather than making the policy invalid', () => {
    const overrides: Partial<RetryPolicy> = { maxAttempts: undefined, minBackoffMs: 5 };
    expect(checkRetryPolicy({ ...defaultRetryPolicy, ...definedOnly(overrides) })).toEqual({
      ...defaultRetryPolicy,
      minBackoffMs: 5,
    });
  });
});
