import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { stopWithBench } from './stop-on-signal.js';
import { errorMessage } from '../src/core/errors.js';

/**
 * The function as it is deployed, for the benchmarks (and a test): functions-framework's own
 * command started on the built entry point, in a process of its own, and the emulator in another
 * (bench/emulator-child.ts). Each process is stopped by its own handle (its PID), never by name.
 * Paths are the built ones, from the repository's root (where npm runs the bench and the tests).
 */

/** What `functions-framework --target=governorHttp` runs. */
export const FRAMEWORK_MAIN = 'node_modules/@google-cloud/functions-framework/build/src/main.js';
export const GOVERNOR_SOURCE = 'dist/src/function/index.js';
export const NOOP_SOURCE = 'dist/bench/noop-function.js';
const PROBE = 'dist/bench/function-probe.js';
const EMULATOR_CHILD = 'dist/bench/emulator-child.js';

export interface ProcessMemory {
  /** CPU time the process has used since it started (user + system), in microseconds. */
  cpuMicros: number;
  /** The resident set's high-water mark since the process started. */
  peakRssBytes: number;
  rssBytes: number;
  /** After a full garbage collection: what the process holds on to. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** The process's active resources (`process.getActiveResourcesInfo()`), counted by kind. */
  activeResources: Record<string, number>;
  /** The gRPC channels the process has not closed, by target (grpc-js's channelz registry). */
  grpcChannels: Record<string, number>;
}

export interface RunAnswer {
  status: number;
  body: Record<string, unknown>;
  /** From sending the request to the whole answer. */
  ms: number;
}

export interface RunningFunction {
  readonly pid: number;
  readonly port: number;
  /** From spawning the process to the first accepted connection on its port. */
  readonly listeningMs: number;
  /** POST / with this JSON body: one run. */
  run(body?: Record<string, unknown>): Promise<RunAnswer>;
  /** The process's memory (needs `probe: true`). */
  memory(): Promise<ProcessMemory>;
  /** The files of every CommonJS module the process has loaded (needs `probe: true`). */
  modules(): Promise<string[]>;
  /** Writes a heap snapshot of the process (needs `probe: true`); its file. */
  snapshot(): Promise<string>;
  stop(): Promise<void>;
}

export interface FunctionOptions {
  /** The built entry point; the governor's by default. */
  source?: string;
  /** The function the entry point exports to serve (`--target`); `governorHttp` by default. */
  target?: string;
  env?: Record<string, string>;
  /** Load bench/function-probe.ts into the process (and expose the garbage collector). */
  probe?: boolean;
  /** The V8 heap limit (--max-old-space-size), as the deployed instance's memory sets it. */
  heapLimitMb?: number;
}

export async function startFunction(options: FunctionOptions = {}): Promise<RunningFunction> {
  const port = await freePort();
  const nodeArgs = [
    ...(options.heapLimitMb ? [`--max-old-space-size=${options.heapLimitMb}`] : []),
    ...(options.probe ? ['--expose-gc', '--import', pathToFileURL(resolve(PROBE)).href] : []),
  ];
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      FRAMEWORK_MAIN,
      `--target=${options.target ?? 'governorHttp'}`,
      `--source=${options.source ?? GOVERNOR_SOURCE}`,
      `--port=${port}`,
    ],
    {
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none', ...options.env },
      stdio: ['ignore', 'ignore', 'pipe', ...(options.probe ? (['ipc'] as const) : [])],
    },
  );
  stopWithBench(child);
  const stderr = collectStderr(child);
  const stop = () => stopProcess(child);
  let listeningMs = NaN;
  try {
    const deadline = t0 + 30_000;
    while (performance.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`the function exited (${child.exitCode ?? child.signalCode}): ${stderr()}`);
      if (await canConnect(port)) {
        listeningMs = performance.now() - t0;
        break;
      }
      await delay(2);
    }
    if (Number.isNaN(listeningMs))
      throw new Error(`the function did not listen within 30 s: ${stderr()}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    pid: child.pid ?? -1,
    port,
    listeningMs,
    run: async (body = {}) => {
      const t = performance.now();
      try {
        const answer = await postJson(port, body);
        return { ...answer, ms: performance.now() - t };
      } catch (e) {
        // Give the process a moment to exit, so that its status and last words are known.
        await delay(200);
        const exit = child.exitCode ?? child.signalCode;
        throw new Error(
          `the run got no answer (${errorMessage(e)}; the function ${exit === null ? 'is still running' : `exited: ${exit}`}): ${stderr()}`,
          { cause: e },
        );
      }
    },
    memory: () => ask<ProcessMemory>(child, 'memory'),
    modules: async () => (await ask<{ modules: string[] }>(child, 'modules')).modules,
    snapshot: async () => (await ask<{ file: string }>(child, 'snapshot')).file,
    stop,
  };
}

export interface RunningEmulatorProcess {
  readonly pid: number;
  /** GOVERNOR_EMULATOR_HOST, GOVERNOR_EMULATOR_ADMIN and PUBSUB_EMULATOR_HOST. */
  readonly env: Record<string, string>;
  /** The emulator process's memory (needs `probe: true`). */
  memory(): Promise<ProcessMemory>;
  /** Writes a heap snapshot of the process (needs `probe: true`); its file. */
  snapshot(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The emulator (bench/emulator-child.ts) in its own process, over a fleet of `fleet` services or
 * the fleet file it names.
 */
export async function startEmulatorProcess(
  fleet: number | string,
  options: { probe?: boolean } = {},
): Promise<RunningEmulatorProcess> {
  const probe = options.probe
    ? ['--expose-gc', '--import', pathToFileURL(resolve(PROBE)).href]
    : [];
  const child = spawn(process.execPath, [...probe, EMULATOR_CHILD, String(fleet)], {
    // Its stdin is how it knows this process is still there (bench/emulator-child.ts).
    stdio: ['pipe', 'pipe', 'pipe', ...(options.probe ? (['ipc'] as const) : [])],
  });
  stopWithBench(child);
  const stderr = collectStderr(child);
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const end = out.indexOf('\n');
        if (end >= 0) resolve(out.slice(0, end));
      });
      child.once('exit', (code) => reject(new Error(`the emulator exited (${code}): ${stderr()}`)));
    });
    const { env } = JSON.parse(line) as { env: Record<string, string> };
    return {
      pid: child.pid ?? -1,
      env,
      memory: () => ask<ProcessMemory>(child, 'memory'),
      snapshot: async () => (await ask<{ file: string }>(child, 'snapshot')).file,
      stop: () => stopProcess(child),
    };
  } catch (e) {
    await stopProcess(child);
    throw e;
  }
}

function collectStderr(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (d: Buffer) => {
    // Only the end is kept: it is where a crash explains itself.
    text = (text + d.toString()).slice(-4_000);
  });
  return () => text;
}

/** Stops a child by its own handle: SIGTERM, SIGKILL after 5 s; nothing for one already gone. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The policy the function benches run (GOVERNOR_POLICY): every service of `project` governed with
 * the default limits, alerts to `topic`, and the pacing of writes lifted: it only waits, neither
 * allocating nor computing, so that a run's time is its work (docs/performance.md).
 */
export function benchPolicyJson(project: string, topic: string): string {
  return JSON.stringify({
    version: 1,
    projects: [project],
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    alerts: { topic },
  });
}

/** How long a question whose channel failed waits for the process's exit, to report that. */
const EXIT_AFTER_CHANNEL_MS = 5_000;

/** One question to bench/function-probe.ts over the IPC channel, and its answer. */
function ask<T>(child: ChildProcess, type: 'memory' | 'modules' | 'snapshot'): Promise<T> {
  return new Promise((resolve, reject) => {
    if (!child.send) {
      reject(new Error('the function was started without the probe'));
      return;
    }
    // A process that died answers nothing: the question fails rather than waits for ever (a
    // soak's function may die of the very growth it looks for, during the probe's collection).
    const exited = () => `the process exited (${child.exitCode ?? child.signalCode})`;
    if (child.exitCode !== null || child.signalCode !== null) {
      reject(new Error(exited()));
      return;
    }
    let waitingForExit: NodeJS.Timeout | undefined;
    const done = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      clearTimeout(waitingForExit);
    };
    const onMessage = (message: unknown) => {
      if (typeof message !== 'object' || message === null || !('type' in message)) return;
      if (message.type !== type) return;
      done();
      resolve(message as T);
    };
    const onExit = () => {
      done();
      reject(new Error(exited()));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send({ type }, (e) => {
      if (!e) return;
      // The channel fails (EPIPE) as the process dies, before its exit is seen here: the exit,
      // when it follows, says more (a signal, an exit code), so it is waited for a while.
      waitingForExit = setTimeout(() => {
        done();
        reject(new Error(`the probe's channel failed: ${e.message}`, { cause: e }));
      }, EXIT_AFTER_CHANNEL_MS);
    });
  });
}

/** POST / with a JSON body over plain node:http (no client-side timeout: a run takes its time). */
function postJson(
  port: number,
  body: Record<string, unknown>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as Record<string, unknown>,
            });
          } catch {
            reject(new Error(`the function answered ${res.statusCode}: ${text.slice(0, 500)}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
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

export function freePort(): Promise<number> {
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

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return NaN;
  return sorted.length % 2
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
