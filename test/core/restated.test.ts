import { describe, expect, it } from 'vitest';

import { restated, type Alert } from '../../src/core/alert.js';

const alert: Alert = {
  version: 1,
  id: 'run-1:service.starved:p/us-central1/nvidia-l4:llm',
  type: 'service.starved',
  status: 'firing',
  severity: 'WARNING',
  project: 'p',
  region: 'us-central1',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
  service: 'llm',
  summary: 'llm gets 2 instances',
  details: { cap: 2, demand: 5 },
  runId: 'run-1',
  time: '2026-12-07T12:00:00.000Z',
  dedupKey: 'service.starved:p/us-central1/nvidia-l4:llm',
};

describe('restated', () => {
  it('changes the summary and lays the details given over the alert’s, its JSON otherwise as it was', () => {
    const told = restated(alert, 'llm gets 3 instances', { cap: 3, shortfall: 2 });
    expect(JSON.stringify(told)).toBe(
      JSON.stringify(alert)
        .replace('"llm gets 2 instances"', '"llm gets 3 instances"')
        .replace('{"cap":2,"demand":5}', '{"cap":3,"demand":5,"shortfall":2}'),
    );
    expect(alert.details).toEqual({ cap: 2, demand: 5 });
  });
});
