import { describe, expect, it } from 'vitest';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { makeAlert } from '../../src/core/conditions.js';
import { parsePolicy } from '../../src/core/policy.js';
import { validateFleet } from '../../src/emulator/fleet.js';
import { FleetModel } from '../../src/emulator/model.js';
import { createSimPorts } from '../../src/emulator/ports.js';
import type { Alert } from '../../src/core/alert.js';
import { memoryLogger } from '../../src/log.js';
import type { AlertSink, OutboxEntry, OutgoingMessage, StateStore } from '../../src/ports/index.js';
import { onePoolFleet, quietRun } from '../support/fixtures.js';
import { reconcileReport } from '../support/reconcile-run.js';

/**
 * Before its first write a run stores the rebalance.applied events it expects (pending outcome),
 * so that a run that dies before reporting leaves them for the next run to settle and send. A
 * dry run writes nothing: it stores none, or the next run would announce changes nobody made.
 */

const PROJECT = 'outbox-project';
const REGION = 'us-central1';

/** One pool of `quota` GPUs with these services (name, max instances, demand), played by the fleet model. */
function onePoolWorld(quota: number, services: [name: string, max: number, demand: number][]) {
  const m = new FleetModel(validateFleet(onePoolFleet(PROJECT, REGION, quota, services)));
  return { m, sim: createSimPorts(m, { lagMs: 3 * 60_000 }), store: createMemoryStateStore() };
}

function policy(mode: 'enforce' | 'dry-run') {
  return parsePolicy({
    version: 1,
    mode,
    projects: [PROJECT],
    regions: [REGION],
    defaults: { headroom: 1, max: 3 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
  });
}

async function storedPending(mode: 'enforce' | 'dry-run') {
  const {
    m,
    sim,
    store: base,
  } = onePoolWorld(4, [
    ['svc-a', 1, 3],
    ['svc-b', 1, 0],
  ]);
  const pending: OutboxEntry[] = [];
  const store: StateStore = {
    ...base,
    putOutbox: (project, entries) => {
      pending.push(...entries.filter((e) => e.state === 'pending-outcome'));
      return base.putOutbox(project, entries);
    },
  };
  const report = await reconcileReport(
    policy(mode),
    { ports: sim, store, clock: () => m.now },
    { runId: mode, deadlineMs: 60_000, writerId: 'me' },
  );
  return { report, pending };
}

describe('the planned events of a run', () => {
  it('are stored before the writes of a run that enforces', async () => {
    const { report, pending } = await storedPending('enforce');
    expect(report.plan?.changes.length).toBeGreaterThan(0);
    expect(pending.map((e) => e.alert.type)).toContain('rebalance.applied');
  });

  it('are not stored by a dry run, which writes nothing', async () => {
    const { report, pending } = await storedPending('dry-run');
    expect(report.plan?.changes.length).toBeGreaterThan(0);
    expect(report.writes.filter((w) => w.outcome === 'written')).toEqual([]);
    expect(pending).toEqual([]);
  });
});

/** An event of an earlier run, a minute before `nowMs`. */
function earlierEvent(nowMs: number, place: { region: string; service?: string }): Alert {
  return makeAlert(
    { at: new Date(nowMs - 60_000).toISOString(), runId: 'earlier' },
    { project: PROJECT, region: place.region, accelerator: 'nvidia-l4', zonalRedundancy: true },
    {
      type: 'rebalance.applied',
      status: 'event',
      severity: 'INFO',
      ...(place.service === undefined ? {} : { service: place.service }),
      summary: 'a cap changed',
      details: { writes: [] },
    },
  );
}

/** An event an earlier run stored in the outbox and did not send. */
async function leftByEarlierRun(
  store: ReturnType<typeof createMemoryStateStore>,
  nowMs: number,
  place: { region: string; service?: string },
): Promise<Alert> {
  const left = earlierEvent(nowMs, place);
  await store.putOutbox(PROJECT, [
    { alert: left, state: 'ready', storedAt: new Date(nowMs - 60_000).toISOString() },
  ]);
  return left;
}

describe('the outbox', () => {
  it("sends what earlier runs left before the run's own conditions", async () => {
    // Two services whose floors of 1 each exceed a quota of 1: pool.infeasible fires.
    const { m, sim, store } = onePoolWorld(1, [
      ['svc-a', 1, 1],
      ['svc-b', 1, 1],
    ]);
    await leftByEarlierRun(store, m.now, { region: REGION });
    const report = await reconcileReport(
      policy('enforce'),
      { ports: sim, store, clock: () => m.now },
      { runId: 'now', deadlineMs: 60_000, writerId: 'me' },
    );
    const sent = report.alerts.map((a) => [a.runId, a.status]);
    expect(sent).toEqual([
      ['earlier', 'event'],
      ...Array.from({ length: sent.length - 1 }, () => ['now', 'firing']),
    ]);
    expect(sent.length).toBeGreaterThan(1);
    expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
  });
});

describe('a stored event naming more than a Pub/Sub attribute holds', () => {
  it('is sent with its attributes and ordering key cut to fit, said in a WARNING', async () => {
    const { m, sim, store } = onePoolWorld(4, [
      ['svc-a', 1, 3],
      ['svc-b', 1, 0],
    ]);
    // A hand edit: Pub/Sub takes at most 1,024 bytes in an attribute value or an ordering key.
    const left = await leftByEarlierRun(store, m.now, {
      region: `${REGION}-${'r'.repeat(1100)}`,
      service: `svc-${'s'.repeat(2000)}`,
    });
    const messages: OutgoingMessage[] = [];
    const sink: AlertSink = {
      publish: async (batch) => {
        messages.push(...batch);
        return batch.map((b, i) => ({ messageId: String(i), orderingKey: b.orderingKey }));
      },
    };
    const log = memoryLogger();
    const report = await reconcileReport(
      policy('enforce'),
      { ports: sim, store, sink, log, clock: () => m.now },
      { runId: 'now', deadlineMs: 60_000, writerId: 'me' },
    );
    expect(report.outcome).toBe('ok');
    const sent = messages.find((x) => (x.data as Alert).id === left.id);
    expect(sent?.data).toEqual(left);
    expect(Buffer.byteLength(sent?.attributes['service'] ?? '')).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(sent?.attributes['region'] ?? '')).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(sent?.orderingKey ?? '')).toBeLessThanOrEqual(1024);
    const warned = log.lines.filter((l) => l.message.includes('names more than Pub/Sub takes'));
    expect(warned).toHaveLength(1);
    expect(warned[0]?.severity).toBe('WARNING');
    expect(warned[0]?.message).toMatch(
      /its region attribute \(1112 bytes\), its service attribute \(2004 bytes\), its ordering key \(\d+ bytes\) cut to fit/,
    );
    expect((await store.listOutbox(PROJECT)).entries).toEqual([]);
  });
});

describe('events an earlier version kept in its run records', () => {
  // Versions before the outbox kept the events a run could not publish in its run record
  // (`undelivered`, their JSON). A run moves them into the outbox, sends them, and records those
  // runs again without them.
  async function runWith(undelivered: (left: Alert) => string) {
    const { m, sim, store } = onePoolWorld(4, [
      ['svc-a', 1, 3],
      ['svc-b', 1, 0],
    ]);
    const at = new Date(m.now - 10 * 60_000).toISOString();
    const left = earlierEvent(m.now, { region: REGION });
    await store.recordRun(PROJECT, quietRun('old', at, { undelivered: undelivered(left) }));
    const log = memoryLogger();
    const report = await reconcileReport(
      policy('enforce'),
      { ports: sim, store, log, clock: () => m.now },
      { runId: 'now', deadlineMs: 60_000, writerId: 'me' },
    );
    return { report, store, log, left };
  }

  it('are sent, and the record kept without them', async () => {
    const { report, store, left } = await runWith((left) => JSON.stringify([left]));
    expect(report.outcome).toBe('ok');
    expect(report.alerts.map((a) => a.id)).toContain(left.id);
    const old = (await store.listRuns(PROJECT)).find((r) => r.runId === 'old');
    expect(old).toBeDefined();
    expect(old?.undelivered).toBeUndefined();
  });

  it('that cannot be read are left in their record, said in an ERROR line, and stop nothing', async () => {
    // A stored message the governor cannot read never stops the runs (docs/alerts.md): it used to
    // fail every run of the project, its alerts included, until the record was pruned.
    const { report, store, log } = await runWith(() => '[{"not": "an alert"}');
    expect(report.outcome).toBe('ok');
    expect(report.alerts.length).toBeGreaterThan(0);
    const old = (await store.listRuns(PROJECT)).find((r) => r.runId === 'old');
    expect(old?.undelivered).toBe('[{"not": "an alert"}');
    const errors = log.lines.filter((l) => l.severity === 'ERROR');
    expect(errors.map((l) => l.message)).toEqual([
      expect.stringMatching(
        /^outbox-project: the undelivered events run old kept in its record \(an earlier version's\) cannot be read and are left there, not published: .+; see docs\/alerts\.md$/,
      ) as unknown,
    ]);
  });
});
