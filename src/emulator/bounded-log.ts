/**
 * A log that keeps the newest items only: at most `maxItems`, and within `maxBytes` of their sizes
 * as given (an estimate: JSON length, characters of data), dropping the oldest first and counting
 * them. The newest item is always kept, however large, so the last thing logged can be read.
 *
 * The emulator's call log and its write records (context.ts), its published Pub/Sub messages
 * (pubsub-store.ts) and the order of its custom metric points (custom-metrics.ts) are such logs:
 * unbounded, a client sending big requests for hours, or a governor running every 5 minutes for
 * days, filled the emulator's memory.
 *
 * Adding is O(1) amortised: a drop moves a head index and lets go of the item at once (so a
 * dropped 10 MB message is not held until later), and the array is compacted only once as many
 * slots are dropped as are kept.
 */
export class BoundedLog<T> {
  private entries: ({ readonly item: T; readonly bytes: number } | undefined)[] = [];
  /** Index of the oldest item kept. */
  private head = 0;
  private bytes = 0;
  private droppedCount = 0;

  constructor(
    readonly maxItems: number,
    readonly maxBytes: number,
    /** Told of each item dropped, oldest first, as it is dropped. */
    private readonly onDrop?: (item: T) => void,
  ) {
    if (!Number.isInteger(maxItems) || maxItems < 1)
      throw new RangeError(`maxItems must be an integer of at least 1, got ${maxItems}`);
    if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be at least 0, got ${maxBytes}`);
  }

  /** Adds `item`, of `bytes` bytes, as the newest; drops the oldest until within the bounds. */
  add(item: T, bytes: number): void {
    this.entries.push({ item, bytes });
    this.bytes += bytes;
    while (this.length > 1 && (this.length > this.maxItems || this.bytes > this.maxBytes)) {
      const oldest = this.entries[this.head];
      this.entries[this.head] = undefined;
      this.head += 1;
      this.bytes -= oldest?.bytes ?? 0;
      this.droppedCount += 1;
      if (oldest) this.onDrop?.(oldest.item);
    }
    if (this.head > 0 && this.head >= this.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** How many items are kept. */
  get length(): number {
    return this.entries.length - this.head;
  }

  /** Items dropped (oldest first) to keep within the bounds, since the start or the last reset. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** The items kept, oldest first (a copy). */
  list(): T[] {
    const out: T[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i];
      if (entry) out.push(entry.item);
    }
    return out;
  }

  /** Forgets every item, and the count of those dropped. */
  reset(): void {
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
    this.droppedCount = 0;
  }
}
