import { UpstreamError } from '../errors.js';
import type { Clock } from '../ports/index.js';

/**
 * The governor's clock, read once per run at the edge (the core takes the time as input). Against
 * the emulator it is the emulator's virtual clock (its admin URL, GOVERNOR_EMULATOR_ADMIN), so
 * that observation windows match the metrics the emulator serves; otherwise the wall clock.
 */
export function createClock(options: { emulatorAdmin: string | null }): Clock {
  const admin = options.emulatorAdmin;
  if (!admin) return () => Promise.resolve(Date.now());
  return async () => {
    let body: unknown;
    try {
      const res = await fetch(new URL('/clock', admin), { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.json();
    } catch (e) {
      // fetch says only "fetch failed"; its cause says why (connect ECONNREFUSED 127.0.0.1:PORT).
      const cause = (e as Error).cause;
      const why = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
      throw new UpstreamError(
        `cannot read the emulator's clock at ${admin}: ${(e as Error).message}${why}`,
        { cause: e },
      );
    }
    const now =
      typeof body === 'object' && body !== null && 'now' in body
        ? Date.parse(String(body.now))
        : NaN;
    if (Number.isNaN(now))
      throw new UpstreamError(`the emulator at ${admin} answered no time on /clock`);
    return now;
  };
}
