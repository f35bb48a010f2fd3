import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGooglePorts } from '../../src/adapters/index.js';
import { runReplay, runSimulate } from '../../src/cli/simulate-command.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import { parsePolicy } from '../../src/core/policy.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { InputError, UsageError } from '../../src/core/errors.js';
import { buildReplayInput } from '../../src/simulate/replay.js';
import { simulate } from '../../src/simulate/simulate.js';
import {
  stateStoreContract,
  CONTRACT_KEEP_RUNS,
  CONTRACT_OUTBOX_LIMIT,
} from '../state/contract.js';
import { createMemoryStateStore } from '../../src/adapters/memory/state-store.js';
import { constantFleet, governSimulation } from '../support/fixtures.js';

function bufferIo(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => out.push(s) },
      stderr: { write: (s: string) => err.push(s) },
      env,
    },
    out,
    err,
  };
}

const POLICY = 'version: 1\nprojects: [sim-project]\nservices:\n  - match: {}\n';

/** Two services with 150 minutes of history: one that steps from 2 to 1, one steady at 1. */
function replayFleet() {
  return {
    start: '2026-11-27T12:00:00Z',
    warmupMinutes: 150,
    projects: [
      {
        id: 'sim-project',
        pools: [{ region: 'us-central1', quota: 6 }],
        services: [
          {
            name: 'busy',
            region: 'us-central1',
            gpu: {},
            maxInstances: 2,
            demand: {
              steps: [
                { at: '10:30', value: 2 },
                { at: '11:15', value: 1 },
              ],
            },
          },
          { name: 'quiet', region: 'us-central1', gpu: {}, maxInstances: 3, demand: 1 },
        ],
      },
    ],
  };
}

describe('governor replay, against the emulator', () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ fleet: replayFleet(), speed: 'manual' });
  });
  afterAll(async () => emulator.stop());

  it('reads one Monitoring call per project and replays the window', async () => {
    const ports = createGooglePorts({ emulatorHost: emulator.host });
    try {
      emulator.resetCalls();
      const input = await buildReplayInput(
        parsePolicy({ version: 1, projects: ['sim-project'], services: [{ match: {} }] }),
        ports,
        emulator.now().getTime(),
        2 * 3_600_000,
      );
      const monitoring = emulator.calls().filter((c) => c.method.endsWith('ListTimeSeries'));
      expect(monitoring).toHaveLength(1);
      // Monitoring shows the minutes up to 3 ago (the emulator's lag, as Google's): the window
      // ends there, and its last minute replays the demand it had, not none.
      expect(input.hours).toBe(117 / 60);
      const busy = input.traces.get('replay:sim-project/us-central1/busy') ?? [];
      expect(busy.at(-1)).toBe(1);
      expect(Math.max(...busy)).toBe(2);
      expect(busy.some((v) => v === 1)).toBe(true);
      const result = await simulate(input, governSimulation(), {
        hours: input.hours ?? 2,
        series: false,
      });
      expect(result.strategies.map((s) => s.strategy)).toContain('oracle');
      expect(result.headline?.invariantViolations).toBe(0);
    } finally {
      await ports.close();
    }
  });

  it('runs as a command and prints JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'governor-replay-'));
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    const { io, out } = bufferIo({ ...process.env, ...emulator.env });
    const options = parseRuntimeOptions(io.env);
    const code = await runReplay(
      { policy: join(dir, 'policy.yaml'), since: '2h', json: true, report: join(dir, 'r.html') },
      io,
      options,
    );
    expect(code).toBe(0);
    const json = JSON.parse(out.join('')) as {
      minutes: number;
      strategies: { strategy: string; series?: unknown }[];
    };
    expect(json.minutes).toBe(117);
    expect(json.strategies[0]).not.toHaveProperty('series');
    // What the replay assumed travels with its figures, not only in the report.
    const notes = (json as { notes?: string[] }).notes ?? [];
    expect(notes.some((n) => /refusals are understated/.test(n))).toBe(true);
    expect(notes.some((n) => /as it is now.*quota.*today/.test(n))).toBe(true);
    expect(await readFile(join(dir, 'r.html'), 'utf8')).toContain('<svg');
    await expect(
      runReplay({ policy: join(dir, 'policy.yaml'), since: 'a week' }, io, options),
    ).rejects.toThrow(UsageError);
    // A window shorter than one tick, asked for or as Monitoring has it, is refused as simulate
    // refuses one: the governor would not run its tick.
    await expect(
      runReplay({ policy: join(dir, 'policy.yaml'), since: '2h', tick: '3h' }, io, options),
    ).rejects.toThrow(/^--tick 3h: longer than the 2 h to replay \(--since 2h\)/);
    await expect(
      runReplay({ policy: join(dir, 'policy.yaml'), since: '7d', tick: '3h' }, io, options),
    ).rejects.toThrow(/^--tick 3h: longer than the 2\.\d h Monitoring has of the window/);
  });

  it('shortens a window longer than the history, and says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'governor-replay-'));
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    const { io, out, err } = bufferIo({ ...process.env, ...emulator.env });
    const report = join(dir, 'r.html');
    const code = await runReplay(
      { policy: join(dir, 'policy.yaml'), since: '7d', json: true, report },
      io,
      parseRuntimeOptions(io.env),
    );
    expect(code).toBe(0);
    const json = JSON.parse(out.join('')) as { minutes: number };
    // The emulator holds its warm-up (150 min) of history, not a week.
    expect(json.minutes).toBeGreaterThan(100);
    expect(json.minutes).toBeLessThanOrEqual(151);
    expect(err.join('')).toMatch(
      /warning: Monitoring has instance counts for only 2\.\d h of the 168 h asked for \(--since 7d\): replaying from /,
    );
    // The table says what the replay assumed, under the figures.
    const table = bufferIo({ ...process.env, ...emulator.env });
    await runReplay(
      { policy: join(dir, 'policy.yaml'), since: '7d' },
      table.io,
      parseRuntimeOptions(table.io.env),
    );
    const text = table.out.join('');
    expect(text).toMatch(/\n {2}note: A replay sees only the demand that was served/);
    expect(text).toMatch(/\n {2}note: .*as it is now/);
    expect(text).toMatch(/\n {2}note: Monitoring has instance counts for only 2\.\d h/);
    const html = await readFile(report, 'utf8');
    expect(html).toContain('class="notes"');
    expect(html).toMatch(/instance counts for only 2\.\d h of the 168 h/);
  });

  it('names a service deleted within the window, whose series Monitoring still has', async () => {
    const own = await startEmulator({ fleet: replayFleet(), speed: 'manual' });
    try {
      own.deleteService({ service: 'busy' });
      own.advance(10 * 60_000);
      const dir = await mkdtemp(join(tmpdir(), 'governor-replay-'));
      await writeFile(join(dir, 'policy.yaml'), POLICY);
      const { io, out } = bufferIo({ ...process.env, ...own.env });
      const code = await runReplay(
        { policy: join(dir, 'policy.yaml'), since: '2h', json: true },
        io,
        parseRuntimeOptions(io.env),
      );
      expect(code).toBe(0);
      const notes = (JSON.parse(out.join('')) as { notes?: string[] }).notes ?? [];
      expect(notes).toContainEqual(
        expect.stringMatching(
          /^1 service with instance counts in the window is not listed now \(deleted\): sim-project\/us-central1\/busy; left out/,
        ),
      );
    } finally {
      await own.stop();
    }
  });
});

describe('governor simulate', () => {
  it('runs a scenario file and rejects bad input with exit-2 errors', async () => {
    const { io, out } = bufferIo();
    const code = await runSimulate(
      { policy: 'examples/sim-policy.yaml', fleet: 'examples/sim-traces.yaml', hours: '1' },
      io,
    );
    expect(code).toBe(0);
    expect(out.join('')).toMatch(/clairvoyant oracle/);
    // The numbers are right-aligned, so in columns every row of the table is as long as its
    // header, the longest strategy's name included.
    const lines = out.join('').split('\n');
    const head = lines.findIndex((l) => l.startsWith('  strategy '));
    const end = lines.indexOf('', head);
    const rows = lines.slice(head, end);
    expect(rows.length).toBeGreaterThan(8);
    expect(new Set(rows.map((l) => l.length)).size).toBe(1);
    expect(rows.some((l) => l.includes('policy kept'))).toBe(true);
    await expect(
      runSimulate(
        { policy: 'examples/sim-policy.yaml', fleet: 'examples/sim-traces.yaml', hours: '-1' },
        io,
      ),
    ).rejects.toThrow(UsageError);
    await expect(
      runSimulate({ policy: 'examples/sim-policy.yaml', fleet: 'no/such/file.yaml' }, io),
    ).rejects.toThrow(InputError);
    const dir = await mkdtemp(join(tmpdir(), 'governor-sim-'));
    await writeFile(
      join(dir, 'bad.yaml'),
      'scenario: 1\nservices: [{ name: a, maxInstances: 1, demand: {} }]\n',
    );
    await expect(
      runSimulate({ policy: 'examples/sim-policy.yaml', fleet: join(dir, 'bad.yaml') }, io),
    ).rejects.toThrow(/quota|shape/);
  });

  it('runs an emulator fleet file too', async () => {
    const { io, out } = bufferIo();
    expect(
      await runSimulate(
        {
          policy: 'examples/demo-policy.yaml',
          fleet: 'examples/fleet.yaml',
          hours: '1',
          tick: '5m',
        },
        io,
      ),
    ).toBe(0);
    expect(out.join('')).toMatch(/governor/);
  });

  it('gives the same governor through the gRPC emulator (--via-emulator)', async () => {
    const input = await constantFleet(8, [
      { name: 'a', cap: 1, demand: 4 },
      { name: 'b', cap: 6, demand: 1 },
    ]);
    const direct = await simulate(input, governSimulation(), {
      hours: 1,
      strategies: ['governor'],
      series: false,
    });
    const via = await simulate(input, governSimulation(), {
      hours: 1,
      strategies: ['governor'],
      series: false,
      viaEmulator: true,
    });
    expect(via.viaEmulator).toBe(true);
    expect(via.strategies[0]?.totals.invariantViolations).toBe(0);
    expect(via.strategies[0]?.failedRuns).toEqual([]);
    expect(via.strategies[0]?.totals.refusedGpuMinutes).toBe(
      direct.strategies[0]?.totals.refusedGpuMinutes,
    );
  });
});

describe('the memory state store', () => {
  const store = createMemoryStateStore({
    keepRuns: CONTRACT_KEEP_RUNS,
    outboxLimit: CONTRACT_OUTBOX_LIMIT,
  });
  stateStoreContract('memory store', () => store);
});
