/**
 * `governor check` words a refused probe by what Google says refused it: a missing grant is
 * MISSING with the role to grant; an API that is not enabled (PERMISSION_DENIED with ErrorInfo
 * reason SERVICE_DISABLED, google/api/error_reason.proto) is FAILED, with what to do instead, since
 * no role mends it. Before, both read MISSING, and the advice to grant a role led nowhere.
 */
import { describe, expect, it } from 'vitest';
import { parsePolicy, type PolicyInput } from '../../src/core/policy.js';
import { translateGrpcError } from '../../src/adapters/grpc-errors.js';
import type { ObservePorts } from '../../src/ports/index.js';
import { checkPolicy } from '../../src/reconcile/preflight.js';
import { NotFoundError } from '../../src/core/errors.js';
import { observedService } from '../support/fixtures.js';

const DISABLED = 'api-disabled-project';
const DENIED = 'not-granted-project';
const UNAUTHENTICATED = 'refused-credentials-project';

/** A dry-run policy governing every service of DENIED in us-central1, with `extra` laid over it. */
const dryRunPolicy = (extra: Partial<PolicyInput> = {}) =>
  parsePolicy({
    version: 1,
    projects: [DENIED],
    regions: ['us-central1'],
    mode: 'dry-run',
    services: [{ match: {} }],
    ...extra,
  });

/** A PermissionError as the adapters make it (translateGrpcError), over google-gax's error. */
function refusal(project: string): Error {
  const what = `reading instance counts of projects/${project}`;
  if (project === DISABLED)
    return translateGrpcError(
      Object.assign(
        new Error(
          '7 PERMISSION_DENIED: Cloud Monitoring API has not been used in project 123 before or it is disabled.',
        ),
        { code: 7, reason: 'SERVICE_DISABLED' },
      ),
      what,
    );
  if (project === UNAUTHENTICATED)
    return translateGrpcError(
      Object.assign(
        new Error('16 UNAUTHENTICATED: Request had invalid authentication credentials.'),
        { code: 16 },
      ),
      what,
    );
  return translateGrpcError(
    Object.assign(
      new Error(
        `7 PERMISSION_DENIED: Permission 'monitoring.timeSeries.list' denied on resource 'projects/${project}' (or it may not exist).`,
      ),
      { code: 7, reason: 'IAM_PERMISSION_DENIED' },
    ),
    what,
  );
}

const ports: ObservePorts = {
  run: {
    listRegions: (project) => Promise.reject(refusal(project)),
    listServices: () => Promise.resolve([]),
    getService: () => Promise.reject(new Error('not called')),
    listWorkerPools: () => Promise.resolve([]),
    listRunningExecutions: () => Promise.resolve([]),
    updateMaxInstances: () => Promise.reject(new Error('not called')),
  },
  monitoring: {
    instanceCounts: () => Promise.resolve([]),
    gpuUtilization: () => Promise.resolve([]),
    servedRequests: () => Promise.resolve([]),
    refusedRequests: () => Promise.resolve([]),
    probe: (project) => Promise.reject(refusal(project)),
  },
  quotas: { gpuQuota: () => Promise.resolve(null) },
};

describe('a refused probe', () => {
  it('is FAILED when the credentials themselves were refused (UNAUTHENTICATED): no role mends it', async () => {
    const policy = dryRunPolicy({ projects: [UNAUTHENTICATED] });
    const report = await checkPolicy(policy, ports, null, Date.parse('2026-11-27T12:00:00Z'));
    const monitoring = report.items.find(
      (i) =>
        i.subject === `project ${UNAUTHENTICATED}` && i.permission === 'monitoring.timeSeries.list',
    );
    expect(monitoring).toMatchObject({
      status: 'error',
      detail: expect.stringContaining('UNAUTHENTICATED'),
      fix: expect.stringContaining('credentials'),
    });
  });

  it('is MISSING when a grant is missing, FAILED when the API is disabled', async () => {
    const policy = dryRunPolicy({ projects: [DISABLED, DENIED] });
    const report = await checkPolicy(policy, ports, null, Date.parse('2026-11-27T12:00:00Z'));
    const monitoring = (project: string) =>
      report.items.find(
        (i) => i.subject === `project ${project}` && i.permission === 'monitoring.timeSeries.list',
      );
    expect(monitoring(DENIED)).toMatchObject({
      status: 'missing',
      fix: expect.stringContaining('roles/monitoring.viewer'),
    });
    expect(monitoring(DISABLED)).toMatchObject({
      status: 'error',
      detail: expect.stringContaining('has not been used in project 123'),
      fix: expect.stringContaining('enable the API'),
    });
  });

  it('the region listing too: a disabled API is no missing run.locations.list', async () => {
    const policy = dryRunPolicy({ projects: [DISABLED, DENIED], regions: undefined });
    const report = await checkPolicy(policy, ports, null, Date.parse('2026-11-27T12:00:00Z'));
    const regions = (project: string) =>
      report.items.find(
        (i) => i.subject === `project ${project}` && i.permission === 'run.locations.list',
      );
    expect(regions(DENIED)).toMatchObject({ status: 'missing' });
    expect(regions(DISABLED)).toMatchObject({
      status: 'error',
      fix: expect.stringContaining('no role grants it'),
    });
  });
});

describe('a refused test of the alert topic', () => {
  const policy = dryRunPolicy({ alerts: { topic: `projects/${DISABLED}/topics/gpu-alerts` } });
  const sink = (e: Error) => ({
    publish: () => Promise.reject(new Error('not called')),
    canPublish: () => Promise.reject(e),
  });
  const topicItem = async (e: Error) =>
    (await checkPolicy(policy, ports, sink(e), Date.parse('2026-11-27T12:00:00Z'))).items.find(
      (i) => i.subject === `topic projects/${DISABLED}/topics/gpu-alerts`,
    );

  it('is FAILED with what to enable when the Pub/Sub API is disabled, as any other probe', async () => {
    expect(await topicItem(refusal(DISABLED))).toMatchObject({
      status: 'error',
      detail: expect.stringContaining('has not been used in project 123'),
      fix: expect.stringContaining('enable the API'),
    });
  });

  it('is FAILED with the credentials to renew when they were refused', async () => {
    expect(await topicItem(refusal(UNAUTHENTICATED))).toMatchObject({
      status: 'error',
      fix: expect.stringContaining('log in again'),
    });
  });
});

describe('the policy warnings of a check', () => {
  const policy = dryRunPolicy({ services: [{ match: { name: 'nothing-*' } }] });
  const withExecutions = (listRunningExecutions: ObservePorts['run']['listRunningExecutions']) => ({
    ...ports,
    run: { ...ports.run, listRunningExecutions },
  });
  const paths = async (p: ObservePorts) =>
    (await checkPolicy(policy, p, null, Date.parse('2026-11-27T12:00:00Z'))).warnings?.map(
      (w) => w.path,
    );

  it('name what matches nothing seen when every listing was read', async () => {
    expect(await paths(withExecutions(() => Promise.resolve([])))).toContain('services[0].match');
  });

  it('say nothing of the fleet when any listing of a region failed', async () => {
    const unavailable = () => Promise.reject(new Error('UNAVAILABLE: try again'));
    const listings = ['listServices', 'listWorkerPools', 'listRunningExecutions'] as const;
    for (const listing of listings) {
      const refused: ObservePorts = { ...ports, run: { ...ports.run, [listing]: unavailable } };
      expect(await paths(refused), listing).toEqual([]);
    }
  });
});

describe('a probe answered NOT_FOUND', () => {
  const policy = dryRunPolicy();
  // Its template does not serve: the run reads its serving revision (run.revisions.get).
  const pinned = observedService('pinned', {
    project: DENIED,
    templateServes: false,
    servingRevisions: [{ name: 'pinned-00001', inSplit: true }],
  });
  const gone = () => Promise.reject(new NotFoundError('NOT_FOUND: no such resource'));
  const found: ObservePorts = {
    ...ports,
    run: { ...ports.run, listServices: () => Promise.resolve([pinned]), getRevisionMax: gone },
    quotas: { gpuQuota: gone },
  };
  const item = async (permission: string) =>
    (await checkPolicy(policy, found, null, Date.parse('2026-11-27T12:00:00Z'))).items.find(
      (i) => i.permission === permission,
    );

  it('shows the permission held: a revision deleted since the listing', async () => {
    expect(await item('run.revisions.get')).toMatchObject({
      subject: `service ${DENIED}/us-central1/pinned`,
      status: 'ok',
    });
  });

  it('shows the permission held: a quota Cloud Quotas does not know', async () => {
    expect(await item('cloudquotas.quotas.get')).toMatchObject({
      subject: `pool ${DENIED}/us-central1/nvidia-l4/zonal`,
      status: 'ok',
    });
  });
});

describe('a pool whose quota the policy sets', () => {
  it('is not probed in Cloud Quotas: a run never reads it there', async () => {
    const policy = dryRunPolicy({ pools: [{ region: 'us-central1', quota: 4 }] });
    const listed: ObservePorts = {
      ...ports,
      run: {
        ...ports.run,
        listServices: () => Promise.resolve([observedService('web', { project: DENIED })]),
      },
    };
    const report = await checkPolicy(policy, listed, null, Date.parse('2026-11-27T12:00:00Z'));
    expect(report.governed).toBe(1);
    expect(report.items.filter((i) => i.permission === 'cloudquotas.quotas.get')).toEqual([]);
  });
});

describe('a project whose services could not be listed', () => {
  it('is not said to govern no GPU service: what it holds is unknown', async () => {
    const policy = dryRunPolicy();
    const refused: ObservePorts = {
      ...ports,
      run: { ...ports.run, listServices: () => Promise.reject(refusal(DENIED)) },
    };
    const report = await checkPolicy(policy, refused, null, Date.parse('2026-11-27T12:00:00Z'));
    expect(report.items.find((i) => i.permission === 'run.services.list')?.status).toBe('missing');
    expect(report.items.filter((i) => i.detail.includes('governs no GPU service'))).toEqual([]);
  });
});

describe('a probe refused for a permission Google names', () => {
  // A worker pool's revision is read with GetRevision, whose permission there Google does not
  // name (terraform/iam.tf grants run.workerpools.get beside run.revisions.get): the check says
  // the permission the denial names, with the role that holds it, not the one it probed for.
  it('names the permission of the denial, when the run needs it', async () => {
    const split = {
      project: DENIED,
      region: 'us-central1',
      name: 'workers',
      gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: false },
      manualInstanceCount: 2,
      templateServes: false,
      servingRevisions: [{ name: 'workers-00001', inSplit: true }],
    };
    const denied = () =>
      Promise.reject(
        translateGrpcError(
          Object.assign(
            new Error(
              `7 PERMISSION_DENIED: Permission 'run.workerpools.get' denied on resource 'projects/${DENIED}/locations/us-central1/workerPools/workers/revisions/workers-00001' (or resource may not exist).`,
            ),
            { code: 7, reason: 'IAM_PERMISSION_DENIED' },
          ),
          'getting revision workers-00001',
        ),
      );
    const refused: ObservePorts = {
      ...ports,
      run: {
        ...ports.run,
        listWorkerPools: () => Promise.resolve([split]),
        getRevisionMax: denied,
      },
    };
    const report = await checkPolicy(
      dryRunPolicy(),
      refused,
      null,
      Date.parse('2026-11-27T12:00:00Z'),
    );
    const item = report.items.find(
      (i) => i.subject === `worker pool ${DENIED}/us-central1/workers`,
    );
    expect(item).toMatchObject({ status: 'missing', permission: 'run.workerpools.get' });
    expect(item?.fix).toContain('roles/run.viewer');
  });
});
