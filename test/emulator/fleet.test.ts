import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FleetError,
  loadFleet,
  MAX_RESOURCES_PER_REGION,
  parseFleet,
  perRegionLimitFor,
  parseTrace,
  validateFleet,
} from '../../src/emulator/fleet.js';
import { demandAt } from '../../src/emulator/demand.js';
import { FleetModel } from '../../src/emulator/model.js';

const minimal = (service: string) => `
projects:
  - id: my-project
    pools: [{ region: us-central1, quota: 8 }]
    services:
${service}
`;

describe('the fleet file', () => {
  it('reads the example fleet', async () => {
    const { fleet } = await loadFleet(join(import.meta.dirname, '../../examples/fleet.yaml'));
    const project = fleet.projects[0];
    expect(project?.pools.map((p) => [p.region, p.zonalRedundancy, p.quota])).toEqual([
      ['us-central1', true, 10],
      ['us-central1', false, 3],
    ]);
    const gpuServices = project?.services.filter((s) => s.gpu) ?? [];
    expect(gpuServices.length).toBeGreaterThanOrEqual(6);
    expect(project?.services.some((s) => s.name.startsWith('render-'))).toBe(true);
    expect(project?.services.some((s) => !s.gpu)).toBe(true);
    expect(project?.workerPools[0]?.gpu?.count).toBe(1);
  });

  it('fills defaults', () => {
    const fleet = parseFleet(
      minimal('      - { name: a, region: us-central1, gpu: {}, demand: 2 }'),
    );
    const [service] = fleet.projects[0]?.services ?? [];
    expect(service?.gpu).toEqual({ accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true });
    expect(service?.demand).toEqual({ constant: 2 });
    expect(service?.scalingMode).toBe('AUTOMATIC');
    expect(fleet.projects[0]?.pools[0]).toMatchObject({
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
    });
  });

  it('rejects unknown keys and bad values, naming their paths', () => {
    const text = minimal(`      - name: a
        region: us-central1
        gpu: { acelerator: nvidia-l4 }
        maxInstances: -1
        demand: { diurnal: { base: 0, peak: 2, peakHour: 25 } }`);
    let error: unknown;
    try {
      parseFleet(text, 'fleet.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FleetError);
    const faults = (error as FleetError).faults;
    // The unknown key is named once, in its path.
    expect(faults).toContain('projects[0].services[0].gpu.acelerator: unknown key');
    expect(faults.join('\n').match(/acelerator/g)).toHaveLength(1);
    expect(faults.join('\n')).toContain('projects[0].services[0].maxInstances');
    expect(faults.join('\n')).toContain('projects[0].services[0].demand.diurnal.peakHour');
  });

  it('refuses a start before its history could be read: no time before 1970 is read', () => {
    // A clock in year 0 (or 1969) ran, and every Monitoring read of every run was refused: the
    // governor reads no window before the Unix epoch, and a replay reads 31 days back.
    const fleet = (start: string) => ({
      start,
      projects: [{ id: 'my-project', pools: [{ region: 'us-central1', quota: 1 }], services: [] }],
    });
    for (const start of ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '1970-01-20T00:00:00Z']) {
      let error: unknown;
      try {
        validateFleet(fleet(start));
      } catch (e) {
        error = e;
      }
      expect(error, start).toBeInstanceOf(FleetError);
      expect((error as FleetError).faults.join('\n'), start).toMatch(/^start: .*1970-02-02/m);
    }
    expect(validateFleet(fleet('1970-02-02T00:00:00Z')).start).toBe('1970-02-02T00:00:00Z');
  });

  it('names an empty file, and truncated JSON as a JSON error', () => {
    expect(() => parseFleet('', 'fleet.yaml')).toThrow(
      'fleet.yaml is empty: expected a YAML document',
    );
    expect(() => parseFleet('# nothing yet\n', 'fleet.yaml')).toThrow(/is empty/);
    expect(() => parseFleet('{"version": 1, "projects": [{"id": "my-proj', 'fleet.json')).toThrow(
      /^fleet\.json is not valid JSON: line 1, column \d+: the JSON ends before it is complete \(unterminated string\)$/,
    );
    // Nested beyond any fleet: refused by the scan before the YAML parser recurses into it.
    expect(() => parseFleet(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, 'fleet.json')).toThrow(
      'fleet.json is not valid JSON: line 1, column 101: brackets nested more than 100 deep',
    );
  });

  it('reads JSON as the governor reads its own documents: duplicate keys named by line', () => {
    // JSON.parse keeps the last of two keys silently; the fleet is held to the policy's rule.
    expect(() =>
      parseFleet('{"version": 1,\n "version": 2, "projects": []}', 'fleet.json'),
    ).toThrow(
      'fleet.json is not valid JSON: line 2, column 2: the key "version" is written twice in one object',
    );
  });

  it('takes each GPU type Cloud Run documents, and only accelerators in the form Cloud Run names one', () => {
    // https://cloud.google.com/run/docs/configuring/services/gpu: nvidia-l4 and nvidia-rtx-pro-6000.
    for (const accelerator of ['nvidia-l4', 'nvidia-rtx-pro-6000']) {
      const fleet = parseFleet(
        minimal(`      - { name: a, region: us-central1, gpu: { accelerator: ${accelerator} } }`),
      );
      expect(fleet.projects[0]?.services[0]?.gpu?.accelerator).toBe(accelerator);
    }
    // An empty word would give the Cloud Quotas id of another type ("nvidia-l4-" and "nvidia--l4"
    // both read NvidiaL4GpuAlloc...), which the governor refuses to derive: refused here too.
    for (const accelerator of ['nvidia-l4-', 'nvidia--l4']) {
      expect(
        () =>
          parseFleet(
            minimal(
              `      - { name: a, region: us-central1, gpu: { accelerator: ${accelerator} } }`,
            ),
            'fleet.yaml',
          ),
        accelerator,
      ).toThrow(
        /projects\[0\]\.services\[0\]\.gpu\.accelerator: expected an accelerator such as "nvidia-l4"/,
      );
    }
  });

  it('bounds the instances a service may want in a minute', () => {
    for (const demand of [
      '{ constant: 10001 }',
      '{ diurnal: { base: 1, peak: 1e9, peakHour: 12 } }',
      '{ steps: [{ at: "08:00", value: 20000 }] }',
      '{ trace: { file: t.csv, scale: 1e7 } }',
    ]) {
      expect(
        () =>
          parseFleet(
            minimal(`      - { name: a, region: us-central1, demand: ${demand} }`),
            'fleet.yaml',
          ),
        demand,
      ).toThrow(
        /projects\[0\]\.services\[0\]\.demand\.[a-z.[\]0-9]+: Too big: expected number to be <=10000/,
      );
    }
    expect(() =>
      parseFleet(minimal('      - { name: a, region: us-central1, demand: { constant: 10000 } }')),
    ).not.toThrow();
  });

  it('rejects reserved annotations, two demand kinds and a min above the max', () => {
    expect(() =>
      parseFleet(
        minimal(
          '      - { name: a, region: us-central1, annotations: { "run.googleapis.com/x": "1" } }',
        ),
      ),
    ).toThrow(/annotations\.run\.googleapis\.com\/x/);
    expect(() =>
      parseFleet(
        minimal(
          '      - { name: a, region: us-central1, demand: { constant: 1, steps: [{ at: "01:00", value: 1 }] } }',
        ),
      ),
    ).toThrow(/exactly one of/);
    expect(() =>
      parseFleet(
        minimal('      - { name: a, region: us-central1, minInstances: 3, maxInstances: 2 }'),
      ),
    ).toThrow(/minInstances/);
  });

  it('bounds what a trace may ask for: finite samples, at most MAX_INSTANCES_WANTED a minute', async () => {
    // Number() reads "Infinity" as a number: a simulation on it reported Infinity refused and NaN
    // gaps, exit 0.
    expect(() => parseTrace('value\n1\nInfinity\n', 'trace inf.csv')).toThrow(
      /^trace inf\.csv: line 3 is not a number$/,
    );
    expect(() => parseTrace('value\n-Infinity\n', 'trace inf.csv')).toThrow(
      /line 2 is not a number/,
    );
    // Line numbers are the file's own, blank lines counted.
    expect(() => parseTrace('value\n\n1\n\nx\n', 'trace gaps.csv')).toThrow(
      /^trace gaps\.csv: line 5 is not a number$/,
    );
    expect(() => parseTrace('value\n\n-1\n', 'trace gaps.csv')).toThrow(/line 3 is negative/);
    expect(() => parseTrace('TIMESTAMP\n\n2023-11-16 18:17:03\nsoon\n', 'trace gaps.csv')).toThrow(
      /^trace gaps\.csv: line 4: not a timestamp$/,
    );
    const dir = await mkdtemp(join(tmpdir(), 'fleet-'));
    // Raw, 20,000 instances in a minute; normalised, one busy minute in a hundred is 100 x the
    // mean, so a scale of 200 asks for 20,000 too: the constant, steps and scale are bounded to
    // 10,000 (the emulator plays every instance), and the trace is no way around it.
    await writeFile(join(dir, 'raw.csv'), 'value\n0\n20000\n');
    await writeFile(join(dir, 'spike.csv'), `value\n${'0\n'.repeat(99)}1\n`);
    const fleetOf = async (name: string, trace: string) => {
      await writeFile(
        join(dir, name),
        minimal(
          `      - { name: ok, region: us-central1, demand: { constant: 1 } }\n      - { name: a, region: us-central1, demand: { trace: ${trace} } }`,
        ),
      );
      return join(dir, name);
    };
    await expect(
      loadFleet(await fleetOf('raw.yaml', '{ file: raw.csv, normalize: false }')),
    ).rejects.toThrow(
      /^projects\[0\]\.services\[1\]\.demand\.trace: trace raw\.csv asks for up to 20000 instances in a minute; a service may want at most 10000$/,
    );
    await expect(
      loadFleet(await fleetOf('spike.yaml', '{ file: spike.csv, scale: 200 }')),
    ).rejects.toThrow(
      /^projects\[0\]\.services\[1\]\.demand\.trace: trace spike\.csv asks for up to 20000 instances in a minute; a service may want at most 10000$/,
    );
    await expect(
      loadFleet(await fleetOf('spike-ok.yaml', '{ file: spike.csv, scale: 100 }')),
    ).resolves.toBeDefined();
  });

  it('reads traces in both shapes and plays them normalised, looping', async () => {
    expect(
      parseTrace(
        'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,1,1\n2023-11-16 18:17:04.03,1,1\n2023-11-16 18:19:00.00,1,1\n',
      ),
    ).toEqual([2, 0, 1]);
    expect(parseTrace('minute,value\n0,1\n1,3\n')).toEqual([1, 3]);
    // Two arrivals a thousand years apart would be 500 million minutes: refused, not a crash.
    expect(() =>
      parseTrace('TIMESTAMP\n2023-11-16 18:17:03\n2999-11-16 18:17:03\n', 'trace far.csv'),
    ).toThrow(/^trace far\.csv: its arrivals span \d+ days; a trace may span at most 31$/);
    const dir = await mkdtemp(join(tmpdir(), 'fleet-'));
    await writeFile(join(dir, 'trace.csv'), 'value\n1\n3\n');
    await writeFile(
      join(dir, 'fleet.yaml'),
      minimal(
        '      - { name: a, region: us-central1, demand: { trace: { file: trace.csv, scale: 2 } } }',
      ),
    );
    const { fleet, traces } = await loadFleet(join(dir, 'fleet.yaml'));
    const demand = fleet.projects[0]?.services[0]?.demand;
    if (!demand) throw new Error('no demand');
    const ctx = { timezone: 'UTC', startMs: Date.parse(fleet.start), traces };
    // Mean 2, scale 2: samples 1 and 3 become 1 and 3 instances.
    expect(demandAt(demand, ctx.startMs, ctx)).toBe(1);
    expect(demandAt(demand, ctx.startMs + 60_000, ctx)).toBe(3);
    expect(demandAt(demand, ctx.startMs + 120_000, ctx)).toBe(1);
    expect(new FleetModel(fleet, { traces }).findService('a').lastDemand).toBe(1);
  });

  it('documents every top-level key of the example in docs/emulator.md', async () => {
    const docs = await readFile(join(import.meta.dirname, '../../docs/emulator.md'), 'utf8');
    for (const key of [
      'start',
      'timezone',
      'startupSeconds',
      'idleMinutes',
      'warmupMinutes',
      'pools',
      'services',
      'workerPools',
      'demand',
    ]) {
      expect(docs).toContain(key);
    }
  });

  it("holds each project and region to Cloud Run's 1000 services, worker pools and jobs", () => {
    const named = (prefix: string, n: number, region: string) =>
      Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${i}`, region }));
    const fleet = (project: Record<string, unknown>) => ({
      projects: [{ id: 'my-project', ...project }],
    });
    const faultsOf = (value: unknown): readonly string[] => {
      try {
        validateFleet(value, 'big.yaml');
      } catch (e) {
        expect(e).toBeInstanceOf(FleetError);
        return (e as FleetError).faults;
      }
      return [];
    };
    expect(MAX_RESOURCES_PER_REGION).toBe(1000);
    // At the limit in each of two regions: accepted.
    const atLimit = [...named('a', 1000, 'us-central1'), ...named('b', 1000, 'europe-west1')];
    expect(faultsOf(fleet({ services: atLimit, jobs: named('j', 1000, 'us-central1') }))).toEqual(
      [],
    );
    // One more in a region: the first one over is named, once.
    expect(faultsOf(fleet({ services: [...atLimit, ...named('c', 3, 'europe-west1')] }))).toEqual([
      "projects[0].services[2000]: more than 1000 services in europe-west1: Cloud Run's limit per project and region (perRegionLimit, if Google raised it for this project)",
    ]);
    expect(faultsOf(fleet({ jobs: named('j', 1001, 'us-central1') }))).toEqual([
      "projects[0].jobs[1000]: more than 1000 jobs in us-central1: Cloud Run's limit per project and region (perRegionLimit, if Google raised it for this project)",
    ]);
    // A project whose limit Google raised says so, and is held to what it says.
    const raised = named('r', 1500, 'us-central1');
    expect(faultsOf(fleet({ perRegionLimit: 1500, services: raised }))).toEqual([]);
    expect(faultsOf(fleet({ perRegionLimit: 1499, services: raised }))).toEqual([
      "projects[0].services[1499]: more than 1499 services in us-central1: this project's perRegionLimit",
    ]);
    expect(faultsOf(fleet({ perRegionLimit: 20_001 }))[0]).toMatch(
      /^projects\[0\]\.perRegionLimit: /,
    );
  });

  it('names a duplicate topic, and lists at most 100 faults in its message', () => {
    const topics = [
      'projects/my-project/topics/alerts',
      'projects/my-project/topics/other',
      'projects/my-project/topics/alerts',
    ];
    let error: unknown;
    try {
      validateFleet({ topics, projects: [{ id: 'my-project' }] }, 'fleet.yaml');
    } catch (e) {
      error = e;
    }
    expect((error as FleetError).faults).toEqual([
      'topics[2]: duplicate topic projects/my-project/topics/alerts',
    ]);
    const many = Array.from({ length: 250 }, (_, i) => ({ name: `s-${i}`, region: 'nowhere' }));
    try {
      validateFleet({ projects: [{ id: 'my-project', services: many }] }, 'fleet.yaml');
    } catch (e) {
      error = e;
    }
    const { faults, message } = error as FleetError;
    expect(faults).toHaveLength(250);
    const lines = message.split('\n');
    expect(lines[0]).toBe('fleet.yaml is not a valid fleet:');
    expect(lines).toHaveLength(1 + 100 + 1);
    expect(lines.at(-1)).toBe('  and 150 more problems');
  });

  it('raises the per-region limit a built fleet needs only past the default, by its busiest region', () => {
    const at = (region: string, n: number) => Array.from({ length: n }, () => ({ region }));
    expect(perRegionLimitFor([], [])).toBe(1000);
    expect(perRegionLimitFor(at('us-central1', 1000), at('us-central1', 1000))).toBe(1000);
    // Each kind counts on its own, as Cloud Run's limits do.
    expect(perRegionLimitFor([...at('a1', 700), ...at('b1', 1_200)], at('a1', 1_001))).toBe(1_200);
  });
});
