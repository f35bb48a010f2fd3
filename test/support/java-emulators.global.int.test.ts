import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TestProject } from 'vitest/node';

import setup from './java-emulators.global.js';

/**
 * The emulators the service started, by kind, and how many of them were stopped; `fake` starts
 * one of a kind, with no JVM.
 */
const jvms = vi.hoisted(() => {
  const state = { started: [] as string[], stopped: 0 };
  const fake = (kind: string, port: number, pid: number) => () => {
    state.started.push(kind);
    return Promise.resolve({
      host: '127.0.0.1',
      port,
      endpoint: `127.0.0.1:${port}`,
      pid,
      log: () => '',
      stop: async () => {
        state.stopped += 1;
      },
    });
  };
  return { state, fake };
});

// No JVM here: what is checked is who is handed which emulator, not the emulators.
vi.mock('./pubsub-emulator.js', () => ({ startPubSubEmulator: jvms.fake('pubsub', 8085, 101) }));
vi.mock('./firestore-emulator.js', () => ({
  startFirestoreEmulator: jvms.fake('firestore', 8086, 102),
}));

let teardown: (() => void | Promise<void>) | undefined;
afterEach(async () => {
  await teardown?.();
  teardown = undefined;
  jvms.state.started.length = 0;
  jvms.state.stopped = 0;
});

/** The service of the global setup, started as vitest starts it; `ask` calls it. */
async function service(): Promise<{
  ask: (
    kind: string,
    file: string,
    ...projects: string[]
  ) => Promise<{ status: number; body: { error?: string; endpoint?: string } }>;
}> {
  let base: string | undefined;
  const project = {
    provide: (_key: string, value: string) => (base = value),
    onTestsRerun: () => {},
  } as unknown as TestProject;
  teardown = await setup(project);
  if (base === undefined) throw new Error('the global setup provided no address');
  const at = base;
  return {
    ask: async (kind, file, ...projects) => {
      const url = new URL(`/${kind}`, at);
      url.searchParams.set('file', file);
      for (const p of projects) url.searchParams.append('project', p);
      const res = await fetch(url);
      return { status: res.status, body: (await res.json()) as { error?: string } };
    },
  };
}

describe('the shared Java emulators (java-emulators.global.ts)', () => {
  it('refuses a project another test file already uses, and keeps the refused ones unclaimed', async () => {
    const { ask } = await service();
    expect(await ask('pubsub', 'a.int.test.ts', 'p1')).toEqual({
      status: 200,
      body: { host: '127.0.0.1', port: 8085, endpoint: '127.0.0.1:8085', pid: 101 },
    });
    // The same file again: its own project.
    expect((await ask('pubsub', 'a.int.test.ts', 'p1')).status).toBe(200);
    // Another file: refused, naming the file that has it and nothing claimed for it.
    const refused = await ask('pubsub', 'b.int.test.ts', 'p2', 'p1');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe(
      'Project p1 of the shared pubsub emulator is already used by a.int.test.ts; give b.int.test.ts a project of its own',
    );
    expect((await ask('pubsub', 'c.int.test.ts', 'p2')).status).toBe(200);
    // The same project id in the other emulator is another namespace.
    expect((await ask('firestore', 'b.int.test.ts', 'p1')).status).toBe(200);
    // One JVM per kind for the whole run, stopped at its end.
    expect(jvms.state.started).toEqual(['pubsub', 'firestore']);
    await teardown?.();
    teardown = undefined;
    expect(jvms.state.stopped).toBe(2);
  });

  it('refuses a request that names no emulator, no file or no project', async () => {
    const { ask } = await service();
    for (const [kind, file, projects] of [
      ['spanner', 'a.int.test.ts', ['p1']],
      ['toString', 'a.int.test.ts', ['p1']],
      ['pubsub', '', ['p1']],
      ['pubsub', 'a.int.test.ts', []],
    ] as const) {
      const answer = await ask(kind, file, ...projects);
      expect(answer.status, `${kind} ${file} ${projects.join(',')}`).toBe(400);
    }
    expect(jvms.state.started).toEqual([]);
  });
  it('is one service for every project that lists it, stopped when the last of them ends', async () => {
    // The integration files sharing a module registry and those with their own are two projects,
    // each running this setup: one JVM of a kind for the run, not one per project.
    const provided: string[] = [];
    const project = {
      provide: (_key: string, value: string) => provided.push(value),
      onTestsRerun: () => {},
    } as unknown as TestProject;
    const first = await setup(project);
    const second = await setup(project);
    expect(provided).toHaveLength(2);
    expect(provided[1]).toBe(provided[0]);
    const url = new URL('/pubsub?file=a.int.test.ts&project=p1', provided[0]);
    await first();
    expect((await fetch(url)).status).toBe(200);
    expect(jvms.state).toEqual({ started: ['pubsub'], stopped: 0 });
    await second();
    expect(jvms.state.stopped).toBe(1);
    await expect(fetch(url)).rejects.toThrow();
  });
});
