import { durationMs } from './duration.js';
import { literalName, nameMatcher } from './glob.js';
import { policyMax } from './policy-max.js';
import type { Match, Policy, ServiceRule } from './policy.js';
import { windowHolds } from './schedule.js';

/** What the policy says about one service at one instant. */
export interface Settings {
  managed: boolean;
  /** Index of the matching rule in `policy.services`, or null when no rule matched. */
  rule: number | null;
  /** Index of the schedule window that holds, or null. */
  window: number | null;
  min: number;
  max: number | null;
  /** Where `min` and `max` were set: the policy's defaults, the rule, or its window in force. */
  minFrom: SettingFrom;
  maxFrom: SettingFrom;
  weight: number;
  priority: number;
  headroom: number;
  targetUtilization: number;
  scaleDownDelayMs: number;
  /** How recent a refusal must be to let room above others' recent use move (rule 5). */
  reclaimWindowMs: number;
  /** A service lowered to make room is not raised again sooner unless refused (rule 8). */
  reverseDelayMs: number;
  /** Its in-use instances may be cut for a higher priority (rule 5). */
  preempt: boolean;
  /** The window over which peaks and per-minute evidence are read. */
  lookbackMs: number;
}

export type SettingFrom = 'defaults' | 'rule' | 'window';

export interface ServiceLike {
  project: string;
  region: string;
  accelerator: string;
  name: string;
  labels: Record<string, string>;
}

interface CompiledRule {
  index: number;
  rule: ServiceRule;
  matches: (s: ServiceLike) => boolean;
  settings: Settings;
}

/**
 * Compiles the policy's rules for one instant: globs are compiled and time windows evaluated once
 * per rule (not once per service), so resolving a large fleet costs one match per service.
 */
export function compileRules(policy: Policy, atMs: number): (s: ServiceLike) => Settings {
  const d = policy.defaults;
  const base: Settings = {
    managed: true,
    rule: null,
    window: null,
    min: d.min,
    max: d.max ?? null,
    minFrom: 'defaults',
    maxFrom: 'defaults',
    weight: d.weight,
    priority: d.priority,
    headroom: d.headroom,
    targetUtilization: d.targetUtilization,
    scaleDownDelayMs: durationMs(d.scaleDownDelay),
    reclaimWindowMs: durationMs(d.reclaimWindow),
    reverseDelayMs: durationMs(d.reverseDelay),
    preempt: d.preempt,
    lookbackMs: durationMs(d.lookback),
  };
  const unmatched: Settings = { ...base, managed: false };
  const rules: CompiledRule[] = policy.services.map((rule, index) => {
    let settings: Settings = {
      ...base,
      managed: rule.managed,
      rule: index,
      min: rule.min ?? base.min,
      max: policyMax(policy, index, null),
      minFrom: rule.min === undefined ? 'defaults' : 'rule',
      maxFrom: rule.max === undefined ? 'defaults' : 'rule',
      weight: rule.weight ?? base.weight,
      priority: rule.priority ?? base.priority,
      headroom: rule.headroom ?? base.headroom,
      scaleDownDelayMs: rule.scaleDownDelay
        ? durationMs(rule.scaleDownDelay)
        : base.scaleDownDelayMs,
      reclaimWindowMs: rule.reclaimWindow ? durationMs(rule.reclaimWindow) : base.reclaimWindowMs,
      reverseDelayMs: rule.reverseDelay ? durationMs(rule.reverseDelay) : base.reverseDelayMs,
      preempt: rule.preempt ?? base.preempt,
    };
    const w = rule.schedule.findIndex((win) => windowHolds(win, atMs));
    const win = rule.schedule[w];
    if (win) {
      settings = {
        ...settings,
        window: w,
        min: win.min ?? settings.min,
        max: policyMax(policy, index, w),
        minFrom: win.min === undefined ? settings.minFrom : 'window',
        maxFrom: win.max === undefined ? settings.maxFrom : 'window',
        weight: win.weight ?? settings.weight,
        priority: win.priority ?? settings.priority,
        headroom: win.headroom ?? settings.headroom,
      };
    }
    return { index, rule, matches: matcherOf(rule.match), settings };
  });

  // First match wins, so a service must see the rules in the policy's order; testing every rule
  // against every service is quadratic (20,000 rules naming one service each against 50,000
  // services took 636 s). Each rule goes into one bucket by the most selective exact field it has:
  // a literal name, else its project, else the general list. A service reads only its name's
  // bucket, its project's and the general one, each in the policy's order, and takes the earliest
  // rule that matches in any of them: the same answer as the scan of every rule.
  const byName = new Map<string, CompiledRule[]>();
  const byProject = new Map<string, CompiledRule[]>();
  const general: CompiledRule[] = [];
  for (const r of rules) {
    const { name, project } = r.rule.match;
    if (name !== undefined && literalName.test(name)) bucket(byName, name).push(r);
    else if (project !== undefined) bucket(byProject, project).push(r);
    else general.push(r);
  }
  const none: CompiledRule[] = [];
  return (s) => {
    let best = firstMatch(byName.get(s.name) ?? none, s, Infinity);
    best = firstMatch(byProject.get(s.project) ?? none, s, best?.index ?? Infinity) ?? best;
    best = firstMatch(general, s, best?.index ?? Infinity) ?? best;
    return best ? best.settings : unmatched;
  };
}

function bucket<K>(map: Map<K, CompiledRule[]>, key: K): CompiledRule[] {
  let list = map.get(key);
  if (!list) map.set(key, (list = []));
  return list;
}

/** The first rule of `list` (in the policy's order) before index `before` that matches `s`. */
function firstMatch(
  list: readonly CompiledRule[],
  s: ServiceLike,
  before: number,
): CompiledRule | undefined {
  for (const r of list) {
    if (r.index >= before) return undefined;
    if (r.matches(s)) return r;
  }
  return undefined;
}

/**
 * A rule's match as a test of one service: every key it gives must match (the name by its glob,
 * the labels with these exact values). The one place a match is judged: the rules above, and
 * what `governor check` says of a rule that matches no service (core/policy-fit.ts).
 */
export function matcherOf(m: Match): (s: ServiceLike) => boolean {
  const matchName = m.name ? nameMatcher(m.name) : null;
  const labels = m.labels ? Object.entries(m.labels) : null;
  return (s) => {
    if (m.project !== undefined && m.project !== s.project) return false;
    if (m.region !== undefined && m.region !== s.region) return false;
    if (m.accelerator !== undefined && m.accelerator !== s.accelerator) return false;
    if (matchName && !matchName(s.name)) return false;
    if (labels && !hasLabels(s.labels, labels)) return false;
    return true;
  };
}

/** The service has every one of these labels, with these exact values. */
function hasLabels(labels: Record<string, string>, wanted: [string, string][]): boolean {
  for (const [k, v] of wanted) if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  return true;
}
