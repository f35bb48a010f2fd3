import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, UsageError } from '../../src/core/errors.js';
import { FleetModel } from '../../src/emulator/model.js';
import { demandTable } from '../../src/simulate/context.js';
import { MAX_QUOTA_GPUS } from '../../src/core/pool.js';
import {
  buildScenario,
  checkInputSize,
  loadSimulationInput,
  parseScenario,
  type SimulationInput,
} from '../../src/simulate/scenario.js';
import { validateFleet } from '../../src/emulator/fleet.js';

/**
 * `--fleet` as an outsider writes it: every fault in a scenario or fleet file is bad input (an
 * InputError, exit 2) that names the key at fault, found before any minute is simulated.
 */

const dir = mkdtempSync(join(tmpdir(), 'scenario-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string, folder = dir): string {
  const path = join(folder, `s${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

const HEAD = 'scenario: 1\nproject: sim-project\nhours: 1\n';
const ONE = 'services: [{name: a, maxInstances: 2, demand: {shape: {kind: constant, value: 1}}}]\n';

async function fault(path: string): Promise<InputError> {
  const error: unknown = await loadSimulationInput(path).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

describe('a scenario file with a fault', () => {
  it('names an accelerator that is not one, as the scenario key (not the fleet built from it)', async () => {
    // Before: the fleet built from the scenario failed validation, a FleetError that the command
    // line reported as "unexpected failure: … is not a valid fleet:" with no fault, exit 1.
    const error = await fault(file(`${HEAD}quota: 4\naccelerator: "<img src=x>"\n${ONE}`));
    expect(error.faults.map((f) => f.path)).toEqual(['accelerator']);
  });

  it('names a seed past 32 bits: it would play the series of another seed', async () => {
    // Before: the generator keeps a seed's low 32 bits, so seed 4294967297 played seed 1's
    // series, and seed -1 seed 4294967295's, without a word.
    for (const seed of ['4294967296', '4294967297', '-1']) {
      const error = await fault(file(`${HEAD}quota: 4\nseed: ${seed}\n${ONE}`));
      expect(error.faults.map((f) => f.path)).toEqual(['seed']);
    }
    const at = (seed: number) =>
      buildScenario(
        parseScenario({
          scenario: 1,
          quota: 4,
          hours: 1,
          seed,
          services: [
            {
              name: 'a',
              maxInstances: 2,
              demand: { shape: { kind: 'constant', value: 1 }, noise: 0.5 },
            },
          ],
        }),
        dir,
      );
    // The largest is read, and plays a series of its own.
    const [low, high] = await Promise.all([at(0), at(4294967295)]);
    expect(high.traces.get('sim:a')).not.toEqual(low.traces.get('sim:a'));
  });

  it('names a service of more than 64 labels, as Cloud Run takes no more', async () => {
    // Before: any number was read, and the policy's rules read every label every minute: 500,000
    // labels on one service took 19 s and 1 GB an hour of simulation.
    const labels = (n: number) => `{${Array.from({ length: n }, (_, i) => `k${i}: v`).join(', ')}}`;
    const svc = (n: number) =>
      `services: [{name: a, maxInstances: 2, labels: ${labels(n)}, demand: {shape: {kind: constant, value: 1}}}]\n`;
    const error = await fault(file(`${HEAD}quota: 4\n${svc(65)}`));
    expect(error.faults).toEqual([
      {
        path: 'services[0].labels',
        message: 'expected at most 64 labels (Cloud Run takes no more)',
      },
    ]);
    await expect(loadSimulationInput(file(`${HEAD}quota: 4\n${svc(64)}`))).resolves.toBeDefined();
    // A fleet file's services too.
    const fleet = await fault(
      file(
        `version: 1\nprojects:\n  - id: sim-project\n    pools: [{ region: us-central1, quota: 10 }]\n    services:\n      - { name: a, region: us-central1, gpu: { accelerator: nvidia-l4 }, maxInstances: 1, demand: 1, labels: ${labels(65)} }\n`,
      ),
    );
    expect(fleet.message).toMatch(
      /projects\[0\]\.services\[0\]\.labels: expected at most 64 labels/,
    );
  });

  it('names a service listed twice', async () => {
    const svc = '{name: a, maxInstances: 2, demand: {shape: {kind: constant, value: 1}}}';
    const error = await fault(file(`${HEAD}quota: 4\nservices: [${svc}, ${svc}]\n`));
    expect(error.faults).toEqual([{ path: 'services[1].name', message: 'duplicate service a' }]);
  });

  it('names a quota cut after the run, and a start time no instance could have', async () => {
    // Before: the cut at hour 5 of a 1-hour scenario never happened, without a word.
    const cut = await fault(file(`${HEAD}quota: 4\nquotaCut: {atHour: 5, factor: 0.5}\n${ONE}`));
    expect(cut.faults).toEqual([
      { path: 'quotaCut.atHour', message: "5 is not within the scenario's hours (1)" },
    ]);
    // Before: hour 0.995 is minute 60 of a 60-minute run, played as never.
    const last = await fault(
      file(`${HEAD}quota: 4\nquotaCut: {atHour: 0.995, factor: 0.5}\n${ONE}`),
    );
    expect(last.faults).toEqual([
      { path: 'quotaCut.atHour', message: "0.995 is not within the scenario's hours (1)" },
    ]);
    // Before: 1e300 s left every instance starting for the whole run.
    const slow = await fault(file(`${HEAD}quota: 4\nstartupSeconds: 1e300\n${ONE}`));
    expect(slow.faults.map((f) => f.path)).toEqual(['startupSeconds']);
  });

  it("names a quota cut at the run's first minute, which the fleet has already played", async () => {
    // Before: minute 0 is played as the fleet is built, at the quota before the cut, while the
    // oracles and the accounting held it to the cut quota: a service wanting 4 on a quota of 4
    // cut to 2 at hour 0 was refused nothing all hour, 120 GPU-minutes below the oracle.
    for (const atHour of [0, 0.005]) {
      const cut = await fault(
        file(`${HEAD}quota: 4\nquotaCut: {atHour: ${atHour}, factor: 0.5}\n${ONE}`),
      );
      expect(cut.faults).toEqual([
        {
          path: 'quotaCut.atHour',
          message: `${atHour} is the run's first minute: a cut must come after it (a quota cut from the start is the quota itself)`,
        },
      ]);
    }
  });

  it('names a service of quotaPeakOf that the scenario does not have', async () => {
    // Before: the unknown name counted nothing, the quota silently became 1 GPU.
    const error = await fault(file(`${HEAD}quotaFactor: 1\nquotaPeakOf: [a, nosuch]\n${ONE}`));
    expect(error.faults).toEqual([
      { path: 'quotaPeakOf[1]', message: 'no service named nosuch in this scenario' },
    ]);
  });

  it(`refuses a quota above ${MAX_QUOTA_GPUS} GPUs, given or from quotaFactor`, async () => {
    // Before: the planner handed out a pool one instance at a time, so 10^12 GPUs ran for hours.
    const given = await fault(file(`${HEAD}quota: 1000000000000\n${ONE}`));
    expect(given.faults.map((f) => f.path)).toEqual(['quota']);
    const factor = await fault(file(`${HEAD}quotaFactor: 1e300\n${ONE}`));
    expect(factor.faults).toEqual([
      {
        path: 'quotaFactor',
        message: `makes the quota ${(1e300).toLocaleString('en-US', { useGrouping: false })} GPUs; a pool may have at most ${MAX_QUOTA_GPUS}`,
      },
    ]);
  });
});

describe('an emulator fleet file given to the simulator', () => {
  it(`refuses a pool quota above ${MAX_QUOTA_GPUS} GPUs, naming the pool`, async () => {
    const fleet = file(
      [
        'projects:',
        '  - id: sim-project',
        '    pools: [{region: us-central1, quota: 1000000000000}]',
        '    services: [{name: a, region: us-central1, gpu: {}, maxInstances: 2, demand: 1}]',
      ].join('\n'),
    );
    const error = await fault(fleet);
    expect(error.faults).toEqual([
      {
        path: 'projects[0].pools[0].quota',
        message: `1000000000000 GPUs; a pool may have at most ${MAX_QUOTA_GPUS} (the planner's demand step places a pool's GPUs one instance at a time)`,
      },
    ]);
  });
});

describe("a scenario's trace files", () => {
  const secret = join(dir, 'outside', 'secret.csv');
  mkdirSync(join(dir, 'outside'));
  writeFileSync(secret, 'password=hunter2\n');
  const folder = join(dir, 'scenario');
  mkdirSync(folder);
  const traced = (trace: string) =>
    `${HEAD}quota: 4\nservices: [{name: a, maxInstances: 2, demand: {trace: {file: ${JSON.stringify(trace)}}}}]\n`;

  it('are confined to the scenario file’s folder, as a fleet file’s are', async () => {
    // Before: any path was read, and the error quoted its first line.
    for (const name of [secret, '../outside/secret.csv']) {
      const error = await fault(file(traced(name), folder));
      expect(error.message).not.toContain('hunter2');
      expect(error.message).toMatch(/outside the fleet's folder|"\.\." is not allowed/);
    }
    symlinkSync(secret, join(folder, 'link.csv'));
    const linked = await fault(file(traced('link.csv'), folder));
    expect(linked.message).toMatch(/outside the fleet's folder/);
    expect(linked.message).not.toContain('hunter2');
  });

  it('never show a line of the file in an error', async () => {
    writeFileSync(join(folder, 'not-azure.csv'), 'password=hunter2\n');
    const header = await fault(file(traced('not-azure.csv'), folder));
    expect(header.message).toContain('line 1');
    expect(header.message).not.toContain('hunter2');
    writeFileSync(
      join(folder, 'bad-row.csv'),
      'TIMESTAMP,ContextTokens,GeneratedTokens\nhunter2,1,2\n',
    );
    const row = await fault(file(traced('bad-row.csv'), folder));
    expect(row.message).toContain('line 2');
    expect(row.message).not.toContain('hunter2');
  });
});

describe('a scenario of many services', () => {
  it("simulates more services in its region than Cloud Run's default allows (a raised project)", async () => {
    const services = Array.from({ length: 1_100 }, (_, i) => ({
      name: `svc-${i}`,
      maxInstances: 1,
      demand: { shape: { kind: 'constant', value: 0 } },
    }));
    const input = await buildScenario(
      parseScenario({ scenario: 1, hours: 1, quota: 8, warmupMinutes: 0, services }),
      tmpdir(),
    );
    expect(input.fleet.projects[0]?.services).toHaveLength(1_100);
    expect(input.fleet.projects[0]?.perRegionLimit).toBe(1_100);
  });
});

describe("a scenario's quota from quotaFactor", () => {
  it('is the peak of the whole instances wanted in the minutes simulated, not in the warm-up', async () => {
    // 4 instances in the warm-up, 1.2 (2 whole instances) from the run's start.
    const path = file(
      'scenario: 1\nhours: 1\nwarmupMinutes: 30\nquotaFactor: 1\nservices: [{name: a, maxInstances: 8, demand: {shape: {kind: step, before: 4, after: 1.2, atMinute: 0}}}]\n',
    );
    const input = await loadSimulationInput(path);
    expect(input.fleet.projects[0]?.pools[0]?.quota).toBe(2);
  });
});

describe('a scenario played for other hours than its own (--hours)', () => {
  // One hour, a warm-up hour before it, and a step from 1 to 4 instances half an hour in.
  const step = (extra = '') =>
    file(
      `scenario: 1\nhours: 1\nwarmupMinutes: 60\n${extra}services: [{name: a, maxInstances: 8, demand: {shape: {kind: step, before: 1, after: 4, atMinute: 30}}}]\n`,
    );

  it('plays its shapes over every hour asked for, not its warm-up over again', async () => {
    // Before: the demand was built for the file's hour and looped, warm-up included: the step
    // went back to 1 at minute 60 and up again at minute 150.
    const input = await loadSimulationInput(step('quota: 8\n'), 3);
    const model = new FleetModel(input.fleet, { traces: input.traces, historyMinutes: 1 });
    const want = demandTable(input, model, 180).get('sim-project/us-central1/a');
    expect([...(want ?? [])].slice(30)).toEqual(new Array<number>(150).fill(4));
    expect(input.hours).toBe(3);
  });

  it('sets a quota from the peak of the hours played', async () => {
    // The step at minute 90 falls in the hours asked for, not in the file's own hour.
    const path = file(
      'scenario: 1\nhours: 1\nquotaFactor: 1\nservices: [{name: a, maxInstances: 8, demand: {shape: {kind: step, before: 1, after: 4, atMinute: 90}}}]\n',
    );
    const input = await loadSimulationInput(path, 2);
    expect(input.fleet.projects[0]?.pools[0]?.quota).toBe(4);
  });

  it('refuses hours that end before its quota cut', async () => {
    // Before: the cut at hour 2 of a 3-hour scenario played for 1 hour never happened, unsaid.
    const path = file(
      'scenario: 1\nhours: 3\nquota: 8\nquotaCut: {atHour: 2, factor: 0.5}\nservices: [{name: a, maxInstances: 8, demand: {shape: {kind: constant, value: 1}}}]\n',
    );
    const error: unknown = await loadSimulationInput(path, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(
      '--hours 1: ends before the quota cut of the scenario, at hour 2 (quotaCut.atHour); ask for more hours',
    );
  });
});

describe("a scenario's time zone", () => {
  it("is an IANA name, as a policy window takes one: never the machine's zone nor a fixed offset", () => {
    // luxon reads "local" and "system" as the machine's zone (TZ), so a report's times changed
    // with the machine, and "UTC+5" as a fixed offset, which a policy refuses.
    const services = [
      { name: 'a', maxInstances: 1, demand: { shape: { kind: 'constant', value: 0 } } },
    ];
    for (const timezone of ['local', 'system', 'UTC+5', '+05:00', 'utc-3']) {
      expect(
        () => parseScenario({ scenario: 1, hours: 1, quota: 8, timezone, services }),
        timezone,
      ).toThrow(/timezone: expected an IANA time zone/);
    }
    expect(
      parseScenario({ scenario: 1, hours: 1, quota: 8, timezone: 'Europe/Paris', services })
        .timezone,
    ).toBe('Europe/Paris');
  });
});

describe('a fleet whose jobs have many executions', () => {
  /** A fleet of one GPU service and one GPU job of `executions` executions of one task. */
  const jobFleet = (executions: number) =>
    validateFleet({
      version: 1,
      projects: [
        {
          id: 'sim-project',
          pools: [{ region: 'us-central1', quota: 10 }],
          services: [
            {
              name: 'a',
              region: 'us-central1',
              gpu: { accelerator: 'nvidia-l4' },
              maxInstances: 1,
              demand: 1,
            },
          ],
          jobs: [
            {
              name: 'j',
              region: 'us-central1',
              gpu: { accelerator: 'nvidia-l4' },
              executions: Array.from({ length: executions }, (_, i) => ({
                startMinute: -(i % 600),
                taskMinutes: 1,
              })),
            },
          ],
        },
      ],
    });
  const input = (executions: number): SimulationInput => ({
    label: 'jobs.yaml',
    fleet: jobFleet(executions),
    traces: new Map(),
    hours: null,
  });

  it('is sized by its executions: each is stepped every minute', () => {
    // Before: a job counted once however many executions it had, so a day of a job of 1,000
    // ran as long as a day of 1,000 services would, over the most a simulation plays, unrefused.
    expect(() => checkInputSize(input(1_000), 24)).toThrow(
      new InputError(
        'jobs.yaml: 1001 services, worker pools and job executions over 1500 minutes (warm-up included) are 1501500 service-minutes; a simulation plays at most 1008000: simulate at most 15 h of this fleet, or fewer services',
        [],
      ),
    );
    // A job of a few executions fits as a job did.
    expect(() => checkInputSize(input(3), 24)).not.toThrow();
  });

  it('lists at most 1,000 executions of a job, as Cloud Run shows', () => {
    // Before: 200,000 were read, and the model's constructor overflowed the stack ("unexpected
    // failure: Maximum call stack size exceeded").
    expect(() => jobFleet(1_001)).toThrow(
      /projects\[0\]\.jobs\[0\]\.executions: expected at most 1000 executions \(the model steps each every minute\)/,
    );
    expect(jobFleet(1_000).projects[0]?.jobs[0]?.executions).toHaveLength(1_000);
  });
});
