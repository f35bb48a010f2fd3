import { describe, expect, it } from 'vitest';
import { cliIn } from '../support/cli-run.js';

interface Refusals {
  refusedGpuMinutes: number;
  refusedCapGpuMinutes?: number;
  refusedQuotaGpuMinutes?: number;
}

describe('simulate --json figures', () => {
  it('splits every refusal into above the cap and no free GPU, per service and per pool, and they add up', async () => {
    const r = await cliIn(
      process.env,
      'simulate',
      '--policy',
      'examples/sim-policy.yaml',
      '--fleet',
      'examples/sim-mixed.yaml',
      '--hours',
      '3',
      '--json',
    );
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as {
      strategies: {
        strategy: string;
        pools: (Refusals & { pool: string })[];
        services: (Refusals & { pool: string })[];
      }[];
    };
    const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(1e-6);
    let refusedAtQuota = 0;
    for (const s of json.strategies) {
      for (const p of s.pools) {
        const services = s.services.filter((v) => v.pool === p.pool);
        const sum = (f: (v: Refusals) => number) => services.reduce((a, v) => a + f(v), 0);
        expect(p.refusedCapGpuMinutes).toBeTypeOf('number');
        expect(p.refusedQuotaGpuMinutes).toBeTypeOf('number');
        close(p.refusedGpuMinutes, (p.refusedCapGpuMinutes ?? 0) + (p.refusedQuotaGpuMinutes ?? 0));
        close(
          p.refusedGpuMinutes,
          sum((v) => v.refusedGpuMinutes),
        );
        close(
          p.refusedCapGpuMinutes ?? 0,
          sum((v) => v.refusedCapGpuMinutes ?? 0),
        );
        close(
          p.refusedQuotaGpuMinutes ?? 0,
          sum((v) => v.refusedQuotaGpuMinutes ?? 0),
        );
        refusedAtQuota += p.refusedQuotaGpuMinutes ?? 0;
      }
    }
    // Over-commit refuses at the quota, not at a cap: the split is not all one side.
    expect(refusedAtQuota).toBeGreaterThan(0);
  }, 60_000);
});
