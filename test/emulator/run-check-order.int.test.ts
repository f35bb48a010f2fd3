/**
 * The order Cloud Run's checks answer in (attack item 8): permission before existence for a
 * project outside the fleet (AIP-211), and arguments wrong whatever the state (INVALID_ARGUMENT)
 * before a stale etag (ABORTED) or an operation in flight (FAILED_PRECONDITION).
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { codeOf, emulatorAndClients, PARENT, REGION } from './helpers.js';

const once = { timeout: 10_000, retry: null };
const OUTSIDE = `projects/other-project/locations/${REGION}`;
const MAX = ['scaling.max_instance_count'];

const t = emulatorAndClients();

describe('Cloud Run answers in the documented order', () => {
  it('denies a project outside the fleet before looking the resource up', async () => {
    const get = await codeOf(
      t.clients.services.getService({ name: `${OUTSIDE}/services/alpha` }, once),
    );
    expect(get.code).toBe(status.PERMISSION_DENIED);
    expect(get.message).toContain("Permission 'run.services.get' denied");
    const update = await codeOf(
      t.clients.services.updateService(
        {
          service: { name: `${OUTSIDE}/services/alpha`, scaling: { maxInstanceCount: 1 } },
          updateMask: { paths: MAX },
        },
        once,
      ),
    );
    expect(update.code).toBe(status.PERMISSION_DENIED);
    expect(update.message).toContain("Permission 'run.services.update' denied");
    const operation = await codeOf(
      t.clients.services.checkUpdateServiceProgress(`${OUTSIDE}/operations/x`),
    );
    expect(operation.code).toBe(status.PERMISSION_DENIED);
    expect(operation.message).toContain("Permission 'run.operations.get' denied");
  });

  it('refuses a bad argument before a stale etag, and a stale etag before the quota check', async () => {
    const update = (maxInstanceCount: number) =>
      codeOf(
        t.clients.services.updateService(
          {
            service: {
              name: `${PARENT}/services/alpha`,
              etag: '"stale"',
              scaling: { maxInstanceCount },
            },
            updateMask: { paths: MAX },
          },
          once,
        ),
      );
    expect((await update(-1)).code).toBe(status.INVALID_ARGUMENT);
    expect((await update(-(2 ** 31))).code).toBe(status.INVALID_ARGUMENT);
    // Over the pool's quota depends on the state: the stale etag answers first.
    expect((await update(50)).code).toBe(status.ABORTED);
  });

  it('refuses a reserved annotation before saying the service is reconciling', async () => {
    t.emulator.deploy({ service: 'beta', seconds: 600 });
    const reserved = await codeOf(
      t.clients.services.updateService(
        {
          service: {
            name: `${PARENT}/services/beta`,
            annotations: { 'run.googleapis.com/x': 'y' },
          },
          updateMask: { paths: ['annotations'] },
        },
        once,
      ),
    );
    expect(reserved.code).toBe(status.INVALID_ARGUMENT);
    const fine = await codeOf(
      t.clients.services.updateService(
        {
          service: { name: `${PARENT}/services/beta`, annotations: { team: 'b' } },
          updateMask: { paths: ['annotations'] },
        },
        once,
      ),
    );
    expect(fine.code).toBe(status.FAILED_PRECONDITION);
  });

  it('refuses annotations outside Kubernetes rules before anything is written', async () => {
    const annotate = (annotations: Record<string, string>) =>
      codeOf(
        t.clients.services.updateService(
          {
            service: { name: `${PARENT}/services/gamma`, annotations },
            updateMask: { paths: ['annotations'] },
          },
          once,
        ),
      );
    const writes = t.emulator.writes().length;
    for (const bad of <Record<string, string>[]>[
      { 'bad key!': 'x' },
      { '-leading': 'x' },
      { [`${'n'.repeat(64)}`]: 'x' },
      { 'a/b/c': 'x' },
      { 'Example.com/x': 'x' },
    ]) {
      const refused = await annotate(bad);
      expect(refused.code).toBe(status.INVALID_ARGUMENT);
      expect(refused.message).toContain('is not valid');
    }
    const big = await annotate({ 'team.example/notes': 'v'.repeat(256 << 10) });
    expect(big.code).toBe(status.INVALID_ARGUMENT);
    expect(big.message).toContain('at most 262144');
    expect(t.emulator.writes()).toHaveLength(writes);
    const [operation] = await t.clients.services.updateService(
      {
        service: {
          name: `${PARENT}/services/gamma`,
          annotations: { 'gpu-governor.dev/writer': 'run-1', owner_team: 'a.b' },
        },
        updateMask: { paths: ['annotations'] },
      },
      once,
    );
    expect(operation.name).toContain('/operations/');
    expect(t.emulator.writes()).toHaveLength(writes + 1);
  });

  it('records each mask path of a write once, however often the request repeats it', async () => {
    const [operation] = await t.clients.services.updateService(
      {
        service: { name: `${PARENT}/services/delta`, scaling: { maxInstanceCount: 1 } },
        updateMask: { paths: Array.from({ length: 30_000 }, () => 'scaling.max_instance_count') },
      },
      once,
    );
    expect(operation.name).toContain('/operations/');
    expect(t.emulator.writes().at(-1)?.updateMask).toEqual(['scaling.max_instance_count']);
  });
});
