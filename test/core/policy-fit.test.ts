import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  parsePolicy,
  parsePolicyText,
  Policy,
  type Match,
  type PolicyInput,
} from '../../src/core/policy.js';
import {
  fleetOfListings,
  fleetOfSnapshot,
  policyWarnings,
  type FitService,
} from '../../src/core/policy-fit.js';
import { compileRules, matcherOf } from '../../src/core/rules.js';
import { parseSnapshotText } from '../../src/core/snapshot.js';
import { plural, someOf } from '../../src/core/text.js';
import { assertProperty, fcParams } from '../support/fleet-arbitrary.js';

const svc = (name: string, more: Partial<FitService> = {}): FitService => ({
  project: 'p',
  region: 'us-central1',
  accelerator: 'nvidia-l4',
  zonalRedundancy: true,
  name,
  labels: {},
  ...more,
});

const FLEET = (() => {
  const services = [
    svc('llm-chat', { labels: { team: 'search' } }),
    svc('llm-sum', { labels: { team: 'search' } }),
    svc('embed', { labels: { team: 'ads' } }),
    svc('ocr', { zonalRedundancy: false, labels: { team: 'media' } }),
  ];
  return {
    services,
    pools: services.map(({ project, region, accelerator, zonalRedundancy }) => ({
      project,
      region,
      accelerator,
      zonalRedundancy,
    })),
  };
})();

/** A policy governing every service, unless `extra` says otherwise. */
const policy = (extra: Partial<PolicyInput>) =>
  parsePolicy({ version: 1, projects: ['p'], services: [{ match: {} }], ...extra });
const paths = (ws: { path: string }[]) => ws.map((w) => w.path);

describe('policy warnings without a fleet', () => {
  it('names a GPU type Cloud Run does not document, in pools and matches', () => {
    const p = policy({
      pools: [
        { region: 'us-central1', accelerator: 'nvidia-l44', quota: 4 },
        { region: 'us-central1', accelerator: 'nvidia-rtx-pro-6000', quota: 2 },
      ],
      services: [{ match: { accelerator: 'nvidia-l44' } }, { match: { name: 'x' } }],
    });
    const ws = policyWarnings(p);
    expect(paths(ws)).toEqual(['pools[0].accelerator', 'services[0].match.accelerator']);
    expect(ws[0]?.message).toContain('"nvidia-l44" is not a GPU type Cloud Run documents');
    expect(ws[0]?.message).toContain('https://cloud.google.com/run/docs/configuring/services/gpu');
  });

  it('says a policy without rules governs nothing, with the fleet or without', () => {
    const bare = policy({ services: [] });
    for (const ws of [policyWarnings(bare), policyWarnings(bare, FLEET)]) {
      expect(ws[0]?.path).toBe('services');
      expect(ws[0]?.message).toContain('no rule, so no service is governed');
    }
    expect(policyWarnings(policy({}))).toEqual([]);
  });

  it('the example policy has none', () => {
    expect(policyWarnings(parsePolicyText(readFileSync('examples/policy.yaml', 'utf8')))).toEqual(
      [],
    );
  });
});

describe("policy warnings: the policy's fit to the fleet seen", () => {
  it('says nothing when every part reaches something', () => {
    const p = policy({
      regions: ['us-central1'],
      pools: [
        { region: 'us-central1', quota: 8 },
        { region: 'us-central1', zonalRedundancy: false, reserve: 1 },
      ],
      services: [
        { match: { name: 'llm-*', labels: { team: 'search' } } },
        { match: { labels: { team: 'media' } }, managed: false },
        { match: {} },
      ],
    });
    expect(policyWarnings(p, FLEET)).toEqual([]);
  });

  it('a pool setting that applies to no pool seen, with the pools seen in its region', () => {
    const p = policy({
      pools: [
        { region: 'us-central1', accelerator: 'nvidia-l44', quota: 4 },
        { region: 'europe-west4', reserve: 1 },
        { project: 'p', region: 'us-central1', zonalRedundancy: false, quota: 2 },
      ],
    });
    const ws = policyWarnings(p, FLEET);
    expect(paths(ws)).toEqual(['pools[0]', 'pools[1]']);
    expect(ws[0]?.message).toBe(
      'applies to no pool seen: nothing draws GPUs from us-central1 nvidia-l44, so its settings (quota 4) reach nothing (pools seen in us-central1: nvidia-l4, nvidia-l4 (no zonal redundancy))',
    );
    expect(ws[1]?.message).toContain('(no GPU was seen in europe-west4)');
    // The accelerator is not warned about twice: where the fleet is known, the fit says it.
    expect(ws.some((w) => w.path.endsWith('.accelerator'))).toBe(false);
  });

  it('a GPU type Cloud Run does not document but the fleet uses is no warning', () => {
    const fleet = {
      services: [svc('big', { accelerator: 'nvidia-b200' })],
      pools: [
        { project: 'p', region: 'us-central1', accelerator: 'nvidia-b200', zonalRedundancy: true },
      ],
    };
    const p = policy({
      pools: [{ region: 'us-central1', accelerator: 'nvidia-b200', quota: 4 }],
      services: [{ match: { accelerator: 'nvidia-b200' } }],
    });
    expect(policyWarnings(p, fleet)).toEqual([]);
  });

  it('a rule that matches no service, naming the key that matches nothing and what was seen', () => {
    const p = policy({
      services: [
        { match: { name: 'llm-*', labels: { team: 'serach' } } },
        { match: { region: 'us-east4' } },
        { match: { labels: { owner: 'me' } } },
        { match: { name: 'lmm-*' } },
        { match: { name: 'llm-*', labels: { team: 'ads' } } },
      ],
    });
    const ws = policyWarnings(p, FLEET);
    expect(ws.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'services[0].match: matches no GPU service seen: none has the label team=serach (values of team seen: ads, media, search)',
      'services[1].match: matches no GPU service seen: none in region "us-east4" (seen: us-central1)',
      'services[2].match: matches no GPU service seen: none has the label "owner"',
      'services[3].match: matches no GPU service seen: no name matches "lmm-*"',
      'services[4].match: matches no GPU service seen: no one service matches all of its keys together',
    ]);
  });

  it('a rule whose every service an earlier rule takes (which validation cannot know)', () => {
    const p = policy({
      services: [
        { match: { name: '*-chat' } },
        { match: { name: 'llm-*' } },
        { match: { name: 'llm-c*' } },
      ],
    });
    const ws = policyWarnings(p, FLEET);
    expect(ws.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'services[2].match: governs nothing: the 1 GPU service it matches falls to an earlier rule (services[0]), as the first matching rule wins',
    ]);
  });

  it('a project or region of the policy where no GPU was seen', () => {
    const p = parsePolicy({
      version: 1,
      projects: ['p', 'q'],
      regions: ['us-central1', 'us-centrall1'],
      services: [{ match: {} }],
    });
    expect(policyWarnings(p, FLEET).map((w) => `${w.path}: ${w.message}`)).toEqual([
      'projects[1]: no GPU service, worker pool or job was seen in "q"',
      'regions[1]: no GPU service, worker pool or job was seen in "us-centrall1"',
    ]);
  });

  it("a snapshot's fleet: not the pools the policy itself names, but worker pools and jobs count", () => {
    const snapshot = parseSnapshotText(readFileSync('examples/snapshot.json', 'utf8'));
    const example = parsePolicyText(readFileSync('examples/policy.yaml', 'utf8'));
    expect(policyWarnings(example, fleetOfSnapshot(snapshot))).toEqual([]);
    // A pool the policy sets a quota for is in the snapshot's pools, and still reaches nothing.
    const withTypo = { ...example, pools: [{ ...example.pools[0]!, accelerator: 'nvidia-l44' }] };
    const snapshotWithPool = {
      ...snapshot,
      pools: [
        {
          project: 'my-project',
          region: 'us-central1',
          accelerator: 'nvidia-l44',
          zonalRedundancy: true,
          quota: 12,
        },
      ],
    };
    expect(paths(policyWarnings(withTypo, fleetOfSnapshot(snapshotWithPool)))).toEqual([
      'pools[0]',
    ]);
    // A pool only a worker pool draws from is a pool seen.
    const only = {
      ...snapshot,
      services: [],
      unmanagedUsage: [
        {
          project: 'my-project',
          region: 'us-central1',
          accelerator: 'nvidia-l4',
          zonalRedundancy: true,
          gpus: 1,
          source: 'worker-pool/w',
        },
      ],
    };
    const p = parsePolicy({
      version: 1,
      projects: ['my-project'],
      pools: [{ region: 'us-central1', reserve: 1 }],
    });
    // No pool warning: only the policy's lack of rules.
    expect(paths(policyWarnings(p, fleetOfSnapshot(only)))).toEqual(['services']);
  });

  it("the Cloud Run listings' fleet: a manually scaled service marks its pool, and no rule governs it", () => {
    const gpu = { accelerator: 'nvidia-l4', zonalRedundancy: true };
    const fleet = fleetOfListings(
      [
        {
          project: 'p',
          region: 'us-central1',
          name: 'manual',
          labels: {},
          gpu,
          scalingMode: 'MANUAL',
        },
        { project: 'p', region: 'us-central1', name: 'cpu-only', labels: {}, gpu: null },
      ],
      [{ project: 'p', region: 'europe-west4', gpu: { ...gpu, zonalRedundancy: false } }],
    );
    expect(fleet.services).toEqual([]);
    expect(fleet.pools.map((p) => `${p.region}/${p.zonalRedundancy}`)).toEqual([
      'us-central1/true',
      'europe-west4/false',
    ]);
    const p = policy({
      pools: [{ region: 'europe-west4', zonalRedundancy: false, quota: 1 }],
      services: [{ match: { name: 'manual' } }],
    });
    // The rule names a service that exists: it is told why that service is never governed.
    expect(policyWarnings(p, fleet).map((w) => `${w.path}: ${w.message}`)).toEqual([
      'services[0].match: governs nothing: it matches only manually scaled GPU services (manual), whose instance count Cloud Run keeps fixed (scaling mode MANUAL): the governor counts them against their pool and writes no max',
    ]);
    // A rule matching neither is told so, as before.
    const none = policy({ services: [{ match: { name: 'other' } }] });
    expect(policyWarnings(none, fleet).map((w) => w.message)).toEqual([
      'matches no GPU service seen: no GPU service was seen at all',
    ]);
  });

  it("a snapshot's fleet: a manually scaled service, kept as unmanaged usage, is named too", () => {
    const snapshot = parseSnapshotText(
      JSON.stringify({
        version: 1,
        takenAt: '2026-11-27T10:00:00Z',
        pools: [],
        services: [],
        unmanagedUsage: [
          { ...FLEET.pools[0], gpus: 2, source: 'service/batch-fixed (manual scaling)' },
          { ...FLEET.pools[0], gpus: 1, source: 'worker-pool/encoder' },
        ],
      }),
    );
    const fleet = fleetOfSnapshot(snapshot);
    expect(fleet.manual?.map((s) => s.name)).toEqual(['batch-fixed']);
    const p = policy({
      services: [{ match: { name: 'batch-*' } }, { match: { name: 'encoder' } }],
    });
    const [first, second] = policyWarnings(p, fleet);
    expect(first?.path).toBe('services[0].match');
    expect(first?.message).toContain('matches only manually scaled GPU services (batch-fixed)');
    // A worker pool is no service: a rule naming one matches nothing.
    expect(second?.message).toBe('matches no GPU service seen: no GPU service was seen at all');
  });
});

describe('policy warnings that quote the policy', () => {
  it('show a control character of it (a terminal escape, a carriage return) as a space, on one line', () => {
    // A glob Cloud Run names can never match, but a valid glob (an escape, a carriage return, a
    // bell): the fit names it in its warning.
    const p = policy({
      services: [{ match: { name: 'zz\u001b\r\u0007x*' } }, { match: {} }],
    });
    const ws = policyWarnings(p, FLEET);
    expect(ws.map((w) => w.message)).toEqual([
      'matches no GPU service seen: no name matches "zz x*"',
    ]);
    for (const w of ws) expect(`${w.path}: ${w.message}`).not.toMatch(/\p{Cc}/u);
  });
});

describe('policy warnings on a large policy and fleet', () => {
  // An organisation's policy names each service by its exact name and project (the shape
  // docs/performance.md measures), and a project's fleet is a share of it: most rules match none
  // of the services seen. Telling why a rule matches nothing must not read the whole fleet again
  // for each rule (10,000 such rules against 5,000 services took seconds).
  it('reads each service a bounded number of times, not once per rule', () => {
    const rules = 2_000;
    const services = 1_000;
    let reads = 0;
    const fleet = Array.from({ length: services }, (_, i) => {
      const s = svc(`svc-${i}`, { project: 'p0', labels: { team: `t${i % 3}` } });
      for (const key of ['name', 'project'] as const) {
        const value = s[key];
        Object.defineProperty(s, key, { get: () => (reads++, value), enumerable: true });
      }
      return s;
    });
    const p = parsePolicy({
      version: 1,
      projects: ['p0', 'p1', 'p2', 'p3'],
      services: Array.from({ length: rules }, (_, i) => ({
        match: { project: `p${i % 4}`, name: `svc-${Math.floor(i / 4)}` },
      })),
    });
    const ws = policyWarnings(p, { services: fleet, pools: fleet });
    // Rules for p0 name svc-0 to svc-499, all seen; the others' projects hold no service.
    expect(ws).toHaveLength(1_500 + 3);
    expect(ws.find((w) => w.path === 'services[1].match')?.message).toBe(
      'matches no GPU service seen: none in project "p1" (seen: p0)',
    );
    expect(reads).toBeLessThan(20 * (rules + services));
  });
});

/**
 * The warnings of the rules as a scan of the whole fleet for each rule tells them: the reference
 * the indexed fit must answer as.
 */
function scannedRuleWarnings(
  policy: Policy,
  services: readonly FitService[],
  manualServices: readonly FitService[],
): string[] {
  const distinct = (values: readonly string[]) => [...new Set(values)].sort();
  const whyNone = (match: Match): string => {
    if (services.length === 0) return 'no GPU service was seen at all';
    const seen = (values: string[]) => someOf(distinct(values), 5);
    const reasons: string[] = [];
    const none = (m: Match) => !services.some(matcherOf(m));
    if (match.project !== undefined && none({ project: match.project }))
      reasons.push(
        `none in project "${match.project}" (seen: ${seen(services.map((s) => s.project))})`,
      );
    if (match.region !== undefined && none({ region: match.region }))
      reasons.push(
        `none in region "${match.region}" (seen: ${seen(services.map((s) => s.region))})`,
      );
    if (match.accelerator !== undefined && none({ accelerator: match.accelerator }))
      reasons.push(
        `none uses accelerator "${match.accelerator}" (seen: ${seen(services.map((s) => s.accelerator))})`,
      );
    if (match.name !== undefined && none({ name: match.name }))
      reasons.push(`no name matches "${match.name}"`);
    for (const [key, value] of Object.entries(match.labels ?? {})) {
      if (!none({ labels: { [key]: value } })) continue;
      const values = services.flatMap((s) =>
        Object.hasOwn(s.labels, key) ? [s.labels[key] ?? ''] : [],
      );
      reasons.push(
        values.length === 0
          ? `none has the label "${key}"`
          : `none has the label ${key}=${value} (values of ${key} seen: ${seen(values)})`,
      );
    }
    return reasons.length > 0
      ? reasons.join('; ')
      : 'no one service matches all of its keys together';
  };
  const resolve = compileRules(policy, 0);
  const won = new Set(services.map((s) => resolve(s).rule));
  const out: string[] = [];
  policy.services.forEach((rule, i) => {
    if (won.has(i)) return;
    const path = `services[${i}].match`;
    const test = matcherOf(rule.match);
    const matched = services.filter(test);
    if (matched.length > 0) {
      const first = new Set(matched.map((s) => resolve(s).rule));
      out.push(
        `${path}: governs nothing: the ${plural(matched.length, 'GPU service')} it matches ${matched.length === 1 ? 'falls' : 'fall'} to an earlier rule (${[...first].map((r) => `services[${r}]`).join(', ')}), as the first matching rule wins`,
      );
      return;
    }
    const manual = manualServices.filter(test);
    if (manual.length > 0) {
      out.push(
        `${path}: governs nothing: it matches only manually scaled GPU services (${someOf(distinct(manual.map((s) => s.name)), 5)}), whose instance count Cloud Run keeps fixed (scaling mode MANUAL): the governor counts them against their pool and writes no max`,
      );
      return;
    }
    out.push(`${path}: matches no GPU service seen: ${whyNone(rule.match)}`);
  });
  return out;
}

describe('policy warnings of the rules, indexed', () => {
  const names = ['llm-a', 'llm-b', 'LLM-a', 'x_1', 'svc', 'svc-2'];
  const rule = fc.record(
    {
      name: fc.constantFrom(...names, 'llm-*', '*', 'svc*', '{svc,x_1}', 'llm-?', 'zz-*', 'nope'),
      project: fc.constantFrom('p', 'q', 'r'),
      region: fc.constantFrom('us-central1', 'europe-west4', 'asia-east1'),
      accelerator: fc.constantFrom('nvidia-l4', 'nvidia-rtx-pro-6000'),
      labels: fc.constantFrom<Record<string, string>>(
        { team: 'a' },
        { team: 'b' },
        { team: 'c' },
        { owner: 'me' },
        { team: 'a', tier: 'gold' },
      ),
    },
    { requiredKeys: [] },
  );
  const service = fc.record({
    name: fc.constantFrom(...names, 'llm-zz', 'other'),
    project: fc.constantFrom('p', 'q', 'z'),
    region: fc.constantFrom('us-central1', 'europe-west4'),
    accelerator: fc.constantFrom('nvidia-l4', 'nvidia-l4', 'nvidia-h100'),
    zonalRedundancy: fc.boolean(),
    labels: fc.constantFrom<Record<string, string>>(
      {},
      { team: 'a' },
      { team: 'b', tier: 'gold' },
      { team: 'a', tier: 'gold' },
      { tier: '' },
    ),
  });

  it('are what a scan of the whole fleet for each rule tells', () => {
    assertProperty(
      fc.property(
        fc.array(rule, { maxLength: 10 }),
        fc.array(service, { maxLength: 8 }),
        fc.array(service, { maxLength: 3 }),
        (rules, services, manual) => {
          // The schema alone: a rule an earlier one shadows is refused by parsePolicy, but its
          // warning must still be told as the scan tells it.
          const p = Policy.parse({
            version: 1,
            projects: ['p', 'q', 'z'],
            services: rules.map((match) => ({ match })),
          });
          const fleet = { services, pools: [...services, ...manual], manual };
          const got = policyWarnings(p, fleet)
            .filter((w) => w.path.startsWith('services['))
            .map((w) => `${w.path}: ${w.message}`);
          expect(got).toEqual(scannedRuleWarnings(p, services, manual));
        },
      ),
      fcParams(3000),
    );
  });
});
