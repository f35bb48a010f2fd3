/**
 * Error messages quote the client's input cut and on one line, and resource ids are checked up
 * front (attack finding 3): a name, etag, mask path or filter of 200,000 characters echoed whole
 * made a grpc-message trailer past what grpc-js sends, and the client's channel stalled forever.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CONTROL } from '../../src/core/text.js';
import { SHOWN_INPUT } from '../../src/emulator/rpc.js';
import { codeOf, emulatorAndClients, PARENT, PROJECT } from './helpers.js';

const HUGE = 200_000;
/** One attempt, and a deadline: a stalled channel fails the test instead of hanging it. */
const once = { timeout: 10_000, retry: null };

const t = emulatorAndClients();

/** The refusal, checked to be short and on one line. */
async function refusal(
  call: Promise<unknown>,
): Promise<{ code: number | undefined; message: string }> {
  const answer = await codeOf(call);
  expect(answer.message.length).toBeLessThan(SHOWN_INPUT + 400);
  expect(answer.message).not.toMatch(CONTROL);
  return answer;
}

describe('errors quote the input cut', () => {
  it('refuses a huge service id up front, and the channel goes on serving', async () => {
    const get = await refusal(
      t.clients.services.getService({ name: `${PARENT}/services/${'a'.repeat(HUGE)}` }, once),
    );
    expect(get.code).toBe(status.INVALID_ARGUMENT);
    expect(get.message).toContain('fewer than 50 characters');
    expect(get.message).toContain(`(${HUGE} characters)`);
    const [alpha] = await t.clients.services.getService({ name: `${PARENT}/services/alpha` }, once);
    expect(alpha.name).toBe(`${PARENT}/services/alpha`);
  });

  it('refuses a service id of 50 characters, as Cloud Run allows fewer', async () => {
    const fifty = await refusal(
      t.clients.services.getService({ name: `${PARENT}/services/${'a'.repeat(50)}` }, once),
    );
    expect(fifty.code).toBe(status.INVALID_ARGUMENT);
    const fortyNine = await refusal(
      t.clients.services.getService({ name: `${PARENT}/services/${'a'.repeat(49)}` }, once),
    );
    expect(fortyNine.code).toBe(status.NOT_FOUND);
  });

  it('refuses a huge quota id up front', async () => {
    // 5,000 characters: the client's routing header carries the name too, and a far longer one is
    // refused by HTTP/2 before it reaches the emulator (RST_STREAM).
    const quota = await refusal(
      t.clients.quotas.getQuotaInfo(
        {
          name: `projects/${PROJECT}/locations/global/services/run.googleapis.com/quotaInfos/${'Q'.repeat(5000)}`,
        },
        once,
      ),
    );
    expect(quota.code).toBe(status.INVALID_ARGUMENT);
    expect(quota.message).toContain('the quota id of the name');
  });

  it('refuses a malformed name of 200,000 characters with a short message', async () => {
    const bad = await refusal(
      t.clients.services.getService({ name: `projects/${PROJECT}/${'a'.repeat(HUGE)}` }, once),
    );
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
  });

  it('quotes a huge etag and a huge mask path cut, without control characters', async () => {
    const etag = await refusal(
      t.clients.services.updateService(
        {
          service: {
            name: `${PARENT}/services/alpha`,
            etag: `\u001b[31m\n${'x'.repeat(HUGE)}`,
            scaling: { maxInstanceCount: 1 },
          },
          updateMask: { paths: ['scaling.max_instance_count'] },
        },
        once,
      ),
    );
    expect(etag.code).toBe(status.ABORTED);
    expect(etag.message).toContain('…');
    const mask = await refusal(
      t.clients.services.updateService(
        {
          service: { name: `${PARENT}/services/alpha` },
          updateMask: { paths: ['p'.repeat(HUGE)] },
        },
        once,
      ),
    );
    expect(mask.code).toBe(status.INVALID_ARGUMENT);
  });

  it('quotes a huge Monitoring filter cut', async () => {
    const now = Math.floor(t.emulator.now().getTime() / 1000);
    const filter = await refusal(
      t.clients.metrics.listTimeSeries(
        {
          name: `projects/${PROJECT}`,
          filter: `metric.type = "${'m'.repeat(HUGE)}"`,
          interval: { startTime: { seconds: now - 600 }, endTime: { seconds: now } },
        },
        once,
      ),
    );
    expect(filter.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('resource ids of every Cloud Run name are checked before anything is looked up', () => {
  it('refuses a malformed project or location in GetOperation, as ListOperations does', async () => {
    const operations = t.clients.services.operationsClient;
    type GetRequest = Parameters<typeof operations.getOperation>[0];
    for (const [name, segment] of [
      ['projects/Not_A_Project/locations/us-central1/operations/x', 'the project of name'],
      [`projects/${PROJECT}/locations/${'l'.repeat(64)}/operations/x`, 'the location of name'],
    ] as const) {
      const get = await refusal(operations.getOperation({ name } as GetRequest, once));
      expect(get.code, name).toBe(status.INVALID_ARGUMENT);
      expect(get.message).toContain(segment);
    }
  });

  it('refuses a malformed project in ListLocations', async () => {
    const list = await refusal(
      t.clients.services.locationsClient.listLocations(
        { name: 'projects/Not_A_Project' },
        { autoPaginate: false },
      ),
    );
    expect(list.code).toBe(status.INVALID_ARGUMENT);
    expect(list.message).toContain('the project of name');
  });
});
