/**
 * `governor unlock` on a lease it cannot read (a hand edit, another program, a newer version):
 * no run can take such a lease, so unlock is the way out. It says the lease is unreadable and, once
 * confirmed, removes it, in the file store and in Firestore (Google's emulator, the run's shared
 * one: test/support/shared-emulators.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createFileStateStore } from '../../src/adapters/file-store.js';
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';
import { runUnlock } from '../../src/cli/unlock-command.js';
import { LeaseCorruptError, type StateStore } from '../../src/ports/index.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import { quietRun } from '../support/fixtures.js';
import { sharedFirestoreEmulator, type SharedEmulator } from '../support/shared-emulators.js';
import { UNREADABLE_LEASES } from '../state/contract.js';

const PROJECT = 'unlock-project';
const NOW = new Date().toISOString();

let tmp: string;
let policy: string;
let emulator: SharedEmulator;
let raw: Firestore;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'governor-unlock-'));
  policy = join(tmp, 'policy.yaml');
  await writeFile(policy, `version: 1\nprojects: [${PROJECT}]\nservices: [{match: {}}]\n`);
  emulator = await sharedFirestoreEmulator(PROJECT);
  raw = new Firestore({ projectId: PROJECT, host: emulator.endpoint, ssl: false });
});

afterAll(async () => {
  await raw?.terminate();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function unlock(env: Record<string, string>, stateDir?: string) {
  let out = '';
  const code = await runUnlock(
    { policy, yes: true, ...(stateDir ? { stateDir } : {}) },
    { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } },
    parseRuntimeOptions({ METADATA_SERVER_DETECTION: 'none', ...env }),
  );
  return { code, out };
}

/** The lease unreadable, then unlock --yes: says so, removes it, keeps the rest; a run can take it. */
async function clearsUnreadable(
  store: StateStore,
  plant: (value: Record<string, unknown>) => Promise<void>,
  run: () => Promise<{ code: number; out: string }>,
): Promise<void> {
  for (const [what, value] of UNREADABLE_LEASES) {
    await store.recordRun(PROJECT, quietRun('run-1', NOW));
    await plant(value);
    await expect(store.acquireLease(PROJECT, 'me', 60_000, NOW), what).rejects.toThrow(
      LeaseCorruptError,
    );
    const r = await run();
    expect(r.code, what).toBe(0);
    expect(r.out, what).toMatch(
      new RegExp(`^${PROJECT}: the lease cannot be read \\(.+\\): no run can take it`, 'm'),
    );
    expect(r.out, what).toContain(`${PROJECT}: lease broken (it was unreadable: removed)`);
    // Nothing of a 1 MB holder is echoed.
    expect(r.out.length, what).toBeLessThan(2_000);
    expect(await store.readLease(PROJECT), what).toBeNull();
    expect(
      (await store.listRuns(PROJECT)).map((x) => x.runId),
      what,
    ).toEqual(['run-1']);
    expect(await store.acquireLease(PROJECT, 'me', 60_000, NOW), what).toMatchObject({
      acquired: true,
    });
    expect(await store.breakLease(PROJECT)).toBe(true);
  }
}

describe('governor unlock: a lease it cannot read', () => {
  it('file store: says it is unreadable and removes it', async () => {
    const dir = join(tmp, 'state');
    const store = createFileStateStore({ dir });
    const file = join(dir, `${PROJECT}.json`);
    await clearsUnreadable(
      store,
      async (value) => {
        const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
        await writeFile(file, JSON.stringify({ ...doc, lease: value }));
      },
      () => unlock({ GOVERNOR_STATE_STORE: 'file' }, dir),
    );
  });

  it('Firestore store: says it is unreadable and removes it', async () => {
    const collection = 'unlock-test';
    const env = {
      GOVERNOR_STATE_STORE: 'firestore',
      GOVERNOR_FIRESTORE_COLLECTION: collection,
      FIRESTORE_EMULATOR_HOST: emulator.endpoint,
      GOOGLE_CLOUD_PROJECT: PROJECT,
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const store = createFirestoreStateStore({ projectId: PROJECT, collection });
    try {
      await clearsUnreadable(
        store,
        async (value) => {
          await raw.doc(`${collection}/${PROJECT}/state/lease`).set(value);
        },
        () => unlock(env),
      );
    } finally {
      await store.close();
      process.env = saved;
    }
  });
});

describe('governor unlock: a lease of hostile text', () => {
  it('shows what it cannot read on one line, without its control characters', async () => {
    // An unknown key of the lease was printed as it was: its terminal escapes acted on the
    // terminal, and its newline made a line of its own.
    const dir = join(tmp, 'state-hostile');
    const store = createFileStateStore({ dir });
    await store.recordRun(PROJECT, quietRun('run-1', NOW));
    const file = join(dir, `${PROJECT}.json`);
    const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const lease = {
      holder: 'h',
      acquiredAt: NOW,
      expiresAt: NOW,
      'k\u001b]0;title\u0007\r\nforged: line\u009b31m\u202e': 1,
    };
    await writeFile(file, JSON.stringify({ ...doc, lease }));
    const r = await unlock({ GOVERNOR_STATE_STORE: 'file' }, dir);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/[\p{Cc}\u202e](?<!\n)/u);
    expect(r.out.split('\n').filter((l) => l.includes('forged'))).toEqual([
      expect.stringMatching(new RegExp(`^${PROJECT}: the lease cannot be read \\(`)),
    ]);
    expect(r.out).toContain(`${PROJECT}: lease broken (it was unreadable: removed)`);
  });
});

describe('governor unlock: only the lease it showed', () => {
  it('file store: a run that took the lease after it was shown keeps it', async () => {
    const dir = join(tmp, 'state-race');
    const store = createFileStateStore({ dir });
    const file = join(dir, `${PROJECT}.json`);
    // A run that died: its lease expired an hour ago.
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    await store.acquireLease(PROJECT, 'dead-run', 60_000, hourAgo);
    const fresh = {
      holder: 'gpu-governor/gov-0123456789ab/live-run@host:1',
      acquiredAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
    };
    let out = '';
    const code = await runUnlock(
      { policy, yes: true, stateDir: dir },
      {
        stdout: {
          write: (t: string) => {
            out += t;
            // While the person reads the lease shown (and before they confirm), the dead run's
            // lease, expired, is taken by a live run.
            if (t.includes('lease held by dead-run')) {
              const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
              writeFileSync(file, JSON.stringify({ ...doc, lease: fresh }));
            }
            return true;
          },
        },
        stderr: { write: () => true },
      },
      parseRuntimeOptions({ METADATA_SERVER_DETECTION: 'none', GOVERNOR_STATE_STORE: 'file' }),
    );
    expect(out).toContain(`${PROJECT}: lease held by dead-run`);
    // Its expiry is past: said, so the person knows the run that held it no longer counts on it.
    expect(out).toMatch(
      new RegExp(`^${PROJECT}: lease held by dead-run since \\S+ until \\S+ \\(expired\\)`, 'm'),
    );
    expect(out).toContain(
      `${PROJECT}: not broken: the lease changed since it was shown (now ${fresh.holder}`,
    );
    expect(code).toBe(1);
    expect(await store.readLease(PROJECT)).toEqual(fresh);
    // Asked again, it shows the live run's lease, and breaks it once confirmed.
    const again = await unlock({ GOVERNOR_STATE_STORE: 'file' }, dir);
    expect(again.out).toContain(`${PROJECT}: lease broken`);
    expect(await store.readLease(PROJECT)).toBeNull();
  });
});

describe("governor unlock beside the emulator's clock", () => {
  it('says a lease dated beyond any a governor takes does not hold until then', async () => {
    // A lease until 2999 (a hand edit, a wrong clock) is cut by the next run that asks for it to
    // that run's time-to-live (ports/state.ts decideLease): shown as ending "by itself then", a
    // person was told to wait 973 years, or to break a lease that goes by itself.
    const dir = join(tmp, 'state-far');
    const store = createFileStateStore({ dir });
    try {
      await store.acquireLease(PROJECT, 'far-run', 600_000, NOW);
      const file = join(dir, `${PROJECT}.json`);
      const doc = JSON.parse(await readFile(file, 'utf8')) as { lease: Record<string, string> };
      doc.lease = {
        ...doc.lease,
        acquiredAt: '2998-12-31T00:00:00.000Z',
        expiresAt: '2999-01-01T00:00:00.000Z',
      };
      await writeFile(file, JSON.stringify(doc));
      let out = '';
      await runUnlock(
        { policy, yes: false, stateDir: dir },
        { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } },
        parseRuntimeOptions({ METADATA_SERVER_DETECTION: 'none', GOVERNOR_STATE_STORE: 'file' }),
      ).catch((e: unknown) => e);
      expect(out).toContain(`${PROJECT}: lease held by far-run since 2998-12-31T00:00:00.000Z`);
      expect(out).not.toContain('(it ends by itself then)');
      expect(out).toContain('taken later than now');
      expect(out).toContain('the next run that asks for it cuts it');
      // And so it does: refused, the lease now ends within that run's time-to-live.
      const asked = await store.acquireLease(
        PROJECT,
        'next-run',
        600_000,
        new Date().toISOString(),
      );
      expect(asked.acquired).toBe(false);
      expect(Date.parse(asked.expiresAt ?? '')).toBeLessThanOrEqual(Date.now() + 600_000);
    } finally {
      await store.close();
    }
  });

  it("judges a lease by the wall clock its run stamped it with, not the emulator's virtual clock", async () => {
    // A run takes its lease on the wall clock whatever clock it plans on (src/reconcile/lease.ts):
    // a lease taken just now holds for its time-to-live, even with the emulator's virtual clock a
    // week ahead (a fleet that starts later than today, or a fast speed).
    const virtualNow = Date.now() + 7 * 86_400_000;
    const admin = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(req.url === '/clock' ? { now: new Date(virtualNow).toISOString() } : {}),
      );
    });
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
    const { port } = admin.address() as AddressInfo;
    const dir = join(tmp, 'state-virtual');
    const store = createFileStateStore({ dir });
    try {
      await store.acquireLease(PROJECT, 'wall-run', 600_000, new Date().toISOString());
      let out = '';
      const code = await runUnlock(
        { policy, yes: false, stateDir: dir },
        { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } },
        parseRuntimeOptions({
          METADATA_SERVER_DETECTION: 'none',
          GOVERNOR_STATE_STORE: 'file',
          GOVERNOR_EMULATOR_HOST: '127.0.0.1:1',
          GOVERNOR_EMULATOR_ADMIN: `http://127.0.0.1:${port}`,
        }),
      ).catch((e: unknown) => e);
      // Off a terminal, nothing is broken without --yes; what was shown is what counts.
      expect(code).toBeInstanceOf(Error);
      expect(out).toContain(`${PROJECT}: lease held by wall-run`);
      expect(out).toContain('(it ends by itself then)');
      expect(out).not.toContain('(expired)');
      expect((await store.readLease(PROJECT))?.holder).toBe('wall-run');
    } finally {
      await store.close();
      await new Promise((r) => admin.close(r));
    }
  });
});
