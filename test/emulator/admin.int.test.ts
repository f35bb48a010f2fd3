import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLOCK_SPEED, VirtualClock } from '../../src/emulator/clock.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { clientsFor, closeClients, PARENT } from './helpers.js';
import { testFleet } from '../support/fixtures.js';

describe('the virtual clock', () => {
  it('runs at N times the wall clock, or only when advanced', () => {
    let wall = 1_000;
    const fast = new VirtualClock(0, { kind: 'real', speed: 60 }, () => wall);
    const manual = new VirtualClock(0, { kind: 'manual' }, () => wall);
    wall += 1_000;
    expect(fast.now()).toBe(60_000);
    expect(manual.now()).toBe(0);
    manual.advance(5_000);
    fast.advance(5_000);
    wall += 1_000;
    expect(manual.now()).toBe(5_000);
    expect(fast.now()).toBe(125_000);
    expect(() => manual.advance(-1)).toThrow();
  });

  it('runs no faster than a virtual day a second, nor at 0', () => {
    expect(() => new VirtualClock(0, { kind: 'real', speed: MAX_CLOCK_SPEED })).not.toThrow();
    expect(() => new VirtualClock(0, { kind: 'real', speed: MAX_CLOCK_SPEED + 1 })).toThrow(
      RangeError,
    );
    expect(() => new VirtualClock(0, { kind: 'real', speed: 0 })).toThrow(RangeError);
    expect(MAX_CLOCK_SPEED).toBe(86_400);
  });
});

describe('the HTTP admin endpoint', () => {
  let emulator: RunningEmulator;
  let admin: string;

  beforeAll(async () => {
    emulator = await startEmulator({ fleet: testFleet(), speed: 'manual', operationDelayMs: 100 });
    admin = emulator.env['GOVERNOR_EMULATOR_ADMIN'] ?? '';
  });
  afterAll(() => emulator.stop());

  const get = async (path: string) => {
    const res = await fetch(`${admin}${path}`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${admin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('exports the environment a governor needs', () => {
    expect(emulator.env).toEqual({
      GOVERNOR_EMULATOR_HOST: `127.0.0.1:${emulator.port}`,
      GOVERNOR_EMULATOR_ADMIN: `http://127.0.0.1:${emulator.adminPort}`,
      PUBSUB_EMULATOR_HOST: `127.0.0.1:${emulator.port}`,
    });
  });

  it('refuses a query parameter a route does not read, or one given twice', async () => {
    // Ignored, `/published?type=…` answered every message as if filtered.
    const unknown = await get('/published?type=pool.over-budget');
    expect(unknown).toEqual({
      status: 400,
      body: { error: 'GET /published: unknown query parameter "type" (it takes topic)' },
    });
    expect((await get('/state?verbose=1')).body).toEqual({
      error: 'GET /state: unknown query parameter "verbose" (it takes none)',
    });
    expect((await get('/published?topic=a&topic=b')).body).toEqual({
      error: 'GET /published: query parameter "topic" given twice',
    });
    // The one it reads is read: a topic the emulator does not have is named as such.
    expect(
      JSON.stringify((await get('/published?topic=projects/p/topics/nothing')).body),
    ).toContain('no topic projects/p/topics/nothing');
    // An unknown route is still a 404 that lists the routes.
    const missing = await get('/publshed?topic=x');
    expect(missing.status).toBe(404);
    expect(JSON.stringify(missing.body)).toContain('GET /state /clock');
  });

  it('shows the state and moves the clock', async () => {
    const { body } = (await get('/state')) as { body: Record<string, unknown> };
    expect(body['now']).toBe('2026-11-27T12:00:00.000Z');
    expect(body['clock']).toEqual({ mode: 'manual' });
    expect(body['pools']).toContainEqual(
      expect.objectContaining({
        region: 'us-central1',
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
        quota: 5,
        workerPoolGpus: 1,
      }),
    );
    const advanced = await post('/advance', { ms: 90_000 });
    expect(advanced.body['now']).toBe('2026-11-27T12:01:30.000Z');
  });

  it('changes demand, quotas and deployments', async () => {
    const demand = await post('/demand', {
      service: 'gamma',
      demand: { steps: [{ at: '00:00', value: 2 }] },
    });
    expect(demand.status).toBe(200);
    await post('/advance', { ms: 60_000 });
    const gamma = () => emulator.state().services.find((s) => s.name === 'gamma');
    expect(gamma()?.demand).toBe(2);
    const quota = await post('/quota', {
      project: 'test-project',
      region: 'us-central1',
      quota: 9,
    });
    expect(quota.status).toBe(200);
    expect(
      emulator.state().pools.find((p) => p.region === 'us-central1' && p.zonalRedundancy)?.quota,
    ).toBe(9);
    const deploy = await post('/deploy', { service: 'gamma', seconds: 30 });
    expect(deploy.body['reconciling']).toBe(true);
    await post('/advance', { ms: 60_000 });
    expect(gamma()?.reconciling).toBe(false);
  });

  it('refuses a quota for a region or an accelerator no fleet could name, changing nothing', async () => {
    const before = emulator.state().pools;
    const badRegion = await post('/quota', {
      project: 'test-project',
      region: '../x',
      quota: 1,
    });
    expect(badRegion.status).toBe(400);
    expect(String(badRegion.body['error'])).toMatch(/region: expected a region such as/);
    const badAccelerator = await post('/quota', {
      project: 'test-project',
      region: 'us-central1',
      accelerator: 'a'.repeat(5000),
      quota: 1,
    });
    expect(badAccelerator.status).toBe(400);
    expect(String(badAccelerator.body['error'])).toMatch(/accelerator: Too big/);
    expect(String(badAccelerator.body['error']).length).toBeLessThan(500);
    expect(emulator.state().pools).toEqual(before);
  });

  it('refuses to create a service in a project the fleet does not have, or under a name Cloud Run refuses, creating nothing', async () => {
    const before = emulator.state().services.length;
    const service = { name: 'made-later', region: 'us-central1' };
    const cases: [string, RegExp][] = [
      ['nope-project', /project nope-project is not in the fleet/],
      ['p'.repeat(100_000), /project: expected a project id/],
    ];
    for (const [project, error] of cases) {
      const res = await post('/create', { project, service });
      expect(res.status).toBe(400);
      expect(String(res.body['error'])).toMatch(error);
      expect(String(res.body['error']).length).toBeLessThan(500);
    }
    const badName = await post('/create', {
      project: 'test-project',
      service: { ...service, name: '../x' },
    });
    expect(badName.status).toBe(400);
    expect(emulator.state().services).toHaveLength(before);
  });

  it('answers 400 with the faulty field for bad input, 404 for unknown routes', async () => {
    const bad = await post('/demand', { service: 'gamma', demand: { constant: -1 } });
    expect(bad.status).toBe(400);
    expect(String(bad.body['error'])).toContain('demand');
    const unknown = await post('/demand', { service: 'nope', demand: 1 });
    expect(unknown.status).toBe(400);
    expect((await get('/nowhere')).status).toBe(404);
  });

  it('refuses a fault rule that could never fire, and waits that never end', async () => {
    const before = await get('/faults');
    const nowhere = await post('/faults', {
      errors: [{ method: '../../x', code: 'UNAVAILABLE', rate: 1 }],
    });
    expect(nowhere.status).toBe(400);
    expect(String(nowhere.body['error'])).toContain(
      'errors[0].method: "../../x" names no method the emulator serves',
    );
    // A method by its short name or full name, and "*", are served.
    for (const method of ['UpdateService', 'google.monitoring.v3.MetricService/ListTimeSeries'])
      expect(
        (await post('/faults', { errors: [{ method, code: 'UNAVAILABLE', rate: 0 }] })).status,
      ).toBe(200);
    expect((await post('/faults', { operations: { hangMs: 1e308 } })).status).toBe(400);
    expect((await post('/deploy', { service: 'beta', seconds: 1e308 })).status).toBe(400);
    // Monitoring lag, at most a day: beyond it a read would see no point at all, with no error.
    const lagged = await post('/faults', { monitoring: { extraLagMs: 86_400_001 } });
    expect(lagged.status).toBe(400);
    expect(String(lagged.body['error'])).toContain('monitoring.extraLagMs');
    expect((await post('/faults', { monitoring: { extraLagMs: 86_400_000 } })).status).toBe(200);
    // Every page short: a list would never end (a short page always offers another).
    const endless = await post('/faults', { paging: { shortRate: 1 } });
    expect(endless.status).toBe(400);
    expect(String(endless.body['error'])).toContain('paging.shortRate');
    expect((await post('/faults', { paging: { shortRate: 0.9 } })).status).toBe(200);
    // One draw decides an operation: rates that add up past 1 would hang fewer than asked.
    const overdrawn = await post('/faults', { operations: { failRate: 0.5, hangRate: 0.6 } });
    expect(overdrawn.status).toBe(400);
    expect(String(overdrawn.body['error'])).toContain('operations.hangRate');
    expect((await post('/faults', { operations: { failRate: 0.4, hangRate: 0.6 } })).status).toBe(
      200,
    );
    await post('/faults', (before.body as { config: Record<string, unknown> }).config);
  });

  it('refuses a latency rule whose delay cannot be drawn as asked, changing nothing', async () => {
    const before = JSON.stringify((await get('/faults')).body);
    const refused: [object, RegExp][] = [
      [{ minMs: 5_000, maxMs: 100 }, /latency\.0\.minMs: .*at most maxMs/],
      [{ minMs: 1e300, maxMs: 100 }, /latency\.0\.minMs/],
      [{ distribution: 'exponential', meanMs: 1e300, maxMs: 100 }, /latency\.0\.meanMs/],
    ];
    for (const [rule, why] of refused) {
      const r = await post('/faults', { latency: [{ method: 'GetService', ...rule }] });
      expect(r.status, JSON.stringify(rule)).toBe(400);
      expect(String(r.body['error'])).toMatch(why);
      expect(JSON.stringify((await get('/faults')).body)).toBe(before);
    }
    expect(
      (await post('/faults', { latency: [{ method: 'GetService', minMs: 100, maxMs: 100 }] }))
        .status,
    ).toBe(200);
    await post('/faults', JSON.parse(before).config as Record<string, unknown>);
  });

  it('records calls and writes, and resets the call log', async () => {
    const clients = clientsFor(emulator);
    try {
      const [op] = await clients.services.updateService({
        service: { name: `${PARENT}/services/beta`, scaling: { maxInstanceCount: 2 } },
        updateMask: { paths: ['scaling.max_instance_count'] },
      });
      await op.promise();
    } finally {
      await closeClients(clients);
    }
    const calls = await get('/calls');
    expect((calls.body as { method: string }[]).map((c) => c.method)).toContain(
      'google.cloud.run.v2.Services/UpdateService',
    );
    const writes = await get('/writes');
    expect((writes.body as unknown[]).at(-1)).toMatchObject({
      service: { name: 'beta' },
      after: { maxInstances: 2 },
      pool: { quota: 9 },
    });
    await post('/reset-calls', {});
    expect((await get('/calls')).body).toEqual([]);
  });
});
