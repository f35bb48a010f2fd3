/**
 * Starts one of Google's Java emulators (Pub/Sub, Firestore) for a test, from the Debian package
 * that ships it in the machine image: finds the jar with `dpkg -L`, runs `java` on it directly
 * (not through the gcloud wrapper, so the process we hold is the emulator itself), on 127.0.0.1 and
 * a free port, and waits until it serves. Any failure to start throws: a test that needs an
 * emulator fails, it never skips.
 *
 * Stopping sends SIGTERM to the child's own PID, then SIGKILL after a grace period. Should a test
 * file end without stopping its emulators (a failed `beforeAll`, a forgotten `stop`), a hook on
 * the process's exit and termination signals kills whatever still runs.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** How to start one kind of emulator. */
export interface JavaEmulatorSpec {
  /** For messages: "Pub/Sub emulator". */
  name: string;
  /** The Debian package that ships the jar. */
  debianPackage: string;
  /** Picks the jar among the package's files. */
  jar: RegExp;
  /** The arguments of `java` (JVM flags, then `-jar JAR` or `-cp JAR Main`, then the emulator's). */
  javaArgs(jar: string, host: string, port: number): string[];
  /** A line the emulator logs once it serves on `port`. */
  ready(port: number): RegExp;
}

export interface RunningEmulator {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as `PUBSUB_EMULATOR_HOST` and `FIRESTORE_EMULATOR_HOST` want it. */
  readonly endpoint: string;
  /** The PID of the JVM. */
  readonly pid: number;
  /** What the emulator has logged so far (the last 64 KiB). */
  log(): string;
  /** Stops the JVM and waits for it to exit. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** How long to wait for the emulator to serve. Default 50 s (a cold JVM on a busy machine; below the 60 s of an integration test or hook). */
  startTimeoutMs?: number;
  /** How long SIGTERM gets before SIGKILL. Default 5 s. */
  stopGraceMs?: number;
}

const host = '127.0.0.1';
const logLimit = 64 * 1024;
/**
 * HotSpot's flags for an emulator that lives for one test run on a machine of two cores, which it
 * shares with the tests' own processes. `-XX:TieredStopAtLevel=1`: only the quick C1 compiler, not
 * C2, whose optimising compilations a short run never earns back; `-XX:+UseSerialGC`: one garbage
 * collector thread, not G1's parallel and concurrent ones
 * (https://docs.oracle.com/en/java/javase/17/docs/specs/man/java.html). Neither changes what the
 * emulator answers; with them the Firestore store's test file (its own JVM) took 15 to 17 s of
 * CPU rather than 22 to 24 s, and a third less wall time, on a loaded 2-core machine.
 */
const JVM_FLAGS = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];
const portAttempts = 3;

/** Starts the emulator and resolves once it serves, or rejects with what it logged. */
export async function startJavaEmulator(
  spec: JavaEmulatorSpec,
  options: StartOptions = {},
): Promise<RunningEmulator> {
  const jar = await findPackageFile(spec.debianPackage, spec.jar);
  // The free port is only free when we looked; should another process take it before the JVM
  // binds it, try again with another.
  for (let attempt = 1; ; attempt += 1) {
    const port = await findFreePort();
    try {
      return await launch(spec, jar, port, options);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt === portAttempts) throw error;
    }
  }
}

/** The file of an installed Debian package whose path matches `pattern`. */
export async function findPackageFile(debianPackage: string, pattern: RegExp): Promise<string> {
  let listing: string;
  try {
    ({ stdout: listing } = await promisify(execFile)('dpkg', ['-L', debianPackage]));
  } catch (error) {
    throw new Error(
      `The Debian package ${debianPackage} is not installed (dpkg -L failed); ` +
        `install it with: apt-get install ${debianPackage}`,
      { cause: error },
    );
  }
  const found = listing.split('\n').find((path) => pattern.test(path));
  if (found === undefined) {
    throw new Error(`The Debian package ${debianPackage} holds no file matching ${pattern}`);
  }
  return found;
}

/** A TCP port on 127.0.0.1 that nothing listens on at the time of asking. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error(`Unexpected server address: ${String(address)}`));
      });
    });
  });
}

class PortTakenError extends Error {}

/**
 * The JVMs still running, killed (SIGKILL, the only signal a synchronous hook can wait for) when
 * the test process exits or is told to stop: vitest ends its workers with SIGTERM, whose default
 * action skips the `exit` event. Only a SIGKILL of the test process itself escapes this.
 */
const live = new Set<ChildProcess>();
let cleanupInstalled = false;

function killLeftovers(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', killLeftovers);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killLeftovers();
      // Had nobody else asked for the signal, its default action (ending the process) is due.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

async function launch(
  spec: JavaEmulatorSpec,
  jar: string,
  port: number,
  { startTimeoutMs = 50_000, stopGraceMs = 5_000 }: StartOptions,
): Promise<RunningEmulator> {
  installCleanup();
  const java = process.env['JAVA_HOME'] ? join(process.env['JAVA_HOME'], 'bin', 'java') : 'java';
  const child = spawn(java, [...JVM_FLAGS, ...spec.javaArgs(jar, host, port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);

  let output = '';
  const ready = spec.ready(port);
  let sawReadyLine = false;
  const onOutput = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-logLimit);
    sawReadyLine ||= ready.test(output);
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);

  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
    live.delete(child);
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null || spawnError) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  const describe = (what: string): string =>
    `${spec.name} (${jar}) ${what} on ${host}:${port}. Its output:\n${output || '(none)'}`;

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (spawnError) {
      const missing = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
      const hint = !missing
        ? ''
        : process.env['JAVA_HOME']
          ? ` (JAVA_HOME is ${process.env['JAVA_HOME']}, which has no bin/java)`
          : ' (no java on PATH: install a Java runtime, or set JAVA_HOME)';
      throw new Error(`Could not run ${java} for the ${spec.name}: ${spawnError.message}${hint}`, {
        cause: spawnError,
      });
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      const how = child.exitCode !== null ? `code ${child.exitCode}` : `${child.signalCode}`;
      const message = describe(`exited (${how}) before serving`);
      if (/BindException|Address already in use/i.test(output)) throw new PortTakenError(message);
      throw new Error(message);
    }
    if (sawReadyLine && (await answers(port))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(describe(`did not serve within ${startTimeoutMs} ms`));
    }
    await sleep(100);
  }

  if (child.pid === undefined) throw new Error(describe('has no PID'));
  return { host, port, endpoint: `${host}:${port}`, pid: child.pid, log: () => output, stop };
}

/** Whether something accepts TCP connections on the port. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
