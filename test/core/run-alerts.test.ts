import { describe, expect, it } from 'vitest';
import { plan } from '../../src/core/planner.js';
import { parsePolicy, type PolicyInput } from '../../src/core/policy.js';
import type { Plan } from '../../src/core/plan.js';
import type { ObservationProblem } from '../../src/core/problems.js';
import { restorePlan, restoreProgress } from '../../src/core/restore.js';
import { alertAttributes } from '../../src/core/alert.js';
import { decideNotifications, type ConditionState } from '../../src/core/notify.js';
import { quotaRequestsDegradedAlert } from '../../src/core/quota-requests.js';
import {
  alertMessage,
  contendedAlert,
  degradedAlert,
  goneConditions,
  leaseHeldAlert,
  metricsDegradedAlert,
  outboxDroppedAlert,
  judgedScope,
  orderingKey,
  quotaChanges,
  quotasSeen,
  runEvents,
  runJudgedConditions,
  unitsStoppedAlert,
  unjudgedConditions,
} from '../../src/core/run-alerts.js';
import type { Snapshot, SnapshotService } from '../../src/core/snapshot.js';
import type { WriteResult } from '../../src/core/write-result.js';

/** The pure steps of a run after the plan: events, quota changes, degraded, judged scope, restore. */

const AT = '2026-11-27T15:00:00.000Z';
const CTX = { at: AT, runId: 'run-1' };
const pool = (project: string, region: string) => ({
  project,
  region,
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
});

function svc(project: string, region: string, name: string, max: number, used: number) {
  const s: SnapshotService = {
    ...pool(project, region),
    name,
    gpusPerInstance: 1,
    labels: {},
    maxInstances: max,
    minInstances: 0,
    reconciling: false,
    etag: `etag-${name}`,
    lastChangedAt: null,
    // A service using all of its cap says it ran at its cap (an older snapshot's evidence).
    usage: {
      current: used,
      peak: used,
      sampledAt: '2026-11-27T14:57:00Z',
      ...(used > 0 && used >= max ? { saturated: true } : {}),
    },
  };
  return s;
}

/** acme: two pools (us-east1 quota 4, us-west1 quota unknown); acme-ml: one pool. */
function fleetPlan(extra: Partial<PolicyInput> = {}): Plan {
  const snapshot: Snapshot = {
    version: 1,
    takenAt: AT,
    pools: [
      { ...pool('acme', 'us-east1'), quota: 4, quotaSource: 'cloudquotas' },
      { ...pool('acme-ml', 'us-east1'), quota: 2 },
    ],
    services: [
      svc('acme', 'us-east1', 'idle', 3, 0),
      svc('acme', 'us-east1', 'busy', 1, 1),
      svc('acme', 'us-west1', 'other', 1, 1),
      svc('acme-ml', 'us-east1', 'train', 1, 1),
    ],
    unmanagedUsage: [],
  };
  const policy = parsePolicy({
    version: 1,
    projects: ['acme', 'acme-ml'],
    defaults: { headroom: 0 },
    services: [{ match: {} }],
    ...extra,
  });
  return plan(snapshot, policy, AT, { runId: 'run-1' });
}

const write = (name: string, w: Partial<WriteResult>): WriteResult => ({
  project: 'acme',
  region: 'us-east1',
  name,
  from: 1,
  planned: 2,
  written: null,
  outcome: 'skipped',
  cause: 'no-room',
  reason: 'no room in the pool',
  ...w,
});

describe('the events of a run', () => {
  it('rebalance.applied names the writes and the skips with their cause; apply.failed each failure', () => {
    const p = fleetPlan();
    expect(p.changes.map((c) => [c.project, c.name])).toEqual([
      ['acme-ml', 'train'],
      ['acme', 'idle'],
      ['acme', 'busy'],
    ]);
    const events = runEvents(
      CTX,
      'acme',
      p,
      [
        write('idle', { from: 3, planned: 1, written: 1, outcome: 'written', cause: 'written' }),
        write('busy', { outcome: 'failed', cause: 'uncertain', reason: 'write failed; may apply' }),
      ],
      'enforce',
    );
    expect(events.map((e) => [e.type, e.service])).toEqual([
      ['rebalance.applied', null],
      ['apply.failed', 'busy'],
    ]);
    expect(events[0]?.details).toMatchObject({ writes: [{ service: 'idle', from: 3, to: 1 }] });
    expect(events[1]?.details).toMatchObject({ cause: 'uncertain', from: 1, to: 2 });
    expect(runEvents(CTX, 'acme-ml', p, [], 'enforce')).toEqual([]);
  });

  it('rebalance.applied counts a raise lowered back as one cap changed, and says so', () => {
    // busy raised 1 → 2, then lowered back to 1 in the same run: one cap, changed and restored.
    const [applied] = runEvents(
      CTX,
      'acme',
      fleetPlan(),
      [
        write('idle', { from: 3, planned: 1, written: 1, outcome: 'written', cause: 'written' }),
        write('busy', { written: 2, outcome: 'written', cause: 'written' }),
        write('busy', {
          from: 2,
          planned: 1,
          written: 1,
          outcome: 'written',
          cause: 'compensated',
        }),
      ],
      'enforce',
    );
    expect(applied?.summary).toBe(
      '2 caps changed in us-east1 nvidia-l4 (1 raise lowered back in the same run)',
    );
    expect(applied?.details['writes']).toHaveLength(3);
  });

  it('rebalance.applied counts no cap for a raise fenced off, and says so', () => {
    // busy's raise 1 → 2 got no answer (uncertain) and its max was written back to 1 with the
    // etag it was sent with: no cap of busy changed.
    const [applied] = runEvents(
      CTX,
      'acme',
      fleetPlan(),
      [
        write('idle', { from: 3, planned: 1, written: 1, outcome: 'written', cause: 'written' }),
        write('busy', { written: null, outcome: 'failed', cause: 'uncertain' }),
        write('busy', { from: 2, planned: 1, written: 1, outcome: 'written', cause: 'fenced' }),
      ],
      'enforce',
    );
    expect(applied?.summary).toBe(
      '1 cap changed in us-east1 nvidia-l4; 1 raise that got no answer fenced off, no cap changed',
    );
  });

  it('a denied write names the permission and the resource it is lacked on', () => {
    const svc = 'projects/acme/locations/us-east1/services/busy';
    const denied = (permissions: string[], resource: string) =>
      runEvents(
        CTX,
        'acme',
        fleetPlan(),
        [write('busy', { outcome: 'failed', cause: 'denied', permissions, resource })],
        'enforce',
      )[0];
    const update = denied(['run.services.update'], svc);
    expect(update?.details).toMatchObject({ permissions: ['run.services.update'], resource: svc });
    expect(update?.summary).toContain(`it lacks run.services.update on ${svc}`);
    // actAs is held on the runtime account: one the error names, else the service's own.
    const account = 'busy-sa@acme.iam.gserviceaccount.com';
    expect(denied(['iam.serviceaccounts.actAs'], account)?.summary).toContain(
      `it lacks iam.serviceaccounts.actAs on ${account}`,
    );
    expect(denied(['iam.serviceAccounts.actAs'], svc)?.summary).toContain(
      `it lacks iam.serviceAccounts.actAs on the runtime service account of ${svc}`,
    );
  });

  it('a dry run tells what it would change, per pool', () => {
    const events = runEvents(CTX, 'acme', fleetPlan(), [], 'dry-run');
    expect(events.map((e) => [e.type, e.region])).toEqual([['rebalance.planned', 'us-east1']]);
    expect(events[0]?.details.changes).toHaveLength(2);
  });
});

describe('the events of a run name their pool', () => {
  it('a pool without zonal redundancy is told apart from the zonal one of its region', () => {
    const zonal = svc('acme', 'us-east1', 'a', 3, 0);
    const plain = { ...svc('acme', 'us-east1', 'b', 3, 0), zonalRedundancy: false };
    const p = plan(
      {
        version: 1,
        takenAt: AT,
        pools: [
          { ...pool('acme', 'us-east1'), quota: 4 },
          { ...pool('acme', 'us-east1'), zonalRedundancy: false, quota: 4 },
        ],
        services: [zonal, plain],
        unmanagedUsage: [],
      },
      parsePolicy({ version: 1, projects: ['acme'], services: [{ match: {} }] }),
      AT,
      { runId: 'run-1' },
    );
    const planned = runEvents(CTX, 'acme', p, [], 'dry-run');
    expect(planned.map((e) => e.summary).sort()).toEqual([
      'Dry run: 1 change planned in us-east1 nvidia-l4 (no zonal redundancy), none written',
      'Dry run: 1 change planned in us-east1 nvidia-l4, none written',
    ]);
    const written = (name: string) =>
      write(name, { from: 3, planned: 1, written: 1, outcome: 'written', cause: 'written' });
    const applied = runEvents(CTX, 'acme', p, [written('a'), written('b')], 'enforce');
    expect(applied.map((e) => e.summary).sort()).toEqual([
      '1 cap changed in us-east1 nvidia-l4',
      '1 cap changed in us-east1 nvidia-l4 (no zonal redundancy)',
    ]);
  });
});

describe('quota changes', () => {
  it('fires when a quota read differs from the last run, never for a policy quota', () => {
    const p = fleetPlan();
    const seen = quotasSeen(p, 'acme');
    expect(seen).toEqual({
      'acme/us-east1/nvidia-l4/zonal': 4,
      'acme/us-west1/nvidia-l4/zonal': null,
    });
    expect(quotaChanges(CTX, 'acme', p, seen)).toEqual([]);
    expect(quotaChanges(CTX, 'acme', p, undefined)).toEqual([]);
    const changed = quotaChanges(CTX, 'acme', p, { ...seen, 'acme/us-east1/nvidia-l4/zonal': 6 });
    expect(changed.map((a) => [a.type, a.details.from, a.details.to])).toEqual([
      ['quota.changed', 6, 4],
    ]);
    const fromPolicy = fleetPlan({ pools: [{ region: 'us-east1', quota: 5 }] });
    expect(quotasSeen(fromPolicy, 'acme')['acme/us-east1/nvidia-l4/zonal']).toBeNull();
    expect(quotaChanges(CTX, 'acme', fromPolicy, { 'acme/us-east1/nvidia-l4/zonal': 4 })).toEqual(
      [],
    );
  });
});

describe('observation problems', () => {
  const problem = (
    project: string,
    more: Partial<ObservationProblem> = {},
  ): ObservationProblem => ({
    project,
    region: null,
    pool: null,
    subject: 'instance-counts',
    error: 'monitoring down',
    ...more,
  });

  it("degraded fires for a project's own problems only", () => {
    const problems = [problem('acme-ml')];
    expect(degradedAlert(CTX, 'acme', problems)).toBeNull();
    const alert = degradedAlert(CTX, 'acme-ml', problems);
    expect(alert).toMatchObject({
      type: 'governor.degraded',
      project: 'acme-ml',
      details: { problems: ['acme-ml: instance counts unreadable: monitoring down'] },
    });
  });

  it('degraded is an ERROR naming the regions left ungoverned when their services could not be listed', () => {
    const partial = degradedAlert(CTX, 'acme', [problem('acme')]);
    expect(partial?.severity).toBe('WARNING');
    const skipped = degradedAlert(CTX, 'acme', [
      problem('acme'),
      problem('acme', { subject: 'services', region: 'us-east1', error: 'PERMISSION_DENIED' }),
      problem('acme', { subject: 'services', region: 'europe-west4', error: 'PERMISSION_DENIED' }),
    ]);
    expect(skipped).toMatchObject({
      severity: 'ERROR',
      dedupKey: partial?.dedupKey,
      summary:
        'acme is not governed in europe-west4, us-east1: its services could not be listed (3 problems; governor check names a missing permission)',
    });
  });

  it('degraded names the request quota, not a permission, when the listings were refused for it', () => {
    const refused = (region: string) =>
      problem('acme', {
        subject: 'services',
        region,
        error: `listing the services of projects/acme/locations/${region} failed: RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per region' of service 'run.googleapis.com' for consumer 'project_number:123'`,
      });
    const alert = degradedAlert(CTX, 'acme', [refused('us-east1'), refused('europe-west4')]);
    expect(alert?.severity).toBe('ERROR');
    expect(alert?.summary).toBe(
      "acme is not governed in europe-west4, us-east1: its services could not be listed (2 problems; Google refused the reads for a request quota, RESOURCE_EXHAUSTED: the error names the quota and the project it is charged to; docs/performance.md, Google's request quotas)",
    );
    // A permission among them keeps the permission hint: governor check finds it.
    const mixed = degradedAlert(CTX, 'acme', [
      refused('us-east1'),
      problem('acme', { subject: 'services', region: 'us-west1', error: 'PERMISSION_DENIED' }),
    ]);
    expect(mixed?.summary).toContain('governor check names a missing permission');
  });

  it('conditions are judged over the whole project only when everything was read', () => {
    const p = fleetPlan({ pools: [{ region: 'us-west1', quota: 3 }] });
    expect(judgedScope('acme', p, [])).toEqual(['acme']);
    // Another project's problem, whatever its name shares with this one, changes nothing here.
    expect(judgedScope('acme', p, [problem('acme-ml')])).toEqual(['acme']);
    expect(judgedScope('acme', p, [problem('acme')])).toEqual([
      'acme/us-east1/nvidia-l4/zonal',
      'acme/us-west1/nvidia-l4/zonal',
    ]);
    // A region that could not be listed is not judged, even where the policy gives its quota.
    const unlisted = problem('acme', { region: 'us-west1', subject: 'services' });
    expect(judgedScope('acme', p, [unlisted])).toEqual(['acme/us-east1/nvidia-l4/zonal']);
    // A pool whose quota is unknown is not judged either.
    expect(judgedScope('acme', fleetPlan(), [])).toEqual(['acme/us-east1/nvidia-l4/zonal']);
  });

  it('a pool that is gone is judged even when something else was not read', () => {
    // us-west1's quota is unknown (a problem that lasts, so the project is never judged whole);
    // the conditions stored name a pool of us-central1 and one of europe-west4 that no service is
    // in any more, and the pool of us-west1, which is still there.
    const p = fleetPlan();
    const place = (region: string, accelerator = 'nvidia-l4') => ({
      project: 'acme',
      region,
      accelerator,
      zonalRedundancy: true,
    });
    const stored = [
      place('us-central1'),
      place('europe-west4', 'nvidia-rtx-pro-6000'),
      place('us-west1'),
      { project: 'acme', region: null, accelerator: null, zonalRedundancy: null },
      { ...place('asia-east1'), project: 'acme-ml' },
    ];
    expect(judgedScope('acme', p, [], stored)).toEqual([
      'acme/us-east1/nvidia-l4/zonal',
      'acme/europe-west4/nvidia-rtx-pro-6000/zonal',
      'acme/us-central1/nvidia-l4/zonal',
    ]);
    // Not where its region could not be listed, nor anywhere when no region could be.
    const unlisted = problem('acme', { region: 'us-central1', subject: 'services' });
    expect(judgedScope('acme', p, [unlisted], stored)).toEqual([
      'acme/us-east1/nvidia-l4/zonal',
      'acme/europe-west4/nvidia-rtx-pro-6000/zonal',
    ]);
    const noRegions = problem('acme', { region: null, subject: 'services' });
    expect(judgedScope('acme', p, [noRegions], stored)).toEqual(['acme/us-east1/nvidia-l4/zonal']);
  });
});

describe('a service that is gone', () => {
  // us-west1's pool has an unknown quota (not judged); its service 'other' is still there, 'ghost'
  // was deleted, and 'moved' now runs on another GPU type.
  const record = (region: string, service: string | null, accelerator = 'nvidia-l4') => ({
    type: service === null ? ('governor.degraded' as const) : ('service.starved' as const),
    severity: 'WARNING' as const,
    project: 'acme',
    region,
    accelerator,
    zonalRedundancy: true,
    service,
    summary: 's',
    details: {},
    firingSince: AT,
    lastNotifiedAt: AT,
    lastSeenAt: AT,
    notifications: 1,
  });
  const stored: ConditionState = {
    other: record('us-west1', 'other'),
    ghost: record('us-west1', 'ghost'),
    moved: record('us-west1', 'other', 'nvidia-rtx-pro-6000'),
    pool: record('us-west1', null),
    elsewhere: { ...record('us-west1', 'ghost'), project: 'acme-ml' },
  };

  it('has its conditions resolved even where its pool is not judged', () => {
    const p = fleetPlan();
    expect(goneConditions('acme', p, [], stored)).toEqual(['ghost', 'moved']);
    const out = decideNotifications({
      previous: stored,
      current: [],
      events: [],
      now: AT,
      renotifyAfterMs: 3_600_000,
      runId: 'run-2',
      scope: judgedScope('acme', p, [], Object.values(stored)),
      gone: goneConditions('acme', p, [], stored),
    });
    expect(out.publish.map((m) => [m.dedupKey, m.status])).toEqual([
      ['ghost', 'resolved'],
      ['moved', 'resolved'],
    ]);
    expect(Object.keys(out.next).sort()).toEqual(['elsewhere', 'other', 'pool']);
  });

  it('and so are those of a pool that is gone, at once, though demand conditions are held', () => {
    // The pool's last service moved off it: its pressure resolves now, not after the hold
    // resolveAfterMs gives a demand condition that may come back.
    const gonePool = {
      ...record('us-west1', null, 'nvidia-h100-80gb'),
      type: 'pool.pressure' as const,
    };
    const withPool: ConditionState = { ...stored, gonePool };
    const p = fleetPlan();
    expect(goneConditions('acme', p, [], withPool)).toEqual(['ghost', 'gonePool', 'moved']);
    const out = decideNotifications({
      previous: withPool,
      current: [],
      events: [],
      now: AT,
      renotifyAfterMs: 3_600_000,
      resolveAfterMs: 15 * 60_000,
      runId: 'run-2',
      scope: judgedScope('acme', p, [], Object.values(withPool)),
      gone: goneConditions('acme', p, [], withPool),
    });
    expect(out.publish.map((m) => [m.dedupKey, m.status])).toEqual([
      ['ghost', 'resolved'],
      ['gonePool', 'resolved'],
      ['moved', 'resolved'],
    ]);
  });

  it('not where its region could not be listed', () => {
    const unlisted = (region: string | null): ObservationProblem => ({
      project: 'acme',
      region,
      pool: null,
      subject: 'services',
      error: 'UNAVAILABLE',
    });
    expect(goneConditions('acme', fleetPlan(), [unlisted('us-west1')], stored)).toEqual([]);
    expect(goneConditions('acme', fleetPlan(), [unlisted(null)], stored)).toEqual([]);
  });
});

describe('a service this run could not judge keeps its conditions', () => {
  // Two services at their caps in a pool of 2 GPUs: each is starved. Then Monitoring fails for
  // one (usage unknown: its cap is held), or it starts deploying: the run cannot tell whether it
  // is still short, so its starved condition neither resolves nor fires anew; the other one,
  // judged, resolves once it is no longer starved.
  function starvedPlan(at: string, usageOfA: 'known' | 'unknown' | 'deploying', b = 1): Plan {
    const a = svc('acme', 'us-east1', 'a', 1, 1);
    const snapshot: Snapshot = {
      version: 1,
      takenAt: at,
      pools: [{ ...pool('acme', 'us-east1'), quota: 2, quotaSource: 'cloudquotas' }],
      services: [
        usageOfA === 'unknown'
          ? { ...a, usage: null, usageNote: 'Monitoring read failed' }
          : { ...a, reconciling: usageOfA === 'deploying' },
        svc('acme', 'us-east1', 'b', 1, b),
      ],
      unmanagedUsage: [],
    };
    const policy = parsePolicy({
      version: 1,
      projects: ['acme'],
      defaults: { headroom: 0 },
      services: [{ match: {} }],
    });
    return plan(snapshot, policy, at, { runId: 'run' });
  }
  const notify = (previous: ConditionState, p: Plan, problems: ObservationProblem[]) =>
    decideNotifications({
      previous,
      current: p.alerts,
      events: [],
      now: p.at,
      renotifyAfterMs: 3_600_000,
      runId: `run-${p.at}`,
      scope: judgedScope('acme', p, problems),
      unjudged: unjudgedConditions('acme', p),
    });
  const monitoringDown: ObservationProblem = {
    project: 'acme',
    region: null,
    pool: null,
    subject: 'instance-counts',
    error: 'UNAVAILABLE',
  };
  const starvedOf = (m: { type: string; service: string | null; status: string }[]) =>
    m.filter((x) => x.type === 'service.starved').map((x) => [x.service, x.status]);

  it.each(['unknown', 'deploying'] as const)(
    'usage %s: no resolved message, and no second firing once it is judged again',
    (state) => {
      const first = notify({}, starvedPlan(AT, 'known'), []);
      expect(starvedOf(first.publish)).toEqual([
        ['a', 'firing'],
        ['b', 'firing'],
      ]);
      // b is idle now (judged: resolves); a cannot be judged (kept as it was).
      const blind = starvedPlan('2026-11-27T15:05:00.000Z', state, 0);
      const second = notify(first.next, blind, state === 'unknown' ? [monitoringDown] : []);
      expect(starvedOf(second.publish)).toEqual([['b', 'resolved']]);
      const key = first.publish.find((m) => m.service === 'a')?.dedupKey ?? '';
      expect(second.next[key]).toEqual(first.next[key]);
      // Judged again and still short: the same episode, no new firing.
      const third = notify(second.next, starvedPlan('2026-11-27T15:10:00.000Z', 'known', 0), []);
      expect(starvedOf(third.publish)).toEqual([]);
      expect(third.next[key]?.firingSince).toBe(AT);
    },
  );
});

describe('project-wide conditions of a regional unit', () => {
  const problems: ObservationProblem[] = [
    { project: 'acme', region: 'us-east1', pool: null, subject: 'services', error: 'denied' },
  ];
  const failed: WriteResult = {
    project: 'acme',
    region: 'us-east1',
    name: 'busy',
    from: 1,
    planned: 2,
    written: null,
    outcome: 'skipped',
    cause: 'other-governor',
    reason: 'another governor wrote it',
  };
  /** Every project-wide condition a run may raise, for the run's context. */
  const all = (ctx: typeof CTX & { region?: string }) => [
    degradedAlert(ctx, 'acme', problems),
    metricsDegradedAlert(ctx, 'acme', 'denied'),
    outboxDroppedAlert(ctx, 'acme', 3, 500),
    contendedAlert(ctx, 'acme', [failed]),
    leaseHeldAlert(ctx, { project: 'acme', heldBy: 'other', attempts: 3 }),
    quotaRequestsDegradedAlert(ctx, 'acme', [
      { call: 'list', resource: 'projects/acme', kind: 'failed', permissions: [], error: 'x' },
    ]),
  ];

  it('the lease and another governor say what to do first', () => {
    const lease = leaseHeldAlert(CTX, {
      project: 'acme',
      heldBy: 'gov/run-0@vm:42',
      expiresAt: '2026-11-27T15:05:00.000Z',
      attempts: 3,
    });
    expect(lease.summary).toBe(
      'acme is not governed: another run (gov/run-0@vm:42) holds its lease until 2026-11-27T15:05:00.000Z; the lease ends by itself then, or, if that run has died, `governor unlock` clears it sooner',
    );
    const other = contendedAlert(CTX, 'acme', [
      { ...failed, reason: 'another governor (cli:me@laptop/gov-2) wrote busy at T' },
    ]);
    expect(other?.summary).toMatch(/Stop one of them, or give both the same state store$/);
  });

  it('a whole-project run keeps them as they always were: no region, keyed by the project', () => {
    const alerts = all(CTX);
    expect(alerts.map((a) => a?.dedupKey)).toEqual([
      'governor.degraded:acme:observation',
      'governor.degraded:acme:metrics',
      'governor.degraded:acme:outbox',
      'governor.degraded:acme:other-governor',
      'governor.degraded:acme:lease',
      'governor.degraded:acme:quota-requests',
    ]);
    for (const a of alerts) {
      expect(a).toMatchObject({ region: null, accelerator: null, zonalRedundancy: null });
      expect(a && alertAttributes(a)).not.toHaveProperty('region');
      expect(a && alertMessage(a).orderingKey).toBe('acme');
      expect(a?.summary).not.toContain('acme (');
    }
  });

  it("a regional unit's name its region: their own dedupKey and region attribute", () => {
    const alerts = all({ ...CTX, region: 'us-east1' });
    expect(alerts.map((a) => a?.dedupKey)).toEqual([
      'governor.degraded:acme/us-east1:observation',
      'governor.degraded:acme/us-east1:metrics',
      'governor.degraded:acme/us-east1:outbox',
      'governor.degraded:acme/us-east1:other-governor',
      'governor.degraded:acme/us-east1:lease',
      'governor.degraded:acme/us-east1:quota-requests',
    ]);
    for (const a of alerts) {
      expect(a).toMatchObject({ project: 'acme', region: 'us-east1', accelerator: null });
      // People read which unit: `project (region)`, as everywhere else.
      expect(a?.summary).toContain('acme (us-east1)');
      expect(a && alertAttributes(a)).toMatchObject({ project: 'acme', region: 'us-east1' });
    }
  });

  it('two units of one project, each with its own state: one fires on while the other resolves', () => {
    // Conditions are kept per unit (each its own state); a subscriber sees one stream, by dedupKey.
    const states: Record<string, ConditionState> = { r1: {}, r2: {} };
    const seen: { key: string; status: string }[] = [];
    const run = (region: string, at: string, failing: boolean) => {
      const ctx = { at, runId: `run-${region}-${at}`, region };
      const degraded = degradedAlert(ctx, 'acme', failing ? [{ ...problems[0]!, region }] : []);
      const out = decideNotifications({
        previous: states[region] ?? {},
        current: degraded ? [degraded] : [],
        events: [],
        now: at,
        renotifyAfterMs: 3_600_000,
        runId: ctx.runId,
        // What judgedScope gives a unit: the project when all was read, else its known pools.
        scope: failing ? ['acme/us-east1/nvidia-l4/zonal'] : ['acme'],
      });
      states[region] = out.next;
      seen.push(...out.publish.map((m) => ({ key: m.dedupKey, status: m.status })));
    };
    run('us-east1', '2026-11-27T15:00:00.000Z', true);
    run('us-west1', '2026-11-27T15:00:01.000Z', true);
    run('us-west1', '2026-11-27T15:05:00.000Z', false);
    run('us-east1', '2026-11-27T15:05:01.000Z', true);
    expect(seen).toEqual([
      { key: 'governor.degraded:acme/us-east1:observation', status: 'firing' },
      { key: 'governor.degraded:acme/us-west1:observation', status: 'firing' },
      { key: 'governor.degraded:acme/us-west1:observation', status: 'resolved' },
    ]);
    run('us-east1', '2026-11-27T15:10:00.000Z', false);
    expect(seen.at(-1)).toEqual({
      key: 'governor.degraded:acme/us-east1:observation',
      status: 'resolved',
    });
    expect(seen.filter((m) => m.status === 'resolved')).toHaveLength(2);
  });
});

describe("the run's own conditions", () => {
  it('resolve at the next run without them, even while a pool of the project cannot be judged', () => {
    // us-west1's quota is unknown at every run, so the project is never judged whole; the lease,
    // the metrics and the outbox are the run's own, judged by every run all the same.
    const p = fleetPlan();
    const own = [
      leaseHeldAlert(CTX, { project: 'acme', heldBy: 'other', attempts: 3 }),
      metricsDegradedAlert(CTX, 'acme', 'denied'),
      outboxDroppedAlert(CTX, 'acme', 3, 500),
    ];
    const first = decideNotifications({
      previous: {},
      current: own,
      events: [],
      now: AT,
      renotifyAfterMs: 3_600_000,
      runId: 'run-1',
      scope: judgedScope('acme', p, []),
      judged: runJudgedConditions(CTX, 'acme'),
    });
    const later = '2026-11-27T15:05:00.000Z';
    const second = decideNotifications({
      previous: first.next,
      current: [],
      events: [],
      now: later,
      renotifyAfterMs: 3_600_000,
      runId: 'run-2',
      scope: judgedScope('acme', p, []),
      judged: runJudgedConditions({ at: later, runId: 'run-2' }, 'acme'),
    });
    expect(second.publish.map((m) => [m.dedupKey, m.status])).toEqual([
      ['governor.degraded:acme:lease', 'resolved'],
      ['governor.degraded:acme:metrics', 'resolved'],
      ['governor.degraded:acme:outbox', 'resolved'],
    ]);
    expect(second.next).toEqual({});
  });

  it("are a regional unit's own under its region, and never another unit's or a pool's", () => {
    expect(runJudgedConditions({ ...CTX, region: 'us-east1' }, 'acme')).toEqual([
      'governor.degraded:acme/us-east1:lease',
      'governor.degraded:acme/us-east1:metrics',
      'governor.degraded:acme/us-east1:outbox',
    ]);
  });
});

describe('outbox', () => {
  it('says how many were dropped, or that the number is unknown when the stored count was unreadable', () => {
    const known = outboxDroppedAlert(CTX, 'acme', 3, 500);
    expect(known.details).toEqual({ reason: 'outbox', dropped: 3, backlog: 500 });
    expect(known.summary).toContain('3 alert events of acme');
    // Full outbox or unreadable entries set aside: the count holds both, so the summary names both.
    expect(known.summary).toMatch(
      /were dropped \(the outbox was full, or an entry could not be read/,
    );
    expect(outboxDroppedAlert(CTX, 'acme', 1, 0).summary).toContain(
      '1 alert event of acme could not be published and was dropped',
    );
    const unknown = outboxDroppedAlert(CTX, 'acme', 1, 0, true);
    // The same condition (one dedupKey), its details a superset: subscribers keep reading `dropped`.
    expect(unknown.dedupKey).toBe(known.dedupKey);
    expect(unknown.details).toEqual({
      reason: 'outbox',
      dropped: 1,
      backlog: 0,
      droppedUnknown: true,
    });
    expect(unknown.summary).toContain('An unknown number of alert events of acme (at least 1)');
  });
});

describe('units-stopped', () => {
  const ctx = { at: '2026-11-27T15:00:00.000Z', runId: 'run-1', region: 'europe-west4' };

  it("names the regional units that stopped, under the reporting unit's own key", () => {
    const a = unitsStoppedAlert(
      ctx,
      'acme',
      [
        { region: 'us-central1', lastRunAt: '2026-11-27T14:20:00.000Z' },
        { region: 'us-east1', lastRunAt: null },
      ],
      '30m',
    );
    expect(a).toMatchObject({
      type: 'governor.degraded',
      severity: 'ERROR',
      status: 'firing',
      project: 'acme',
      region: 'europe-west4',
      dedupKey: 'governor.degraded:acme/europe-west4:units-stopped',
      details: {
        reason: 'units-stopped',
        staleAfter: '30m',
        units: [
          { region: 'us-central1', lastRunAt: '2026-11-27T14:20:00.000Z' },
          { region: 'us-east1', lastRunAt: null },
        ],
      },
    });
    expect(a?.summary).toBe(
      '2 regional units of acme have not run for over 30m, so their pools are not governed: us-central1 (last run planned at 2026-11-27T14:20:00.000Z), us-east1 (no run recorded)',
    );
  });

  it('is no condition when none stopped', () => {
    expect(unitsStoppedAlert(ctx, 'acme', [], '30m')).toBeNull();
  });
});

describe('restore', () => {
  it('puts back what the annotations say, decreases first, and leaves the rest', () => {
    const p = fleetPlan();
    const target = (name: string, to: number | null, source = 'original-max' as const) => ({
      project: 'acme',
      region: 'us-east1',
      name,
      etag: `now-${name}`,
      to,
      source,
    });
    const r = restorePlan(p, [target('busy', 4), target('idle', 2), target('train', null)], 50);
    expect(r.changes.map((c) => [c.name, c.from, c.to, c.etag])).toEqual([
      ['idle', 3, 2, 'now-idle'],
      ['busy', 1, 4, 'now-busy'],
    ]);
    expect(r.changes[1]?.why).toEqual({
      basis: { kind: 'restore', to: 4, source: 'original-max' },
    });
    expect(r.changes[1]?.reason).toBe('restore: back to its max before the governor, 4');
    expect(r.deferred).toEqual([]);
  });

  it('makes at most limits.maxChangesPerRun changes, decreases first; the rest stay at their cap for the next restore', () => {
    const p = fleetPlan();
    const target = (name: string, to: number) => ({
      project: 'acme',
      region: 'us-east1',
      name,
      etag: `now-${name}`,
      to,
      source: 'original-max' as const,
    });
    // Before, restore wrote every change, whatever the limit.
    const r = restorePlan(p, [target('busy', 4), target('idle', 2)], 1);
    expect(r.changes.map((c) => [c.name, c.from, c.to])).toEqual([['idle', 3, 2]]);
    expect(r.deferred.map((c) => [c.name, c.from, c.to])).toEqual([['busy', 1, 4]]);
    expect(r.deferred[0]?.reason).toBe(
      'restore: back to its max before the governor, 4; deferred: limits.maxChangesPerRun (1) reached: stays 1, the 4 planned waits for a later run',
    );
    const busy = r.services.find((s) => s.name === 'busy');
    expect(busy).toMatchObject({ from: 1, to: 1, reason: r.deferred[0]?.reason });
    // What the restore leaves in acme/us-east1: idle at 2, busy at its cap of 1.
    expect(r.pools.find((q) => q.project === 'acme' && q.region === 'us-east1')?.capsAfter).toBe(3);
    const progress = restoreProgress(r, new Map([['acme/us-east1/idle', 2]]));
    expect(progress).toMatchObject({ total: 2, restored: 1, deferred: { count: 1, limit: 1 } });
    expect(progress.waiting[0]?.services).toEqual([
      { name: 'busy', at: 1, target: 4, deferred: true },
    ]);
  });
});

describe('restore: what it leaves alone', () => {
  const target = (name: string, to: number) => ({
    project: 'acme',
    region: 'us-east1',
    name,
    etag: `now-${name}`,
    to,
    source: 'original-max' as const,
  });

  it('never writes a service the policy does not govern now, and says so (rule 3)', () => {
    // busy's annotations say 4, but no rule governs it any more: hands off.
    const p = fleetPlan({
      services: [{ match: { name: 'busy' }, managed: false }, { match: {} }],
    });
    const r = restorePlan(p, [target('busy', 4), target('idle', 2)], 50);
    expect(r.changes.map((c) => [c.name, c.from, c.to])).toEqual([['idle', 3, 2]]);
    expect(r.deferred).toEqual([]);
    const busy = r.services.find((s) => s.name === 'busy');
    expect(busy).toMatchObject({ managed: false, from: 1, to: 1 });
    expect(busy?.why.notRestored).toEqual({ before: 4 });
    expect(busy?.reason).toContain(
      'restore: not governed now, so not written (its max before the governor was 4)',
    );
    expect(restoreProgress(r, new Map()).notGoverned).toEqual([
      {
        service: 'acme/us-east1/busy',
        place: { project: 'acme', region: 'us-east1', name: 'busy' },
        at: 1,
        before: 4,
      },
    ]);
  });

  it('writes nothing for a service already at its max from before, governed or not', () => {
    const governed = restorePlan(fleetPlan(), [target('busy', 1), target('idle', 2)], 50);
    expect(governed.changes.map((c) => c.name)).toEqual(['idle']);
    expect(governed.services.find((s) => s.name === 'busy')).toMatchObject({ from: 1, to: 1 });
    const unmanaged = restorePlan(
      fleetPlan({ services: [{ match: { name: 'busy' }, managed: false }, { match: {} }] }),
      [target('busy', 1)],
      50,
    );
    const busy = unmanaged.services.find((s) => s.name === 'busy');
    expect(busy?.why.notRestored).toBeUndefined();
    expect(restoreProgress(unmanaged, new Map()).notGoverned).toEqual([]);
  });
});

describe('ordering keys', () => {
  it('are the pool of an alert, or its project', () => {
    const [applied] = runEvents(CTX, 'acme', fleetPlan(), [], 'dry-run');
    expect(applied && orderingKey(applied)).toBe('acme/us-east1/nvidia-l4/zonal');
    const degraded = degradedAlert(CTX, 'acme', [
      { project: 'acme', region: null, pool: null, subject: 'gpu-utilization', error: 'x' },
    ]);
    expect(degraded && orderingKey(degraded)).toBe('acme');
  });
});

/**
 * Pub/Sub takes an attribute value and an ordering key of at most 1,024 bytes each
 * (https://cloud.google.com/pubsub/quotas#resource_limits) and refuses the whole message
 * otherwise. A message read back from the store (a hand edit) may name anything: sent as it was,
 * it failed its ordering key, and so every alert of its pool, at every run.
 */
describe("a message's attributes and ordering key", () => {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  const [base] = runEvents(CTX, 'acme', fleetPlan(), [], 'dry-run');
  if (!base) throw new Error('no event');

  it('stay within what Pub/Sub takes, whatever the alert names', () => {
    const huge = {
      ...base,
      project: `acme-${'p'.repeat(1500)}`,
      region: `us-${'é'.repeat(700)}`,
      accelerator: `gpu-${'😀'.repeat(400)}`,
      service: `svc-${'s'.repeat(3000)}`,
    };
    const message = alertMessage(huge);
    for (const [key, value] of Object.entries(message.attributes))
      expect(bytes(value), key).toBeLessThanOrEqual(1024);
    expect(bytes(message.orderingKey)).toBeLessThanOrEqual(1024);
    expect(message.orderingKey.startsWith('acme-ppp')).toBe(true);
    expect(message.attributes['service']?.startsWith('svc-sss')).toBe(true);
    expect(message.attributes['service']?.endsWith('…')).toBe(true);
    // No character is cut in half ('é' is 2 bytes; text.test.ts cuts emoji, 4 bytes and a pair).
    expect(message.attributes['region']).toMatch(/^us-é+…$/);
    // The data stays whole: subscribers read the names there.
    expect(message.data).toBe(huge);
  });

  it('are left as they are when they fit, at exactly 1,024 bytes too', () => {
    const exact = { ...base, service: 's'.repeat(1024), region: 'r'.repeat(1000) };
    const message = alertMessage(exact);
    expect(message.attributes['service']).toBe(exact.service);
    expect(message.attributes['region']).toBe(exact.region);
    expect(message.orderingKey).toBe(orderingKey(exact));
    expect(alertMessage(base)).toEqual({
      data: base,
      attributes: alertAttributes(base),
      orderingKey: 'acme/us-east1/nvidia-l4/zonal',
    });
  });
});
