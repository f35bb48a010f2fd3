import { readFileSync } from 'node:fs';
import pc from 'picocolors';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../src/core/alert.js';
import { plan } from '../../src/core/planner.js';
import { parsePolicyText } from '../../src/core/policy.js';
import { parseSnapshotText } from '../../src/core/snapshot.js';
import { syntheticFleet } from '../../bench/fleet.js';
import { ALIKE_LISTED } from '../../src/cli/alike.js';
import {
  alertStatus,
  renderAlerts,
  renderPlan,
  renderRunAlerts,
  renderStatus,
} from '../../src/cli/render.js';
import type { Plan } from '../../src/core/plan.js';
import { memoryLogger, textLogger } from '../../src/log.js';
import { governAll, POOL, snapshotService } from '../support/fixtures.js';

/** What `governor plan` and `governor apply` print, on the example snapshot and policy. */

const c = pc.createColors(false);
const policy = parsePolicyText(readFileSync('examples/policy.yaml', 'utf8'), 'policy');
const snapshot = parseSnapshotText(readFileSync('examples/snapshot.json', 'utf8'), 'snapshot');
const result = plan(snapshot, policy, snapshot.takenAt);
const text = renderPlan(result, c);

function alert(over: Partial<Alert>): Alert {
  return {
    version: 1,
    id: 'a1',
    type: 'pool.pressure',
    status: 'firing',
    severity: 'WARNING',
    project: 'p',
    region: 'us-central1',
    accelerator: 'nvidia-l4',
    zonalRedundancy: true,
    service: null,
    summary: 'Demand is high',
    details: {},
    runId: 'r1',
    time: '2026-11-27T10:00:00.000Z',
    dedupKey: 'k1',
    ...over,
  };
}

describe('the plan, for people', () => {
  it('shows notes from elsewhere on one line, without their control characters', () => {
    // A note may quote an error of several lines from Google, or anything from a snapshot file.
    const noted = parseSnapshotText(
      JSON.stringify({
        ...snapshot,
        services: snapshot.services.map((s) =>
          s.name === 'image-tagger' ? { ...s, usageNote: 'read failed:\n\u001b[2Jgone' } : s,
        ),
        pools: snapshot.pools.map((p) => ({ ...p, quotaSource: 'x\u001b[31m' })),
      }),
      'snapshot',
    );
    const out = renderPlan(plan(noted, policy, noted.takenAt), c);
    expect(out).toContain('usage unknown (read failed: [2Jgone)');
    // No control character but the newlines between lines.
    expect(out.replaceAll('\n', '')).not.toMatch(/\p{Cc}/u);
  });

  it("shows a snapshot file's text on one line in every kind of row and pool line", () => {
    // A service's maxNote reaches the reason of a changed row and of an unmanaged one; a pool's
    // quotaSource its quota line when the quota is unknown; its budgetUnknown its note.
    const escape = 'a\n\u001b[2J\u009b31mb';
    const edited = (edit: (doc: typeof snapshot) => void) => {
      const doc = structuredClone(snapshot);
      edit(doc);
      const s = parseSnapshotText(JSON.stringify(doc), 'snapshot');
      return renderPlan(plan(s, policy, s.takenAt), c);
    };
    const noted = edited((doc) => {
      for (const s of doc.services)
        if (s.name === 'llm-chat' || s.name === 'render-thumbs') s.maxNote = escape;
      for (const p of doc.pools)
        if (!p.zonalRedundancy) Object.assign(p, { quota: null, quotaSource: escape });
    });
    expect(noted).toMatch(/^ {2}~ llm-chat .*→.* a \[2J 31mb; /m);
    expect(noted).toMatch(/^ {2}= render-thumbs .* a \[2J 31mb; /m);
    expect(noted).toContain('quota unknown (a [2J 31mb) · reserve');
    const unknown = edited((doc) => {
      for (const p of doc.pools) p.budgetUnknown = escape;
    });
    expect(unknown).toMatch(/^ {2}budget unknown \(a \[2J 31mb\)/m);
    for (const out of [noted, unknown]) expect(out.replaceAll('\n', '')).not.toMatch(/\p{Cc}/u);
  });

  it('renders a plan of hundreds of thousands of services and alerts', () => {
    // Widths were measured with Math.max(...rows): past some 120,000 arguments (as the stack
    // allows) that overflowed the stack, and `governor plan` on a large snapshot failed with
    // "unexpected failure".
    const one = result.services[0]!;
    const many = {
      ...result,
      services: Array.from({ length: 600_000 }, (_, i) => ({ ...one, name: `s-${i}` })),
      alerts: Array.from({ length: 200_000 }, () => alert({})),
    };
    const out = renderPlan(many, c);
    expect(out).toMatch(/^ {2}. s-599999 /m);
    expect(out).toContain('Alerts (200000):');
    // A hang guard, not a bound: 800,000 rows take a few seconds, over 20 on a loaded 2-core CI.
  }, 120_000);

  it("shows each service's priority and weight beside its cap", () => {
    expect(text).toMatch(/^ {4}service +priority +weight +cap$/m);
    // llm-chat: priority 10, weight 3 in examples/policy.yaml; raised.
    expect(text).toMatch(/^ {2}~ llm-chat +10 +3 +3 → 5 +demand 5/m);
    // An unmanaged service has neither.
    expect(text).toMatch(/^ {2}= render-thumbs +– +– +1 +unmanaged/m);
  });

  it('says how much of a pool\'s use is known: a lower bound when part of it is, "?" when none is', () => {
    const blind = (names: readonly string[]) =>
      parseSnapshotText(
        JSON.stringify({
          ...snapshot,
          services: snapshot.services.map((s) =>
            names.includes(s.name) ? { ...s, usage: null, usageNote: 'metrics are behind' } : s,
          ),
        }),
        'snapshot',
      );
    // The example's pressured pool: one of its 4 governed services has no usage (stale).
    expect(renderStatus(result, c)).toContain('in use ≥ 4 (1 of 4 unknown)');
    // Fully known: the number alone, as before.
    expect(renderStatus(result, c)).toMatch(/ · in use 1 · /);
    const all = plan(blind(snapshot.services.map((s) => s.name)), policy, snapshot.takenAt);
    expect(renderStatus(all, c)).toContain('in use ? (usage unknown)');
    expect(renderPlan(all, c)).toContain('in use ? (usage unknown)');
    expect(renderStatus(all, c)).not.toMatch(/ · in use \d/);
  });

  it('lists what the unmanaged GPUs are', () => {
    expect(text).toContain('unmanaged 2 (service render-thumbs: 1, worker pool encoder: 1)');
    const pool = result.pools.find((p) => p.zonalRedundancy);
    expect(pool?.unmanaged).toEqual([
      { source: 'service render-thumbs', gpus: 1 },
      { source: 'worker pool encoder', gpus: 1 },
    ]);
  });

  it("is the README's example, line for line", () => {
    const readme = readFileSync('README.md', 'utf8');
    const example =
      /Example \(abridged, `governor plan --policy examples\/policy\.yaml --snapshot examples\/snapshot\.json`\):\n\n```\n([\s\S]*?)```/.exec(
        readme,
      )?.[1];
    expect(example).toBeDefined();
    const lines = text.split('\n');
    for (const line of (example ?? '').split('\n').filter((l) => l.trim() !== ''))
      expect(lines).toContain(line);
  });

  it('leaves the alerts out when asked (a run prints what it published instead)', () => {
    expect(text).toMatch(/^Alerts \(\d+\):$/m);
    expect(renderPlan(result, c, { alerts: false })).not.toContain('Alerts');
  });
});

describe('plan and status of a large fleet', () => {
  // 3,000 services in 12 pools (bench/fleet.ts), at most 50 changes a run: 1,760 services with a
  // problem (short of their demand, usage unknown), the rest unchanged, unmanaged or deferred.
  // Before, the plan printed 3,987 lines and the status 3,049, one per service.
  const fleet = syntheticFleet(3_000, 12, 1);
  const big: Plan = plan(
    fleet.snapshot,
    { ...fleet.policy, limits: { ...fleet.policy.limits, maxChangesPerRun: 50 } },
    '2026-11-27T15:00:00.000Z',
  );
  const key = (s: { project: string; region: string; name: string }) =>
    `${s.project}/${s.region}/${s.name}`;
  const alertedAbout = new Set(
    big.alerts.flatMap((a) => (a.service ? [`${a.project}/${a.region ?? ''}/${a.service}`] : [])),
  );
  /** The services listed on a row of their own: the name after the row's mark. */
  const listed = (text: string, row: RegExp) =>
    [...text.matchAll(row)].map((m) => m[1] ?? '').filter((n) => n !== '');

  it('lists every change and every service with a problem, and counts the rest per pool', () => {
    const text = renderPlan(big, c);
    const lines = text.split('\n');
    expect(lines.length).toBeLessThan(2_000);
    const rows = new Set(listed(text, /^ {2}[~= ] ([^\s…]\S*) +(?:-?\d+|–) /gm));
    for (const ch of big.changes) expect(rows).toContain(ch.name);
    const problems = big.services.filter(
      (s) =>
        alertedAbout.has(key(s)) ||
        s.why.shortBy !== undefined ||
        s.why.basis.kind === 'usage-unknown',
    );
    expect(problems.length).toBeGreaterThan(100);
    for (const s of problems) expect(rows).toContain(s.name);
    // The rest, counted: each pool's rows listed plus its counted ones are its services.
    const counted = [...text.matchAll(/^ {2}[= ] … (\d+) /gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(counted).toBeGreaterThan(1_000);
    expect(rows.size + counted).toBe(big.services.length);
    expect(text).toMatch(
      /^ {4}… \d+ unchanged, with nothing to report \(\S+, \S+, \S+, \S+, \S+ and \d+ more\)$/m,
    );
    expect(text).toMatch(/^ {2}= … \d+ unmanaged, counted at their caps \(/m);
    expect(text).toMatch(
      /^ {4}… \d+ deferred, limits\.maxChangesPerRun \(50\) reached: for a later run \(\S+ \d+ → \d+, /m,
    );
    expect(lines).toContain(
      `${counted} services with nothing to report are counted, not listed: governor plan --all lists each (--json too).`,
    );
    // Alerts about services alike are one line each (their services are on their rows); the
    // pools' alerts are each listed.
    const starved = big.alerts.filter((a) => a.type === 'service.starved');
    expect(starved.length).toBeGreaterThan(ALIKE_LISTED);
    expect(text).toMatch(new RegExp(`service\\.starved +${starved.length} services \\(`));
    for (const a of big.alerts.filter((x) => x.service === null)) expect(text).toContain(a.summary);
  });

  it("names a pool's first few unmanaged holders past ten, as its counted rows do; --all each", () => {
    // 250 unmanaged services in a pool: their rows are one counted line, and the pool's line
    // listed all 250 again (6,000 characters).
    const pool = big.pools.find((p) => p.unmanaged.length > ALIKE_LISTED);
    expect(pool).toBeDefined();
    const [first] = pool?.unmanaged ?? [];
    const more = (pool?.unmanaged.length ?? 0) - 5;
    for (const [out, all] of [
      [renderStatus(big, c), renderStatus(big, c, { all: true })],
      [renderPlan(big, c), renderPlan(big, c, { all: true })],
    ] as const) {
      const line = out.split('\n').find((l) => l.includes(`unmanaged ${pool?.unmanagedGpus} (`));
      expect(line).toContain(`(${first?.source}: ${first?.gpus}, `);
      expect(line).toContain(` and ${more} more) · `);
      expect(line?.length).toBeLessThan(400);
      for (const u of pool?.unmanaged ?? []) expect(all).toContain(`${u.source}: ${u.gpus}`);
    }
  });

  it('the plan line counts each governed service once: raised, lowered, unchanged or deferred', () => {
    const m = /^Plan: (\d+) to raise, (\d+) to lower, (\d+) unchanged, (\d+) deferred\./m.exec(
      renderPlan(big, c),
    );
    const [raise = NaN, lower = NaN, same = NaN, deferred = NaN] = (m?.slice(1) ?? []).map(Number);
    expect(deferred).toBe(big.deferred.length);
    expect(deferred).toBeGreaterThan(0);
    expect(raise + lower).toBe(big.changes.length);
    expect(raise + lower + same + deferred).toBe(big.services.filter((s) => s.managed).length);
  });

  it("apply's list of the alerts it sent counts alike ones of services on one line", () => {
    const starved = big.alerts.filter((a) => a.type === 'service.starved');
    const sent = renderRunAlerts(big.alerts, c, 'projects/p/topics/alerts');
    expect(sent[0]).toBe(`Alerts (${big.alerts.length}, published to projects/p/topics/alerts):`);
    expect(sent.length).toBeLessThan(big.alerts.length / 10);
    expect(sent.join('\n')).toMatch(
      new RegExp(
        `^ {2}WARNING +firing +service\\.starved +${starved.length} services \\(\\S+, \\S+, \\S+, \\S+, \\S+ and ${starved.length - 5} more\\): each a message of its own on the topic$`,
        'm',
      ),
    );
    for (const a of big.alerts.filter((x) => x.service === null))
      expect(sent.join('\n')).toContain(a.summary);
    const unsent = renderRunAlerts(big.alerts, c, null);
    expect(unsent[0]).toBe(
      `Alerts (${big.alerts.length}, not published: the policy sets no alerts.topic):`,
    );
    expect(unsent.join('\n')).toContain(': governor plan --all lists each');
    // A few alerts are each listed, as before.
    const few = big.alerts.filter((a) => a.type !== 'service.starved').slice(0, 3);
    expect(renderRunAlerts(few, c, 'projects/p/topics/alerts').slice(1)).toEqual(
      renderAlerts(few, c, '', { status: true }).slice(1),
    );
  });

  it('with --all, lists every service and alert as before', () => {
    const text = renderPlan(big, c, { all: true });
    expect(new Set(listed(text, /^ {2}[~= ] ([^\s…]\S*) +(?:-?\d+|–) /gm)).size).toBe(
      big.services.length,
    );
    for (const a of big.alerts) expect(text).toContain(a.summary);
    expect(text).not.toContain('counted, not listed');
    const status = renderStatus(big, c, { all: true });
    expect(status.split('\n').length).toBeGreaterThan(big.services.length);
  });

  it('the status lists what changes or lacks, and counts the rest', () => {
    const text = renderStatus(big, c);
    expect(text.split('\n').length).toBeLessThan(1_900);
    const rows = new Set(listed(text, /^ {2}(\S+) +(?:\d+|\?) +(?:\d+|\?) /gm));
    for (const s of big.services.filter((x) => x.to !== x.from || alertedAbout.has(key(x))))
      expect(rows).toContain(s.name);
    const counted = [...text.matchAll(/^ {2}… (\d+) /gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(rows.size + counted).toBe(big.services.length);
    expect(text).toContain(
      `${counted} services with nothing to report are counted, not listed: governor status --all lists each (--json too).`,
    );
  });

  it('lists an unchanged service left below its floor, or with a last change dated later than now', () => {
    // More than ALIKE_LISTED unchanged services at their use: the quiet ones are counted, and
    // each service with something to tell keeps its row though its cap does not move.
    const at = '2026-11-27T15:00:00.000Z';
    const quiet = Array.from({ length: ALIKE_LISTED + 2 }, (_, i) =>
      snapshotService(`quiet-${i}`, 1, { current: 1, peak: 1 }),
    );
    const rowOf = (text: string, name: string) =>
      text.split('\n').find((l) => l.startsWith(`    ${name} `));
    // A raise stamped an hour from now: it starts no scale-down delay, and the row says so. The
    // quota holds every cap as it is.
    const future = snapshotService(
      'future',
      1,
      { current: 1, peak: 1 },
      { lastChangedAt: '2026-11-27T16:00:00.000Z' },
    );
    const stamped = plan(
      {
        version: 1,
        takenAt: at,
        pools: [{ ...POOL, quota: ALIKE_LISTED + 3 }],
        services: [...quiet, future],
        unmanagedUsage: [],
      },
      governAll({ defaults: { headroom: 0 } }),
      at,
    );
    expect(stamped.services.find((s) => s.name === 'future')?.why.futureStamps).toBeDefined();
    const stampedText = renderPlan(stamped, c);
    expect(stampedText).toContain('counted, not listed');
    expect(rowOf(stampedText, 'future')).toContain('later than now');
    // Floors of 12 + 5 over a budget of 12: low stays at 1, below its floor of 5.
    const low = snapshotService('low', 1, { current: 1, peak: 1 });
    const infeasible = plan(
      {
        version: 1,
        takenAt: at,
        pools: [{ ...POOL, quota: 12 }],
        services: [...quiet, low],
        unmanagedUsage: [],
      },
      governAll({
        defaults: { headroom: 0 },
        services: [{ match: { name: 'low' }, min: 5 }, { match: {} }],
      }),
      at,
    );
    const lowRow = infeasible.services.find((s) => s.name === 'low');
    expect([lowRow?.from, lowRow?.to]).toEqual([1, 1]);
    const infeasibleText = renderPlan(infeasible, c);
    expect(infeasibleText).toContain('counted, not listed');
    expect(rowOf(infeasibleText, 'low')).toContain('left at 1, below its floor 5');
  });

  it('a small fleet prints every row, exactly as with --all', () => {
    expect(text).toBe(renderPlan(result, c, { all: true }));
    expect(renderStatus(result, c)).toBe(renderStatus(result, c, { all: true }));
    expect(text).not.toContain('counted, not listed');
  });
});

describe('alerts, as alerts', () => {
  const alerts = [
    alert({ severity: 'ERROR', type: 'service.misconfigured', summary: 'llm-code breaks 2 rules' }),
    alert({ details: { renotify: true, firingSince: '2026-11-27T06:00:00.000Z' } }),
    alert({ status: 'resolved', type: 'pool.over-budget', summary: 'Resolved: caps over' }),
    alert({
      status: 'event',
      severity: 'INFO',
      type: 'rebalance.applied',
      summary: '3 caps\nchanged',
    }),
  ];

  it('puts every column at the width of its longest entry, the longest alert type too', () => {
    const lines = renderAlerts(alerts, c, 'Alerts (4):', { status: true });
    expect(lines).toEqual([
      'Alerts (4):',
      '  ERROR    firing        service.misconfigured  llm-code breaks 2 rules',
      '  WARNING  still firing  pool.pressure          Demand is high',
      '  WARNING  resolved      pool.over-budget       Resolved: caps over',
      '  INFO     event         rebalance.applied      3 caps changed',
    ]);
  });

  it('says "still firing" for a re-notification', () => {
    expect(alertStatus(alerts[1] as Alert)).toBe('still firing');
    expect(alertStatus(alerts[0] as Alert)).toBe('firing');
  });

  it('are not log lines: the text logger leaves them out, so they are not printed twice', () => {
    const out: string[] = [];
    const log = textLogger({ write: (s: string) => out.push(s) });
    log.log('ERROR', 'alert service.misconfigured firing: llm-code breaks 2 rules', { alert: 'k' });
    log.log('ERROR', 'the store is unreachable');
    expect(out).toEqual(['error: the store is unreachable\n']);
    const kept: string[] = [];
    textLogger({ write: (s: string) => kept.push(s) }, 'INFO', { alerts: true }).log(
      'ERROR',
      'alert x firing: y',
      { alert: 'k' },
    );
    expect(kept).toEqual(['alert x firing: y\n']);
    // An alert's summary may come back from the state store as anyone wrote it: one line.
    const hostile: string[] = [];
    textLogger({ write: (s: string) => hostile.push(s) }, 'INFO', { alerts: true }).log(
      'ERROR',
      'alert x firing: y\u001b]0;title\u0007\nerror: forged',
      { alert: 'k' },
    );
    expect(hostile).toEqual(['alert x firing: y ]0;title error: forged\n']);
    // The structured logger of the function keeps them, with the alert's severity.
    const memory = memoryLogger();
    memory.log('ERROR', 'alert x firing: y', { alert: 'k' });
    expect(memory.lines[0]?.severity).toBe('ERROR');
  });
});

describe('the status, for people', () => {
  it("gives each service's GPUs per instance, its figures being instances where the pool's are GPUs", () => {
    // Before: a pool of "caps 12 · in use ≥ 7 · demand 15 GPUs" over rows summing to caps 9,
    // in use 4 and demand 10, with nothing saying those were instances of 2 GPUs and of 1.
    const doubled = parseSnapshotText(
      JSON.stringify({
        ...snapshot,
        services: snapshot.services.map((s) =>
          s.name === 'llm-chat' ? { ...s, gpusPerInstance: 2 } : s,
        ),
      }),
      'snapshot',
    );
    const status = renderStatus(plan(doubled, policy, doubled.takenAt), c, { all: true });
    expect(status).toMatch(/caps 12 · in use ≥ 7 \(1 of 4 unknown\) · demand 15 GPUs/);
    expect(status).toMatch(
      /service\s+in use\s+peak demand\s+cap\s+plan\s+× GPUs\s+governed\s+\(instances\)/,
    );
    expect(status).toMatch(/\n {2}llm-chat\s+3\s+3\s+5\s+3\s+=\s+× 2\s+yes\n/);
    expect(status).toMatch(/\n {2}llm-summarize\s+1\s+1\s+2\s+2\s+=\s+× 1\s+yes\n/);
  });

  it('says what the snapshot holds: a quota of zero, use unknown beside unmanaged use, who is governed', () => {
    // The pool without zonal redundancy has a quota of 0 from Cloud Quotas; in the other, every
    // governed service's usage is unknown, the unmanaged render-thumbs' is known.
    const edited = parseSnapshotText(
      JSON.stringify({
        ...snapshot,
        pools: snapshot.pools.map((p) => (p.zonalRedundancy ? p : { ...p, quota: 0 })),
        services: snapshot.services.map((s) =>
          s.zonalRedundancy && s.name !== 'render-thumbs'
            ? { ...s, usage: null, usageNote: 'metrics are behind' }
            : s,
        ),
      }),
      'snapshot',
    );
    const out = renderStatus(plan(edited, policy, edited.takenAt), c);
    expect(out).toMatch(/^ {2}quota 0 · reserve 0 · unmanaged 0 · budget 0 · caps 4 · /m);
    expect(out).toMatch(/^ {2}quota 12 · .* · in use \? \(usage unknown\) · demand /m);
    expect(out).toMatch(/^ {2}render-thumbs +1 +1 +\? +1 += +× 1 +no$/m);
    expect(out).toMatch(/^ {2}llm-chat +\? +\? +\? +3 +\S+ +× 1 +yes$/m);
  });

  it("pads no row to a very long name: that name's row alone is longer", () => {
    // A snapshot file's names have no length limit: one of 30 MB was padded onto each of its
    // pool's rows, and `governor status` and `plan` failed with "Invalid string length".
    const long = 'x'.repeat(5_000);
    const named = {
      ...result,
      services: result.services.map((s) => (s.name === 'llm-chat' ? { ...s, name: long } : s)),
    };
    for (const out of [renderStatus(named, c), renderPlan(named, c)]) {
      const lines = out.split('\n');
      expect(lines.filter((l) => l.includes(long))).toHaveLength(1);
      const others = lines.filter((l) => !l.includes(long) && !l.includes('xxxxx'));
      expect(Math.max(...others.map((l) => l.length))).toBeLessThan(400);
      expect(lines.find((l) => /^ +llm-summarize /.test(l))?.trimEnd()).toMatch(
        /^ +llm-summarize {2,}\S/,
      );
    }
  });

  it('shows names from an observation on one line, without their control characters', () => {
    // A live observation's names are not checked as a snapshot file's are: a service, worker
    // pool or region named with a terminal escape reached the screen as it was.
    const escape = 'a\n\u001b[2J\u009b31mb';
    const named: Plan = {
      ...result,
      pools: result.pools.map((p) => ({
        ...p,
        region: `us${escape}`,
        unmanaged: p.unmanaged.map((u) => ({ ...u, source: `worker pool ${escape}` })),
      })),
      services: result.services.map((s) => ({
        ...s,
        region: `us${escape}`,
        name: `${s.name}${escape}`,
      })),
    };
    for (const out of [renderStatus(named, c), renderPlan(named, c)]) {
      expect(out).toContain('llm-chata [2J 31mb');
      expect(out).toContain('worker pool a [2J 31mb: 1');
      expect(out).toContain('my-project/usa [2J 31mb nvidia-l4');
      expect(out.replaceAll('\n', '')).not.toMatch(/\p{Cc}/u);
    }
  });
});
