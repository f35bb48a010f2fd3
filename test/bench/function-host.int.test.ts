import { describe, expect, it } from 'vitest';
import { NOOP_SOURCE, startFunction } from '../../bench/function-host.js';

/**
 * The benchmarks' function processes (bench/function-host.ts): asking the probe of a process that
 * has died fails at once, so that a soak whose function dies (out of memory, while the probe
 * collects garbage) reports it instead of waiting for ever.
 */
describe("the benchmarks' function process", () => {
  it('fails a question to a process that died, and one asked after', async () => {
    const fn = await startFunction({ source: NOOP_SOURCE, probe: true });
    try {
      expect((await fn.memory()).heapUsedBytes).toBeGreaterThan(0);
      // Asked while it dies (its exit not yet seen here), then once it is gone.
      process.kill(fn.pid, 'SIGKILL');
      const asked = fn.memory();
      await expect(asked).rejects.toThrow(/exited \(SIGKILL\)|channel/);
      await expect(fn.memory()).rejects.toThrow(/exited \(SIGKILL\)/);
    } finally {
      await fn.stop();
    }
  }, 60_000);
});
