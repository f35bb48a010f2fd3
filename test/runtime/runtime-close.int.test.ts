import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Policy } from '../../src/core/policy.js';
import { memoryLogger } from '../../src/log.js';
import { closeRuntime, createRuntime } from '../../src/runtime.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

// Module mocks need a worker of their own (the unit tests share theirs), hence an integration file.
// A run's clients, with switches: Google's clients fail to close at once, or the alert sink fails
// to open; the state store takes a while to close. Each close is counted when it has finished.
const opened = vi.hoisted(() => ({
  finished: [] as string[],
  started: [] as string[],
  portsCloseFails: false,
  sinkFails: false,
}));
vi.mock('../../src/adapters/load.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/adapters/load.js')>();
  const later = (what: string) => () => {
    opened.started.push(what);
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        opened.finished.push(what);
        resolve();
      }, 30),
    );
  };
  return {
    ...actual,
    loadFirestoreStateStore: () =>
      Promise.resolve({
        loadDiscovery: () => Promise.resolve(null),
        close: later('store'),
      }),
    loadGooglePorts: () =>
      Promise.resolve({
        close: () => {
          opened.started.push('ports');
          if (opened.portsCloseFails)
            return Promise.reject(new Error('the channel would not close'));
          opened.finished.push('ports');
          return Promise.resolve();
        },
      }),
    loadPubSubAlertSink: () =>
      opened.sinkFails
        ? Promise.reject(new Error('the Pub/Sub client could not be loaded'))
        : Promise.resolve({ close: later('sink') }),
  };
});

const policy = { alerts: { topic: 'projects/p/topics/alerts' } } as unknown as Policy;
const options = parseRuntimeOptions({ GOVERNOR_STATE_STORE: 'firestore' });

describe("createRuntime: a run's clients are closed once each, every one of them", () => {
  beforeEach(() => {
    opened.finished.length = 0;
    opened.started.length = 0;
    opened.portsCloseFails = false;
    opened.sinkFails = false;
  });

  it('closes each client once', async () => {
    const runtime = await createRuntime(policy, options, memoryLogger());
    await closeRuntime(runtime, memoryLogger());
    expect(opened.started.sort()).toEqual(['ports', 'sink', 'store']);
    expect(opened.finished.sort()).toEqual(['ports', 'sink', 'store']);
  });

  it('waits for the other clients when one fails to close, and then says which failed', async () => {
    // Before, the first failure ended the close at once: the run answered (and the command line
    // exited) with the state store and the alert topic's client still closing, and a failure of
    // theirs was never told.
    opened.portsCloseFails = true;
    const runtime = await createRuntime(policy, options, memoryLogger());
    const log = memoryLogger();
    await closeRuntime(runtime, log);
    expect(opened.started.sort()).toEqual(['ports', 'sink', 'store']);
    expect(opened.finished.sort()).toEqual(['sink', 'store']);
    expect(log.lines).toEqual([
      {
        severity: 'WARNING',
        message: "closing the run's clients failed: the channel would not close",
        fields: {},
      },
    ]);
  });

  it('closes what it opened, once, when a client fails to open', async () => {
    opened.sinkFails = true;
    await expect(createRuntime(policy, options, memoryLogger())).rejects.toThrow(
      /could not be loaded/,
    );
    expect(opened.started.sort()).toEqual(['ports', 'store']);
    expect(opened.finished.sort()).toEqual(['ports', 'store']);
  });
});

describe("createRuntime: Google's services beside an emulator's Pub/Sub or Firestore", () => {
  it('tells, in a WARNING line each, where the alerts and the state go', async () => {
    // Taken (nothing of an emulator's data reaches Google), but a run writing real caps would
    // publish its alerts and keep its lease where nobody else looks (runtime.ts
    // emulatorAsideWarnings, whose words are tested in run-options.test.ts).
    opened.sinkFails = false;
    const log = memoryLogger();
    const aside = parseRuntimeOptions({
      GOVERNOR_STATE_STORE: 'firestore',
      PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
      FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080',
    });
    await closeRuntime(await createRuntime(policy, aside, log), memoryLogger());
    expect(log.lines.map((l) => [l.severity, l.message.split(' but ')[0]])).toEqual([
      ['WARNING', 'PUBSUB_EMULATOR_HOST is set (127.0.0.1:8085)'],
      ['WARNING', 'FIRESTORE_EMULATOR_HOST is set (127.0.0.1:8080)'],
    ]);
    const quiet = memoryLogger();
    await closeRuntime(await createRuntime(policy, options, quiet), memoryLogger());
    expect(quiet.lines).toEqual([]);
  });
});
