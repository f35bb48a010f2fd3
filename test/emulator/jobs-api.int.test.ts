import { v2 as run } from '@google-cloud/run';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { codeOf } from './helpers.js';

const PROJECT = 'jobs-project';
const REGION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;
const MINUTE = 60_000;

/**
 * Quota 3 without zonal redundancy. `embed` (10 tasks, 2 at a time, 30 minutes each) started ten
 * minutes before the virtual start and holds 2 GPUs; an earlier execution of it has completed.
 * `etl` has no GPU. `chat` wants 2 instances from the same pool and finds 1 free GPU.
 */
const fleet = {
  start: '2026-11-27T12:00:00Z',
  startupSeconds: 0,
  warmupMinutes: 5,
  projects: [
    {
      id: PROJECT,
      pools: [{ region: REGION, zonalRedundancy: false, quota: 3 }],
      services: [
        {
          name: 'chat',
          region: REGION,
          gpu: { zonalRedundancy: false },
          maxInstances: 3,
          demand: 2,
        },
      ],
      jobs: [
        {
          name: 'embed',
          region: REGION,
          labels: { team: 'search' },
          gpu: { zonalRedundancy: false },
          taskCount: 10,
          parallelism: 2,
          executions: [
            { startMinute: -600, taskMinutes: 30 },
            { startMinute: -10, taskMinutes: 30 },
          ],
        },
        { name: 'etl', region: REGION, taskCount: 1, executions: [{ startMinute: -1 }] },
        { name: 'later', region: REGION, gpu: {}, executions: [{ startMinute: 120 }] },
      ],
    },
  ],
};

describe('Cloud Run Jobs and Executions through @google-cloud/run', () => {
  let emulator: RunningEmulator;
  let jobs: InstanceType<typeof run.JobsClient>;
  let executions: InstanceType<typeof run.ExecutionsClient>;

  beforeAll(async () => {
    emulator = await startEmulator({ fleet, speed: 'manual', pageSize: 2 });
    const options = emulatorClientOptions(emulator.env['GOVERNOR_EMULATOR_HOST'] ?? '');
    jobs = new run.JobsClient(options);
    executions = new run.ExecutionsClient(options);
  });
  afterAll(async () => {
    await Promise.all([jobs.close(), executions.close()]);
    await emulator.stop();
  });

  it('lists the jobs of a region with their execution template', async () => {
    const [listed] = await jobs.listJobs({ parent: PARENT });
    expect(listed.map((j) => j.name)).toEqual([
      `${PARENT}/jobs/embed`,
      `${PARENT}/jobs/etl`,
      `${PARENT}/jobs/later`,
    ]);
    const embed = listed[0];
    expect(embed?.labels).toEqual({ team: 'search' });
    expect(embed?.template?.taskCount).toBe(10);
    expect(embed?.template?.parallelism).toBe(2);
    expect(embed?.template?.template?.nodeSelector?.accelerator).toBe('nvidia-l4');
    expect(embed?.template?.template?.gpuZonalRedundancyDisabled).toBe(true);
    expect(embed?.template?.template?.containers?.[0]?.resources?.limits).toMatchObject({
      'nvidia.com/gpu': '1',
    });
    expect(embed?.executionCount).toBe(2);
    expect(embed?.latestCreatedExecution?.completionStatus).toBe('EXECUTION_RUNNING');
  });

  it('lists the executions of every job of a region with "-", running and completed', async () => {
    const [listed] = await executions.listExecutions({ parent: `${PARENT}/jobs/-` });
    const view = listed.map((e) => ({
      job: e.job,
      running: e.runningCount,
      succeeded: e.succeededCount,
      done: e.completionTime !== null && e.completionTime !== undefined,
    }));
    expect(view).toEqual([
      { job: 'embed', running: 2, succeeded: 0, done: false },
      { job: 'embed', running: 0, succeeded: 10, done: true },
      { job: 'etl', running: 1, succeeded: 0, done: false },
    ]);
    expect(listed[0]?.name).toMatch(
      new RegExp(`^${PARENT}/jobs/embed/executions/embed-[a-z0-9]{5}$`),
    );
    expect(listed[0]?.taskCount).toBe(10);
    expect(listed[0]?.parallelism).toBe(2);
    expect(listed[0]?.template?.nodeSelector?.accelerator).toBe('nvidia-l4');
    // One job only.
    const [etl] = await executions.listExecutions({ parent: `${PARENT}/jobs/etl` });
    expect(etl).toHaveLength(1);
  });

  it('runs tasks in waves of the parallelism, holding their GPUs from the pool', async () => {
    // The pool: quota 3, embed's 2 running tasks hold 2, so chat got 1 of the 2 instances it wants.
    const pool = emulator.state().pools.find((p) => !p.zonalRedundancy);
    expect(pool).toMatchObject({ quota: 3, jobGpus: 2, serviceGpus: 1 });

    emulator.advance(25 * MINUTE); // 35 minutes in: the second wave runs
    const [listed] = await executions.listExecutions({ parent: `${PARENT}/jobs/embed` });
    expect(listed[0]).toMatchObject({ runningCount: 2, succeededCount: 2 });
  });

  it('refuses an unknown job, a malformed parent and the "-" location', async () => {
    const cases: [string, status][] = [
      [`${PARENT}/jobs/nope`, status.NOT_FOUND],
      [PARENT, status.INVALID_ARGUMENT],
      [`projects/${PROJECT}/locations/-/jobs/-`, status.INVALID_ARGUMENT],
      [`projects/other-project/locations/${REGION}/jobs/-`, status.PERMISSION_DENIED],
      // A job id no job can have (AIP-122 resource ids) is malformed, not missing.
      [`${PARENT}/jobs/no job`, status.INVALID_ARGUMENT],
      [`${PARENT}/jobs/${'j'.repeat(64)}`, status.INVALID_ARGUMENT],
    ];
    for (const [parent, code] of cases) {
      expect((await codeOf(executions.listExecutions({ parent }))).code, parent).toBe(code);
    }
  });

  it('refuses a malformed revision id as INVALID_ARGUMENT, an unknown one as NOT_FOUND', async () => {
    const revisions = new run.RevisionsClient(
      emulatorClientOptions(emulator.env['GOVERNOR_EMULATOR_HOST'] ?? ''),
    );
    try {
      const cases: [string, status][] = [
        ['chat-00009-zzz', status.NOT_FOUND],
        ['chat 00001', status.INVALID_ARGUMENT],
        ['r'.repeat(64), status.INVALID_ARGUMENT],
      ];
      for (const [revision, code] of cases) {
        const name = `${PARENT}/services/chat/revisions/${revision}`;
        expect((await codeOf(revisions.getRevision({ name }))).code, revision).toBe(code);
      }
    } finally {
      await revisions.close();
    }
  });

  it('does not answer show_deleted with the live jobs and executions only: UNIMPLEMENTED', async () => {
    // show_deleted: "If true, returns deleted (but unexpired) resources along with active ones"
    // (job.proto, execution.proto): valid on Cloud Run, not modelled here.
    for (const call of [
      jobs.listJobs({ parent: PARENT, showDeleted: true }),
      executions.listExecutions({ parent: `${PARENT}/jobs/-`, showDeleted: true }),
    ]) {
      const { code, message } = await codeOf(call);
      expect(code).toBe(status.UNIMPLEMENTED);
      expect(message).toContain('show_deleted');
    }
  });
});
