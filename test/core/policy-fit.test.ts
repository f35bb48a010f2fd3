import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicy, parsePolicyText, type PolicyInput } from '../../src/core/policy.js';
import {
  fleetOfListings,
  fleetOfSnapshot,
  policyWarnings,
  type FitService,
} from '../../src/core/policy-fit.js';
import { parseSnapshotText } from '../../src/core/snapshot.js';

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
