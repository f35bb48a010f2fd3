/**
 * The admin endpoint moves a quota preference as Google would decide it (pending → granted or
 * denied), with the same limits as every admin call: a body must be declared JSON, be bounded,
 * and be well formed; a malformed, oversized or hostile one is a clear 4xx and changes nothing.
 * The preference is filed and read back with the real Cloud Quotas client over gRPC.
 */
import { CloudQuotasClient } from '@google-cloud/cloudquotas';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { clientConfig } from '../../src/adapters/client-config.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { TEST_FLEET_PROJECT, TEST_FLEET_REGION, testFleet } from '../support/fixtures.js';

const PARENT = `projects/${TEST_FLEET_PROJECT}/locations/global`;
const NAME = `${PARENT}/quotaPreferences/more-l4`;

let emulator: RunningEmulator;
let admin: string;
let client: CloudQuotasClient;

/** Files a Cloud Run GPU quota preference through the API, as the governor files one. */
const fileRunPreference = (id: string, quotaId: string, region: string, preferredValue: string) =>
  client.createQuotaPreference({
    parent: PARENT,
    quotaPreferenceId: id,
    quotaPreference: {
      service: 'run.googleapis.com',
      quotaId,
      dimensions: { region },
      quotaConfig: { preferredValue },
      contactEmail: 'ops@example.com',
    },
  });

beforeEach(async () => {
  emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
  admin = emulator.env['GOVERNOR_EMULATOR_ADMIN'] ?? '';
  client = new CloudQuotasClient(clientConfig({ emulatorHost: emulator.host }).options);
  await fileRunPreference('more-l4', 'NvidiaL4GpuAllocPerProjectRegion', TEST_FLEET_REGION, '9');
});

afterEach(async () => {
  await client.close();
  await emulator.stop();
});

async function decide(
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; error: string; body: Record<string, unknown> }> {
  const res = await fetch(`${admin}/quota-preferences/decide`, { method: 'POST', headers, body });
  const parsed = JSON.parse(await res.text()) as Record<string, unknown>;
  return { status: res.status, error: String(parsed['error'] ?? ''), body: parsed };
}

async function read() {
  const [p] = await client.getQuotaPreference({ name: NAME });
  return {
    reconciling: p.reconciling,
    granted: p.quotaConfig?.grantedValue?.value ?? null,
    detail: p.quotaConfig?.stateDetail ?? '',
    etag: p.etag,
  };
}

const quotaOf = async () => {
  const state = (await (await fetch(`${admin}/state`)).json()) as {
    pools: { region: string; accelerator: string; zonalRedundancy: boolean; quota: number }[];
  };
  return state.pools.find(
    (p) => p.region === TEST_FLEET_REGION && p.accelerator === 'nvidia-l4' && p.zonalRedundancy,
  )?.quota;
};

describe('POST /quota-preferences/decide', () => {
  it('lists the pending preference, grants it, and the quota takes it; a second decision is refused', async () => {
    const listed = (await (await fetch(`${admin}/quota-preferences`)).json()) as {
      name: string;
      reconciling: boolean;
    }[];
    expect(listed.map((p) => [p.name, p.reconciling])).toEqual([[NAME, true]]);
    expect(await quotaOf()).toBe(5);
    const r = await decide(JSON.stringify({ name: NAME, decision: 'granted' }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: NAME, reconciling: false, grantedValue: 9 });
    expect(await read()).toMatchObject({ reconciling: false, granted: '9', detail: 'Approved' });
    expect(await quotaOf()).toBe(9);
    const again = await decide(JSON.stringify({ name: NAME, decision: 'denied' }));
    expect(again.status).toBe(400);
    expect(again.error).toContain('is not pending');
    expect(await read()).toMatchObject({ granted: '9' });
  });

  it("grants a region's preference to that region alone, where one quota stood for every region", async () => {
    // testFleet's regionless L4 entry (6) stands for every region without its own.
    const info = async () => {
      const [q] = await client.getQuotaInfo({
        name: `${PARENT}/services/run.googleapis.com/quotaInfos/NvidiaL4GpuAllocPerProjectRegion`,
      });
      return Object.fromEntries(
        (q.dimensionsInfos ?? []).map((d) => [
          d.dimensions?.['region'] ?? '',
          Number(d.details?.value ?? NaN),
        ]),
      );
    };
    await fileRunPreference('more-west', 'NvidiaL4GpuAllocPerProjectRegion', 'europe-west1', '8');
    const before = await info();
    const r = await decide(
      JSON.stringify({ name: `${PARENT}/quotaPreferences/more-west`, decision: 'granted' }),
    );
    expect(r.status).toBe(200);
    const after = await info();
    expect(after['europe-west1']).toBe(8);
    // Every other value stays as it was: the regionless one included.
    for (const [region, value] of Object.entries(before))
      if (region !== 'europe-west1') expect([region, after[region]]).toEqual([region, value]);
    expect(before['']).toBe(6);
  });

  it('decides a preference whose id the API took with underscores, as in Google example ids', async () => {
    const name = `${PARENT}/quotaPreferences/example_default-limit_us-central1`;
    await fileRunPreference(
      'example_default-limit_us-central1',
      'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
      TEST_FLEET_REGION,
      '4',
    );
    const r = await decide(JSON.stringify({ name, decision: 'granted' }));
    expect(r.status, r.error).toBe(200);
    const [p] = await client.getQuotaPreference({ name });
    expect(p.quotaConfig?.grantedValue?.value).toBe('4');
  });

  it('denies with Google state detail', async () => {
    const denied = await decide(
      JSON.stringify({ name: NAME, decision: 'denied', stateDetail: 'No capacity in region' }),
    );
    expect(denied.status).toBe(200);
    expect(await read()).toMatchObject({
      reconciling: false,
      granted: '5',
      detail: 'No capacity in region',
    });
    expect(await quotaOf()).toBe(5);
  });

  it('refuses malformed, oversized and hostile bodies with a clear 4xx, and changes nothing', async () => {
    const before = await read();
    expect(before).toMatchObject({ reconciling: true, granted: null });
    const refused: [string, number, RegExp][] = [
      [JSON.stringify({ name: NAME }), 400, /decision/],
      [JSON.stringify({ name: NAME, decision: 'maybe' }), 400, /decision/],
      [JSON.stringify({ name: 'projects/x/../../etc', decision: 'granted' }), 400, /name/],
      [JSON.stringify({ name: `${NAME}\u0000`, decision: 'granted' }), 400, /name/],
      [JSON.stringify({ name: NAME, decision: 'granted', extra: 1 }), 400, /extra/],
      [JSON.stringify({ name: NAME, decision: 'granted', grantedValue: -1 }), 400, /grantedValue/],
      [JSON.stringify({ name: NAME, decision: 'granted', grantedValue: 1.5 }), 400, /grantedValue/],
      [JSON.stringify({ name: NAME, decision: 'granted', grantedValue: 10 }), 400, /above/],
      [JSON.stringify({ name: NAME, decision: 'denied', grantedValue: 3 }), 400, /grantedValue/],
      [
        JSON.stringify({ name: NAME, decision: 'denied', stateDetail: 'a\nb\u001b[31m' }),
        400,
        /stateDetail/,
      ],
      [
        JSON.stringify({ name: NAME, decision: 'denied', stateDetail: 'x'.repeat(501) }),
        400,
        /stateDetail/,
      ],
      [
        JSON.stringify({ name: `${PARENT}/quotaPreferences/nope`, decision: 'granted' }),
        400,
        /no quota preference/,
      ],
      [JSON.stringify({ name: 'x'.repeat(10_000), decision: 'granted' }), 400, /name/],
      ['{"name":', 400, /not JSON/],
      ['[1,2]', 400, /body/],
      [
        JSON.stringify({ name: NAME, decision: 'granted', pad: 'x'.repeat(1 << 20) }),
        413,
        /1048576/,
      ],
    ];
    for (const [body, code, why] of refused) {
      const r = await decide(body);
      expect(r.status, body.slice(0, 80)).toBe(code);
      expect(r.error, body.slice(0, 80)).toMatch(why);
      expect(r.error.length, body.slice(0, 80)).toBeLessThan(2_000);
    }
    const plain = await decide(JSON.stringify({ name: NAME, decision: 'granted' }), {
      'content-type': 'text/plain',
    });
    expect(plain.status).toBe(415);
    expect(await read()).toEqual(before);
    expect(await quotaOf()).toBe(5);
  });
});

describe('POST /quota-preferences/seed', () => {
  const seed = async (body: unknown) => {
    const res = await fetch(`${admin}/quota-preferences/seed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const parsed = JSON.parse(await res.text()) as Record<string, unknown>;
    return { status: res.status, error: String(parsed['error'] ?? '') };
  };

  it('holds what Google may hold and a GPU count cannot: another quota, -1, beyond 2^53, no etag', async () => {
    const cpu = `${PARENT}/quotaPreferences/cpu-huge`;
    expect(
      (
        await seed({
          name: cpu,
          quotaId: 'CpuAllocPerProjectRegion',
          region: TEST_FLEET_REGION,
          preferredValue: '9007199254740993',
          grantedValue: '-1',
          etag: false,
        })
      ).status,
    ).toBe(200);
    const [p] = await client.getQuotaPreference({ name: cpu });
    expect(p.quotaId).toBe('CpuAllocPerProjectRegion');
    expect(p.quotaConfig?.preferredValue).toBe('9007199254740993');
    expect(p.quotaConfig?.grantedValue?.value).toBe('-1');
    expect(p.etag).toBe('');
    const [list] = await client.listQuotaPreferences({ parent: PARENT });
    expect(list.map((x) => x.name)).toEqual([NAME, cpu]);
  });

  it('grants a seeded preference beyond what a pool holds only with a grantedValue, and changes nothing otherwise', async () => {
    // A GPU quota seeded at int64's most (QuotaConfig.preferred_value is an int64), pending: a
    // grant of that value would make the pool's quota a number the quota info cannot answer.
    const huge = `${PARENT}/quotaPreferences/huge-l4`;
    const seeded = await seed({
      name: huge,
      quotaId: 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
      region: TEST_FLEET_REGION,
      preferredValue: '9223372036854775807',
      reconciling: true,
    });
    expect(seeded.status, seeded.error).toBe(200);
    const refused = await decide(JSON.stringify({ name: huge, decision: 'granted' }));
    expect(refused.status).toBe(400);
    expect(refused.error).toContain('grantedValue');
    const [pending] = await client.getQuotaPreference({ name: huge });
    expect(pending.reconciling).toBe(true);
    expect(pending.quotaConfig?.preferredValue).toBe('9223372036854775807');
    const [info] = await client.getQuotaInfo({
      name: `projects/${TEST_FLEET_PROJECT}/locations/global/services/run.googleapis.com/quotaInfos/NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion`,
    });
    expect(info.dimensionsInfos?.map((d) => d.details?.value)).toEqual(['2']);
    const granted = await decide(
      JSON.stringify({ name: huge, decision: 'granted', grantedValue: 40 }),
    );
    expect(granted.status, granted.error).toBe(200);
    const [after] = await client.getQuotaInfo({ name: info.name ?? '' });
    expect(after.dimensionsInfos?.map((d) => d.details?.value)).toEqual(['40']);
  });

  it("files a preference for a quota whose id and dimensions another service's preference shares", async () => {
    // "only one QuotaPreference resource for a quota value targeting a unique set of dimensions"
    // (QuotaPreference in resources.proto): a quota is a service's, so another service's
    // preference of the same quota id and dimensions is no twin.
    const seeded = await seed({
      name: `${PARENT}/quotaPreferences/compute-l4`,
      service: 'compute.googleapis.com',
      quotaId: 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
      region: TEST_FLEET_REGION,
      preferredValue: '3',
    });
    expect(seeded.status, seeded.error).toBe(200);
    const [filed] = await fileRunPreference(
      'run-l4',
      'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion',
      TEST_FLEET_REGION,
      '4',
    );
    expect(filed.name).toBe(`${PARENT}/quotaPreferences/run-l4`);
  });

  it("leaves Cloud Run's quota as it was when another service's preference of the same quota id is granted", async () => {
    const name = `${PARENT}/quotaPreferences/compute-l4`;
    const seeded = await seed({
      name,
      service: 'compute.googleapis.com',
      quotaId: 'NvidiaL4GpuAllocPerProjectRegion',
      region: TEST_FLEET_REGION,
      preferredValue: '40',
      reconciling: true,
    });
    expect(seeded.status, seeded.error).toBe(200);
    const granted = await decide(JSON.stringify({ name, decision: 'granted' }));
    expect(granted.status, granted.error).toBe(200);
    expect(await quotaOf()).toBe(5);
  });

  it('seeds a preference under an id with underscores, as the API takes one', async () => {
    const name = `${PARENT}/quotaPreferences/cpu_default-limit_us-central1`;
    const r = await seed({ name, quotaId: 'CpuAllocPerProjectRegion', preferredValue: '3' });
    expect(r.status, r.error).toBe(200);
    const [p] = await client.getQuotaPreference({ name });
    expect(p.quotaConfig?.preferredValue).toBe('3');
  });

  it('refuses a taken name, a twin, a value below -1 or beyond int64, another project, and changes nothing', async () => {
    const base = { quotaId: 'CpuAllocPerProjectRegion', preferredValue: '3' };
    const refused: [unknown, RegExp][] = [
      [{ ...base, name: NAME }, /exists/],
      [{ ...base, name: `${PARENT}/quotaPreferences/x`, preferredValue: '-2' }, /preferredValue/],
      [
        { ...base, name: `${PARENT}/quotaPreferences/x`, grantedValue: '9223372036854775808' },
        /grantedValue/,
      ],
      [{ ...base, name: `${PARENT}/quotaPreferences/x`, preferredValue: 3 }, /preferredValue/],
      [
        { ...base, name: 'projects/nobody/locations/global/quotaPreferences/x' },
        /not in the fleet/,
      ],
      [{ ...base, name: `${PARENT}/quotaPreferences/../x` }, /name/],
      [{ ...base, name: `${PARENT}/quotaPreferences/x`, quotaId: 'a/b' }, /quotaId/],
      [{ ...base, name: `${PARENT}/quotaPreferences/x`, region: '../x' }, /region/],
    ];
    for (const [body, why] of refused) {
      const r = await seed(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.error, JSON.stringify(body)).toMatch(why);
    }
    expect(
      (
        await seed({
          name: `${PARENT}/quotaPreferences/first`,
          quotaId: 'CpuAllocPerProjectRegion',
          preferredValue: '3',
        })
      ).status,
    ).toBe(200);
    const twin = await seed({
      name: `${PARENT}/quotaPreferences/second`,
      quotaId: 'CpuAllocPerProjectRegion',
      preferredValue: '4',
    });
    expect(twin.error).toMatch(/already the preference of that quota/);
    const [list] = await client.listQuotaPreferences({ parent: PARENT });
    expect(list.map((x) => x.name?.split('/').pop())).toEqual(['more-l4', 'first']);
  });
});
