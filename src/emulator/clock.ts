/**
 * The emulator's virtual clock. `real` runs at `speed` times the wall clock from the fleet's start;
 * `manual` moves only when told to (`advance`). The wall clock is read through `wallNow`, so the
 * clock itself can be tested with a fake one.
 */
type ClockMode = { readonly kind: 'real'; readonly speed: number } | { readonly kind: 'manual' };

/**
 * The fastest a `real` clock may run: a virtual day per second. The emulator plays every virtual
 * minute of every service, so a clock much faster than this spends each second of the wall clock
 * modelling more minutes than it can, and never catches up.
 */
export const MAX_CLOCK_SPEED = 86_400;

export class VirtualClock {
  private baseVirtual: number;
  private baseWall: number;

  constructor(
    startMs: number,
    readonly mode: ClockMode,
    private readonly wallNow: () => number = Date.now,
  ) {
    if (mode.kind === 'real' && !(mode.speed > 0 && mode.speed <= MAX_CLOCK_SPEED))
      throw new RangeError(`clock speed must be above 0 and at most ${MAX_CLOCK_SPEED}`);
    this.baseVirtual = startMs;
    this.baseWall = wallNow();
  }

  now(): number {
    if (this.mode.kind === 'manual') return this.baseVirtual;
    return this.baseVirtual + (this.wallNow() - this.baseWall) * this.mode.speed;
  }

  /** Jumps forward by `ms` of virtual time (in either mode). */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError('can only advance by a non-negative number of ms');
    const now = this.now();
    this.baseVirtual = now + ms;
    this.baseWall = this.wallNow();
    return this.baseVirtual;
  }
}
