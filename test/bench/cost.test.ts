import { describe, expect, it } from 'vitest';
import { FUNCTION_RESOURCES } from '../support/fixtures.js';
import {
  memoryMiB,
  nodeHeapLimitMb,
  runCost,
  runsIn30Days,
  terraformDefaults,
  vcpus,
} from '../../bench/cost.js';

/** The arithmetic behind the bench's cost per month (bench/cost.ts): units, schedule, rounding. */
describe('cost in Cloud Run units', () => {
  it('counts the runs of a schedule in a 30-day month', () => {
    expect(runsIn30Days('*/5 * * * *')).toBe(12 * 24 * 30);
    expect(runsIn30Days('0 * * * *')).toBe(24 * 30);
    expect(runsIn30Days('*/15 8-17 * * *')).toBe(4 * 10 * 30);
    // Weekdays of the 30 days from Sunday 1 November 2026: 21.
    expect(runsIn30Days('0 9 * * 1-5')).toBe(21);
    // Both day fields restricted: either matches (the 1st is a Sunday, counted once).
    expect(runsIn30Days('0 0 1 * 0')).toBe(5);
    expect(runsIn30Days('0 9 * * MON')).toBeNull();
    expect(runsIn30Days('*/5 * * *')).toBeNull();
  });

  it('reads memory and CPU as Cloud Run writes them', () => {
    expect(memoryMiB('512Mi')).toBe(512);
    expect(memoryMiB('2Gi')).toBe(2048);
    expect(memoryMiB('512M')).toBeCloseTo(488.28, 2);
    expect(() => memoryMiB('512')).toThrow(/memory/);
    expect(vcpus('1')).toBe(1);
    expect(vcpus('500m')).toBe(0.5);
  });

  it('bills a run to the next 100 ms, in GiB-seconds and vCPU-seconds, and a month of them', () => {
    const resources = FUNCTION_RESOURCES;
    const c = runCost(1_201, resources);
    expect(c.billedSeconds).toBe(1.3);
    expect(c.gibSeconds).toBeCloseTo(0.65);
    expect(c.vcpuSeconds).toBeCloseTo(1.3);
    expect(c.perMonth?.gibSeconds).toBeCloseTo(5_616);
    expect(c.perMonth?.vcpuSeconds).toBeCloseTo(11_232);
    expect(runCost(1_000, resources).billedSeconds).toBe(1);
    expect(runCost(1_000, { ...resources, runsPerMonth: null }).perMonth).toBeNull();
  });

  it('reads the defaults from the Terraform module', async () => {
    const d = await terraformDefaults();
    expect(d.memoryGiB).toBeCloseTo(memoryMiB(d.memory) / 1024);
    expect(d.vcpu).toBeGreaterThan(0);
    expect(d.runsPerMonth).toBeGreaterThan(0);
  });

  it('sizes the heap as Node does in an instance of that memory (half, 256 MiB to 2 GiB)', () => {
    expect(nodeHeapLimitMb('256Mi')).toBe(256);
    expect(nodeHeapLimitMb('512Mi')).toBe(256);
    expect(nodeHeapLimitMb('1Gi')).toBe(512);
    expect(nodeHeapLimitMb('8Gi')).toBe(2048);
  });
});
