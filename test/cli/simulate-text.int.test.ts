import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliIn } from '../support/cli-run.js';

describe('simulate on a terminal', () => {
  it('shows a bidirectional control in the fleet’s path as a space, as its errors do', async () => {
    // Before: the table's first line and "report:" wrote the path as it was, and a right-to-left
    // override in it showed the rest of the line backwards (CVE-2021-42574, "Trojan Source").
    const dir = await mkdtemp(join(tmpdir(), 'governor-sim-\u202e'));
    const fleet = join(dir, 'fleet\u2066.yaml');
    await writeFile(
      fleet,
      [
        'scenario: 1',
        "start: '2026-11-24T00:00:00Z'",
        'hours: 1',
        'quota: 2',
        'services:',
        '  - name: only',
        '    maxInstances: 1',
        '    demand:',
        '      shape: { kind: constant, value: 1 }',
        '',
      ].join('\n'),
    );
    const r = await cliIn(
      process.env,
      'simulate',
      '--policy',
      'examples/sim-policy.yaml',
      '--fleet',
      fleet,
      '--report',
      join(dir, 'report\u202e.html'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\u202A-\u202E\u2066-\u2069]/);
    expect(r.stdout).toContain('fleet .yaml: 1.0 h');
    expect(r.stdout).toContain('report .html');
  }, 60_000);
});
