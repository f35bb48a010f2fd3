import { request } from 'node:http';
import { connect } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { startFirestoreEmulator } from './firestore-emulator.js';
import { findPackageFile, startJavaEmulator } from './java-emulator.js';
import type { RunningEmulator } from './java-emulator.js';
import { pubSubEmulator, startPubSubEmulator } from './pubsub-emulator.js';

const started: RunningEmulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.stop()));
});

/** Whether a process with this PID still exists (signal 0 checks without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function httpGet(endpoint: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${endpoint}/`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('startFirestoreEmulator', () => {
  it('serves HTTP on 127.0.0.1 and leaves no process once stopped', async () => {
    const emulator = await startFirestoreEmulator();
    started.push(emulator);
    expect(emulator.host).toBe('127.0.0.1');
    expect(emulator.endpoint).toBe(`127.0.0.1:${emulator.port}`);
    expect(alive(emulator.pid)).toBe(true);

    const reply = await httpGet(emulator.endpoint);
    expect(reply).toEqual({ status: 200, body: expect.stringMatching(/^Ok\s*$/) });

    await emulator.stop();
    expect(alive(emulator.pid)).toBe(false);
    expect(await answers(emulator.port)).toBe(false);
    await emulator.stop(); // a second stop is harmless
  });
});

describe('startPubSubEmulator', () => {
  it('serves on 127.0.0.1 and leaves no process once stopped', async () => {
    const emulator = await startPubSubEmulator();
    started.push(emulator);
    expect(await answers(emulator.port)).toBe(true);
    expect(emulator.log()).toMatch(`listening on ${emulator.port}`);

    await emulator.stop();
    expect(alive(emulator.pid)).toBe(false);
    expect(await answers(emulator.port)).toBe(false);
  });

  it('runs two emulators side by side on different ports', async () => {
    const [a, b] = await Promise.all([startPubSubEmulator(), startPubSubEmulator()]);
    started.push(a, b);
    expect(a.port).not.toBe(b.port);
    expect(await answers(a.port)).toBe(true);
    expect(await answers(b.port)).toBe(true);
  });
});

describe('startJavaEmulator failures', () => {
  it('names the Debian package when it is not installed', async () => {
    await expect(findPackageFile('no-such-emulator-package', /\.jar$/)).rejects.toThrow(
      /no-such-emulator-package is not installed/,
    );
  });

  it('says what to do when there is no Java to run', async () => {
    const before = process.env['JAVA_HOME'];
    process.env['JAVA_HOME'] = '/nonexistent-java';
    try {
      await expect(startJavaEmulator(pubSubEmulator)).rejects.toThrow(
        /Could not run \/nonexistent-java\/bin\/java for the Pub\/Sub emulator: .*ENOENT \(JAVA_HOME is \/nonexistent-java, which has no bin\/java\)/,
      );
    } finally {
      if (before === undefined) delete process.env['JAVA_HOME'];
      else process.env['JAVA_HOME'] = before;
    }
  });

  it('throws with the output of a JVM that exits before serving', async () => {
    const broken = { ...pubSubEmulator, javaArgs: () => ['-jar', '/nonexistent/emulator.jar'] };
    await expect(startJavaEmulator(broken)).rejects.toThrow(
      /exited \(code 1\) before serving[\s\S]*nonexistent/,
    );
  });

  it('throws and kills the JVM when it does not serve in time', async () => {
    // A ready line the emulator never prints: the port answers, the wait still times out.
    const silent = { ...pubSubEmulator, ready: () => /never printed/ };
    const error: unknown = await startJavaEmulator(silent, { startTimeoutMs: 3_000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/did not serve within 3000 ms/);
    const port = Number(/on 127\.0\.0\.1:(\d+)/.exec((error as Error).message)?.[1]);
    expect(await answers(port)).toBe(false);
  });
});
