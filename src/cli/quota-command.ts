import { createClock } from '../adapters/clock.js';
import { oneLine, plural, printedJson } from '../core/text.js';
import { quotaFromPolicy } from '../core/pool.js';
import { governsRegion } from '../core/policy.js';
import {
  adoptLedger,
  covered,
  newestLedger,
  recommendQuotasOf,
  trackedRequestsOf,
  type QuotaRecommendation,
  type TrackedRequest,
  type UnitLedger,
} from '../core/quota-pressure.js';
import { redateDecisions, requestToFile } from '../core/quota-requests.js';
import { countedRegions, projectUnitStore } from '../reconcile/unit-lease.js';
import { openCliStore } from '../runtime.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import { closeOrWarn, type Streams } from './io.js';

export interface RecommendFlags {
  policy: string;
  json?: boolean;
  days?: number;
  at?: string;
  stateDir?: string;
}

/**
 * `governor quota recommend`: per pool of the policy's projects, the quota its sustained pressure
 * argues for, with the evidence, read from the newest run record that carries a pressure ledger
 * (src/core/quota-pressure.ts), and for a project governed per region from its regional
 * units'. It reads the state store only: nothing is observed, written or filed. With
 * `quotaRequests` in the policy, the value the governor would file is shown beside (at most
 * `maxIncrease` above the quota).
 */
export async function runQuotaRecommend(
  flags: RecommendFlags,
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const policy = await loadPolicy(flags.policy, { forProjects: 'quota recommend' });
  // Now is the runs' clock, as for `status --org`: against the emulator its virtual clock, on
  // which its runs dated their records (and their pressure ledger), else the wall clock.
  const at = flags.at ?? new Date(await createClock(options)()).toISOString();
  const store = await openCliStore(options.stateStore, flags.stateDir, 'read');
  const recs: QuotaRecommendation[] = [];
  /** The request each pool's ledger tracks, by pool key, dated as a run would date it. */
  const requests: Record<string, TrackedRequest> = {};
  const withoutHistory: string[] = [];
  try {
    // A project governed per region keeps its ledgers under its units' keys (docs/organization.md,
    // "Regional units"): its regional units' are read beside its own, and per pool the newest is
    // shown (adoptLedger), as a run of the whole project would take them.
    const kept = await store.loadDiscovery();
    const units = projectUnitStore(store, async (project) => countedRegions(kept, project));
    for (const project of policy.projects) {
      const own = newestLedger(await store.listRuns(project), at);
      const regional: UnitLedger[] = [];
      for (const unit of (await units.otherUnits?.(project)) ?? []) {
        const found = newestLedger(await unit.listRuns(), at);
        if (found) regional.push({ region: unit.region, ledger: found });
      }
      const ledger = adoptLedger(undefined, own, regional);
      if (!ledger) withoutHistory.push(project);
      // Only this project's pools, as the filing reads them (src/reconcile/quota-requests.ts).
      const { own: ownRecs, foreign } = recommendQuotasOf(
        project,
        ledger,
        at,
        flags.days ? { days: flags.days } : {},
      );
      if (foreign.length > 0)
        io.stderr.write(
          `warning: the state of ${project} holds pressure history of other projects' pools (${foreign.map((r) => oneLine(r.key)).join(', ')}): left out\n`,
        );
      recs.push(...ownRecs);
      // Only the requests of this project's pools, as a run reads them (quota-requests.ts).
      const { own: ownRequests, foreign: strays } = trackedRequestsOf(project, ledger);
      if (strays.length > 0)
        io.stderr.write(
          `warning: the state of ${project} tracks quota requests of other projects' pools (${strays.map(oneLine).join(', ')}): left out\n`,
        );
      Object.assign(requests, redateDecisions(ownRequests, at));
    }
  } finally {
    await closeOrWarn(() => store.close(), 'the state store', io);
  }
  const settings = policy.quotaRequests;
  // What the next run's rule (requestToFile) says for the pool: never while a request is
  // pending, nor within the cooldown after a decision; at most maxIncrease above the quota.
  // A run files only for the pools it plans: none in a region the policy no longer lists.
  const decide = (r: QuotaRecommendation) =>
    settings?.enabled && r.recommended !== null
      ? !governsRegion(policy, r.region)
        ? { file: false as const, why: `the policy does not govern ${r.region}` }
        : requestToFile(r, requests[r.key], settings, at)
      : null;
  const filed = (r: QuotaRecommendation): number | null => {
    const d = decide(r);
    return d?.file ? d.preferredValue : null;
  };
  if (flags.json) {
    io.stdout.write(
      printedJson({
        version: 1,
        at,
        projectsWithoutHistory: withoutHistory,
        pools: recs.map((r) => ({
          ...r,
          wouldFile: filed(r),
          request: requests[r.key] ?? null,
        })),
      }),
    );
    return 0;
  }
  for (const project of withoutHistory) {
    io.stdout.write(
      `${project}: no run record with pressure history yet: too little history to recommend anything\n`,
    );
  }
  for (const r of recs) {
    // Its region and accelerator are read from a state anyone may edit: one line, no control codes.
    const where = oneLine(r.key);
    io.stdout.write(`pool ${where}  [${r.status}]\n`);
    io.stdout.write(
      `  history: runs covered ${covered(r.minutesCovered)} on ${plural(r.daysSeen, 'calendar day')}; at budget ${plural(r.minutesAtBudget, 'minute')}; refused about ${plural(r.refusedGpuMinutes, 'GPU-minute')} (estimate); peak wanted ${plural(r.peakWanted, 'GPU')}; quota ${r.quota ?? 'unknown'}, budget ${r.budget ?? 'unknown'}\n`,
    );
    const req = requests[r.key];
    // Read from a state anyone may edit, with Google's words in it: one line, no control codes.
    if (req) io.stdout.write(`  request: ${oneLine(requestLine(req))}\n`);
    if (r.recommended !== null) {
      const d = decide(r);
      const file = filed(r);
      const asks =
        file === null
          ? d && !d.file
            ? ` (no request now: ${d.why})`
            : ''
          : file < r.recommended
            ? ` (a request would ask ${file}: quotaRequests.maxIncrease)`
            : ' (a request would ask this)';
      // The run files only what raises Google's quota, read again at filing
      // (src/reconcile/quota-requests.ts): with the policy's own quota, it may file nothing.
      const set =
        file !== null && quotaFromPolicy(policy, r) !== null
          ? ` (pools[].quota sets this pool to ${r.quota}; a request is filed only if Google's quota is below ${file} when the run files it)`
          : asks;
      io.stdout.write(`  recommended quota: ${r.recommended}${set}\n`);
    }
    io.stdout.write(`  why: ${r.why}\n`);
  }
  const n = recs.filter((r) => r.status === 'recommend').length;
  io.stdout.write(
    `\n${n} of ${plural(recs.length, 'pool')} with history ${n === 1 ? 'has' : 'have'} a recommendation. Nothing was filed: ${settings?.enabled ? 'the governor files requests during its runs (quotaRequests.enabled).' : 'quota requests are off in this policy (quotaRequests.enabled).'}\n`,
  );
  return 0;
}

/**
 * A tracked request in one line: the preference, what it asks, who filed it and when, and its
 * state as the last run read it (Google's state detail on a decision).
 */
function requestLine(req: TrackedRequest): string {
  const who =
    req.by === 'governor'
      ? `filed by the governor ${req.filedAt}`
      : `filed by someone else, found ${req.filedAt}`;
  const asks = req.preferredValue === -1 ? 'unlimited' : String(req.preferredValue);
  const state =
    req.state === 'pending'
      ? 'pending at Google'
      : `${req.state} ${req.decidedAt ?? ''}, granted ${req.grantedValue === null ? 'nothing' : req.grantedValue === -1 ? 'unlimited' : req.grantedValue}${req.stateDetail ? `: ${req.stateDetail}` : ''}`;
  return `${req.name} for ${asks} (${who}): ${state}`;
}
