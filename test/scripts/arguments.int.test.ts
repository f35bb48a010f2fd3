import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processResult, type CliResult } from '../support/cli-run.js';

/**
 * The `npm run` scripts run as processes (needs `npm run build`), in an empty directory: an
 * argument they do not take is refused before they read or write anything.
 */
const root = join(import.meta.dirname, '../..');

let cwd: string | undefined;
afterEach(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
  cwd = undefined;
});

async function script(name: string, ...args: string[]): Promise<CliResult> {
  cwd = mkdtempSync(join(tmpdir(), 'governor-script-args-'));
  return processResult(process.execPath, [join(root, 'dist/scripts', `${name}.js`), ...args], {
    cwd,
    timeout: 20_000,
  });
}

describe("the scripts' arguments", () => {
  it.each([
    ['terraform-docs', '--chek', 'unknown option "--chek"'],
    ['package', '--out', 'unknown option "--out"'],
    ['package', 'a.zip b.zip', 'unexpected argument "b.zip"'],
    ['chaos', '500', 'unexpected argument "500"'],
    ['report-picture', '--width=800', 'unknown option "--width=800"'],
    ['lint', '--fix', 'unknown option "--fix"'],
    ['write-schemas', '--check', 'unknown option "--check"'],
  ])('%s %s: one line naming it, exit 2, nothing written', async (name, args, message) => {
    const result = await script(name, ...args.split(' '));
    expect(result.stderr).toContain(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(readdirSync(cwd as string)).toEqual([]);
  });

  it('package --help prints its usage and writes no archive named --help', async () => {
    const result = await script('package', '--help');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^usage: /);
    expect(readdirSync(cwd as string)).toEqual([]);
  });
});
