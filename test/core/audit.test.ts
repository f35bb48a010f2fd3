import { describe, expect, it } from 'vitest';
import {
  AUDIT_RULE_IDS,
  AUDIT_RULES,
  auditAlerts,
  auditFleet,
  unjudgedMisconfigured,
  type AuditFinding,
} from '../../src/core/audit.js';
import { Alert } from '../../src/core/alert.js';
import { decideNotifications } from '../../src/core/notify.js';
import { parsePolicy, type PolicyInput } from '../../src/core/policy.js';
import type { Snapshot, SnapshotService } from '../../src/core/snapshot.js';
import type { ObservedService } from '../../src/core/service.js';
import { observedContainer, observedService } from '../support/fixtures.js';

/** The fleet audit's rules, one by one: a service that passes, one that fails, edge values. */

const AT = '2026-11-27T12:00:00.000Z';
const GiB = 2 ** 30;

const container = observedContainer;

/** A GPU service that passes every rule. */
const service = observedService;

function snapshot(
  quota: number | null = 8,
  usage: Record<string, SnapshotService['usage']> = {},
  services: ObservedService[] = [],
): Snapshot {
  return {
    version: 1,
    takenAt: AT,
    pools: [
      {
        project: 'p',
        region: 'us-central1',
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
        quota,
      },
    ],
    services: services
      .filter((s) => s.gpu)
      .map((s) => ({
        project: s.project,
        region: s.region,
        accelerator: s.gpu?.accelerator ?? 'nvidia-l4',
        zonalRedundancy: s.gpu?.zonalRedundancy ?? true,
        name: s.name,
        gpusPerInstance: s.gpu?.count ?? 1,
        labels: s.labels,
        maxInstances: s.serviceMaxInstances ?? 100,
        minInstances: Math.max(s.serviceMinInstances ?? 0, s.revisionMinInstances ?? 0),
        reconciling: false,
        etag: s.etag,
        lastChangedAt: null,
        usage: usage[s.name] ?? { current: 1, peak: 2, sampledAt: AT, utilization: 0.5 },
      })),
    unmanagedUsage: [],
  };
}

function audit(
  services: ObservedService[],
  opts: {
    policy?: Partial<PolicyInput>;
    quota?: number | null;
    usage?: Record<string, SnapshotService['usage']>;
  } = {},
): AuditFinding[] {
  const policy = parsePolicy({ version: 1, projects: ['p'], ...opts.policy });
  return auditFleet({
    services,
    snapshot: snapshot(opts.quota === undefined ? 8 : opts.quota, opts.usage, services),
    policy,
  }).findings;
}

const rules = (findings: AuditFinding[]) =>
  findings.map((f) => `${f.service}:${f.rule}:${f.severity}`);

describe('auditFleet: each rule', () => {
  it('a well configured GPU service passes every rule; a service without a GPU is not audited', () => {
    const web = service('web', {
      gpu: null,
      containers: [container({ gpus: 0, cpuIdle: true, cpu: '1' })],
    });
    expect(audit([service('good'), web])).toEqual([]);
  });

  it('cpu-always-allocated: any container with cpu_idle true fails (required); null (not sent) passes', () => {
    const throttled = service('a', {
      containers: [container({ name: 'a' }), container({ name: 'otel', gpus: 0, cpuIdle: true })],
    });
    const unsent = service('b', { containers: [container({ name: 'b', cpuIdle: null })] });
    const f = audit([throttled, unsent]);
    expect(rules(f)).toEqual(['a:cpu-always-allocated:required']);
    expect(f[0]?.problem).toContain('otel');
    expect(f[0]?.why).toBe(AUDIT_RULES['cpu-always-allocated'].why);
  });

  it('cpu-minimum and cpu-recommended: 4 vCPU is the edge of required, 8 of recommended; unset is 1 vCPU', () => {
    const f = audit([
      service('at-min', { containers: [container({ cpu: '4', vcpus: 4 })] }),
      service('below', { containers: [container({ cpu: '3999m', vcpus: 3.999 })] }),
      service('unset', { containers: [container({ cpu: null, vcpus: null })] }),
      service('bad', { containers: [container({ cpu: 'lots', vcpus: null })] }),
      service('at-rec', { containers: [container({ cpu: '8', vcpus: 8 })] }),
    ]);
    expect(rules(f)).toEqual([
      'at-min:cpu-recommended:recommended',
      'bad:cpu-minimum:required',
      'below:cpu-minimum:required',
      'unset:cpu-minimum:required',
    ]);
    expect(f.find((x) => x.service === 'below')?.problem).toContain(
      '3.999 vCPU, below the minimum of 4 vCPU',
    );
    expect(f.find((x) => x.service === 'unset')?.problem).toContain(
      "Cloud Run's default of 1 vCPU",
    );
  });

  it('memory-minimum and memory-recommended: 16 GiB and 32 GiB are the edges', () => {
    const mem = (memory: string, bytes: number) => [container({ memory, memoryBytes: bytes })];
    const f = audit([
      service('m16', { containers: mem('16Gi', 16 * GiB) }),
      service('m15', { containers: mem('16383Mi', 16383 * 2 ** 20) }),
      service('m32', { containers: mem('32Gi', 32 * GiB) }),
    ]);
    expect(rules(f)).toEqual(['m15:memory-minimum:required', 'm16:memory-recommended:recommended']);
    expect(f[0]?.fix).toContain('--memory 16Gi');
    // Before, 16383 MiB was shown rounded: "has 16 GiB, below the minimum of 16 GiB".
    expect(f[0]?.problem).toContain('has 16383 MiB, below the minimum of 16 GiB');
    expect(f[1]?.problem).toContain('has 16 GiB, below the recommended 32 GiB');
    const odd = audit([
      service('m-half', { containers: mem('17408Mi', 17 * GiB + 512 * 2 ** 20) }),
      service('m-byte', { containers: mem('17179869183', 16 * GiB - 1) }),
    ]);
    expect(odd.map((x) => x.problem)).toEqual([
      expect.stringContaining('has 17179869183 bytes, below the minimum of 16 GiB'),
      expect.stringContaining('has 17.5 GiB, below the recommended 32 GiB'),
    ]);
  });

  it('memory-minimum: a decimal unit ("16G", 10^9 bytes) is below 16 GiB, and the problem says why', () => {
    const f = audit([
      service('gb', { containers: [container({ memory: '16G', memoryBytes: 16e9 })] }),
      service('mib', { containers: [container({ memory: '16384Mi', memoryBytes: 16 * GiB })] }),
    ]);
    expect(rules(f)).toEqual(['gb:memory-minimum:required', 'mib:memory-recommended:recommended']);
    expect(f[0]?.problem).toBe(
      'model has 16G (16000000000 bytes: G is 10^9 bytes, Gi 2^30), below the minimum of 16 GiB for nvidia-l4',
    );
    expect(f[0]?.fix).toContain('--memory 16Gi');
    expect(f[1]?.problem).toContain('has 16 GiB, below the recommended 32 GiB');
  });

  it('cpu-recommended and memory-recommended: an unreadable limit is reported by them when the minimum rule is off', () => {
    const lots = service('lots', {
      containers: [container({ cpu: 'lots', vcpus: null, memory: 'lots', memoryBytes: null })],
    });
    const off = { audit: { rules: { 'cpu-minimum': 'off', 'memory-minimum': 'off' } } } as const;
    const f = audit([lots, service('empty', { containers: [] })], { policy: off });
    expect(rules(f)).toEqual([
      'empty:cpu-recommended:recommended',
      'empty:memory-recommended:recommended',
      'empty:gpu-per-instance:required',
      'empty:startup-probe:recommended',
      'lots:cpu-recommended:recommended',
      'lots:memory-recommended:recommended',
    ]);
    expect(f[4]?.problem).toBe('the CPU limit "lots" of model is not a CPU quantity');
    expect(f[5]?.problem).toBe('the memory limit "lots" of model is not a memory quantity');
    // With the minimum rules on, they report it once, as before.
    expect(rules(audit([lots]))).toEqual([
      'lots:cpu-minimum:required',
      'lots:memory-minimum:required',
    ]);
  });

  it('the RTX PRO 6000 has its own documented minimums (20 vCPU, 80 GiB), above the policy defaults', () => {
    const rtx = service('rtx', {
      gpu: { accelerator: 'nvidia-rtx-pro-6000', count: 1, zonalRedundancy: true },
    });
    expect(rules(audit([rtx], { quota: null }))).toEqual([
      'rtx:cpu-minimum:required',
      'rtx:memory-minimum:required',
    ]);
  });

  it('gpu-per-instance and gpu-single-container: one GPU, on one container', () => {
    const f = audit([
      service('two', {
        gpu: { accelerator: 'nvidia-l4', count: 2, zonalRedundancy: true },
        containers: [container({ gpus: 2 })],
      }),
      service('none', { containers: [container({ gpus: 0 })] }),
      service('sidecar', {
        containers: [container({ name: 'model' }), container({ name: 'otel', gpus: 1 })],
      }),
    ]);
    expect(rules(f)).toEqual([
      'none:gpu-per-instance:required',
      'sidecar:gpu-per-instance:required',
      'sidecar:gpu-single-container:required',
      'two:gpu-per-instance:required',
    ]);
    expect(f.find((x) => x.rule === 'gpu-single-container')?.problem).toContain('model, otel');
  });

  it('gpu-per-instance and gpu-single-container: an nvidia.com/gpu limit that is not a GPU count is reported, never read as no GPU', () => {
    // The only value Cloud Run supports is "1" (ResourceRequirements.limits in
    // google/cloud/run/v2/k8s.min.proto): a limit that cannot be read cannot be judged to pass.
    const f = audit([
      service('sidecar', {
        containers: [
          container({ name: 'model' }),
          container({ name: 'helper', gpus: 0, gpuLimit: 'lots', startupProbe: null }),
        ],
      }),
      service('main', { containers: [container({ name: 'main', gpus: 0, gpuLimit: '0.5' })] }),
      service('zero', {
        containers: [
          container({ name: 'zero' }),
          container({ name: 'otel', gpus: 0, gpuLimit: '0' }),
        ],
      }),
    ]);
    expect(rules(f)).toEqual([
      'main:gpu-per-instance:required',
      'sidecar:gpu-per-instance:required',
      'sidecar:gpu-single-container:required',
    ]);
    expect(f[0]?.problem).toBe(
      'the nvidia.com/gpu limit "0.5" of main is not a whole number of GPUs (Cloud Run accepts "1")',
    );
    expect(f[1]?.problem).toContain('"lots" of helper');
    expect(f[2]?.problem).toContain('model, helper');
  });

  it('each gcloud fix names the project of its service, not the default one', () => {
    const f = auditFleet({
      services: [
        service('nine', { project: 'other', serviceMaxInstances: 9 }),
        service('unset', { project: 'other', serviceMaxInstances: null }),
        service('rev', { project: 'other', serviceMaxInstances: null, revisionMaxInstances: 2 }),
        service('warm', { project: 'other', serviceMinInstances: 1 }),
      ],
      snapshot: {
        ...snapshot(8),
        pools: [
          {
            project: 'other',
            region: 'us-central1',
            accelerator: 'nvidia-l4',
            zonalRedundancy: true,
            quota: 8,
          },
        ],
        services: snapshot(8, { warm: { current: 1, peak: 1, sampledAt: AT, utilization: 0 } }, [
          service('warm', { project: 'other', serviceMinInstances: 1 }),
        ]).services,
      },
      policy: parsePolicy({ version: 1, projects: ['p', 'other'] }),
    }).findings;
    const commands = f.filter((x) => x.fix.includes('gcloud run services update'));
    expect(commands.map((x) => x.rule).sort()).toEqual([
      'max-unset',
      'max-within-quota',
      'min-instances-unused',
      'service-level-max',
    ]);
    for (const x of commands)
      expect(x.fix, x.rule).toContain(
        `gcloud run services update ${x.service} --project other --region us-central1`,
      );
  });

  it('max-within-quota: max × GPUs up to the quota passes; above fails; an unset max is max-unset (derived from the quota, not 100); unknown quota is skipped', () => {
    const f = audit([
      service('eight', { serviceMaxInstances: 8 }),
      service('nine', { serviceMaxInstances: 9 }),
      service('unset', { serviceMaxInstances: null }),
    ]);
    expect(rules(f)).toEqual(['nine:max-within-quota:required', 'unset:max-unset:required']);
    expect(f[0]?.problem).toContain(
      "max instances 9 (service level) × 1 GPU = 9 GPUs, above the pool's quota of 8",
    );
    expect(f[0]?.fix).toContain('--max 8');
    expect(f[1]?.problem).toContain(
      'derives it from the regional quota, so it may run 8 instances',
    );
    expect(rules(audit([service('nine', { serviceMaxInstances: 9 })], { quota: null }))).toEqual(
      [],
    );
  });

  it('max-unset: a service whose serving revisions could not be read is not said to set no max', () => {
    const f = audit([
      service('pinned', {
        serviceMaxInstances: null,
        revisionMaxInstances: 2,
        templateServes: false,
        revisionsUnread: 'PERMISSION_DENIED: run.revisions.get',
      }),
    ]);
    expect(rules(f)).toEqual(['pinned:max-unset:required']);
    expect(f[0]?.problem).not.toContain('no max instances at either level');
    expect(f[0]?.problem).toContain(
      'no service-level max instances, and its serving revisions could not be read (PERMISSION_DENIED: run.revisions.get)',
    );
    expect(f[0]?.problem).toContain('the governor counts it at 8');
  });

  it('max-within-quota: the policy quota overrides the snapshot, as the planner does', () => {
    const nine = service('nine', { serviceMaxInstances: 9 });
    expect(audit([nine], { policy: { pools: [{ region: 'us-central1', quota: 10 }] } })).toEqual(
      [],
    );
    expect(
      rules(
        audit([service('four', { serviceMaxInstances: 4 })], {
          policy: { pools: [{ region: 'us-central1', quota: 3 }] },
        }),
      ),
    ).toEqual(['four:max-within-quota:required']);
  });

  it('revision-max-override and service-level-max: a revision max below the service max, or no service max', () => {
    const f = audit([
      service('lower', { serviceMaxInstances: 4, revisionMaxInstances: 2 }),
      service('equal', { serviceMaxInstances: 4, revisionMaxInstances: 4 }),
      service('higher', { serviceMaxInstances: 2, revisionMaxInstances: 3 }),
      service('revision-only', { serviceMaxInstances: null, revisionMaxInstances: 2 }),
    ]);
    expect(rules(f)).toEqual([
      'lower:revision-max-override:required',
      'revision-only:service-level-max:recommended',
    ]);
    expect(f[0]?.problem).toContain('the cap in force is 2');
    // A new revision keeps the revision-level max unless it is cleared: "default" clears it.
    expect(f[0]?.fix).toContain(
      'gcloud run services update lower --project p --region us-central1 --max-instances default',
    );
    expect(f[1]?.problem).toContain('the cap is 2 (revision level)');
  });

  it('revision-max-override: not said of a template that does not serve (traffic pinned elsewhere)', () => {
    const f = audit([
      service('pinned', { serviceMaxInstances: 4, revisionMaxInstances: 2, templateServes: false }),
    ]);
    expect(rules(f)).toEqual([]);
  });

  it('min-instances-unused: min instances never exceeded over the lookback with an idle GPU', () => {
    const idle = { current: 1, peak: 1, sampledAt: AT, utilization: 0 };
    const f = audit(
      [
        service('idle', { serviceMinInstances: 1 }),
        service('busy', { serviceMinInstances: 1 }),
        service('grew', { serviceMinInstances: 1 }),
        service('edge', { revisionMinInstances: 1 }),
        service('unknown', { serviceMinInstances: 1 }),
      ],
      {
        usage: {
          idle,
          busy: { ...idle, utilization: 0.7 },
          grew: { ...idle, peak: 2 },
          edge: { ...idle, utilization: 0.05 }, // at the threshold: not below it
          unknown: { current: 1, peak: 1, sampledAt: AT },
        },
      },
    );
    // (5 min instances in a pool of 8 also hold more than half of it: the other rule's finding.)
    expect(rules(f.filter((x) => x.rule === 'min-instances-unused'))).toEqual([
      'idle:min-instances-unused:recommended',
    ]);
    expect(f.find((x) => x.rule === 'min-instances-unused')?.problem).toContain(
      '1 min instance holds 1 GPU at full price',
    );
    expect(f.find((x) => x.rule === 'min-instances-unused')?.fix).toContain(
      'gcloud run services update idle --project p --region us-central1 --min 0 (',
    );
  });

  it('min-instances-unused: its fix lowers the min where it is set, the revision level too', () => {
    const idle = { current: 1, peak: 1, sampledAt: AT, utilization: 0 };
    const fixOf = (more: Partial<ObservedService>) =>
      audit([service('s', more)], { usage: { s: idle } }).find(
        (x) => x.rule === 'min-instances-unused',
      )?.fix;
    const command = 'gcloud run services update s --project p --region us-central1';
    expect(fixOf({ revisionMinInstances: 1 })).toContain(`${command} --min-instances 0 (`);
    expect(fixOf({ serviceMinInstances: 1, revisionMinInstances: 2 })).toContain(
      `${command} --min 0 --min-instances 0 (`,
    );
  });

  it('min-instances-unused unjudged: a condition holding it is kept while usage is unknown, and only then', () => {
    const idle = { current: 1, peak: 1, sampledAt: AT, utilization: 0 };
    const services = [
      service('blind', { serviceMinInstances: 1 }),
      service('no-util', { serviceMinInstances: 1 }),
      service('grew', { serviceMinInstances: 1 }),
      service('seen', { serviceMinInstances: 1 }),
      service('no-min'),
      service('manual', { serviceMinInstances: 1, scalingMode: 'MANUAL', manualInstanceCount: 1 }),
    ];
    const snap = snapshot(
      8,
      {
        'no-util': { current: 1, peak: 1, sampledAt: AT },
        grew: { current: 1, peak: 2, sampledAt: AT },
        seen: idle,
        'no-min': { current: 1, peak: 1, sampledAt: AT },
      },
      services,
    );
    const blind = snap.services.find((s) => s.name === 'blind');
    if (blind) blind.usage = null;
    const key = (name: string) => `service.misconfigured:p/us-central1/nvidia-l4/zonal:${name}`;
    const policy = parsePolicy({ version: 1, projects: ['p'] });
    expect(auditFleet({ services, snapshot: snap, policy }).unjudged).toEqual([
      key('blind'),
      key('no-util'),
    ]);
    // The rule off (here for every service): nothing is left unjudged.
    const off = parsePolicy({
      version: 1,
      projects: ['p'],
      audit: { rules: { 'min-instances-unused': 'off' } },
    });
    expect(auditFleet({ services, snapshot: snap, policy: off }).unjudged).toEqual([]);
    // Kept only where the stored condition holds that finding.
    const stored = (rules: string[]) => ({
      details: { findings: rules.map((rule) => ({ rule })) },
    });
    expect(
      unjudgedMisconfigured([key('blind'), key('no-util')], {
        [key('blind')]: stored(['concurrency-set', 'min-instances-unused']),
        [key('no-util')]: stored(['concurrency-set']),
      }),
    ).toEqual([key('blind')]);
  });

  it('min-instances-pool-share: min instances holding more than half the pool', () => {
    const at = (n: number) => [
      service('a', { serviceMinInstances: n }),
      service('b', { serviceMinInstances: 2 }),
      service('c'),
    ];
    expect(audit(at(2))).toEqual([]); // 4 of 8: exactly half
    const f = audit(at(3)); // 5 of 8
    expect(rules(f)).toEqual([
      'a:min-instances-pool-share:recommended',
      'b:min-instances-pool-share:recommended',
    ]);
    expect(f[0]?.problem).toContain('hold 5 of its 8 GPUs (63%, above 50%)');
    // A manually scaled service's instances are fixed, not min instances: not counted here.
    const manual = service('m', { scalingMode: 'MANUAL', serviceMinInstances: 4 });
    expect(
      rules(audit([...at(2), manual])).filter((r) => r.includes('min-instances-pool-share')),
    ).toEqual([]);
  });

  it('concurrency-set: unset, 80 and 80 × vCPUs are defaults; anything else is deliberate', () => {
    const f = audit([
      service('unset', { concurrency: null }),
      service('eighty', { concurrency: 80 }),
      service('gcloud', { concurrency: 640 }),
      service('chosen', { concurrency: 4 }),
      service('high', { concurrency: 81 }),
      // 80 × 20 vCPUs is past Cloud Run's most, 1000: gcloud's default is then 1000.
      service('wide', {
        concurrency: 1000,
        containers: [container({ cpu: '20', vcpus: 20 })],
      }),
    ]);
    expect(rules(f)).toEqual([
      'eighty:concurrency-set:recommended',
      'gcloud:concurrency-set:recommended',
      'unset:concurrency-set:recommended',
      'wide:concurrency-set:recommended',
    ]);
  });

  it('startup-probe: none, or initial delay + failures × period under 240 s, fails; 240 s passes', () => {
    const probe = (
      initialDelaySeconds: number,
      failureThreshold: number,
      periodSeconds: number,
    ) => [
      container({
        startupProbe: { initialDelaySeconds, failureThreshold, periodSeconds, timeoutSeconds: 1 },
      }),
    ];
    const f = audit([
      service('none', { containers: [container({ startupProbe: null })] }),
      service('short', { containers: probe(0, 3, 10) }),
      service('edge', { containers: probe(60, 18, 10) }),
      service('delay', { containers: probe(30, 20, 10) }),
    ]);
    expect(rules(f)).toEqual([
      'delay:startup-probe:recommended',
      'none:startup-probe:recommended',
      'short:startup-probe:recommended',
    ]);
    expect(f[2]?.problem).toContain('gives up after 30 s (0 + 3 × 10 s), under 240 s');
    expect(f[2]?.fix).toContain('failureThreshold to 24');
  });

  it('a template with no container fails every rule about its GPU container, the startup probe too', () => {
    const f = audit([service('empty', { containers: [] })]);
    expect(rules(f)).toEqual([
      'empty:cpu-minimum:required',
      'empty:memory-minimum:required',
      'empty:gpu-per-instance:required',
      'empty:startup-probe:recommended',
    ]);
    expect(f.find((x) => x.rule === 'startup-probe')?.problem).toBe(
      'the revision template has no container',
    );
  });

  it('manual scaling: counted by its instance count against the quota; max and min rules do not apply', () => {
    const manual = service('manual', {
      scalingMode: 'MANUAL',
      manualInstanceCount: 9,
      serviceMaxInstances: null,
      revisionMaxInstances: 2,
      serviceMinInstances: 5,
    });
    expect(rules(audit([manual]))).toEqual(['manual:max-within-quota:required']);
  });
});

describe('auditFleet: quotaUnjudged', () => {
  const unjudged = (quota: number | null, policy: Partial<PolicyInput> = {}) =>
    auditFleet({
      services: [service('llm')],
      snapshot: snapshot(quota, {}, [service('llm')]),
      policy: parsePolicy({ version: 1, projects: ['p'], ...policy }),
    }).quotaUnjudged;

  it('names a pool whose quota is unknown, where max-within-quota is required', () => {
    expect(unjudged(null)).toEqual(['p/us-central1/nvidia-l4/zonal']);
    expect(unjudged(8)).toEqual([]);
  });

  it('takes a quota the policy sets as known, and a rule the policy lowers as no gate', () => {
    expect(unjudged(null, { pools: [{ region: 'us-central1', quota: 8 }] })).toEqual([]);
    expect(unjudged(null, { audit: { rules: { 'max-within-quota': 'recommended' } } })).toEqual([]);
    expect(unjudged(null, { audit: { rules: { 'max-within-quota': 'off' } } })).toEqual([]);
  });
});

describe('auditFleet: policy', () => {
  const bad = () => [
    service('llm-a', {
      labels: { team: 'search' },
      concurrency: null,
      containers: [container({ name: 'llm-a', cpu: '2', vcpus: 2 })],
    }),
    service('other', { concurrency: null }),
  ];

  it('turns a rule off and changes a severity for every service', () => {
    const f = audit(bad(), {
      policy: { audit: { rules: { 'cpu-minimum': 'off', 'concurrency-set': 'required' } } },
    });
    expect(rules(f)).toEqual(['llm-a:concurrency-set:required', 'other:concurrency-set:required']);
  });

  it('thresholds are policy settings', () => {
    const f = audit(
      [
        service('a', {
          containers: [container({ cpu: '8', vcpus: 8, memory: '32Gi', memoryBytes: 32 * GiB })],
        }),
      ],
      {
        policy: {
          audit: { minCpu: 8, recommendedCpu: 16, minMemory: '40Gi', minStartupProbeSeconds: 600 },
        },
      },
    );
    expect(rules(f)).toEqual([
      'a:cpu-recommended:recommended',
      'a:memory-minimum:required',
      'a:startup-probe:recommended',
    ]);
  });

  it("a service rule's audit overrides the top level for the services it matches (first matching rule)", () => {
    const f = audit(bad(), {
      policy: {
        audit: { rules: { 'concurrency-set': 'required' } },
        services: [
          {
            match: { labels: { team: 'search' } },
            audit: { rules: { 'cpu-minimum': 'recommended', 'concurrency-set': 'off' } },
          },
          { match: {} },
        ],
      },
    });
    expect(rules(f)).toEqual(['llm-a:cpu-minimum:recommended', 'other:concurrency-set:required']);
  });

  it('the policy rejects unknown rule ids, levels and thresholds with their paths', () => {
    let message = '';
    try {
      parsePolicy({
        version: 1,
        projects: ['p'],
        audit: { rules: { 'no-such-rule': 'off', 'cpu-minimum': 'fatal' }, minMemory: 'big' },
        services: [{ match: {}, audit: { bogus: 1 } }],
      });
    } catch (e) {
      message = e instanceof Error ? e.message : String(e);
    }
    expect(message).toContain('audit.rules.no-such-rule: unknown key');
    expect(message).toContain('audit.rules.cpu-minimum: Invalid option');
    expect(message).toContain('audit.minMemory: expected a memory size');
    expect(message).toContain('services[0].audit.bogus: unknown key');
  });

  it("audits only the policy's projects and regions", () => {
    const elsewhere = service('x', { project: 'q', concurrency: null });
    const eu = service('y', { region: 'europe-west4', concurrency: null });
    expect(audit([elsewhere, eu], { policy: { regions: ['us-central1'] } })).toEqual([]);
  });

  it('is deterministic: the same findings in the same order whatever the order of the inputs', () => {
    const fleet = [
      ...bad(),
      service('z', { serviceMaxInstances: 20 }),
      service('b', { concurrency: 80 }),
    ];
    const once = audit(fleet);
    expect(audit([...fleet].reverse())).toEqual(once);
    expect(once.map((f) => f.service)).toEqual(['b', 'llm-a', 'llm-a', 'other', 'z']);
    expect(AUDIT_RULE_IDS.indexOf('cpu-minimum')).toBeLessThan(
      AUDIT_RULE_IDS.indexOf('concurrency-set'),
    );
    expect(once.filter((f) => f.service === 'llm-a').map((f) => f.rule)).toEqual([
      'cpu-minimum',
      'concurrency-set',
    ]);
  });
});

describe('auditAlerts', () => {
  const ctx = { at: AT, runId: 'run-1' };

  it('one service.misconfigured per service: ERROR with a required finding, WARNING otherwise', () => {
    const f = audit([
      service('bad', {
        containers: [container({ name: 'bad', cpu: '2', vcpus: 2 })],
        concurrency: null,
      }),
      service('meh', { concurrency: null }),
      service('good'),
    ]);
    const alerts = auditAlerts(f, ctx);
    for (const a of alerts) Alert.parse(a);
    expect(alerts.map((a) => [a.service, a.severity, a.type, a.status])).toEqual([
      ['bad', 'ERROR', 'service.misconfigured', 'firing'],
      ['meh', 'WARNING', 'service.misconfigured', 'firing'],
    ]);
    expect(alerts[0]).toMatchObject({
      project: 'p',
      region: 'us-central1',
      accelerator: 'nvidia-l4',
      zonalRedundancy: true,
      dedupKey: 'service.misconfigured:p/us-central1/nvidia-l4/zonal:bad',
      summary: 'bad breaks 2 GPU rules (1 required, 1 recommended): cpu-minimum, concurrency-set',
      details: { required: 1, recommended: 1 },
    });
    expect((alerts[0]?.details.findings as { rule: string }[]).map((x) => x.rule)).toEqual([
      'cpu-minimum',
      'concurrency-set',
    ]);
    expect(auditAlerts([], ctx)).toEqual([]);
  });

  it('fires once, stays quiet, re-notifies, and resolves when the service is fixed', () => {
    const broken = [service('svc', { concurrency: null })];
    const notify = (
      previous: Parameters<typeof decideNotifications>[0]['previous'],
      services: ObservedService[],
      now: string,
    ) =>
      decideNotifications({
        previous,
        current: auditAlerts(audit(services), { at: now, runId: now }),
        events: [],
        now,
        renotifyAfterMs: 60 * 60_000,
        runId: now,
        scope: ['p'],
      });
    const first = notify({}, broken, '2026-11-27T12:00:00.000Z');
    expect(first.publish.map((a) => [a.type, a.status])).toEqual([
      ['service.misconfigured', 'firing'],
    ]);
    const second = notify(first.next, broken, '2026-11-27T12:05:00.000Z');
    expect(second.publish).toEqual([]);
    const later = notify(second.next, broken, '2026-11-27T13:10:00.000Z');
    expect(later.publish.map((a) => a.status)).toEqual(['firing']);
    const fixed = notify(later.next, [service('svc')], '2026-11-27T13:15:00.000Z');
    expect(fixed.publish.map((a) => [a.type, a.status, a.service])).toEqual([
      ['service.misconfigured', 'resolved', 'svc'],
    ]);
    expect(fixed.next).toEqual({});
  });
});
