import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { plan } from '../../src/core/planner.js';
import { parsePolicyText } from '../../src/core/policy.js';
import { Plan } from '../../src/core/plan.js';
import {
  oneShapeService,
  parseSnapshot,
  parseSnapshotText,
  SnapshotService,
  withStaleUsageUnknown,
  withUnreadListingsUnknown,
  type Snapshot,
} from '../../src/core/snapshot.js';
import { InputError } from '../../src/core/errors.js';
import { snapshotService } from '../support/fixtures.js';

describe('snapshot', () => {
  it('refuses a __proto__ label key with its path rather than dropping it', () => {
    const example = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      services: { labels?: Record<string, string> }[];
    };
    const text = JSON.stringify(example).replace('"labels":{', '"labels":{"__proto__":"x",');
    expect(text).toContain('"__proto__":"x"');
    let faults: string[] = [];
    try {
      parseSnapshotText(text);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      faults = e.faults.map((f) => `${f.path}: ${f.message}`);
    }
    expect(faults.join('\n')).toMatch(
      /^services\[\d+\]\.labels\.__proto__: "__proto__" cannot be/m,
    );
  });

  it('names the key an unknown key is a typo of, as a policy does', () => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as Record<
      string,
      unknown
    > & { services: Record<string, unknown>[] };
    doc.services[0]!['maxInstance'] = doc.services[0]!['maxInstances'];
    delete doc.services[0]!['maxInstances'];
    doc['unmanagedUsge'] = [];
    expect(faultsOf(doc)).toEqual([
      'services[0].maxInstances: missing (expected number)',
      'services[0].maxInstance: unknown key (did you mean "maxInstances"?)',
      'unmanagedUsge: unknown key (did you mean "unmanagedUsage"?)',
    ]);
  });

  it('refuses a service listed twice, in one pool or in two, and a pool listed twice, naming both', () => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      pools: Record<string, unknown>[];
      services: Record<string, unknown>[];
    };
    // A Cloud Run service is one resource of its project and region: one GPU type, one pool.
    doc.services.push({ ...doc.services[0]! }, { ...doc.services[1]!, zonalRedundancy: false });
    doc.pools.push({ ...doc.pools[1]!, quota: 40 });
    expect(faultsOf(doc)).toEqual([
      'pools[2]: same pool as pools[1] (my-project/us-central1/nvidia-l4/no-zonal)',
      'services[7]: same service as services[0] (my-project/us-central1/llm-chat)',
      'services[8]: same service as services[1] (my-project/us-central1/llm-summarize)',
    ]);
  });

  it('refuses a name with a control character (a terminal escape), naming its path', () => {
    const example = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      services: { name: string }[];
      unmanagedUsage: { source: string }[];
    };
    example.services[1]!.name = 'llm\u001b]0;pwned\u0007';
    example.unmanagedUsage[0]!.source = 'job/a\nb';
    let faults: string[] = [];
    try {
      parseSnapshotText(JSON.stringify(example));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      faults = e.faults.map((f) => `${f.path}: ${f.message}`);
    }
    expect(faults).toEqual([
      'services[1].name: must be one line of text without control characters',
      'unmanagedUsage[0].source: must be one line of text without control characters',
    ]);
  });
});

/** The per-minute usage evidence is optional: snapshots written before it still plan. */

/** The example snapshot as a version written before per-minute counts: none of them. */
/** The faults parseSnapshot names in a document, as `path: message`; none when it parses. */
function faultsOf(doc: unknown): string[] {
  try {
    parseSnapshot(doc);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return e.faults.map((f) => `${f.path}: ${f.message}`);
  }
  return [];
}

const example = () => {
  const snapshot = parseSnapshotText(readFileSync('examples/snapshot.json', 'utf8'));
  for (const s of snapshot.services) if (s.usage) delete s.usage.perMinute;
  return snapshot;
};
const policy = () => parsePolicyText(readFileSync('examples/policy.yaml', 'utf8'));

describe('per-minute usage in the snapshot', () => {
  it('is absent from a snapshot written before it, which still validates and plans', () => {
    const old = example();
    expect(old.services.some((s) => s.usage !== null && 'perMinute' in s.usage)).toBe(false);
    const planned = plan(old, policy(), old.takenAt);
    expect(planned.services.length).toBe(old.services.length);
  });

  it('carries instances, served and refused requests a minute, and the planner reads the refusals', () => {
    const old = example();
    const withMinutes = (refused: number[]) =>
      parseSnapshot({
        ...old,
        services: old.services.map((s) =>
          s.usage === null
            ? s
            : {
                ...s,
                usage: {
                  ...s.usage,
                  perMinute: {
                    start: '2026-11-27T14:55:00Z',
                    inUse: [s.usage.peak, s.usage.peak, s.usage.current],
                    served: [120, 160, 90],
                    refused,
                  },
                },
              },
        ),
      });
    const refusing = withMinutes([0, 40, 0]);
    const first = refusing.services.find((s) => s.usage !== null)?.usage;
    expect(first?.perMinute?.refused).toEqual([0, 40, 0]);
    const at = old.takenAt;
    const calm = plan(withMinutes([0, 0, 0]), policy(), at).services;
    const refused = plan(refusing, policy(), at).services;
    const before = plan(old, policy(), at).services;
    for (const [i, row] of refused.entries()) {
      if (row.demand === null || !row.managed) continue;
      // No 429s: the same demand as without the minutes. 429s: more, and the reason says so.
      expect(calm[i]?.demand).toBe(before[i]?.demand);
      expect(calm[i]?.reason).toContain('no 429s in the last 10 min');
      expect(row.demand).toBeGreaterThan(calm[i]?.demand ?? Infinity);
      expect(row.reason).toContain('refused 1 min of the last 10; wanted');
    }
  });

  it('rejects counts that do not line up with the minutes of inUse, naming the path', () => {
    const old = example();
    const broken = {
      ...old,
      services: [
        {
          ...old.services[0],
          usage: {
            current: 1,
            peak: 1,
            sampledAt: '2026-11-27T14:57:00Z',
            perMinute: { start: '2026-11-27T14:55:00Z', inUse: [1, 1, 1], refused: [0, 2] },
          },
        },
      ],
    };
    let faults: unknown;
    try {
      parseSnapshot(broken);
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      faults = (e as InputError).faults;
    }
    expect(faults).toEqual([
      {
        path: 'services[0].usage.perMinute.refused',
        message: 'has 2 entries, inUse has 3: one a minute each',
      },
    ]);
  });
});

describe('times in the snapshot', () => {
  /** The faults of the example snapshot with its first measured service's usage changed. */
  const faultsWith = (usage: Record<string, unknown>): string[] => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      takenAt: string;
      services: { usage: Record<string, unknown> | null }[];
    };
    expect(doc.takenAt).toBe('2026-11-27T15:00:00Z');
    const first = doc.services.find((s) => s.usage !== null);
    if (!first?.usage) throw new Error('the example has no measured service');
    Object.assign(first.usage, usage);
    return faultsOf(doc);
  };

  it('refuses usage sampled after the snapshot was taken, naming the path and both times', () => {
    // A minute dated after takenAt was not observed by then: a wrong clock or a hand edit. Read
    // as evidence, its 429s would move GPUs on the strength of a time that has not come.
    expect(
      faultsWith({
        sampledAt: '2026-11-27T14:57:00Z',
        perMinute: { start: '2026-11-27T14:59:00Z', inUse: [3, 3, 3, 3], refused: [0, 9, 9, 9] },
      }),
    ).toEqual([
      "services[0].usage.perMinute: its newest minute, 2026-11-27T15:02:00.000Z, is after the snapshot's takenAt, 2026-11-27T15:00:00.000Z: a snapshot holds only what was observed by then",
    ]);
    expect(faultsWith({ sampledAt: '2026-11-28T15:00:00Z' })).toEqual([
      "services[0].usage.sampledAt: 2026-11-28T15:00:00.000Z is after the snapshot's takenAt, 2026-11-27T15:00:00.000Z: a snapshot holds only what was observed by then",
    ]);
  });

  it("refuses a revision's own max below the max in force, or beside maxNote or maxUnset", () => {
    const faultsWithService = (more: Record<string, unknown>): string[] => {
      const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
        services: Record<string, unknown>[];
      };
      const first = doc.services[0];
      if (!first) throw new Error('the example has no service');
      Object.assign(first, { maxInstances: 3 }, more);
      return faultsOf(doc);
    };
    expect(faultsWithService({ revisionMaxInstances: 3 })).toEqual([]);
    expect(faultsWithService({ revisionMaxInstances: 2 })).toEqual([
      "services[0].maxInstances: 3 is above its revisionMaxInstances, 2: the max in force is never above the serving revision's own",
    ]);
    expect(faultsWithService({ revisionMaxInstances: 0 })).toEqual([
      'services[0].revisionMaxInstances: Too small: expected number to be >=1',
    ]);
    expect(faultsWithService({ revisionMaxInstances: 4, maxUnset: true })).toEqual([
      'services[0].revisionMaxInstances: is a max its revision sets, maxUnset says neither level sets one: not both',
    ]);
    expect(faultsWithService({ revisionMaxInstances: 4, maxNote: 'split' })).toEqual([
      'services[0].revisionMaxInstances: is the max of a latest revision that serves, maxNote tells of one that does not: not both',
    ]);
  });

  it('refuses a time whose UTC form is past year 9999 or before year 0000, naming its path', () => {
    // 9999-12-31T23:59:59-12:00 is +010000-01-01T11:59:59Z: planned, the plan's `at` and every
    // alert's `time` were written with a six-digit year, which no ISO 8601 reader takes.
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      takenAt: string;
    };
    for (const takenAt of ['9999-12-31T23:59:59-12:00', '0000-01-01T00:30:00+01:00']) {
      doc.takenAt = takenAt;
      expect(faultsOf(doc), takenAt).toEqual([
        expect.stringMatching(/^takenAt: .*0000-01-01T00:00:00Z.*9999-12-31T23:59:59\.999Z/),
      ]);
    }
    expect(faultsWith({ sampledAt: '0000-01-01T00:00:00+00:01' })).toEqual([
      expect.stringMatching(/^services\[0\]\.usage\.sampledAt: .*0000-01-01T00:00:00Z/),
    ]);
  });

  it('tells a time that is no ISO 8601 time with its offset as that alone, not also as out of range', () => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as { takenAt: string };
    for (const takenAt of ['yesterday', '2016-12-31T23:59:60Z', '2026-11-27T15:00:00']) {
      doc.takenAt = takenAt;
      expect(faultsOf(doc), takenAt).toEqual(['takenAt: Invalid ISO datetime']);
    }
    expect(faultsWith({ sampledAt: '2026-11-27 14:57' })).toEqual([
      'services[0].usage.sampledAt: Invalid ISO datetime',
    ]);
  });

  it('accepts a newest minute up to the clock skew allowed after takenAt, and one at it', () => {
    expect(faultsWith({ perMinute: { start: '2026-11-27T14:59:00Z', inUse: [3, 3, 3] } })).toEqual(
      [],
    );
    expect(faultsWith({ sampledAt: '2026-11-27T15:00:00Z' })).toEqual([]);
    expect(faultsWith({ sampledAt: '2026-11-27T15:01:00Z' })).toEqual([]);
    expect(faultsWith({ sampledAt: '2026-11-27T15:01:00.001Z' })).toEqual([
      expect.stringMatching(/^services\[0\]\.usage\.sampledAt: 2026-11-27T15:01:00\.001Z is after/),
    ]);
  });
});

describe('usage older than staleAfter at takenAt', () => {
  it('reads as unknown past staleAfter, with a note naming the sample, and is kept up to it', () => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      services: { name: string; usage: { sampledAt: string } | null }[];
    };
    const sampled = (at: string) => {
      const copy = structuredClone(doc);
      const svc = copy.services.find((s) => s.name === 'embeddings');
      if (!svc?.usage) throw new Error('the example has no measured embeddings');
      svc.usage.sampledAt = at;
      const out = withStaleUsageUnknown(parseSnapshot(copy), 10 * 60_000);
      return out.services.find((s) => s.name === 'embeddings');
    };
    expect(sampled('2026-11-27T14:50:00Z')?.usage).not.toBeNull();
    expect(sampled('2026-11-27T14:49:59.999Z')).toMatchObject({
      usage: null,
      usageNote:
        "latest sample 2026-11-27T14:49:59.999Z is older than 10m at the snapshot's takenAt",
    });
    const fresh = parseSnapshot(structuredClone(doc));
    expect(withStaleUsageUnknown(fresh, 10 * 60_000)).toBe(fresh);
  });
});

describe("a pool's quota source", () => {
  it('is refused empty, which the plan printed as "quota 8 ()" where it means the snapshot', () => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      pools: { quotaSource?: string }[];
    };
    doc.pools[0]!.quotaSource = '';
    expect(faultsOf(doc)).toEqual([
      'pools[0].quotaSource: Too small: expected string to have >=1 characters',
    ]);
    delete doc.pools[0]!.quotaSource;
    expect(faultsOf(doc)).toEqual([]);
    const snapshot = parseSnapshot(doc);
    const p = plan(
      snapshot,
      parsePolicyText('version: 1\nprojects: [my-project]\n'),
      snapshot.takenAt,
    );
    expect(p.pools.map((x) => x.quotaSource)).toEqual(['cloudquotas', 'snapshot']);
  });
});

describe('numbers in the snapshot', () => {
  /** The example snapshot's counts: its first service (llm-chat) has per-minute usage. */
  interface Doc {
    services: {
      maxInstances: number;
      minInstances: number;
      usage: {
        current: number;
        peak: number;
        utilization?: number;
        perMinute: { inUse: number[]; served: number[]; refused: number[] };
      };
    }[];
    unmanagedUsage: { gpus: number }[];
  }
  const edited = (edit: (doc: Doc, chat: Doc['services'][number]) => void): Doc => {
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as Doc;
    edit(doc, doc.services[0]!);
    return doc;
  };

  it('refuses counts no Cloud Run service has, naming each path, rather than planning numbers the plan cannot hold', () => {
    const huge = Number.MAX_SAFE_INTEGER;
    const doc = edited((d, s) => {
      s.maxInstances = huge;
      s.minInstances = huge;
      s.usage.current = huge;
      s.usage.peak = huge;
      s.usage.perMinute.inUse[9] = huge;
      s.usage.perMinute.served[9] = huge;
      s.usage.perMinute.refused[8] = huge;
      d.unmanagedUsage[0]!.gpus = huge;
    });
    const faults = faultsOf(doc);
    for (const path of [
      'services[0].maxInstances',
      'services[0].minInstances',
      'services[0].usage.current',
      'services[0].usage.peak',
      'services[0].usage.perMinute.inUse[9]',
      'services[0].usage.perMinute.served[9]',
      'services[0].usage.perMinute.refused[8]',
      'unmanagedUsage[0].gpus',
    ]) {
      expect(faults.find((f) => f.startsWith(`${path}: `))).toMatch(/at most [\d,]+/);
    }
    expect(faults).toHaveLength(8);
  });

  it('at the largest counts it accepts, every figure of the plan is a safe integer, as the plan schema says', () => {
    const max = (set: (doc: Doc, value: number) => void): number => {
      // The largest value the parser accepts at `path`: found by asking it, not by reading the code.
      let lo = 0;
      let hi = Number.MAX_SAFE_INTEGER;
      while (lo < hi) {
        const mid = lo + Math.ceil((hi - lo) / 2);
        const doc = edited((d) => set(d, mid));
        if (faultsOf(doc).length === 0) lo = mid;
        else hi = mid - 1;
      }
      return lo;
    };
    const instances = max((d, v) => (d.services[0]!.usage.current = v));
    const requests = max((d, v) => (d.services[0]!.usage.perMinute.refused[9] = v));
    const gpus = max((d, v) => (d.unmanagedUsage[0]!.gpus = v));
    const doc = edited((d, s) => {
      s.maxInstances = instances;
      s.minInstances = 0;
      s.usage.current = instances;
      s.usage.peak = instances;
      s.usage.utilization = 1;
      // Rising three minutes running, the newest with one request served and the rest refused:
      // the most instances wanted the evidence can say, and its next step counted too.
      s.usage.perMinute.inUse = [0, 0, 0, 0, 0, 0, 0, 0, 1, instances];
      s.usage.perMinute.served = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
      s.usage.perMinute.refused = [0, 0, 0, 0, 0, 0, 0, 0, 0, requests];
      d.unmanagedUsage[0]!.gpus = gpus;
      for (const other of d.services.slice(1)) {
        other.maxInstances = instances;
        other.minInstances = instances;
      }
    });
    // The most headroom a policy may give (10: eleven times the base), and the lowest target
    // utilization of these it accepts (busy GPUs ÷ target: the lower, the more demand).
    const text = readFileSync('examples/policy.yaml', 'utf8').replaceAll(
      /headroom: [\d.]+/g,
      'headroom: 10',
    );
    const greedy = [1e-300, 1e-6, 0.001, 0.01, 0.05]
      .map((target) => text.replace(/targetUtilization: [\d.]+/, `targetUtilization: ${target}`))
      .map((t) => {
        try {
          return parsePolicyText(t);
        } catch (e) {
          if (e instanceof InputError) return null;
          throw e;
        }
      })
      .find((p) => p !== null);
    if (!greedy) throw new Error('no target utilization accepted');
    expect(text).toMatch(/targetUtilization: [\d.]+/);
    expect(greedy.defaults.targetUtilization).toBeLessThan(0.8);
    const snapshot = parseSnapshot(doc);
    const planned = plan(snapshot, greedy, snapshot.takenAt);
    const parsed = Plan.safeParse(JSON.parse(JSON.stringify(planned)));
    expect(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? []).toEqual([]);
    // The estimate did use the counts: llm-chat's demand is far above any quota.
    const chat = planned.services.find((s) => s.name === 'llm-chat');
    expect(chat?.demand).toBeGreaterThan(1_000_000);
  });
});

describe('a region whose worker pools or jobs could not be listed', () => {
  type Problem = NonNullable<Snapshot['problems']>[number];
  const unread = (region: string | null, subject: Problem['subject']): Problem => ({
    project: 'my-project',
    region,
    pool: null,
    subject,
    error: 'PERMISSION_DENIED',
  });

  it("marks each of its pools budget unknown in an observation's words, keeping what a pool says", () => {
    const snapshot = example();
    snapshot.pools[1]!.budgetUnknown = 'us-central1: as observed';
    snapshot.problems = [
      unread('us-central1', 'jobs'),
      unread('us-central1', 'worker-pools'),
      unread('europe-west4', 'jobs'),
      unread('us-central1', 'served-requests'),
    ];
    const out = withUnreadListingsUnknown(snapshot);
    expect(out.pools.map((p) => p.budgetUnknown)).toEqual([
      'us-central1: its worker pools could not be listed, its job executions could not be listed',
      'us-central1: as observed',
    ]);
    expect(snapshot.pools[0]!.budgetUnknown).toBeUndefined();
  });

  it('adds a pool of its services missing from `pools` with its quota unknown, and reads a region of null as every region', () => {
    const snapshot = example();
    snapshot.pools = snapshot.pools.filter((p) => p.zonalRedundancy);
    snapshot.problems = [unread(null, 'worker-pools')];
    const out = withUnreadListingsUnknown(snapshot);
    expect(out.pools).toEqual([
      { ...snapshot.pools[0], budgetUnknown: 'us-central1: its worker pools could not be listed' },
      {
        project: 'my-project',
        region: 'us-central1',
        accelerator: 'nvidia-l4',
        zonalRedundancy: false,
        quota: null,
        budgetUnknown: 'us-central1: its worker pools could not be listed',
      },
    ]);
    // Planned, neither pool raises anything: the policy's quota of the first stays known.
    const p = plan(out, policy(), out.takenAt);
    expect(p.changes.filter((c) => c.to > c.from)).toEqual([]);
    expect(p.pools.map((x) => x.status)).toEqual(['unknown-quota', 'unknown-quota']);
  });

  it('reads a revision only tagged that could not be read as such a listing: nothing raised there', () => {
    // Its own max and GPU unknown, which pool of the region it holds GPUs of is unknown.
    const snapshot = example();
    snapshot.problems = [unread('us-central1', 'tagged-revisions')];
    const out = withUnreadListingsUnknown(snapshot);
    expect(out.pools.map((p) => p.budgetUnknown)).toEqual([
      'us-central1: a revision only tagged could not be read',
      'us-central1: a revision only tagged could not be read',
    ]);
    const p = plan(out, policy(), out.takenAt);
    expect(p.changes.filter((c) => c.to > c.from)).toEqual([]);
  });

  it('leaves a snapshot without such a problem as it is', () => {
    const snapshot = example();
    expect(withUnreadListingsUnknown(snapshot)).toBe(snapshot);
    snapshot.problems = [unread('us-central1', 'quota'), unread('other-project', 'jobs')];
    expect(withUnreadListingsUnknown(snapshot)).toBe(snapshot);
  });
});

describe('oneShapeService', () => {
  // V8 gives objects built alike one hidden class; the planner reads every service's fields, and
  // services of many shapes made a third of its time (docs/performance.md, "A second round").
  const base = snapshotService('a', 3, null);
  const variants = [
    base,
    { ...base, maxUnset: true },
    { ...base, maxNote: 'two revisions serve' },
    { ...base, lastLoweredAt: '2026-11-27T14:00:00Z', usage: null, usageNote: 'stale' },
  ];

  it('gives every service the same fields in the same order', () => {
    const keys = variants.map((v) => Object.keys(oneShapeService(v)));
    for (const k of keys) expect(k).toEqual(keys[0]);
    // Every field of the schema, so no service adds one later.
    expect(keys[0]).toEqual(Object.keys(SnapshotService.shape));
  });

  it("changes nothing of the snapshot's JSON", () => {
    for (const v of variants)
      expect(JSON.parse(JSON.stringify(oneShapeService(v)))).toEqual(JSON.parse(JSON.stringify(v)));
  });
});

describe("a pool's budgetUnknown", () => {
  // Every service of the pool quotes it in its reason: a snapshot file of 2.3 MB, one pool of 500
  // services whose budgetUnknown was 2 MB, made `governor plan` fail with "Invalid string length"
  // after taking 1.1 GB. An observation writes a short one ("us-central1: worker pools").
  const doc = (budgetUnknown: string) => {
    const example = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      pools: Record<string, unknown>[];
    };
    example.pools[0] = { ...example.pools[0], budgetUnknown };
    return example;
  };

  it('is refused past 2,000 characters, naming it', () => {
    expect(faultsOf(doc('x'.repeat(2001)))).toEqual([
      'pools[0].budgetUnknown: Too big: expected string to have <=2000 characters',
    ]);
  });

  it('is read up to 2,000 characters', () => {
    expect(faultsOf(doc('x'.repeat(2000)))).toEqual([]);
  });
});
