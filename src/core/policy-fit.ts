import type { Match, Policy } from './policy.js';
import {
  DEFAULT_ACCELERATOR,
  DOCUMENTED_ACCELERATORS,
  gpuPool,
  poolIdOf,
  poolKey,
  poolWords,
  type PoolId,
} from './pool.js';
import { literalName, nameMatcher } from './glob.js';
import { compileRules, matcherOf, type ServiceLike } from './rules.js';
import { oneLine, plural, someOf } from './text.js';

/**
 * What a valid policy says that may reach nothing: a GPU type Cloud Run does not document, and,
 * where the fleet is known (`governor check`, `plan`, `status`), a project, region or pool
 * setting where no GPU was seen, and a service rule that governs no service seen. Each names the
 * policy path it concerns. These are warnings, never faults: services come and go, and a rule
 * written for a service not yet deployed is fine. They are not alerts either: the policy does not
 * change between runs, so the same warning would be raised on every run of every unit; it is
 * the reader of a check or a plan who can fix it.
 */

export interface PolicyWarning {
  /** The policy path: `pools[1]`, `services[3].match`, `regions[0]`. */
  path: string;
  message: string;
}

/** A GPU service as the fit reads it: what a rule matches on, and its pool. */
export type FitService = ServiceLike & { zonalRedundancy: boolean };

/** What was observed: the GPU services, and every pool something draws GPUs from. */
interface ObservedFleet {
  services: readonly FitService[];
  /** Pools of the services and of other GPU users (worker pools, jobs, manually scaled services). */
  pools: readonly PoolId[];
  /**
   * The manually scaled GPU services, which no rule governs (their instance count is fixed): a
   * rule that matches only these is told so, not that it matches nothing. Their labels are
   * empty where unknown (a snapshot keeps only their name and pool).
   */
  manual?: readonly FitService[];
}

/** Values listed in a hint before "and N more". */
const SEEN_LISTED = 5;

/**
 * The warnings of a policy; with `fleet`, those of its fit to that fleet too. Pure: the same
 * policy and fleet give the same warnings, in policy order. Each on one line: what it quotes of
 * the policy (a glob may hold any character) has its control characters as spaces, so that a
 * terminal escape in a policy does not act on the terminal that shows the warning.
 */
export function policyWarnings(policy: Policy, fleet?: ObservedFleet): PolicyWarning[] {
  return warningsOf(policy, fleet).map((w) => ({ ...w, message: oneLine(w.message) }));
}

function warningsOf(policy: Policy, fleet?: ObservedFleet): PolicyWarning[] {
  // A policy without rules is valid (a team may want only the audit or the alerts), but it
  // governs nothing: every GPU service is counted and none is ever written.
  const out: PolicyWarning[] =
    policy.services.length === 0
      ? [
          {
            path: 'services',
            message:
              'no rule, so no service is governed: every GPU service is counted and none is written (a rule `- match: {}` governs them all)',
          },
        ]
      : [];
  // Where the fleet is known, what it uses is the truth: a type Google added since is fine, and
  // a misspelt one is named by the fit below (a pool or rule that reaches nothing).
  if (fleet) return [...out, ...fitWarnings(policy, fleet)];
  const accelerator = (path: string, name: string | undefined) => {
    if (name === undefined || DOCUMENTED_ACCELERATORS.includes(name)) return;
    out.push({
      path,
      message: `"${name}" is not a GPU type Cloud Run documents (${DOCUMENTED_ACCELERATORS.join(', ')}: https://cloud.google.com/run/docs/configuring/services/gpu); a misspelt one matches nothing`,
    });
  };
  policy.pools.forEach((p, i) => accelerator(`pools[${i}].accelerator`, p.accelerator));
  policy.services.forEach((r, i) =>
    accelerator(`services[${i}].match.accelerator`, r.match.accelerator),
  );
  return out;
}

function fitWarnings(policy: Policy, fleet: ObservedFleet): PolicyWarning[] {
  const out: PolicyWarning[] = [];
  const { services } = fleet;
  // A fleet lists a pool for each service and other GPU user: each project and region read once,
  // and each distinct pool once where a pool setting asks.
  const projectsSeen = new Set(fleet.pools.map((p) => p.project));
  const regionsSeen = new Set(fleet.pools.map((p) => p.region));
  const pools =
    policy.pools.length === 0 ? [] : [...new Map(fleet.pools.map((p) => [poolKey(p), p])).values()];
  policy.projects.forEach((project, i) => {
    if (!projectsSeen.has(project))
      out.push({
        path: `projects[${i}]`,
        message: `no GPU service, worker pool or job was seen in "${project}"`,
      });
  });
  policy.regions?.forEach((region, i) => {
    if (!regionsSeen.has(region))
      out.push({
        path: `regions[${i}]`,
        message: `no GPU service, worker pool or job was seen in "${region}"`,
      });
  });
  policy.pools.forEach((entry, i) => {
    const accelerator = entry.accelerator ?? DEFAULT_ACCELERATOR;
    const inScope = (p: PoolId) =>
      entry.project === undefined
        ? policy.projects.includes(p.project)
        : p.project === entry.project;
    const applies = pools.some(
      (p) =>
        inScope(p) &&
        p.region === entry.region &&
        p.accelerator === accelerator &&
        p.zonalRedundancy === entry.zonalRedundancy,
    );
    if (applies) return;
    const there = distinct(
      pools
        .filter((p) => inScope(p) && p.region === entry.region)
        .map((p) => `${p.accelerator}${p.zonalRedundancy ? '' : ' (no zonal redundancy)'}`),
    );
    const pool = poolWords({
      region: entry.region,
      accelerator,
      zonalRedundancy: entry.zonalRedundancy,
    });
    out.push({
      path: `pools[${i}]`,
      message: `applies to no pool seen: nothing draws GPUs from ${pool}${entry.project ? ` in ${entry.project}` : ''}, so its ${settingsOf(entry)} ${there.length ? `reach nothing (pools seen in ${entry.region}: ${someOf(there, SEEN_LISTED)})` : `reach nothing (no GPU was seen in ${entry.region})`}`,
    });
  });

  // Which rule each service falls to (first match wins), and which rules match it at all.
  const resolve = compileRules(policy, 0); // time windows change settings, never the match
  const won = new Set<number>();
  // The rule of each service, by its place in the fleet.
  const ruleOf = services.map((s) => {
    const rule = resolve(s).rule;
    if (rule !== null) won.add(rule);
    return rule;
  });
  const seen = indexFleet(services);
  const manualSeen = indexFleet(fleet.manual ?? []);
  policy.services.forEach((rule, i) => {
    if (won.has(i)) return;
    const path = `services[${i}].match`;
    const test = matcherOf(rule.match);
    const matched = seen.matching(rule.match, test);
    if (matched.length > 0) {
      const first = new Set(matched.map((k) => ruleOf[k] ?? null));
      out.push({
        path,
        message: `governs nothing: the ${plural(matched.length, 'GPU service')} it matches ${matched.length === 1 ? 'falls' : 'fall'} to an earlier rule (${[...first].map((r) => `services[${r}]`).join(', ')}), as the first matching rule wins`,
      });
      return;
    }
    const manual = manualSeen.matching(rule.match, test);
    if (manual.length > 0) {
      out.push({
        path,
        message: `governs nothing: it matches only manually scaled GPU services (${someOf(
          distinct(manual.map((k) => manualSeen.services[k]?.name ?? '')),
          SEEN_LISTED,
        )}), whose instance count Cloud Run keeps fixed (scaling mode MANUAL): the governor counts them against their pool and writes no max`,
      });
      return;
    }
    out.push({ path, message: `matches no GPU service seen: ${whyNone(rule.match, seen)}` });
  });
  return out;
}

/**
 * The services seen, read once for the questions the fit asks of each rule that governs nothing
 * (which services it matches, which of its keys no service has, and the values seen), each map
 * built on its first use. Reading the whole fleet again for each such rule made the warnings
 * quadratic: an organisation's policy naming 10,000 services against a project's 5,000 took
 * seconds in `governor plan`, `status` and `check`.
 */
interface FleetIndex {
  services: readonly FitService[];
  /**
   * The places in the fleet of the services `test` (the match's own) accepts, in the fleet's
   * order. Only those a match can accept are tested: the services of its literal name, else of
   * its project, else all (the buckets the rules are looked up by, core/rules.ts).
   */
  matching(match: Match, test: (s: FitService) => boolean): number[];
  /** The distinct values of a pool field seen, sorted. */
  values(key: 'project' | 'region' | 'accelerator'): { set: Set<string>; sorted: string[] };
  /** The distinct values of a label seen; undefined when no service has that label. */
  label(key: string): { set: Set<string>; sorted: string[] } | undefined;
  /** Whether a glob matches the name of some service. */
  anyNamed(glob: string): boolean;
}

function indexFleet(services: readonly FitService[]): FleetIndex {
  // The places of the services by a key: a number for the one service most keys have (a name is
  // mostly one service's), an array once there are more. Fewer objects for the collector to copy.
  const group = (key: (s: FitService) => string) => {
    const map = new Map<string, number | number[]>();
    services.forEach((s, i) => {
      const k = key(s);
      const had = map.get(k);
      if (had === undefined) map.set(k, i);
      else if (typeof had === 'number') map.set(k, [had, i]);
      else had.push(i);
    });
    return map;
  };
  const places = (at: number | number[] | undefined): readonly number[] =>
    at === undefined ? [] : typeof at === 'number' ? [at] : at;
  const once = <T>(make: () => T): (() => T) => {
    let value: T | undefined;
    return () => (value ??= make());
  };
  const byName = once(() => group((s) => s.name));
  const byProject = once(() => group((s) => s.project));
  const fields = new Map<string, { set: Set<string>; sorted: string[] }>();
  const labels = once(() => {
    const values = new Map<string, Set<string>>();
    for (const s of services)
      for (const [k, v] of Object.entries(s.labels)) {
        const set = values.get(k);
        if (set) set.add(v);
        else values.set(k, new Set([v]));
      }
    return new Map([...values].map(([k, set]) => [k, { set, sorted: [...set].sort() }]));
  });
  const named = new Map<string, boolean>();
  return {
    services,
    matching: (match, test) => {
      const { name, project } = match;
      const candidates =
        name !== undefined && literalName.test(name)
          ? places(byName().get(name))
          : project !== undefined
            ? places(byProject().get(project))
            : null;
      const out: number[] = [];
      if (candidates === null) services.forEach((s, i) => test(s) && out.push(i));
      else for (const i of candidates) if (test(services[i] as FitService)) out.push(i);
      return out;
    },
    values: (key) => {
      let v = fields.get(key);
      if (!v) {
        const set = new Set(services.map((s) => s[key]));
        fields.set(key, (v = { set, sorted: [...set].sort() }));
      }
      return v;
    },
    label: (key) => labels().get(key),
    anyNamed: (glob) => {
      let found = named.get(glob);
      if (found === undefined) {
        if (literalName.test(glob)) found = byName().has(glob);
        else {
          const test = nameMatcher(glob);
          found = services.some((s) => test(s.name));
        }
        named.set(glob, found);
      }
      return found;
    },
  };
}

/**
 * Which of a match's keys no service has alone, with the values seen: the likely typo. Asked only
 * of a match that matched no service.
 */
function whyNone(match: Match, fleet: FleetIndex): string {
  if (fleet.services.length === 0) return 'no GPU service was seen at all';
  const seen = (values: string[]) => someOf(values, SEEN_LISTED);
  const reasons: string[] = [];
  const field = (key: 'project' | 'region' | 'accelerator', value: string | undefined) =>
    value === undefined || fleet.values(key).set.has(value) ? null : fleet.values(key).sorted;
  const projects = field('project', match.project);
  if (projects) reasons.push(`none in project "${match.project}" (seen: ${seen(projects)})`);
  const regions = field('region', match.region);
  if (regions) reasons.push(`none in region "${match.region}" (seen: ${seen(regions)})`);
  const accelerators = field('accelerator', match.accelerator);
  if (accelerators)
    reasons.push(`none uses accelerator "${match.accelerator}" (seen: ${seen(accelerators)})`);
  // A match of a name alone matched no service already: its name is the key that matches none,
  // known without reading the fleet again. (Every key is read, so that one added to Match counts.)
  const nameAlone = Object.entries(match).every(
    ([key, value]) =>
      key === 'name' ||
      value === undefined ||
      (key === 'labels' && Object.keys(value as object).length === 0),
  );
  if (match.name !== undefined && (nameAlone || !fleet.anyNamed(match.name)))
    reasons.push(`no name matches "${match.name}"`);
  for (const [key, value] of Object.entries(match.labels ?? {})) {
    const values = fleet.label(key);
    if (values?.set.has(value)) continue;
    reasons.push(
      values === undefined
        ? `none has the label "${key}"`
        : `none has the label ${key}=${value} (values of ${key} seen: ${seen(values.sorted)})`,
    );
  }
  return reasons.length > 0
    ? reasons.join('; ')
    : 'no one service matches all of its keys together';
}

function settingsOf(entry: Policy['pools'][number]): string {
  const set = [
    entry.quota !== undefined ? `quota ${entry.quota}` : null,
    entry.reserve !== undefined ? `reserve ${entry.reserve}` : null,
  ].filter((s): s is string => s !== null);
  return set.length > 0 ? `settings (${set.join(', ')})` : 'settings';
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/**
 * The fleet a snapshot saw: its GPU services, and the pools its services and its other GPU users
 * draw from. Not its `pools` list, which also holds the pools the policy's own settings name.
 */
export function fleetOfSnapshot(snapshot: {
  services: readonly FitService[];
  unmanagedUsage: readonly (PoolId & { source: string })[];
}): ObservedFleet {
  const manual = snapshot.unmanagedUsage.flatMap((u) => {
    const name = manualServiceOf(u.source);
    return name === null ? [] : [{ ...poolIdOf(u), name, labels: {} }];
  });
  return {
    services: snapshot.services,
    pools: [...snapshot.services, ...snapshot.unmanagedUsage].map(poolIdOf),
    manual,
  };
}

/** The `source` of a manually scaled service's GPUs in a snapshot's `unmanagedUsage`. */
export function manualSource(name: string): string {
  return `service/${name} (manual scaling)`;
}

/** The service a `manualSource` names, or null for any other source. */
function manualServiceOf(source: string): string | null {
  return /^service\/(.+) \(manual scaling\)$/.exec(source)?.[1] ?? null;
}

/** A GPU user as the Cloud Run port reads it: a service, a worker pool or a job execution. */
interface GpuUser {
  project: string;
  region: string;
  gpu: { accelerator: string; zonalRedundancy: boolean } | null;
}

/**
 * The fleet of what the Cloud Run port listed: the autoscaled GPU services are what rules match
 * (as the snapshot holds them); every GPU user, manually scaled services included, marks a pool.
 */
export function fleetOfListings(
  services: readonly (GpuUser & {
    name: string;
    labels: Record<string, string>;
    scalingMode?: string | null;
  })[],
  others: readonly GpuUser[],
): ObservedFleet {
  const fit: FitService[] = [];
  const manual: FitService[] = [];
  const poolIds: PoolId[] = [];
  for (const s of [...services, ...others]) if (s.gpu) poolIds.push(gpuPool({ ...s, gpu: s.gpu }));
  for (const s of services) {
    if (!s.gpu) continue;
    (s.scalingMode === 'MANUAL' ? manual : fit).push({
      project: s.project,
      region: s.region,
      name: s.name,
      labels: s.labels,
      accelerator: s.gpu.accelerator,
      zonalRedundancy: s.gpu.zonalRedundancy,
    });
  }
  return { services: fit, pools: poolIds, manual };
}
