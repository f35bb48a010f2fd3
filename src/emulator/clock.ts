/**
 * The emulator's virtual clock. `real` runs at `speed` times the wall clock from the fleet's start;
 * `manual` moves only when told to (`advance`). The wall clock is read through `wallNow`, so the
 * clock itself can be tested with a fake one.
 */
export type ClockMode =
  { readonly kind: 'real'; readonly speed: number } | { readonly kind: 'manual' };

export class VirtualClock {
  private baseVirtual: number;
  private baseWall: number;

  constructor(
    startMs: number,
    readonly mode: ClockMode,
    private readonly wallNow: () => number = Date.now,
  ) {
    if (mode.kind === 'real' && !(mode.speed > 0))
      throw new RangeError('clock speed must be above 0');
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
