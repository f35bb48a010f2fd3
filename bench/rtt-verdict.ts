/**
 * Whether the run bench/rtt.ts timed is the run its figures are about: the fleet has 10 services
 * to change (5 down, 5 up), and its round trips and wall time are judged only for a run that
 * ended `ok` with all 10 written. A run that failed, or stopped before its writes, waits for fewer
 * rounds of calls, so its figures would meet the targets by doing less.
 */

/** The changes the bench's fleet needs. */
export const RTT_CHANGES = 10;

export function rttRunWhole(r: { outcome: string; writes: number }): boolean {
  return r.outcome === 'ok' && r.writes === RTT_CHANGES;
}
