import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { RpcError, type FleetInput, type RunningEmulator } from '../../src/emulator/index.js';
import { serviceRevisions } from '../../src/emulator/resources.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * A run reads each serving revision once (a revision is immutable: observe/serving-revisions.ts),
 * though it lists a region up to three times: in observation, just before its raises and just
 * after them. What each listing says serves is still what counts: a revision first seen at a
 * later listing is read then, and a read that failed is tried again at the next listing.
 *
 * Through the emulator and Google's clients: `busy`, a governed GPU service at its cap of 1 with
 * a demand of 3, which the run raises, in a pool of 6 beside `pinned`, an unmanaged GPU service
 * deployed with `--no-traffic` (its serving revision is read) at a service-level max of 1, and
 * `split`, an unmanaged GPU service whose template serves, with its own max of 1 and none at the
 * service level.
 */

const PROJECT = 'revreads-project';
const REGION = 'us-central1';

const fleet: FleetInput = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  idleMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 6 }],
      services: [
        { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: 3 } },
        {
          name: 'pinned',
          region: REGION,
          gpu: {},
          maxInstances: 1,
          demand: { constant: 0 },
          noTrafficRevision: {},
        },
        {
          name: 'split',
          region: REGION,
          gpu: {},
          revisionMaxInstances: 1,
          demand: { constant: 0 },
        },
      ],
    },
  ],
};

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 4, scaleDownDelay: '0s' },
  services: [{ match: { name: 'busy' } }, { match: {}, managed: false }],
  limits: { writesPerMinute: 6000 },
});

const runEmulator = emulatorRuns();

type Inject = (
  call: { method: string; name: string },
  emulator: RunningEmulator,
) => RpcError | undefined;

/**
 * A run (and `again`, the next) with each GetRevision it makes logged in order, by the revision's
 * short name, the listings of the region counted, and `inject` asked of every call.
 */
async function logged(runId: string, inject: Inject = () => undefined) {
  const reads: string[] = [];
  let listings = 0;
  const run = await runEmulator(fleet, policy, {
    runId,
    faults: ({ method, request }, emulator) => {
      const name = String(request['name'] ?? '');
      // A listing's first page.
      if (method.endsWith('/ListServices') && !request['page_token']) listings += 1;
      if (method.endsWith('/GetRevision')) reads.push(name.split('/').pop() ?? name);
      return inject({ method, name }, emulator);
    },
  });
  return { ...run, reads, listings: () => listings };
}

/** The short names of a service's revisions that serve now, in the emulator's order. */
function serving(emulator: RunningEmulator, service: string): string[] {
  const s = emulator.model.listServices().find((x) => x.name === service);
  if (!s) throw new Error(`no service ${service}`);
  return serviceRevisions(s)
    .filter((r) => r.percent > 0)
    .map((r) => r.name);
}

describe('the serving revisions a run reads', () => {
  it('are read once in a run though the region is listed three times, and again by the next run', async () => {
    const { report, emulator, again, reads, listings } = await logged('once');
    expect(report.writes.find((w) => w.name === 'busy')?.cause).toBe('written');
    expect(listings()).toBe(3);
    const [pinned] = serving(emulator, 'pinned');
    expect(reads).toEqual([pinned]);
    // The next run reads it again: what a run read is that run's own.
    await again('twice');
    expect(listings()).toBeGreaterThan(3);
    expect(reads).toEqual([pinned, pinned]);
  }, 60_000);

  it('reads a revision first seen at the read after the raises then, and counts it', async () => {
    let split = false;
    const { report, emulator, reads } = await logged('late', ({ method }, e) => {
      // Just as busy is raised, another writer splits split's traffic with an older revision of
      // a larger max: the read after the raises is the first to see that revision serve.
      if (method.endsWith('/UpdateService') && !split) {
        split = true;
        e.edit({ service: 'split', previousRevision: { maxInstances: 4, percent: 50 } });
      }
      return undefined;
    });
    expect(split).toBe(true);
    const revisions = serving(emulator, 'split');
    expect(revisions).toHaveLength(2);
    // Both of split's revisions now serving were read (after pinned's, read in observation).
    expect(reads.slice(1).sort()).toEqual([...revisions].sort());
    // Counted: busy raised, pinned 1 and split's 4 + 1 are over the quota of 6, so the raise is
    // lowered back.
    expect(report.writes.some((w) => w.name === 'busy' && w.cause === 'compensated')).toBe(true);
  }, 60_000);

  it('reads again at the next listing a revision whose read failed, and raises once it is read', async () => {
    let refused = 0;
    const { report, emulator, reads } = await logged('retry', ({ method }) => {
      if (!method.endsWith('/GetRevision') || refused > 0) return undefined;
      refused += 1;
      return new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied once');
    });
    expect(refused).toBe(1);
    const [pinned] = serving(emulator, 'pinned');
    // Refused in observation, read before the raises, remembered for the read after them.
    expect(reads).toEqual([pinned, pinned]);
    expect(report.problems.some((p) => p.subject === 'revisions')).toBe(true);
    const busy = report.writes.find((w) => w.name === 'busy');
    expect(busy?.cause).toBe('written');
    expect(busy?.written).toBe(busy?.planned);
    expect(busy?.planned).toBeGreaterThan(1);
  }, 60_000);
});
