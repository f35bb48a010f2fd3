/**
 * A one-line progress bar for long simulations, on a terminal only (nothing otherwise, so logs and
 * pipes stay clean). Redrawn at most every 100 ms of wall time.
 */
interface Progress {
  update(done: number, total: number, what: string): void;
  done(): void;
}

export function progressBar(
  stream: { write(s: string): unknown; isTTY?: boolean },
  width = 30,
  now: () => number = Date.now,
): Progress {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let drawn = false;
  return {
    update(done, total, what) {
      const t = now();
      if (t - last < 100 && done < total) return;
      last = t;
      const share = total > 0 ? Math.min(1, done / total) : 1;
      const full = Math.round(share * width);
      stream.write(
        `\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.round(share * 100)).padStart(3)}% ${what.padEnd(20).slice(0, 20)}`,
      );
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r' + ' '.repeat(width + 30) + '\r');
    },
  };
}
