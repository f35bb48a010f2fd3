import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createCloudRunAdapter } from '../../src/adapters/cloud-run.js';
import type { CloudRunAdapter } from '../../src/adapters/cloud-run.js';
import { status } from '@grpc/grpc-js';
import {
  startEmulator,
  RpcError,
  type AnswerHook,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import { UnavailableError, UpstreamError } from '../../src/core/errors.js';
import { observe } from '../../src/observe/observe.js';
import { plan } from '../../src/core/planner.js';
import { MAX_INSTANCE_COUNT } from '../../src/core/service.js';
import {
  ANNOTATIONS,
  lastChangedAt,
  originalMaxes,
  writtenAtOf,
} from '../../src/observe/annotations.js';
import { PROJECT } from '../emulator/helpers.js';
import { governAll } from '../support/fixtures.js';

/**
 * What the adapter makes of ListServices and GetService answers Cloud Run could put on the wire
 * but should not, or odd ones it may: the emulator sends each raw answer as given (its
 * `answer` seam), through the real client library. A listing that cannot be the region's
 * (a service of another parent, one twice, pages that never end) is refused whole with an
 * UpstreamError, so the region is left out (observe: fail static, the problem reported); a
 * field out of its range reads as unknown, never as a number nobody set.
 */

const US = 'us-central1';
const EU = 'europe-west4';

type Raw = Record<string, unknown>;
let hook: AnswerHook | undefined;
let emulator: RunningEmulator;
let adapter: CloudRunAdapter;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      projects: [
        {
          id: PROJECT,
          pools: [{ region: US, quota: 10 }],
          services: [
            { name: 'web', region: US, gpu: {}, maxInstances: 4, demand: 1 },
            { name: 'api', region: US, gpu: {}, maxInstances: 3, demand: 1 },
          ],
        },
      ],
    },
    speed: 'manual',
    answer: (method, request, fleet) => hook?.(method, request, fleet),
  });
  adapter = createCloudRunAdapter({
    emulatorHost: emulator.host,
    retry: { maxAttempts: 1, attemptTimeoutMs: 10_000 },
  });
});

afterEach(() => {
  hook = undefined;
});

afterAll(async () => {
  await adapter?.close();
  await emulator?.stop();
});

const services = (answer: Raw): Raw[] => answer['services'] as Raw[];

/** The fleet's first page, each service passed through `edit` (a copy). */
function editServices(edit: (service: Raw, i: number) => Raw): void {
  hook = (method, _request, fleet) => {
    if (method !== 'ListServices') return undefined;
    const answer = fleet();
    return { ...answer, services: services(answer).map((s, i) => edit(structuredClone(s), i)) };
  };
}

function template(s: Raw): Raw {
  return s['template'] as Raw;
}

function setGpuLimit(s: Raw, limit: string | undefined): Raw {
  const [main] = template(s)['containers'] as Raw[];
  const limits = (main?.['resources'] as Raw)['limits'] as Record<string, string>;
  if (limit === undefined) delete limits['nvidia.com/gpu'];
  else limits['nvidia.com/gpu'] = limit;
  return s;
}

describe('a listing that cannot be the region asked', () => {
  it('refuses a service named under another project or region, naming it', async () => {
    for (const foreign of [
      `projects/other-project/locations/${US}/services/web`,
      `projects/${PROJECT}/locations/${EU}/services/web`,
    ]) {
      editServices((s, i) => (i === 0 ? { ...s, name: foreign } : s));
      const read = adapter.listServices(PROJECT, US);
      await expect(read).rejects.toBeInstanceOf(UpstreamError);
      await expect(read).rejects.toThrow(foreign);
    }
  });

  it('takes a service named by project number as the project asked (Google may answer so)', async () => {
    const byNumber = (s: Raw) => String(s['name']).replace(PROJECT, '123456789012');
    editServices((s, i) => (i === 0 ? { ...s, name: byNumber(s) } : s));
    const listed = await adapter.listServices(PROJECT, US);
    expect(listed.map((s) => s.name).sort()).toEqual(['api', 'web']);
    // ... and the same service by id and by number is the same service, listed twice.
    const api = `projects/${PROJECT}/locations/${US}/services/api`;
    editServices((s) => ({ ...s, name: s['name'] === api ? api : byNumber({ name: api }) }));
    await expect(adapter.listServices(PROJECT, US)).rejects.toThrow(/twice/);
  });

  it('refuses the same service listed twice across pages', async () => {
    let web: Raw | undefined;
    hook = (method, request, fleet) => {
      if (method !== 'ListServices') return undefined;
      web ??= services(fleet())[0];
      const token = request['page_token'] === '' ? 'second' : '';
      return { services: [web], next_page_token: token };
    };
    const read = adapter.listServices(PROJECT, US);
    await expect(read).rejects.toBeInstanceOf(UpstreamError);
    await expect(read).rejects.toThrow(/twice/);
  });

  it('stops a listing whose page token never ends, rather than reading for ever', async () => {
    let asked = 0;
    hook = (method) => {
      if (method !== 'ListServices') return undefined;
      asked += 1;
      return { services: [], next_page_token: `page-${asked}` };
    };
    const read = adapter.listServices(PROJECT, US);
    await expect(read).rejects.toBeInstanceOf(UpstreamError);
    await expect(read).rejects.toThrow(/did not end/);
    expect(asked).toBeGreaterThan(10); // more empty pages than google-gax's own iterator allows
  });

  it('GetService answering another service is refused', async () => {
    for (const other of ['api', 'webx', 'web/more']) {
      hook = (method, _request, fleet) =>
        method === 'GetService'
          ? { ...fleet(), name: `projects/${PROJECT}/locations/${US}/services/${other}` }
          : undefined;
      const read = adapter.getService(PROJECT, US, 'web');
      await expect(read).rejects.toBeInstanceOf(UpstreamError);
      await expect(read).rejects.toThrow(`services/${other}`);
    }
  });

  it('GetRevision answering another revision is refused, its max not taken', async () => {
    const asked = 'web-00001-abc';
    const others = [
      `projects/${PROJECT}/locations/${US}/services/api/revisions/${asked}`,
      `projects/${PROJECT}/locations/${US}/services/web/revisions/web-00002-xyz`,
      `projects/other-project/locations/${US}/services/web/revisions/${asked}`,
      `projects/${PROJECT}/locations/${EU}/services/web/revisions/${asked}`,
    ];
    for (const other of others) {
      hook = (method) =>
        method === 'GetRevision' ? { name: other, scaling: { max_instance_count: 9 } } : undefined;
      const read = adapter.getRevisionMax(PROJECT, US, 'web', asked);
      await expect(read).rejects.toBeInstanceOf(UpstreamError);
      await expect(read).rejects.toThrow(other);
    }
    // Its own, named by project number too, is read.
    for (const own of [
      `projects/${PROJECT}/locations/${US}/services/web/revisions/${asked}`,
      `projects/123456789012/locations/${US}/services/web/revisions/${asked}`,
    ]) {
      hook = (method) =>
        method === 'GetRevision' ? { name: own, scaling: { max_instance_count: 9 } } : undefined;
      expect((await adapter.getRevisionMax(PROJECT, US, 'web', asked)).maxInstances).toBe(9);
    }
  });

  it('refuses a worker pool or a job execution named under another parent, or not as one', async () => {
    const foreignPool = `projects/other-project/locations/${US}/workerPools/batch`;
    hook = (method) =>
      method === 'ListWorkerPools' ? { worker_pools: [{ name: foreignPool }] } : undefined;
    const pools = adapter.listWorkerPools(PROJECT, US);
    await expect(pools).rejects.toBeInstanceOf(UpstreamError);
    await expect(pools).rejects.toThrow(foreignPool);
    // An execution is J/executions/E under jobs/: nothing more, nothing less.
    for (const tail of ['train/executions/e1/more', 'train/executions/', 'train']) {
      const name = `projects/${PROJECT}/locations/${US}/jobs/${tail}`;
      hook = (method) => (method === 'ListExecutions' ? { executions: [{ name }] } : undefined);
      const executions = adapter.listRunningExecutions(PROJECT, US);
      await expect(executions).rejects.toBeInstanceOf(UpstreamError);
      await expect(executions).rejects.toThrow(name);
    }
  });
});

describe('odd fields of one worker pool', () => {
  const pool = (scaling: Raw | undefined): Raw => ({
    name: `projects/${PROJECT}/locations/${US}/workerPools/encoder`,
    template: {
      containers: [{ name: 'encoder', resources: { limits: { 'nvidia.com/gpu': '1' } } }],
      node_selector: { accelerator: 'nvidia-l4' },
    },
    ...(scaling === undefined ? {} : { scaling }),
  });

  it('a GPU worker pool that sets no instance count holds the one instance Cloud Run gives it, not none', async () => {
    // "When you deploy a worker pool without enabling CPU autoscaling, Cloud Run uses manual
    // scaling with 1 instance by default."
    for (const scaling of [undefined, {}]) {
      hook = (method) =>
        method === 'ListWorkerPools' ? { worker_pools: [pool(scaling)] } : undefined;
      const [read] = await adapter.listWorkerPools(PROJECT, US);
      expect(read?.manualInstanceCount).toBe(1);
    }
    // An explicit 0 is a pool scaled to zero by hand: it holds no GPU.
    hook = (method) =>
      method === 'ListWorkerPools'
        ? { worker_pools: [pool({ manual_instance_count: 0 })] }
        : undefined;
    const [zero] = await adapter.listWorkerPools(PROJECT, US);
    expect(zero?.manualInstanceCount).toBe(0);
  });
});

describe('odd fields of one service', () => {
  it('a GPU template with no containers counts one GPU per instance (the only count Cloud Run allows)', async () => {
    editServices((s) => ({ ...s, template: { ...template(s), containers: [] } }));
    const [web] = await adapter.listServices(PROJECT, US);
    expect(web?.gpu).toMatchObject({ accelerator: 'nvidia-l4', count: 1 });
    expect(web?.containers).toEqual([]);
  });

  it.each([
    ['0', 1],
    ['2', 2],
    ['1.5', 1],
    ['abc', 1],
    // As the audit reads a limit (gpu-per-instance): not a whole number written out, one GPU.
    ['1e3', 1],
    ['0x10', 1],
    [' 2 ', 2],
    [undefined, 1],
  ])('a GPU limit of %s with an accelerator reads as %s GPU(s) per instance', async (limit, n) => {
    editServices((s) => setGpuLimit(s, limit));
    const [web] = await adapter.listServices(PROJECT, US);
    expect(web?.gpu?.count).toBe(n);
  });

  it('an accelerator the governor does not know is its own pool, read as given', async () => {
    editServices((s) => ({
      ...s,
      template: { ...template(s), node_selector: { accelerator: 'nvidia-h999' } },
    }));
    const [web] = await adapter.listServices(PROJECT, US);
    expect(web?.gpu?.accelerator).toBe('nvidia-h999');
  });

  it.each([-5, MAX_INSTANCE_COUNT + 10, 2 ** 40])(
    'a scaling.max_instance_count of %s reads as no max, never as a number nobody set',
    async (max) => {
      editServices((s) => ({
        ...s,
        scaling: { ...(s['scaling'] as Raw), max_instance_count: max },
      }));
      const [web] = await adapter.listServices(PROJECT, US);
      const got = web?.serviceMaxInstances ?? null;
      expect(got === null || (got >= 1 && got <= MAX_INSTANCE_COUNT)).toBe(true);
    },
  );

  it('min instances above max are read as given', async () => {
    editServices((s) => ({
      ...s,
      scaling: { ...(s['scaling'] as Raw), min_instance_count: 9, max_instance_count: 2 },
    }));
    const [web] = await adapter.listServices(PROJECT, US);
    expect(web).toMatchObject({ serviceMinInstances: 9, serviceMaxInstances: 2 });
  });

  it('a create_time or update_time out of the Timestamp range reads as unknown', async () => {
    editServices((s) => ({
      ...s,
      create_time: { seconds: '999999999999999', nanos: 0 },
      update_time: { seconds: '-99999999999999', nanos: 5 },
    }));
    const [web] = await adapter.listServices(PROJECT, US);
    expect(web?.createTime).toBeNull();
    expect(web?.updateTime).toBeNull();
    // At its edges: the first second of year 1, the last of 9999 and 999,999,999 nanos are in
    // range, one more (or less) is not, nor are negative nanos.
    const at = async (seconds: string, nanos: number) => {
      editServices((s) => ({ ...s, create_time: { seconds, nanos } }));
      return (await adapter.listServices(PROJECT, US))[0]?.createTime;
    };
    expect(await at('253402300799', 999_999_999)).toBe('9999-12-31T23:59:59.999Z');
    expect(await at('253402300800', 0)).toBeNull();
    expect(await at('-62135596800', 0)).toBe('0001-01-01T00:00:00.000Z');
    expect(await at('-62135596801', 999_999_999)).toBeNull();
    expect(await at('0', 1_000_000_000)).toBeNull();
    expect(await at('0', -1)).toBeNull();
  });

  it('a generation beyond a double stays a number', async () => {
    editServices((s) => ({ ...s, generation: '9223372036854775807', observed_generation: '-1' }));
    const [web] = await adapter.listServices(PROJECT, US);
    expect(Number.isFinite(web?.generation)).toBe(true);
    expect(Number.isFinite(web?.observedGeneration)).toBe(true);
  });
});

describe("the governor's own annotations holding garbage", () => {
  it('read as no time and an unreadable original max, cut short, whatever their length', async () => {
    const huge = `2026-11-27T12:00:00Z${'x'.repeat(2_000_000)}`;
    editServices((s) => ({
      ...s,
      annotations: {
        ...(s['annotations'] as Raw),
        [ANNOTATIONS.lastChanged]: huge,
        [ANNOTATIONS.writtenAt]: 'garbage 2026',
        [ANNOTATIONS.originalMax]: '{"max": 4',
      },
    }));
    const [web] = await adapter.listServices(PROJECT, US);
    if (!web) throw new Error('web was not listed');
    expect(web.annotations[ANNOTATIONS.lastChanged]).toHaveLength(huge.length);
    expect(lastChangedAt(web.annotations)).toBeNull();
    expect(writtenAtOf(web.annotations)).toEqual({ unreadable: 'garbage 2026' });
    const [restore] = originalMaxes([web]);
    expect(restore).toMatchObject({ to: null, source: 'original-max' });
    expect(restore?.unreadable?.length).toBeLessThanOrEqual(201);
  });
});

describe('observation of a listing refused', () => {
  it('leaves the region out and says why; no cap of it is planned', async () => {
    editServices((s, i) =>
      i === 0 ? { ...s, name: `projects/${PROJECT}/locations/${EU}/services/web` } : s,
    );
    const policy = governAll({ projects: [PROJECT], regions: [US] });
    const o = await observe(
      policy,
      {
        run: adapter,
        monitoring: {
          instanceCounts: () => Promise.resolve([]),
          gpuUtilization: () => Promise.resolve([]),
          servedRequests: () => Promise.resolve([]),
          refusedRequests: () => Promise.resolve([]),
        },
        quotas: { gpuQuota: () => Promise.resolve(10) },
      },
      Date.parse('2026-11-27T12:00:00Z'),
    );
    expect(o.snapshot.services).toEqual([]);
    const problem = o.problems.find((p) => p.subject === 'services');
    expect(problem?.region).toBe(US);
    expect(problem?.error).toContain(`locations/${EU}/services/web`);
    expect(plan(o.snapshot, policy, o.snapshot.takenAt).services).toEqual([]);
  });
});

describe('an update whose operation ends without the service', () => {
  /** Each GetOperation answer that is done passed through `edit` (a copy of the fleet's). */
  function editDoneOperation(edit: (operation: Raw) => Raw): void {
    hook = (method, _request, fleet) => {
      if (method !== 'GetOperation') return undefined;
      const answer = fleet();
      return answer['done'] === true ? edit(structuredClone(answer)) : undefined;
    };
  }

  async function write(name: string, to: number) {
    const writer = createCloudRunAdapter({
      emulatorHost: emulator.host,
      retry: { maxAttempts: 1, attemptTimeoutMs: 10_000 },
      operationPolling: { initialDelayMs: 100, maxDelayMs: 200 },
    });
    try {
      const before = await writer.getService(PROJECT, US, name);
      // Another writer's change first: the answer must be the service as it is, both changes in.
      const other = await writer.updateMaxInstances({
        project: PROJECT,
        region: US,
        name,
        maxInstances: before.serviceMaxInstances ?? 1,
        etag: before.etag,
        annotations: { 'team.example.com/owner': 'other' },
      });
      return await writer.updateMaxInstances({
        project: PROJECT,
        region: US,
        name,
        maxInstances: to,
        etag: other.etag,
        annotations: {},
      });
    } finally {
      await writer.close();
    }
  }

  it('reads the service again when a done operation carries no response (Google allows it)', async () => {
    editDoneOperation((op) => {
      delete op['response'];
      return op;
    });
    const written = await write('web', 2);
    hook = undefined;
    const now = await adapter.getService(PROJECT, US, 'web');
    expect(written.name).toBe('web');
    expect(written.serviceMaxInstances).toBe(2);
    expect(written.etag).toBe(now.etag);
    expect(written.annotations['team.example.com/owner']).toBe('other');
  });

  it('says the write was made when the read after it fails, whatever its code', async () => {
    for (const [code, word] of [
      [status.UNAVAILABLE, 'UNAVAILABLE'],
      [status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
    ] as const) {
      // The other writer's update (write's first) is answered as the fleet has it; the second's
      // operation ends without the service, and the read after it fails.
      let done = 0;
      let written = false;
      hook = (method, _request, fleet) => {
        if (method === 'GetOperation') {
          const answer = fleet();
          if (answer['done'] !== true || ++done < 2) return undefined;
          written = true;
          const edited = structuredClone(answer);
          delete edited['response'];
          return edited;
        }
        if (method === 'GetService' && written) throw new RpcError(code, `injected: ${word}`);
        return undefined;
      };
      const attempt = write('web', 3);
      await expect(attempt).rejects.toBeInstanceOf(UnavailableError);
      await expect(attempt).rejects.toThrow(
        /max instances 3 was written, but the service could not be read again/,
      );
    }
  });
});
