import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parse as parseYaml, stringify } from 'yaml';
import { startEmulator } from '../src/emulator/index.js';

/**
 * The Cloud Function's cold start: the functions-framework CLI started on the built function, the
 * example fleet in the emulator. Measures process start → port listening, and → the first run
 * (one POST) answered.
 */
export async function benchColdStart(): Promise<{
  listeningMs: number;
  firstRunMs: number;
  status: number;
}> {
  const emulator = await startEmulator({
    fleet: 'examples/fleet.yaml',
    speed: 'manual',
    operationDelayMs: 0,
  });
  const stateDir = await mkdtemp(join(tmpdir(), 'governor-cold-'));
  const port = await freePort();
  // The demo policy without its Pub/Sub topic: alerts are only logged (no credentials needed).
  const demo = parseYaml(await readFile('examples/demo-policy.yaml', 'utf8')) as Record<
    string,
    unknown
  >;
  // A dry run is asked of the function: the policy lets a request ask for one.
  const policy = stringify({
    ...demo,
    alerts: undefined,
    function: { allow: { dryRun: true } },
  });
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      'node_modules/@google-cloud/functions-framework/build/src/main.js',
      '--target=governorHttp',
      '--source=dist/src/function/index.js',
      `--port=${port}`,
    ],
    {
      env: {
        ...process.env,
        ...emulator.env,
        GOVERNOR_POLICY: policy,
        GOVERNOR_STATE_DIR: stateDir,
        METADATA_SERVER_DETECTION: 'none',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    let listeningMs = NaN;
    for (let i = 0; i < 600; i++) {
      if (child.exitCode !== null)
        throw new Error(`the function exited (${child.exitCode}): ${stderr}`);
      if (await canConnect(port)) {
        listeningMs = performance.now() - t0;
        break;
      }
      await delay(10);
    }
    if (Number.isNaN(listeningMs))
      throw new Error(`the function did not listen within 6 s: ${stderr}`);
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'dry-run' }),
    });
    const body = await res.text();
    if (res.status !== 200)
      throw new Error(`the first run answered ${res.status}: ${body.slice(0, 500)}`);
    return { listeningMs, firstRunMs: performance.now() - t0, status: res.status };
  } finally {
    child.kill('SIGTERM');
    await emulator.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
