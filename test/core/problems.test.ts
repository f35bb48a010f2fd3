import { describe, expect, it } from 'vitest';
import { fleetFullySeen, type ObservationProblem } from '../../src/core/problems.js';

const problem = (subject: ObservationProblem['subject']): ObservationProblem => ({
  project: 'p',
  region: 'us-central1',
  pool: null,
  subject,
  error: 'PERMISSION_DENIED',
});

describe('fleetFullySeen', () => {
  it('is false once a listing of what runs on GPUs was not read, whatever else was not', () => {
    expect(fleetFullySeen([])).toBe(true);
    for (const subject of ['instance-counts', 'gpu-utilization', 'quota'] as const)
      expect(fleetFullySeen([problem(subject)]), subject).toBe(true);
    for (const subject of ['services', 'worker-pools', 'jobs'] as const)
      expect(fleetFullySeen([problem('quota'), problem(subject)]), subject).toBe(false);
  });
});
