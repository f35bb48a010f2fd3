import { describe, expect, it } from 'vitest';
import { RTT_CHANGES, rttRunWhole } from '../../bench/rtt-verdict.js';

/** The round-trip figures (bench/rtt.ts) are judged on the run they describe, not on less. */
describe("the round-trip bench's run", () => {
  it('is whole when it ended ok with every change written', () => {
    expect(rttRunWhole({ outcome: 'ok', writes: RTT_CHANGES })).toBe(true);
  });

  it('is not when it failed or wrote fewer changes: fewer rounds would meet the target', () => {
    expect(rttRunWhole({ outcome: 'failed', writes: RTT_CHANGES })).toBe(false);
    expect(rttRunWhole({ outcome: 'ok', writes: 4 })).toBe(false);
    expect(rttRunWhole({ outcome: 'lease-held', writes: 0 })).toBe(false);
  });
});
