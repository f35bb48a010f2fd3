import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { cliIn } from '../support/cli-run.js';

/**
 * `governor simulate --via-emulator` and `governor demo` whose Google clients fail to close once
 * the governor's day is played: the result stands (printed, exit 0) with a warning about the
 * close; before, the close's rejection replaced the finished result with an error and exit 1.
 */

vi.mock('../../src/adapters/index.js', async (importOriginal) => {
  const { adaptersFailingToClose } = await import('../support/failing-close.js');
  return adaptersFailingToClose(importOriginal, 'the clients failed to close (for the test)');
});

const tmp = mkdtempSync(join(tmpdir(), 'governor-simulate-close-'));
const WARNING =
  "warning: closing the emulator and Google's clients failed: the clients failed to close (for the test)\n";
const env = { ...process.env, NO_COLOR: '1' };

it('simulate --via-emulator: the result, a warning, exit 0', async () => {
  const fleet = join(tmp, 'fleet.yaml');
  writeFileSync(
    fleet,
    'scenario: 1\nproject: sim-project\nquota: 2\nservices: [{name: a, maxInstances: 1, demand: {shape: {kind: constant, value: 1}}}]\n',
  );
  const r = await cliIn(
    env,
    'simulate',
    '--policy',
    'examples/sim-policy.yaml',
    '--fleet',
    fleet,
    '--hours',
    '1',
    '--via-emulator',
    '--json',
  );
  expect(r.stderr).toContain(WARNING);
  expect(r.code).toBe(0);
  const result = JSON.parse(r.stdout) as { strategies: { strategy: string }[] };
  expect(result.strategies.map((s) => s.strategy)).toContain('governor');
});

it('demo: the day played, a warning, exit 0', async () => {
  const r = await cliIn(
    env,
    'demo',
    '--hours',
    '1',
    '--fleet',
    'examples/demo-fleet.yaml',
    '--policy',
    'examples/demo-policy.yaml',
  );
  expect(r.stderr).toContain(WARNING);
  expect(r.stdout).toMatch(/refused/);
  expect(r.code).toBe(0);
});
