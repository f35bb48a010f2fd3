import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { RpcError, type FleetInput } from '../../src/emulator/index.js';
import { REVISION_READS } from '../../src/observe/serving-revisions.js';
import { emulatorRuns } from '../support/emulator-runs.js';

/**
 * Serving revisions left unread hold a region's raises (act.ts, the read before the raises) when
 * they could be a GPU service's, or were refused; not when a service whose template has no GPU is
 * past the reads a listing allows (REVISION_READS). Those services are read after every GPU
 * service's, so in a region of more services with tags or pinned traffic than the reads allow,
 * they are the ones left unread at every run: holding the raises on them would stop the governor
 * raising in that region for good.
 *
 * Through the emulator and Google's clients: `busy`, a GPU service at its cap of 1 with a demand
 * of 3 in a pool of 4, beside services without a GPU, each deployed with `--no-traffic` (its
 * template does not serve, so its serving revision is read).
 */

const PROJECT = 'budget-project';
const REGION = 'us-central1';

const fleet = (cpuServices: number): FleetInput => ({
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 40,
  idleMinutes: 0,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, quota: 4 }],
      services: [
        { name: 'busy', region: REGION, gpu: {}, maxInstances: 1, demand: { constant: 3 } },
        ...Array.from({ length: cpuServices }, (_, i) => ({
          name: `web-${String(i).padStart(3, '0')}`,
          region: REGION,
          maxInstances: 10,
          demand: { constant: 0 },
          noTrafficRevision: {},
        })),
      ],
    },
  ],
});

const policy = parsePolicy({
  version: 1,
  projects: [PROJECT],
  regions: [REGION],
  defaults: { headroom: 0, max: 4, scaleDownDelay: '0s' },
  services: [{ match: { name: 'busy' } }],
  limits: { writesPerMinute: 6000 },
});

const runEmulator = emulatorRuns();

async function runWith(cpuServices: number, revisionsDenied: boolean) {
  const read: string[] = [];
  /** The GetRevision calls made after each listing of the region began, in order. */
  const byListing: number[] = [];
  let listings = 0;
  const { report, emulator } = await runEmulator(fleet(cpuServices), policy, {
    runId: 'budget',
    deadlineMs: 120_000,
    faults: ({ method, request }) => {
      // A listing's first page (a region of hundreds of services takes several).
      if (method.endsWith('/ListServices') && !request['page_token']) {
        listings += 1;
        byListing.push(0);
      }
      if (!method.endsWith('/GetRevision')) return undefined;
      read.push(String(request['name']));
      byListing[listings - 1] = (byListing[listings - 1] ?? 0) + 1;
      return revisionsDenied
        ? new RpcError(status.PERMISSION_DENIED, 'injected: run.revisions.get denied')
        : undefined;
    },
  });
  const busy = emulator.model.listServices().find((s) => s.name === 'busy');
  return { report, reads: read.length, read, byListing, busy: busy?.maxInstances };
}

describe('services without a GPU whose serving revisions are not read', () => {
  it('do not hold the raises of their region when they are past the reads a listing allows', async () => {
    // Over twice the reads a listing allows: observation reads 300, the read before the raises
    // the next 300 (a revision is read once in a run: observe/serving-revisions.ts), and leaves 5
    // past its reads, which do not hold the raises; the read after the raises reads those 5.
    const { report, reads, read, byListing, busy } = await runWith(2 * REVISION_READS + 5, false);
    expect(byListing).toEqual([REVISION_READS, REVISION_READS, 5]);
    expect(new Set(read).size).toBe(reads);
    const write = report.writes.find((w) => w.name === 'busy');
    expect(write?.cause).toBe('written');
    expect(write?.written).toBe(write?.planned);
    expect(busy).toBe(write?.planned);
    expect(busy).toBeGreaterThan(1);
  }, 120_000);

  it('are read once in a run: the listings after observation read only what it left', async () => {
    const { report, reads, read, byListing } = await runWith(REVISION_READS + 5, false);
    // The region is listed three times (observation, the read before the raises, the one after
    // them): observation spends the reads a listing allows, the read before the raises reads only
    // the 5 left past them, and the read after the raises reads none.
    expect(byListing).toEqual([REVISION_READS, 5, 0]);
    expect(reads).toBe(REVISION_READS + 5);
    expect(new Set(read).size).toBe(reads);
    expect(report.writes.find((w) => w.name === 'busy')?.cause).toBe('written');
  }, 120_000);

  it('hold them when they were refused: which pools they hold GPUs of is unknown', async () => {
    const { report, busy } = await runWith(3, true);
    const write = report.writes.find((w) => w.name === 'busy');
    expect(write?.cause).toBe('pool-unreadable');
    expect(write?.reason).toContain('could not be read');
    expect(busy).toBe(1);
  }, 120_000);
});
