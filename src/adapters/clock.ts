import { InputError, UpstreamError } from '../core/errors.js';
import type { Clock } from '../ports/index.js';

/**
 * The governor's clock, read once per run at the edge (the core takes the time as input). Against
 * the emulator it is the emulator's virtual clock (its admin URL, GOVERNOR_EMULATOR_ADMIN), so
 * that observation windows match the metrics the emulator serves; otherwise the wall clock.
 *
 * The emulator (GOVERNOR_EMULATOR_HOST) without its admin URL is refused here, before anything is
 * read or written: its clock is virtual (it starts at its fleet's `start`, and may run faster or
 * only when advanced), so on the wall clock every Monitoring window would miss the points it
 * serves, its services would read as idle, and a run would plan and write from that. Every
 * command that takes the time makes its clock here; one that takes none runs as before.
 */
export function createClock(options: {
  emulatorHost: string | null;
  emulatorAdmin: string | null;
}): Clock {
  const admin = options.emulatorAdmin;
  if (!admin && options.emulatorHost) {
    throw new InputError(
      "GOVERNOR_EMULATOR_HOST is set but GOVERNOR_EMULATOR_ADMIN is not: the governor takes its time from the emulator's virtual clock, on its admin endpoint; export GOVERNOR_EMULATOR_ADMIN as `governor emulator` prints it (or unset GOVERNOR_EMULATOR_HOST to use Google)",
      [],
    );
  }
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
