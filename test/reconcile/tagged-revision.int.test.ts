import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { RpcError, type FleetInput, type RunningEmulator } from '../../src/emulator/index.js';
import { serviceRevisions } from '../../src/emulator/resources.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A canary: svc-a's serving revision (own max 2) takes all the traffic, and a revision deployed
 * with `--no-traffic --tag canary` (own max 3) gets none. "Tagged revisions are started, but only
 * count toward the service-level maximum instances if they are a part of a traffic split"
 * (https://cloud.google.com/run/docs/configuring/max-instances): whatever service-level max the
 * governor writes on svc-a, the canary may still run its own 3 instances. Through the emulator and
 * Google's clients; svc-b wants the whole quota of 6.
 */

const PROJECT = 'tagged-project';
const REGION = 'us-central1';
const POOL = { project: PROJECT, region: REGION, accelerator: 'nvidia-l4', zonalRedundancy: true };
const QUOTA = 6;
const CANARY = 3;

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  idleMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: QUOTA }],
      services: [
        {
          name: 'svc-a',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 2,
          demand: { constant: 1 },
          noTrafficRevision: { maxInstances: CANARY, tag: 'canary' },
        },
        { name: 'svc-b', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: QUOTA } },
      ],
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: QUOTA, scaleDownDelay: '0s' },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

const runOn = emulatorRuns();

describe('a service with a tagged revision outside the traffic split', () => {
  it('has that revision counted in its pool: the caps and the canary stay within the quota, and runs write nothing again', async () => {
    const { report, emulator, again } = await runOn(fleet, policy, { runId: 'tagged-0' });
    const reports = [report];
    for (let run = 1; run <= 4; run++) {
      emulator.advance(5 * 60_000);
      reports.push(await again(`tagged-${run}`));
    }
    const written = reports.map((r) =>
      r.writes.filter((w) => w.cause === 'written').map((w) => `${w.name} ${w.from}→${w.written}`),
    );
    // What the pool's services may hold: their caps in force, and the canary's own max, which
    // no service-level max bounds.
    const caps = emulator.model.pool(POOL)?.capsGpus ?? 0;
    // Counted in svc-a's cap (2 + 3) until its service-level max was written, then nowhere, the
    // canary left room: svc-a was lowered to 1 and svc-b raised to 5, 6 GPUs of caps and 9 with
    // the canary, on the quota of 6.
    expect(caps + CANARY).toBeLessThanOrEqual(QUOTA);
    expect(written[0]).toEqual(['svc-a 2→1', 'svc-b 1→2']);
    const pool = report.plan?.pools[0];
    expect(pool?.unmanaged).toEqual([
      {
        source: expect.stringMatching(
          /^service[/ ]svc-a revision svc-a-\S+ \(tagged, outside the traffic split\)$/,
        ),
        gpus: CANARY,
      },
    ]);
    // Its own cap is the revision in the split alone, and its reason says the canary is apart.
    const a = report.plan?.services.find((s) => s.name === 'svc-a');
    expect(a?.from).toBe(2);
    expect(a?.reason).toContain('one only tagged is counted apart');
    // Settled by the first run: the later ones write nothing.
    expect(written.slice(1).flat()).toEqual([]);
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);

  it("is counted on the read before the raises, when another writer raises the service's max meanwhile", async () => {
    let lowered = false;
    let edited = false;
    const { report, emulator } = await runOn(fleet, policy, {
      runId: 'tagged-edit',
      emulator: { operationDelayMs: 20 },
      faults: ({ method, request }, emulator) => {
        if (edited) return undefined;
        const name = (request as { service?: { name?: string } }).service?.name ?? '';
        if (!lowered) {
          lowered = method.endsWith('/UpdateService') && name.endsWith('/services/svc-a');
          return undefined;
        }
        // The first call after the governor's lowering of svc-a: another writer sets its
        // service-level max to 3, which bounds its serving revision and not the canary.
        edited = true;
        emulator.edit({ service: 'svc-a', maxInstances: 3 });
        return undefined;
      },
    });
    expect(edited).toBe(true);
    // svc-a's 3 and the canary's 3 fill the quota: svc-b's raise has no room, and is not sent.
    const b = report.writes.find((w) => w.name === 'svc-b');
    expect(b?.from).toBe(1);
    expect(b?.written ?? null).toBeNull();
    expect(emulator.model.listServices().find((s) => s.name === 'svc-b')?.maxInstances).toBe(1);
  }, 60_000);

  it('holds every raise in its region while that revision cannot be read, says which and why, and raises once it is read', async () => {
    // The canary's own max and GPU come from its GetRevision alone: refused, whatever pool it
    // holds GPUs of and however many are unknown.
    let refuse = true;
    let refused = 0;
    const canary = (emulator: RunningEmulator): string => {
      const s = emulator.model.listServices().find((x) => x.name === 'svc-a');
      const tagged = s ? serviceRevisions(s).find((r) => r.tag === 'canary') : undefined;
      if (!tagged) throw new Error('svc-a has no tagged revision');
      return tagged.name;
    };
    const { report, emulator, again } = await runOn(fleet, policy, {
      runId: 'tagged-unread-0',
      faults: ({ method, request }, emulator) => {
        if (!refuse || !method.endsWith('/GetRevision')) return undefined;
        if (!String(request['name'] ?? '').endsWith(`/revisions/${canary(emulator)}`))
          return undefined;
        refused += 1;
        return new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied');
      },
    });
    expect(refused).toBeGreaterThan(0);
    const name = canary(emulator);
    // Said, with the revision and the reason.
    const problem = report.problems.find((p) => p.subject === 'tagged-revisions');
    expect(problem?.error).toContain(name);
    expect(problem?.error).toContain('injected: run.revisions.get denied');
    // Nothing in the pool is raised: its budget is unknown.
    const pool = report.plan?.pools[0];
    expect(pool?.status).toBe('unknown-quota');
    expect(pool?.note).toContain('only tagged');
    // And an alert says so (rule 4: a pool held static raises one).
    expect(
      report.alerts.filter(
        (a) =>
          a.type === 'governor.degraded' &&
          a.details['reason'] === 'budget-unknown' &&
          a.region === pool?.region,
      ),
    ).toHaveLength(1);
    const raised = (r: typeof report) =>
      r.writes.filter((w) => w.written !== null && w.written !== undefined && w.written > w.from);
    expect(raised(report)).toEqual([]);
    emulator.advance(5 * 60_000);
    expect(raised(await again('tagged-unread-1'))).toEqual([]);
    expect(emulator.model.listServices().find((s) => s.name === 'svc-b')?.maxInstances).toBe(1);
    // Once it can be read, it is counted at its own 3 and svc-b raised into what is left.
    refuse = false;
    emulator.advance(5 * 60_000);
    const read = await again('tagged-unread-2');
    expect(
      read.writes
        .filter((w) => w.cause === 'written')
        .map((w) => `${w.name} ${w.from}→${w.written}`),
    ).toEqual(['svc-a 2→1', 'svc-b 1→2']);
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);
});

/**
 * All of svc-a's traffic goes to LATEST, its serving revision (own max 2), beside an older revision
 * that keeps the tag `canary` and no traffic (own max 3): a canary deployed with `--no-traffic
 * --tag`, its traffic then sent to the latest and deployed over. A tag-only target does not change
 * which revision serves the split, so the serving revision's own max is svc-a's ceiling, and the
 * canary is still started, outside the service-level max, counted in its pool. svc-e wants the
 * whole quota of 12.
 */
const latest: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  idleMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 12 }],
      services: [
        {
          name: 'svc-a',
          region: REGION,
          gpu: {},
          maxInstances: 3,
          revisionMaxInstances: 2,
          demand: { constant: 6 },
          taggedRevision: { maxInstances: CANARY, tag: 'canary' },
        },
        { name: 'svc-e', region: REGION, gpu: {}, maxInstances: 3, demand: { constant: 12 } },
      ],
    },
  ],
};

const open = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { scaleDownDelay: '0s' },
  services: [{ match: {} }],
  limits: { writesPerMinute: 6000 },
});

/** svc-a, untagged at its revision's max of 2 with a demand of 1, beside svc-e wanting the rest. */
const untagged: FleetInput = {
  ...latest,
  projects: latest.projects.map((p) => ({
    ...p,
    services: (p.services ?? []).map(({ taggedRevision: _, ...s }) =>
      s.name === 'svc-a' ? { ...s, maxInstances: 2, demand: { constant: 1 } } : s,
    ),
  })),
};

describe('a service whose traffic all goes to LATEST beside an older revision only tagged', () => {
  it("is held at its serving revision's own max, counts the canary in its pool, and writes nothing again, though another writer edits meanwhile", async () => {
    const { report, emulator, again } = await runOn(latest, open, { runId: 'latest-0' });
    const state = (name: string) => emulator.state().services.find((s) => s.name === name);
    const a = report.plan?.services.find((s) => s.name === 'svc-a');
    // Its ceiling is the serving revision's 2, and its reason does not say it does not serve.
    expect(a?.ceiling).toBe(2);
    expect(a?.reason).not.toContain('does not serve');
    expect(report.writes.filter((w) => w.name === 'svc-a' && (w.written ?? 0) > 2)).toEqual([]);
    expect(state('svc-a')?.effectiveMax).toBe(2);
    // The canary's 3 GPUs are counted in the pool, apart from svc-a: svc-e takes 12 - 2 - 3.
    expect(report.plan?.pools[0]?.unmanaged).toEqual([
      {
        source: expect.stringMatching(
          /^service[/ ]svc-a revision svc-a-\S+ \(tagged, outside the traffic split\)$/,
        ),
        gpus: CANARY,
      },
    ]);
    expect(state('svc-e')?.effectiveMax).toBe(12 - 2 - CANARY);
    const later = [];
    for (let run = 1; run <= 3; run++) {
      emulator.advance(5 * 60_000);
      later.push(...(await again(`latest-${run}`)).writes);
    }
    expect(later).toEqual([]);
    // Another writer sets svc-a's service-level max to 1: the next run gives it back up to its
    // revision's 2, never past it, and the one after writes nothing.
    emulator.edit({ service: 'svc-a', maxInstances: 1 });
    emulator.advance(5 * 60_000);
    const back = await again('latest-edited');
    expect(back.writes.find((w) => w.name === 'svc-a')).toMatchObject({ from: 1, written: 2 });
    emulator.advance(5 * 60_000);
    expect((await again('latest-after')).writes).toEqual([]);
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);

  it('holds every raise in its region while the canary cannot be read, its ceiling still its serving revision', async () => {
    let refused = 0;
    const { report } = await runOn(latest, open, {
      runId: 'latest-unread',
      faults: ({ method }) => {
        // The canary is svc-a's only revision read: its template serves.
        if (!method.endsWith('/GetRevision')) return undefined;
        refused += 1;
        return new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied');
      },
    });
    expect(refused).toBeGreaterThan(0);
    expect(report.problems.find((p) => p.subject === 'tagged-revisions')?.error).toMatch(
      /^svc-a: its revision\(s\) svc-a-\S+, only tagged/,
    );
    expect(report.plan?.pools[0]?.status).toBe('unknown-quota');
    expect(report.plan?.services.find((s) => s.name === 'svc-a')?.ceiling).toBe(2);
    expect(report.writes.filter((w) => (w.written ?? 0) > w.from)).toEqual([]);
  }, 60_000);

  it('holds the raise when another writer tags an older revision between the observation and the raise, and it cannot be read', async () => {
    let listings = 0;
    let tagged = false;
    const { report, emulator } = await runOn(untagged, open, {
      runId: 'tag-meanwhile',
      faults: ({ method, request }, emulator) => {
        if (method.endsWith('/ListServices') && !request['page_token']) listings += 1;
        // The listing before the raises: another writer has just tagged svc-a's older revision
        // (gcloud run services update-traffic --set-tags), whose read is refused.
        if (listings === 2 && !tagged) {
          tagged = true;
          emulator.edit({ service: 'svc-a', tagPrevious: { tag: 'canary', maxInstances: CANARY } });
        }
        if (method.endsWith('/GetRevision'))
          return new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied');
        return undefined;
      },
    });
    expect(tagged).toBe(true);
    const e = report.writes.find((w) => w.name === 'svc-e');
    expect(e?.planned).toBeGreaterThan(3);
    expect(e?.cause).toBe('pool-unreadable');
    expect(emulator.state().services.find((s) => s.name === 'svc-e')?.effectiveMax).toBe(3);
    expect(emulator.violations().violations).toEqual([]);
  }, 60_000);

  it('says the pool is unverified when another writer tags an older revision just after the raise, and it cannot be read', async () => {
    let raised = false;
    let tagged = false;
    const { report } = await runOn(untagged, open, {
      runId: 'tag-after-raise',
      emulator: { operationDelayMs: 20 },
      faults: ({ method, request }, emulator) => {
        const name = (request as { service?: { name?: string } }).service?.name ?? '';
        if (!raised) {
          raised = method.endsWith('/UpdateService') && name.endsWith('/services/svc-e');
          return undefined;
        }
        // The first call after svc-e's raise: another writer tags svc-a's older revision, whose
        // GPUs the read after the raises cannot read.
        if (!tagged) {
          tagged = true;
          emulator.edit({ service: 'svc-a', tagPrevious: { tag: 'canary', maxInstances: CANARY } });
        }
        if (method.endsWith('/GetRevision'))
          return new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied');
        return undefined;
      },
    });
    expect(tagged).toBe(true);
    expect(report.writes.find((w) => w.name === 'svc-e')?.cause).toBe('written');
    // Not a silent success: its GPUs unknown, the pool is not verified, and the run says so.
    const unverified = report.alerts.filter(
      (a) =>
        a.type === 'governor.degraded' &&
        a.details['reason'] === 'unverified' &&
        a.status !== 'resolved',
    );
    expect(unverified).toHaveLength(1);
    expect(unverified[0]?.summary).toContain('only tagged');
  }, 60_000);
});
