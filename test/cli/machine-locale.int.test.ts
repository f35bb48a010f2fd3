import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFileStateStore } from '../../src/adapters/file-store.js';
import type { PressureLedger } from '../../src/core/quota-pressure.js';
import { governorIn, type CliResult } from '../support/cli-run.js';
import { quietRun } from '../support/fixtures.js';

/**
 * The command line prints the same bytes whatever the machine's locale and time zone: it runs on
 * people's laptops, set to their language and their zone. Each command runs as a process (Node
 * takes its locale from LC_ALL or LANG, its zone from TZ, when it starts) under UTC and the C
 * locale, and under zones with odd offsets (Lord Howe: +10:30, and a 30-minute daylight-saving
 * shift; Kiritimati: +14) and locales that sort or case letters their own way (Danish reads "aa"
 * as "å", after "z"; Turkish upper-cases "i" to "İ").
 */

const MACHINES: NodeJS.ProcessEnv[] = [
  { TZ: 'UTC', LC_ALL: 'C', LANG: 'C' },
  { TZ: 'Australia/Lord_Howe', LC_ALL: 'da_DK.UTF-8', LANG: 'da_DK.UTF-8' },
  { TZ: 'Pacific/Kiritimati', LC_ALL: 'tr_TR.UTF-8', LANG: 'tr_TR.UTF-8' },
];

const EXAMPLE = ['--policy', 'examples/policy.yaml', '--snapshot', 'examples/snapshot.json'];
const AT = '2026-11-30T12:00:00.000Z';
const tmp = mkdtempSync(join(tmpdir(), 'governor-locale-'));
const stateDir = join(tmp, 'state');

/** `governor ...args` on each machine of {@link MACHINES}. */
function onEveryMachine(...args: string[]): Promise<CliResult[]> {
  return Promise.all(
    MACHINES.map((machine) =>
      governorIn(
        { ...process.env, NO_COLOR: '1', METADATA_SERVER_DETECTION: 'none', ...machine },
        ...args,
      ),
    ),
  );
}

function expectAlike(results: CliResult[]): CliResult {
  const [first, ...others] = results;
  if (!first) throw new Error('no result');
  for (const other of others) expect(other).toEqual(first);
  return first;
}

beforeAll(async () => {
  // A state copied between projects holds other projects' pools: the run names them on stderr.
  const pool = (project: string) => ({
    project,
    region: 'us-central1',
    accelerator: 'nvidia-l4',
    zonalRedundancy: true,
    days: [
      {
        day: '2026-11-29',
        minutes: 1440,
        minutesAtBudget: 300,
        refusedGpuMinutes: 900,
        peakWanted: 12,
        quota: 8,
        budget: 8,
      },
    ],
  });
  const pressure: PressureLedger = {
    at: AT,
    pools: Object.fromEntries(
      ['hot', 'z-team', 'ab-team', 'aa-team'].map((p) => [
        `${p}/us-central1/nvidia-l4/zonal`,
        pool(p),
      ]),
    ),
  };
  const store = createFileStateStore({ dir: stateDir });
  await store.recordRun('hot', quietRun('run-1', AT, { pressure }));
  await store.close();
  writeFileSync(join(tmp, 'policy.yaml'), 'version: 1\nprojects: [hot]\n');
});

describe('the same output whatever the locale and time zone', () => {
  it.each([
    ['plan', ['plan', ...EXAMPLE]],
    ['plan --json', ['plan', ...EXAMPLE, '--json']],
    ['status', ['status', ...EXAMPLE]],
    ['plan --at with an offset', ['plan', ...EXAMPLE, '--at', '2026-11-28T02:00:00+10:30']],
  ])('%s', async (_, args) => {
    const r = expectAlike(await onEveryMachine(...args));
    expect(r.code).toBe(0);
    expect(r.stdout).not.toBe('');
  });

  it('quota recommend, and the pools it leaves out in code-unit order', async () => {
    const policyPath = join(tmp, 'policy.yaml');
    const args = ['quota', 'recommend', '--policy', policyPath, '--state-dir', stateDir];
    const r = expectAlike(await onEveryMachine(...args, '--at', AT));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pool hot\/us-central1\/nvidia-l4\/zonal {2}\[recommend\]$/m);
    expect(r.stderr).toContain(
      "holds pressure history of other projects' pools (aa-team/us-central1/nvidia-l4/zonal, ab-team/us-central1/nvidia-l4/zonal, z-team/us-central1/nvidia-l4/zonal)",
    );
  });
});
