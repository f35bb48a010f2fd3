import { describe, expect, it } from 'vitest';
import { cliIn } from '../support/cli-run.js';

const args = [
  'simulate',
  '--policy',
  'examples/sim-policy.yaml',
  '--fleet',
  'examples/sim-mixed.yaml',
  '--hours',
  '1',
];

describe('simulate --lag', () => {
  it("says when Monitoring's lag passes the policy's staleAfter, where every run holds the caps", async () => {
    // examples/sim-policy.yaml keeps the default staleAfter of 10m: metrics 11 minutes late are
    // stale in every run, so the governor never moves a cap (the fleet's static caps, played again).
    const r = await cliIn(process.env, ...args, '--lag', '11m', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^warning: --lag 11m is more than the policy's staleAfter \(10m\): every run sees its instance counts as stale/m,
    );
    const json = JSON.parse(r.stdout) as { notes?: string[] };
    expect(json.notes?.some((n) => /--lag 11m is more than the policy's staleAfter/.test(n))).toBe(
      true,
    );
  }, 60_000);

  it('says nothing of staleness within staleAfter', async () => {
    const r = await cliIn(process.env, ...args, '--lag', '10m', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/staleAfter/);
    expect(JSON.parse(r.stdout)).not.toHaveProperty('notes');
  }, 60_000);
});
