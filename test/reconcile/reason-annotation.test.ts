import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import { onePoolFleet } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * The reason the governor writes on a service (its gpu-governor.dev/reason annotation) may quote
 * an error in Google's words: a Monitoring read that failed leaves usage unknown, and the cap is
 * lowered to its ceiling "usage unknown (Monitoring read failed: …)". Whatever the error holds,
 * what is written is one line without control characters: people read it in the console and in
 * `gcloud run services describe`, and a newline or a terminal escape there acts on what shows it.
 */

const PROJECT = 'reason-project';
const REGION = 'us-central1';

describe('the reason written on a service', () => {
  it('is one line without control characters, whatever the error it quotes holds', async () => {
    const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, 12, [['svc', 4, 1]])));
    const sim = createSimPorts(m, { lagMs: 3 * 60_000 });
    const hostile = 'boom\u001b[31m\u001b]0;title\u0007\r\nforged line\u009b\u202e';
    const fail = () => Promise.reject(new Error(hostile));
    const monitoring = {
      ...sim.monitoring,
      instanceCounts: fail,
      gpuUtilization: fail,
      servedRequests: fail,
      refusedRequests: fail,
    };
    const policy = parsePolicy({
      version: 1,
      projects: [PROJECT],
      regions: [REGION],
      defaults: { max: 2 },
      services: [{ match: {} }],
    });
    const report = await reconcileReport(
      policy,
      { ports: { ...sim, monitoring }, clock: () => m.now },
      { runId: 'reason', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(report.writes.map((w) => [w.name, w.outcome])).toEqual([['svc', 'written']]);
    const reason = m.findService('svc', PROJECT, REGION).annotations['gpu-governor.dev/reason'];
    expect(reason).toContain('usage unknown (Monitoring read failed: boom');
    expect(reason).toContain('forged line');
    expect(reason).not.toMatch(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u);
  });
});
