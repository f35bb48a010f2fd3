/**
 * The admin endpoint is a development tool, and must not be a hazard:
 * bodies must be declared JSON, are bounded in bytes, trace files stay in the fleet's folder and
 * never show their contents in an error, and `POST /advance` is bounded.
 */
import { mkdirSync, mkdtempSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { testFleet } from '../support/fixtures.js';

const SECRET = 'SECRET-LINE-do-not-print';
const DAY = 24 * 60 * 60_000;

let emulator: RunningEmulator;
let admin: string;
let outside: string;
let fleetDir: string;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'admin-limits-'));
  fleetDir = join(root, 'fleet');
  mkdirSync(fleetDir);
  // A file next to the fleet's folder, not in it; its second line is what must never be shown.
  mkdirSync(join(root, 'outside'));
  outside = join(root, 'outside', 'secret.csv');
  writeFileSync(outside, `value\n${SECRET}\n`);
  writeFileSync(join(fleetDir, 'trace.csv'), 'value\n1\n3\n');
  // Four million samples (a month at about one a second, the most a trace may cover).
  writeFileSync(join(fleetDir, 'long.csv'), `value\n${'1\n2\n'.repeat(2_000_000)}`);
  writeFileSync(join(fleetDir, 'bad.csv'), `value\n${SECRET}\n`);
  writeFileSync(join(fleetDir, 'infinite.csv'), 'value\nInfinity\n');
  // Normalised by its mean: its busy minute asks for 20,000 instances.
  writeFileSync(join(fleetDir, 'spike.csv'), `value\n${'0\n'.repeat(19_999)}1\n`);
  symlinkSync(outside, join(fleetDir, 'escape.csv'));
  mkdirSync(join(fleetDir, 'folder.csv'));
  // Sparse: 65 MiB long, no disk used.
  writeFileSync(join(fleetDir, 'huge.csv'), '');
  truncateSync(join(fleetDir, 'huge.csv'), 65 << 20);
  emulator = await startEmulator({ fleet: testFleet(), speed: 'manual', baseDir: fleetDir });
  admin = emulator.env['GOVERNOR_EMULATOR_ADMIN'] ?? '';
});
afterAll(() => emulator.stop());

async function post(
  path: string,
  body: string | ReadableStream<Uint8Array>,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; error: string; text: string }> {
  const res = await fetch(`${admin}${path}`, {
    method: 'POST',
    headers,
    body,
    ...(typeof body === 'string' ? {} : { duplex: 'half' }),
  } as RequestInit);
  const text = await res.text();
  const parsed = JSON.parse(text) as { error?: unknown };
  return { status: res.status, error: String(parsed.error ?? ''), text };
}

const demandFrom = (file: string) =>
  JSON.stringify({ service: 'gamma', demand: { trace: { file } } });

describe('the admin endpoint is not a hazard', () => {
  it('refuses a body not declared as JSON with 415, before reading it', async () => {
    const plain = await post('/demand', demandFrom(outside), { 'content-type': 'text/plain' });
    expect(plain.status).toBe(415);
    expect(plain.error).toContain('application/json');
    expect(plain.error).not.toContain(SECRET);
    const none = await post('/advance', JSON.stringify({ ms: 60_000 }), {});
    expect(none.status).toBe(415);
    const form = await post('/quota', 'project=test-project&quota=1', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    expect(emulator.now().toISOString()).toBe('2026-11-27T12:00:00.000Z');
    // A POST without a body needs no content type.
    expect((await fetch(`${admin}/reset-calls`, { method: 'POST' })).status).toBe(200);
  });

  it('confines trace files to the fleet folder, and never shows their contents', async () => {
    const refused: [string, RegExp][] = [
      [outside, /outside the fleet's folder/],
      ['../outside/secret.csv', /"\.\." is not allowed/],
      ['escape.csv', /outside the fleet's folder/],
      ['bad.csv', /line 2 is not a number/],
      ['infinite.csv', /line 2 is not a number/],
      ['missing.csv', /cannot be read \(ENOENT\)/],
      ['folder.csv', /not a regular file/],
      ['huge.csv', /68157440 bytes, over the 64 MiB a trace may have/],
      ['/etc/shadow', /outside the fleet's folder/],
      ['/dev/zero', /outside the fleet's folder/],
    ];
    // Each refused from what it is, before any of it is read (the 68 MB file by its size, the
    // devices by their place); one read to its end would hang the test past its timeout.
    for (const [file, why] of refused) {
      const r = await post('/demand', demandFrom(file));
      expect(r.status, file).toBe(400);
      expect(r.error, file).toMatch(why);
      expect(r.error, file).toContain('demand.trace.file');
      expect(r.error, file).not.toContain(SECRET);
    }
    // A trace that reads, but asks for more instances in a minute than any demand may.
    const spike = await post('/demand', demandFrom('spike.csv'));
    expect(spike.status).toBe(400);
    expect(spike.error).toBe(
      'bad demand: demand.trace: trace spike.csv asks for up to 20000 instances in a minute; a service may want at most 10000',
    );
    const ok = await post('/demand', demandFrom('trace.csv'));
    expect(ok.status).toBe(200);
  });

  it('counts the body limit in bytes, refusing 1 MiB of bytes even in fewer characters', async () => {
    // 400 000 characters, 1 200 000 bytes of UTF-8.
    const big = JSON.stringify({ seed: 1, note: '€'.repeat(400_000) });
    const declared = await post('/faults', big);
    expect(declared.status).toBe(413);
    expect(declared.error).toContain('1048576');
    // Streamed without a content-length: refused once the bytes received pass the limit.
    const chunk = new TextEncoder().encode('€'.repeat(100_000));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"note":"'));
        sent += 1;
        if (sent > 40) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const streamed = await post('/faults', stream);
    expect(streamed.status).toBe(413);
    expect(sent).toBeLessThan(40);
  });

  it('takes a body of exactly 1 MiB and refuses one byte more, declared or streamed', async () => {
    const LIMIT = 1 << 20;
    // {"seed":1} padded with the whitespace JSON allows after a value.
    const body = (bytes: number) => `{"seed":1}${' '.repeat(bytes - 10)}`;
    const streamed = (text: string) => {
      const bytes = new TextEncoder().encode(text);
      let at = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) controller.close();
          else controller.enqueue(bytes.subarray(at, (at += 64 << 10)));
        },
      });
    };
    expect((await post('/faults', body(LIMIT))).status).toBe(200);
    expect((await post('/faults', streamed(body(LIMIT)))).status).toBe(200);
    const declared = await post('/faults', body(LIMIT + 1));
    expect([declared.status, declared.error]).toEqual([
      413,
      `request body is ${LIMIT + 1} bytes; the admin endpoint accepts at most ${LIMIT}`,
    ]);
    const over = await post('/faults', streamed(body(LIMIT + 1)));
    expect([over.status, over.error]).toEqual([
      413,
      `request body is over ${LIMIT} bytes; the admin endpoint accepts at most ${LIMIT}`,
    ]);
  });

  it('answers a body of many or long faults with a short line: the first faults, each cut, and a count', async () => {
    const bodies: [string, string][] = [
      ['/advance', JSON.stringify({ ['k'.repeat(500_000)]: 1 })],
      [
        '/advance',
        JSON.stringify(Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, 1]))),
      ],
      [
        '/demand',
        JSON.stringify({
          service: 'gamma',
          demand: { steps: Array.from({ length: 40_000 }, () => ({ at: '99:99', value: -1 })) },
        }),
      ],
    ];
    const badRules = Array.from({ length: 20_000 }, () => ({ method: 1, code: 'NOPE', rate: 9 }));
    bodies.push(['/faults', JSON.stringify({ errors: badRules })]);
    bodies.push(['/invariants', JSON.stringify({ pools: badRules })]);
    for (const [path, body] of bodies) {
      const r = await post(path, body);
      expect(r.status, path).toBe(400);
      expect(r.text.trim().split('\n'), path).toHaveLength(1);
      expect(r.text.length, path).toBeLessThan(8_000);
    }
    const many = await post('/demand', bodies[2]?.[1] ?? '');
    expect(many.error).toMatch(/and \d+ more problems$/);
  });

  it('bounds POST /advance: a whole number of ms, above 0, at most 7 days', async () => {
    for (const ms of [8 * DAY, 1e15, 1.5, 0, -60_000, '60000', null]) {
      const r = await post('/advance', JSON.stringify({ ms }));
      expect(r.status, String(ms)).toBe(400);
      expect(r.error, String(ms)).toContain('ms');
    }
    // Refused without playing any of it: the clock has not moved.
    expect(emulator.now().toISOString()).toBe('2026-11-27T12:00:00.000Z');
    const r = await post('/advance', JSON.stringify({ ms: 60_000 }));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ now: '2026-11-27T12:01:00.000Z' });
  });

  it('bounds the work of one advance for a big fleet', async () => {
    const fleet = testFleet();
    const project = fleet.projects[0];
    if (!project) throw new Error('no project');
    const services = Array.from({ length: 150 }, (_, i) => ({
      name: `web-${i}`,
      region: 'us-central1',
      maxInstances: 2,
      demand: 1,
    }));
    const big = await startEmulator({
      fleet: { ...fleet, warmupMinutes: 1, projects: [{ ...project, services }] },
      speed: 'manual',
    });
    try {
      expect(() => big.advance(7 * DAY)).toThrow(/advance by at most \d+ ms at a time/);
      expect(big.advance(60 * 60_000).toISOString()).toBe('2026-11-27T13:00:00.000Z');
    } finally {
      await big.stop();
    }
  });

  it('listens on 127.0.0.1 only', async () => {
    expect(emulator.env['GOVERNOR_EMULATOR_ADMIN']).toBe(`http://127.0.0.1:${emulator.adminPort}`);
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
      .map((a) => a?.address ?? '');
    for (const host of external) {
      for (const port of [emulator.adminPort, emulator.port]) {
        const outcome = await new Promise<string>((resolve) => {
          const socket = connect({ host, port });
          socket.once('connect', () => {
            socket.destroy();
            resolve('connected');
          });
          socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        });
        expect(outcome, `${host}:${port}`).toBe('ECONNREFUSED');
      }
    }
  });

  it('holds a trace named by POST /create to the same rules, creating nothing on a bad one', async () => {
    const create = (name: string, file: string) =>
      post(
        '/create',
        JSON.stringify({
          project: 'test-project',
          service: { name, region: 'us-central1', demand: { trace: { file } } },
        }),
      );
    const before = emulator.state().services.length;
    const refused: [string, RegExp][] = [
      [outside, /outside the fleet's folder/],
      ['missing.csv', /cannot be read \(ENOENT\)/],
      ['bad.csv', /line 2 is not a number/],
      ['spike.csv', /asks for up to 20000 instances in a minute/],
    ];
    for (const [file, why] of refused) {
      const r = await create('made-bad', file);
      expect(r.status, file).toBe(400);
      expect(r.error, file).toMatch(why);
      expect(r.error, file).toContain('service.demand.trace');
      expect(r.error, file).not.toContain(SECRET);
      expect(emulator.state().services, file).toHaveLength(before);
    }
    // A good one is loaded: the emulator plays it, and goes on answering.
    const ok = await create('made-traced', 'trace.csv');
    expect(ok.status).toBe(200);
    const advanced = await post('/advance', JSON.stringify({ ms: 120_000 }));
    expect(advanced.status, advanced.error).toBe(200);
    expect((await fetch(`${admin}/clock`)).status).toBe(200);
    expect(emulator.state().services.some((s) => s.name === 'made-traced')).toBe(true);
  });
  it('plays a long trace without reading all of it again every minute', async () => {
    const set = await post(
      '/demand',
      JSON.stringify({ service: 'gamma', demand: { trace: { file: 'long.csv' } } }),
    );
    expect(set.status, set.error).toBe(200);
    const began = Date.now();
    const r = await post('/advance', JSON.stringify({ ms: DAY }));
    expect(r.status, r.error).toBe(200);
    // Its mean (the unit of a normalised trace) used to be summed again each minute played: the
    // answer is the same, so only the time tells, and the summing blocks this process. On a
    // loaded machine the day took 0.65 s, and 130 s when summed each minute: 20 s lies far from
    // both, a hang guard that load does not trip.
    expect(Date.now() - began).toBeLessThan(20_000);
  }, 120_000);
});
