/**
 * Polling instead of sleeping: a test waits for the condition it needs, not for a guess at how
 * long that takes. On timeout it fails naming what it waited for (and the last value seen).
 */
export async function waitUntil<T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (value: T) => boolean = Boolean,
  { timeoutMs = 20_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() >= deadline) {
      throw new Error(
        `waited ${timeoutMs} ms for ${what}; last seen: ${JSON.stringify(value) ?? String(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
