import { createGooglePorts } from '../src/adapters/index.js';
import { createMemoryStateStore } from '../src/adapters/memory/state-store.js';
import { createQuotaPreferenceAdapter } from '../src/adapters/quota-preferences.js';
import { parsePolicy } from '../src/core/policy.js';
import { decideQuotaPreference, quotaPreferences, startEmulator } from '../src/emulator/index.js';
import { memoryLogger } from '../src/log.js';
import { reconcile } from '../src/reconcile/reconcile.js';

/**
 * Quota requests over a simulated week (docs/quota-requests.md): one project, two pools, a run every
 * `everyMinutes` of virtual time through the real clients and the emulator. us-central1 (quota
 * 4) has a service that wants 8 GPUs all week: sustained pressure. europe-west4 (quota 4) has a
 * service that uses 1. Quota requests are on. Google grants the request `grantAfterHours` after
 * it was filed; the week goes on under the new quota (still short of 8, so still under pressure).
 *
 * Target: exactly one request, for us-central1, with the evidence in its justification; none for
 * europe-west4.
 */
export interface QuotaWeekResult {
  runs: number;
  everyMinutes: number;
  requestsHot: number;
  requestsCalm: number;
  /** Quota preferences in the project at the end (the governor's and anyone's). */
  preferences: number;
  /** Hours into the week of the first request; null when none. */
  firstRequestHour: number | null;
  preferredValue: number | null;
  justification: string | null;
  evidenceInJustification: boolean;
  events: Record<string, number>;
  quotaAtEnd: number | null;
  wallMs: number;
}

export async function benchQuotaRequests(
  options: { everyMinutes?: number; days?: number; grantAfterHours?: number } = {},
): Promise<QuotaWeekResult> {
  const everyMinutes = options.everyMinutes ?? 30;
  const days = options.days ?? 7;
  const grantAfterHours = options.grantAfterHours ?? 48;
  const project = 'quota-week';
  const start = Date.parse('2026-11-23T00:00:00Z');
  const emulator = await startEmulator({
    fleet: {
      start: new Date(start).toISOString(),
      warmupMinutes: 35,
      projects: [
        {
          id: project,
          pools: [
            { region: 'us-central1', quota: 4 },
            { region: 'europe-west4', quota: 4 },
          ],
          services: [
            { name: 'search-llm', region: 'us-central1', gpu: {}, maxInstances: 4, demand: 8 },
            { name: 'quiet', region: 'europe-west4', gpu: {}, maxInstances: 2, demand: 1 },
          ],
        },
      ],
    },
    speed: 'manual',
    operationDelayMs: 0,
  });
  const ports = createGooglePorts({ emulatorHost: emulator.host });
  const prefs = createQuotaPreferenceAdapter({ emulatorHost: emulator.host });
  const store = createMemoryStateStore();
  const log = memoryLogger();
  const policy = parsePolicy({
    version: 1,
    projects: [project],
    regions: ['us-central1', 'europe-west4'],
    defaults: { headroom: 0.2 },
    services: [{ match: {} }],
    limits: { writesPerMinute: 6000 },
    quotaRequests: {
      enabled: true,
      maxIncrease: 4,
      justification: 'Search inference on Cloud Run GPUs.',
      contactEmail: 'gpu-platform@example.com',
    },
  });
  const events: Record<string, number> = {};
  /** quota.requested events per region. */
  const requested: Record<string, number> = {};
  let firstRequestHour: number | null = null;
  let runs = 0;
  const began = performance.now();
  try {
    const end = start + days * 86_400_000;
    while (emulator.now().getTime() < end) {
      const report = await reconcile(
        policy,
        {
          ports,
          store,
          sink: null,
          log,
          now: () => Promise.resolve(emulator.now().getTime()),
          sleep: async () => {},
          quotaRequests: prefs,
        },
        { runId: `week-${++runs}`, deadlineMs: 120_000 },
      );
      for (const a of report.alerts) {
        events[a.type] = (events[a.type] ?? 0) + 1;
        if (a.type === 'quota.requested')
          requested[a.region ?? ''] = (requested[a.region ?? ''] ?? 0) + 1;
      }
      if (firstRequestHour === null && report.alerts.some((a) => a.type === 'quota.requested'))
        firstRequestHour = (emulator.now().getTime() - start) / 3_600_000;
      // Google decides the pending request once it has waited long enough.
      for (const p of quotaPreferences(emulator.model)) {
        if (p.reconciling && emulator.now().getTime() - p.createMs >= grantAfterHours * 3_600_000)
          decideQuotaPreference(emulator.model, emulator.now().getTime(), {
            name: p.name,
            decision: 'granted',
          });
      }
      emulator.advance(everyMinutes * 60_000);
    }
    const all = quotaPreferences(emulator.model);
    const hot = all.filter((p) => p.dimensions['region'] === 'us-central1');
    const justification = hot[0]?.justification ?? null;
    return {
      runs,
      everyMinutes,
      requestsHot: requested['us-central1'] ?? 0,
      requestsCalm: requested['europe-west4'] ?? 0,
      preferences: all.length,
      firstRequestHour,
      preferredValue: hot[0]?.preferredValue ?? null,
      justification,
      evidenceInJustification:
        justification !== null &&
        /at its budget for \d+ minutes/.test(justification) &&
        /\d+ GPU-minutes of demand did not fit/.test(justification) &&
        /wanted up to \d+ GPUs/.test(justification),
      events,
      quotaAtEnd: emulator.state().pools.find((p) => p.region === 'us-central1')?.quota ?? null,
      wallMs: performance.now() - began,
    };
  } finally {
    await Promise.all([ports.close(), prefs.close(), store.close()]);
    await emulator.stop();
  }
}

/** The week's target: one request for the pool under pressure, with evidence; none elsewhere. */
export function quotaWeekMet(r: QuotaWeekResult): boolean {
  return (
    r.requestsHot === 1 && r.requestsCalm === 0 && r.preferences === 1 && r.evidenceInJustification
  );
}

/** Why the week missed its target, each part that missed; empty when it was met. */
export function quotaWeekWhy(r: QuotaWeekResult): string {
  const why: string[] = [];
  if (r.requestsHot !== 1)
    why.push(
      `the pressured pool got ${r.requestsHot} request${r.requestsHot === 1 ? '' : 's'}, not 1`,
    );
  if (r.requestsCalm !== 0) why.push(`the calm pool got ${r.requestsCalm}, not 0`);
  if (r.preferences !== 1)
    why.push(`${r.preferences} quota preferences in the project at the end, not 1`);
  if (!r.evidenceInJustification)
    why.push(
      r.justification === null
        ? 'no request for the pressured pool to carry the evidence'
        : "its request's justification lacks the evidence (minutes at its budget, GPU-minutes that did not fit, GPUs wanted)",
    );
  return why.join('; ');
}

export function quotaWeekLines(r: QuotaWeekResult): string[] {
  return [
    `Quota requests: a simulated week, a run every ${r.everyMinutes} min (${r.runs} runs), one pool under sustained pressure, one calm`,
    '',
    `  requests filed: pressured pool ${r.requestsHot}, calm pool ${r.requestsCalm} (target 1 and 0) ${quotaWeekMet(r) ? 'met' : 'MISSED'}`,
    `  first request after ${r.firstRequestHour === null ? '—' : `${r.firstRequestHour.toFixed(0)} h`} (a day of history is needed), asking ${r.preferredValue ?? '—'} GPUs; quota at the end ${r.quotaAtEnd ?? '—'}`,
    `  events: ${Object.entries(r.events)
      .filter(([t]) => t.startsWith('quota.'))
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}`,
    `  justification: ${r.justification ?? '—'}`,
    `  wall time ${(r.wallMs / 1000).toFixed(1)} s`,
  ];
}
