import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy.js';
import { InputError } from '../../src/core/errors.js';
import { handle } from '../../src/function/handler.js';
import { memoryLogger } from '../../src/log.js';
import { reconcile } from '../../src/reconcile/reconcile.js';

/**
 * A policy that finds its projects by discovery (no `projects`) is for the organisation entry
 * points. The single-project commands and entry points refuse it at once, naming `projects`,
 * instead of running on nothing (it once ended "lease-held" with nothing governed).
 */

const POLICY = 'version: 1\nprojects: []\ndiscovery:\n  organization: "123456789012"\n';
const dir = mkdtempSync(join(tmpdir(), 'governor-no-projects-'));
const file = join(dir, 'policy.yaml');
writeFileSync(file, POLICY);

const run = promisify(execFile);

async function governor(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, ['bin/governor.js', ...args], {
      env: { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none' },
    });
    return { code: 0, stderr };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stderr: err.stderr ?? '' };
  }
}

describe('a discovery-only policy outside the organisation entry points', () => {
  it('validates: it is a good policy for governorDispatch', async () => {
    const r = await governor('validate', '--policy', file);
    expect(r.code).toBe(0);
  });

  it.each<[string, string[]]>([
    ['plan', []],
    ['apply', ['--yes']],
    ['restore', ['--yes']],
    ['check', []],
    ['status', []],
    ['snapshot', []],
    ['unlock', []],
    ['audit', []],
    ['replay', ['--since', '1d']],
    ['quota recommend', []],
  ])('governor %s refuses it with exit 2, naming projects, no stack trace', async (name, args) => {
    const r = await governor(...name.split(' '), ...args, '--policy', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot be used by \`governor ${name}\``);
    expect(r.stderr).toContain('projects: empty');
    expect(r.stderr).toContain('discovery');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('the function answers 500 misconfigured, naming projects, and runs nothing', async () => {
    const log = memoryLogger();
    const answer = await handle(undefined, { GOVERNOR_POLICY: POLICY }, log);
    expect(answer.status).toBe(500);
    expect(String(answer.body.error)).toContain('lists no project');
    expect(String(answer.body.error)).toContain('projects: empty');
  });

  it('reconcile refuses it before taking any lease or reading anything', async () => {
    let touched = 0;
    const counting = new Proxy(
      {},
      {
        get: () => {
          touched += 1;
          return () => Promise.reject(new Error('must not be called'));
        },
      },
    );
    const run = reconcile(
      parsePolicy({ version: 1, projects: [], discovery: { organization: '123456789012' } }),
      {
        ports: counting as never,
        store: counting as never,
        sink: null,
        log: memoryLogger(),
        now: () => Promise.resolve(0),
      },
      { runId: 'r', deadlineMs: 1_000 },
    );
    await expect(run).rejects.toBeInstanceOf(InputError);
    await expect(run).rejects.toThrow(/projects: empty/);
    expect(touched).toBe(0);
  });
});
