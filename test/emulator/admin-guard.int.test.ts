/**
 * The admin endpoint refuses what a browser could send it from another site (attack findings 6
 * and 7): a form post to any route (even one that reads no body), a request whose Host is not the
 * endpoint itself (DNS rebinding), and a non-object body where an object configures something.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { testFleet } from '../support/fixtures.js';
import { clientsFor, closeClients, PARENT } from './helpers.js';

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ fleet: testFleet(), speed: 'manual' });
});
afterAll(() => emulator.stop());

/** One request with exactly these headers (fetch will not send another Host). */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: emulator.adminPort, method, path, headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const host = () => `127.0.0.1:${emulator.adminPort}`;

describe('the admin endpoint refuses cross-site requests', () => {
  it('refuses a form post to /reset-calls, and keeps the call log', async () => {
    const clients = clientsFor(emulator);
    await clients.services.getService({ name: `${PARENT}/services/alpha` });
    await closeClients(clients);
    const before = emulator.calls().length;
    expect(before).toBeGreaterThan(0);
    const form = await send(
      'POST',
      '/reset-calls',
      { host: host(), 'content-type': 'application/x-www-form-urlencoded' },
      'a=1',
    );
    expect(form.status).toBe(415);
    const plain = await send(
      'POST',
      '/reset-calls',
      { host: host(), 'content-type': 'text/plain' },
      'x',
    );
    expect(plain.status).toBe(415);
    expect(emulator.calls().length).toBe(before);
    expect(emulator.droppedCalls()).toBe(0);
  });

  it('refuses a body /reset-calls cannot take (malformed, or asking for what it does not do), and keeps the call log', async () => {
    const clients = clientsFor(emulator);
    await clients.services.getService({ name: `${PARENT}/services/alpha` });
    await closeClients(clients);
    const before = emulator.calls().length;
    expect(before).toBeGreaterThan(0);
    for (const body of ['{bad', '{"keep": 10}', '[]', '3']) {
      const res = await send(
        'POST',
        '/reset-calls',
        { host: host(), 'content-type': 'application/json' },
        body,
      );
      expect(res.status, body).toBe(400);
      expect(res.text.trim().split('\n'), body).toHaveLength(1);
    }
    expect(emulator.calls().length).toBe(before);
    // No body, or an empty object, still resets.
    for (const body of ['', '{}']) {
      const res = await send(
        'POST',
        '/reset-calls',
        { host: host(), 'content-type': 'application/json' },
        body,
      );
      expect(res.status, body).toBe(200);
    }
    expect(emulator.calls()).toEqual([]);
  });

  it('refuses a Host other than the endpoint itself, with one line', async () => {
    for (const bad of [`evil.example:${emulator.adminPort}`, '127.0.0.1:1', 'localhost']) {
      const res = await send('GET', '/state', { host: bad });
      expect(res.status).toBe(403);
      expect(res.text.trim().split('\n')).toHaveLength(1);
      expect(res.text).toContain('Host');
    }
    const advance = await send(
      'POST',
      '/advance',
      { host: `rebound.example:${emulator.adminPort}`, 'content-type': 'application/json' },
      '{"ms":60000}',
    );
    expect(advance.status).toBe(403);
    expect(emulator.now().toISOString()).toBe('2026-11-27T12:00:00.000Z');
    for (const good of [host(), `localhost:${emulator.adminPort}`, `[::1]:${emulator.adminPort}`]) {
      expect((await send('GET', '/clock', { host: good })).status).toBe(200);
    }
  });

  it('refuses a non-object body for /faults and /invariants, and changes nothing', async () => {
    emulator.setFaults({
      seed: 7,
      errors: [{ method: 'GetService', code: 'UNAVAILABLE', rate: 1 }],
    });
    const faults = JSON.stringify(emulator.faults());
    for (const path of ['/faults', '/invariants']) {
      for (const body of ['[]', 'null', '"x"', '3']) {
        const res = await send(
          'POST',
          path,
          { host: host(), 'content-type': 'application/json' },
          body,
        );
        expect(res.status).toBe(400);
        expect(res.text).toContain('expected an object');
      }
    }
    expect(JSON.stringify(emulator.faults())).toBe(faults);
  });
  it('answers a request it cannot parse with one JSON line, and goes on serving', async () => {
    /** The raw answer to raw bytes: what no HTTP client would send. */
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: emulator.adminPort }, () =>
          socket.end(text),
        );
        let out = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (out += chunk));
        socket.on('close', () => resolve(out));
        socket.on('error', reject);
      });
    const cases: [string, string, RegExp][] = [
      [
        `POST /advance HTTP/1.1\r\nHost: ${host()}\r\ncontent-type: application/json\r\nContent-Length: abc\r\n\r\n{}`,
        '400',
        /malformed HTTP request/,
      ],
      [
        `GET /state HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        '431',
        /headers are too large/,
      ],
      ['NOT HTTP AT ALL\r\n\r\n', '400', /malformed HTTP request/],
      // A request target Node takes but that is no URL: it used to end the emulator's process.
      [`GET http://[ HTTP/1.1\r\nHost: ${host()}\r\n\r\n`, '400', /request target .* is not a URL/],
      [`GET http://[ HTTP/1.1\r\nHost: evil.example\r\n\r\n`, '403', /the Host header must be/],
      [`POST //[/x HTTP/1.1\r\nHost: ${host()}\r\n\r\n`, '400', /request target .* is not a URL/],
    ];
    const REASONS: Record<string, string> = {
      '400': 'Bad Request',
      '403': 'Forbidden',
      '431': 'Request Header Fields Too Large',
    };
    for (const [text, status, why] of cases) {
      const answer = await raw(text);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head.split('\r\n')[0], text.slice(0, 30)).toBe(
        `HTTP/1.1 ${status} ${REASONS[status] ?? ''}`,
      );
      expect(head.toLowerCase()).toContain('content-type: application/json');
      expect(body.trim().split('\n')).toHaveLength(1);
      expect(String((JSON.parse(body) as { error?: unknown }).error)).toMatch(why);
    }
    expect(emulator.now().toISOString()).toBe('2026-11-27T12:00:00.000Z');
    expect((await send('GET', '/clock', { host: host() })).status).toBe(200);
  });
});
