import picomatch from 'picomatch';
import { durationMs } from './duration.js';
import type { Policy, ServiceRule } from './policy.js';
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

interface ServiceLike {
  project: string;
  region: string;
  accelerator: string;
  name: string;
  labels: Record<string, string>;
}

interface CompiledRule {
  index: number;
  rule: ServiceRule;
  matchName: ((name: string) => boolean) | null;
  /** The rule's labels as [key, value] pairs; null when it names none. */
  labels: [string, string][] | null;
  settings: Settings;
}

/**
 * A name glob as a test of one name: what `picomatch(glob)(name)` answers (an empty name never
 * matches; the glob itself always does; otherwise its RegExp decides), without the result objects
 * picomatch's matcher builds on every call.
 */
function nameMatcher(glob: string): (name: string) => boolean {
  const re = picomatch.makeRe(glob);
  return (name) => name !== '' && (name === glob || re.test(name));
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
      max: rule.max ?? base.max,
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
        max: win.max ?? settings.max,
        weight: win.weight ?? settings.weight,
        priority: win.priority ?? settings.priority,
        headroom: win.headroom ?? settings.headroom,
      };
    }
    const matchName = rule.match.name ? nameMatcher(rule.match.name) : null;
    const labels = rule.match.labels ? Object.entries(rule.match.labels) : null;
    return { index, rule, matchName, labels, settings };
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

/**
 * A name glob that only ever matches itself: letters, digits, `-` and `_` are no glob syntax for
 * picomatch, so the glob's RegExp accepts exactly the one name (what `bounded-matching.test.ts`
 * checks against picomatch).
 */
const literalName = /^[A-Za-z0-9_-]+$/;

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
    if (matches(r, s)) return r;
  }
  return undefined;
}

function matches(r: CompiledRule, s: ServiceLike): boolean {
  const m = r.rule.match;
  if (m.project !== undefined && m.project !== s.project) return false;
  if (m.region !== undefined && m.region !== s.region) return false;
  if (m.accelerator !== undefined && m.accelerator !== s.accelerator) return false;
  if (r.matchName && !r.matchName(s.name)) return false;
  if (r.labels && !hasLabels(s.labels, r.labels)) return false;
  return true;
}

/** The service has every one of these labels, with these exact values. */
function hasLabels(labels: Record<string, string>, wanted: [string, string][]): boolean {
  for (const [k, v] of wanted) if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  return true;
}
