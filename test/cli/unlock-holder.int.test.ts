/**
 * `governor unlock` tells the person about to break a lease whether its holder still runs: a
 * lease a crashed run left (its process gone from this host) is safe to break; one whose process
 * still runs here, or whose holder ran on another host, is not known to be.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createFileStateStore } from '../../src/adapters/file-store.js';
import { holderProcess, runUnlock } from '../../src/cli/unlock-command.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

const PROJECT = 'unlock-holder';
let tmp: string;
let policy: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'governor-unlock-holder-'));
  policy = join(tmp, 'policy.yaml');
  await writeFile(policy, `version: 1\nprojects: [${PROJECT}]\nservices: [{match: {}}]\n`);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The id of a process that ran on this host and has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  return child.pid;
}

describe('governor unlock: whether the holder still runs', () => {
  it('says a crashed run left it, that it ends by itself, and shows it without breaking it', async () => {
    const dir = join(tmp, 'state');
    const store = createFileStateStore({ dir });
    const pid = deadPid();
    const holder = `gov-1/run-1@${hostname()}:${pid}`;
    await store.acquireLease(PROJECT, holder, 300_000, new Date().toISOString());
    let out = '';
    const run = runUnlock(
      { policy, stateDir: dir },
      { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } },
      parseRuntimeOptions({ METADATA_SERVER_DETECTION: 'none' }),
    );
    // Not on a terminal and no --yes: shown, not broken.
    await expect(run).rejects.toThrow(/pass --yes/);
    expect(out).toContain(`lease held by ${holder}`);
    expect(out).toContain('(it ends by itself then)');
    expect(out).toContain(`process ${pid} is gone from this host: if the run ran here`);
    expect(await store.readLease(PROJECT)).toMatchObject({ holder });
    await store.close();
  });

  it('warns while the process runs here, and when it ran elsewhere', () => {
    expect(holderProcess(`gov/run@${hostname()}:${process.pid}`)).toContain(
      `process ${process.pid} is running on this host`,
    );
    expect(holderProcess('gov/run@cloud-run-instance:1', 'laptop')).toContain(
      'its holder ran on host cloud-run-instance, not here',
    );
    expect(holderProcess('someone by hand')).toContain('names no process');
  });
});
