import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFunction, type RunningFunction } from '../../bench/function-host.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

/**
 * The function starts without Google's client libraries and loads them when a run needs them
 * (src/adapters/load.ts, docs/performance.md): functions-framework on the built function, in a
 * process of its own as deployed, asked through bench/function-probe.ts which modules it has
 * loaded. What loads is a fact of the process, not a timing.
 */

const PROJECT = 'lazy-project';
const REGION = 'us-central1';
const TOPIC = `projects/${PROJECT}/topics/alerts`;

/** Google's client libraries and what they stand on; functions-framework is the host's own. */
const GOOGLE_PACKAGES = [
  '@google-cloud/run',
  '@google-cloud/monitoring',
  '@google-cloud/cloudquotas',
  '@google-cloud/pubsub',
  '@google-cloud/firestore',
  'google-gax',
  'google-auth-library',
  '@grpc/grpc-js',
];

/** The packages of GOOGLE_PACKAGES among the loaded files. */
function googleLoaded(files: readonly string[]): string[] {
  return GOOGLE_PACKAGES.filter((pkg) =>
    files.some((f) => f.replaceAll('\\', '/').includes(`/node_modules/${pkg}/`)),
  );
}

let emulator: RunningEmulator;
let fn: RunningFunction;
let stateDir: string;

beforeAll(async () => {
  emulator = await startEmulator({
    fleet: {
      start: '2026-11-27T12:00:00Z',
      warmupMinutes: 35,
      topics: [TOPIC],
      projects: [
        {
          id: PROJECT,
          pools: [{ region: REGION, quota: 4 }],
          services: [{ name: 'chat', region: REGION, gpu: {}, maxInstances: 2, demand: 1 }],
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 0,
  });
  stateDir = mkdtempSync(join(tmpdir(), 'governor-lazy-'));
  fn = await startFunction({
    probe: true,
    env: {
      ...emulator.env,
      GOVERNOR_POLICY: JSON.stringify({
        version: 1,
        projects: [PROJECT],
        regions: [REGION],
        services: [{ match: {} }],
        alerts: { topic: TOPIC },
      }),
      GOVERNOR_STATE_DIR: stateDir,
      // As a deployment made without the Terraform module: NODE_ENV unset (empty counts so).
      NODE_ENV: '',
    },
  });
}, 60_000);

afterAll(async () => {
  await fn?.stop();
  await emulator?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('the function loads Google’s clients when a run needs them, not to start', () => {
  it('listens with none of them loaded', async () => {
    const files = await fn.modules();
    // The probe sees the framework's own modules: the check would see Google's too.
    expect(googleLoaded(files)).toEqual([]);
    expect(files.some((f) => f.includes('/node_modules/@google-cloud/functions-framework/'))).toBe(
      true,
    );
  });

  it('a request refused before any run loads none of them', async () => {
    const refused = await fn.run({ mode: 'sideways' });
    expect(refused.status).toBe(400);
    expect(googleLoaded(await fn.modules())).toEqual([]);
  });

  it('a run loads the clients it uses: Cloud Run, Monitoring, Cloud Quotas and Pub/Sub, not Firestore', async () => {
    const run = await fn.run();
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(googleLoaded(await fn.modules())).toEqual([
      '@google-cloud/run',
      '@google-cloud/monitoring',
      '@google-cloud/cloudquotas',
      '@google-cloud/pubsub',
      'google-gax',
      'google-auth-library',
      '@grpc/grpc-js',
    ]);
  });
});

describe('deployed without NODE_ENV, the function still answers as in production', () => {
  it('a body the framework cannot parse is a 400 with no stack trace and no path of the server', async () => {
    const res = await fetch(`http://127.0.0.1:${fn.port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"mode": ',
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    // Outside production Express's error page is the error's stack: "SyntaxError: … at JSON.parse
    // (<anonymous>) at …/node_modules/body-parser/…".
    expect(text).not.toMatch(/SyntaxError|\bat \S+ \(|node_modules/);
    // So are the framework's other refusals, and the function's own answer to a body past its cap.
    const refused: [Record<string, string>, string, number][] = [
      [{ 'content-type': 'application/json; charset=latin1' }, '{}', 415],
      [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'not gzip', 400],
      [{ 'content-type': 'application/json', 'content-encoding': 'x-evil' }, '{}', 415],
      [{ 'content-type': 'application/json' }, JSON.stringify({ mode: 'x'.repeat(100_000) }), 413],
    ];
    for (const [headers, body, status] of refused) {
      const other = await fetch(`http://127.0.0.1:${fn.port}/`, { method: 'POST', headers, body });
      expect(other.status, JSON.stringify(headers)).toBe(status);
      expect(await other.text(), JSON.stringify(headers)).not.toMatch(
        /Error:|\bat \S+ \(|node_modules|xxxx/,
      );
    }
  });
});
