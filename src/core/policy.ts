import picomatch from 'picomatch';
import { z } from 'zod';
import { InputError, type Fault } from './errors.js';
import { AUDIT_RULE_IDS, type AuditRuleId } from './audit-rules.js';
import { parseDocument, zodFaults } from './document.js';
import { Discovery } from './discovery.js';
import { Duration, durationMs, formatDuration, MAX_CLOCK_SKEW_MS } from './duration.js';
import { literalName, nameMatcher } from './glob.js';
import { ACCELERATOR_NAME, DEFAULT_ACCELERATOR, MAX_QUOTA_GPUS, poolKey } from './pool.js';
import { MEMORY_QUANTITY } from './quantity.js';
import { checkQuotaRequests, QuotaRequestsSettings } from './quota-requests.js';
import { clockMinutes, isValidTimeZone, WEEKDAYS } from './schedule.js';
import { plural } from './text.js';
import {
  LABEL_KEY,
  LABEL_VALUE,
  LabelsToMatch,
  ProjectId,
  RegionName,
  topicNameFault,
} from './units.js';

/**
 * The policy file: the platform team's contract with the governor. This zod schema is the single
 * source of the `Policy` type and of `schema/policy.schema.json`. Checks that span several fields
 * (min ≤ max, globs, time zones, unique pools) live in `crossCheck` below so that every fault of a
 * file is reported at once, even when the shape itself is also wrong.
 */

const Count = z.number().int().min(0);

/**
 * An accelerator (a GPU type) of a pool or a rule's match, in the form Cloud Run names one
 * (core/pool.ts); one Cloud Run does not document is a warning (core/policy-fit.ts), not a fault.
 */
const AcceleratorName = z
  .string()
  .regex(
    ACCELERATOR_NAME,
    'expected a GPU type such as "nvidia-l4": lower-case letters and digits, words joined by "-"',
  );
const Weight = z.number().positive().max(1_000_000);
const Priority = z.number().int().min(-1_000_000).max(1_000_000);
const Headroom = z.number().min(0).max(10);
const Clock = z
  .string()
  .regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'expected a time "HH:MM" between 00:00 and 24:00');

/**
 * The reclaim window: refusals are counted per minute, back from the newest minute of the usage
 * (core/evidence.ts), and a minute's weight halves over it, so under a minute it would read as
 * "never" while the planner counts the newest minute. Longer than the lookback, it counts the
 * refusals of the whole lookback (none older is read) and still slows the halving.
 */
const ReclaimWindow = durationAtLeast(
  60_000,
  'expected at least 1m: refusals are counted per minute, back from the newest',
);

/** A duration of at least `ms`, refused otherwise with `message`. */
function durationAtLeast(ms: number, message: string) {
  return Duration.refine(
    (text) => {
      try {
        return durationMs(text) >= ms;
      } catch {
        return true; // not a duration: Duration says so
      }
    },
    { message },
  );
}

/** The settings a rule, the defaults and a time window may set. */
const settingFields = {
  min: Count.max(100_000).describe('Fewest instances the governor keeps as the cap.').optional(),
  max: Count.min(1)
    .max(100_000)
    .describe("Most instances the governor gives; absent: up to the pool's quota.")
    .optional(),
  weight: Weight.describe('Share of contested GPUs within a priority (default 1).').optional(),
  priority: Priority.describe('Higher is served first (default 0).').optional(),
  headroom: Headroom.describe(
    'Share above the observed peak that demand adds (default 0.2).',
  ).optional(),
};

const TimeWindow = z
  .strictObject({
    days: z
      .array(z.enum(WEEKDAYS))
      .min(1)
      .describe('Weekdays on which the window starts (default every day).')
      .optional(),
    start: Clock.describe('Local start time, "HH:MM".'),
    end: Clock.describe(
      'Local end time, "HH:MM"; before start means the next day (equal to start is refused).',
    ),
    timezone: z
      .string()
      .min(1, 'expected an IANA time zone such as "America/New_York" (leave the key out for UTC)')
      .default('UTC')
      .describe('IANA time zone (default UTC).'),
    ...settingFields,
  })
  .describe('While the window holds, its settings override the rule.');
type TimeWindow = z.infer<typeof TimeWindow>;

export const Match = z
  .strictObject({
    name: z.string().min(1).describe('Glob on the service name, e.g. "llm-*".').optional(),
    labels: LabelsToMatch.describe(
      'Labels the service must have, with these exact values.',
    ).optional(),
    project: z.string().min(1).optional(),
    region: RegionName.optional(),
    accelerator: AcceleratorName.optional(),
  })
  .describe('Every key is optional; all given keys must match.');
export type Match = z.infer<typeof Match>;

const RuleLevel = z.enum(['off', 'recommended', 'required']);
const AuditRuleLevels = z
  .strictObject(
    Object.fromEntries(AUDIT_RULE_IDS.map((id) => [id, RuleLevel.optional()])) as Record<
      AuditRuleId,
      z.ZodOptional<typeof RuleLevel>
    >,
  )
  .describe('Per rule id: "off", or the severity it fails with ("recommended" or "required").');
const MemorySize = z
  .string()
  .regex(MEMORY_QUANTITY, 'expected a memory size such as "16Gi" or "32768Mi"');

/** The fleet audit's settings: the policy's `audit` section, and a service rule's `audit`. */
const auditFields = {
  minCpu: z
    .number()
    .gt(0)
    .max(1000)
    .describe(
      "vCPUs the GPU container must have (default 4; never below the accelerator's documented minimum).",
    ),
  recommendedCpu: z
    .number()
    .gt(0)
    .max(1000)
    .describe('vCPUs the GPU container should have (default 8).'),
  minMemory: MemorySize.describe(
    "Memory the GPU container must have (default 16Gi; never below the accelerator's documented minimum).",
  ),
  recommendedMemory: MemorySize.describe('Memory the GPU container should have (default 32Gi).'),
  minStartupProbeSeconds: z
    .number()
    .int()
    .min(0)
    .max(3600)
    .describe(
      "Seconds a startup probe must allow (initial delay + failure threshold × period; default 240, as Cloud Run's default TCP probe).",
    ),
  idleUtilization: z
    .number()
    .min(0)
    .max(1)
    .describe(
      'GPU utilization below which a service that never ran above its min instances has unused min instances (default 0.05).',
    ),
  maxMinInstancesShare: z
    .number()
    .min(0)
    .max(1)
    .describe(
      "Share of a pool's quota that min instances may hold before it is flagged (default 0.5).",
    ),
  rules: AuditRuleLevels,
};

export const AuditSettings = z
  .strictObject({
    minCpu: auditFields.minCpu.default(4),
    recommendedCpu: auditFields.recommendedCpu.default(8),
    minMemory: auditFields.minMemory.default('16Gi'),
    recommendedMemory: auditFields.recommendedMemory.default('32Gi'),
    minStartupProbeSeconds: auditFields.minStartupProbeSeconds.default(240),
    idleUtilization: auditFields.idleUtilization.default(0.05),
    maxMinInstancesShare: auditFields.maxMinInstancesShare.default(0.5),
    rules: auditFields.rules.default({}),
  })
  .describe('The fleet audit: thresholds, and rules turned off or given another severity.');
export type AuditSettings = z.infer<typeof AuditSettings>;

export const AuditOverride = z
  .strictObject({
    minCpu: auditFields.minCpu.optional(),
    recommendedCpu: auditFields.recommendedCpu.optional(),
    minMemory: auditFields.minMemory.optional(),
    recommendedMemory: auditFields.recommendedMemory.optional(),
    minStartupProbeSeconds: auditFields.minStartupProbeSeconds.optional(),
    idleUtilization: auditFields.idleUtilization.optional(),
    maxMinInstancesShare: auditFields.maxMinInstancesShare.optional(),
    rules: auditFields.rules.optional(),
  })
  .describe("The audit for the services this rule matches: over the policy's audit section.");
export type AuditOverride = z.infer<typeof AuditOverride>;

export const ServiceRule = z.strictObject({
  match: Match,
  managed: z
    .boolean()
    .default(true)
    .describe('false: the service is counted against the pool but never written.'),
  ...settingFields,
  scaleDownDelay: Duration.optional(),
  reclaimWindow: ReclaimWindow.optional(),
  reverseDelay: Duration.optional(),
  preempt: z
    .boolean()
    .describe(
      "true: this service's in-use instances may be cut to serve a higher priority's demand.",
    )
    .optional(),
  schedule: z.array(TimeWindow).default([]).describe('First window that holds wins.'),
  audit: AuditOverride.optional(),
});
export type ServiceRule = z.infer<typeof ServiceRule>;

const PoolSettings = z.strictObject({
  project: ProjectId.describe('Default: every project of the policy.').optional(),
  region: RegionName,
  accelerator: AcceleratorName.default(DEFAULT_ACCELERATOR),
  zonalRedundancy: z.boolean().default(true),
  quota: Count.max(MAX_QUOTA_GPUS)
    .describe('GPUs; overrides the quota read from the Cloud Quotas API.')
    .optional(),
  reserve: Count.max(1_000_000).describe('GPUs kept free in this pool.').optional(),
});
type PoolSettings = z.infer<typeof PoolSettings>;

const Defaults = z.strictObject({
  min: settingFields.min.default(1),
  max: settingFields.max,
  weight: Weight.default(1),
  priority: Priority.default(0),
  headroom: Headroom.default(0.2),
  // At least 1%: demand grows to busy GPUs ÷ the target, so a target near 0 planned a demand of
  // 10^300 GPUs, or an infinite one that a plan's JSON writes as null (the word for unknown).
  targetUtilization: z
    .number()
    .min(0.01, { error: 'expected at least 0.01 (1%): demand grows to busy GPUs ÷ this target' })
    .max(1)
    .default(0.8)
    .describe('GPU utilization above which demand grows past the instances in use.'),
  scaleDownDelay: Duration.default('15m'),
  lookback: Duration.default('30m').describe('Window over which the peak is measured.'),
  staleAfter: Duration.default('10m').describe(
    "When the project's newest instance-count point is older than this, its usage is unknown (Monitoring is behind); one service's series older than this, while others are fresh, reads as stopped (in use 0).",
  ),
  reclaimWindow: ReclaimWindow.default('10m').describe(
    "A refusal (a minute at the cap with 429s) this recent lets room above other services' recent use move to the refused service; whole minutes, at least 1m, read within the lookback.",
  ),
  reverseDelay: Duration.default('30m').describe(
    'A service the governor lowered (for any reason: its last-lowered annotation) is not raised again sooner, unless it is refused at its new cap.',
  ),
  preempt: z
    .boolean()
    .default(false)
    .describe(
      "true: a governed service's in-use instances may be cut to serve a higher priority's demand (default false: what is in use is kept).",
    ),
});
type Defaults = z.infer<typeof Defaults>;

/**
 * What a request to the Cloud Function (its HTTP body, or its Pub/Sub message's data) may ask.
 * The policy decides: a request may only change the run where the policy says so, and each
 * permission is off unless the policy turns it on.
 */
const FunctionSettings = z
  .strictObject({
    allow: z
      .strictObject({
        dryRun: z
          .boolean()
          .default(false)
          .describe('A request may ask for {"mode": "dry-run"} when the policy enforces.'),
        enforce: z
          .boolean()
          .default(false)
          .describe('A request may ask for {"mode": "enforce"} when the policy is a dry run.'),
        restore: z
          .boolean()
          .default(false)
          .describe(
            'A request may ask for {"restore": true}: every governed service back to its max from before the governor.',
          ),
      })
      .default({ dryRun: false, enforce: false, restore: false })
      .describe(
        'What a request may override; asking for what the policy already says is no override.',
      ),
  })
  .describe("The Cloud Function's requests.");
type FunctionSettings = z.infer<typeof FunctionSettings>;

/** `fanout.staleAfter` when the policy does not set it, or has no `fanout` at all. */
const DEFAULT_STALE_AFTER = '30m';

/**
 * A Pub/Sub topic of the policy (alerts, work): its form (the pattern editors check), then the
 * rest of Google's rule for the id (units.ts topicNameFault), told only of a name in that form.
 */
const TOPIC_FORM = /^projects\/[^/]+\/topics\/[^/]+$/;
const TopicName = z
  .string()
  .regex(TOPIC_FORM, 'expected "projects/PROJECT/topics/TOPIC"')
  .superRefine((name, ctx) => {
    if (!TOPIC_FORM.test(name)) return;
    const fault = topicNameFault(name);
    if (fault !== undefined) ctx.addIssue({ code: 'custom', message: fault, input: name });
  });

export const Policy = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1),
    projects: z
      .array(ProjectId)
      .default([])
      .describe('Projects to govern; may be empty only when `discovery` names where to find them.'),
    discovery: Discovery.optional(),
    fanout: z
      .strictObject({
        topic: TopicName.describe(
          'The work topic: one message per project to govern (docs/organization.md).',
        ),
        staleAfter: durationAtLeast(
          MAX_CLOCK_SKEW_MS,
          'expected at least 1m: a work message is judged with a minute of clock skew allowed, so a shorter one would drop every message on its delivery time alone',
        )
          .default(DEFAULT_STALE_AFTER)
          .describe(
            'A work message older than this is dropped (a newer dispatch has sent its own), and a unit whose last run is older is shown as stuck; at least 1m.',
          ),
        splitAbove: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .optional()
          .describe(
            'A project with more Cloud Run services than this (as discovery counted them) in more than one region is governed as one unit per region. Absent: never split.',
          ),
      })
      .optional()
      .describe('Govern each project in its own function run, fanned out through Pub/Sub.'),
    regions: z
      .array(RegionName)
      .min(1)
      .describe('Default: every region that has GPU services.')
      .optional(),
    mode: z.enum(['enforce', 'dry-run']).default('enforce'),
    reserve: Count.max(1_000_000).default(0).describe('GPUs kept free in every pool.'),
    pools: z.array(PoolSettings).default([]),
    defaults: Defaults.default(Defaults.parse({})),
    services: z
      .array(ServiceRule)
      .default([])
      .describe('First matching rule wins; unmatched GPU services are unmanaged.'),
    limits: z
      .strictObject({
        maxChangesPerRun: z.number().int().min(1).max(10_000).default(50),
        writesPerMinute: z
          .number()
          .gt(0)
          .max(6_000)
          .default(30)
          .describe(
            'Writes per minute per project and region, under the Cloud Run Admin API write rate.',
          ),
        writeConcurrency: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(30)
          .describe(
            'Writes in flight at once (each phase writes its changes together: docs/performance.md).',
          ),
      })
      .default({ maxChangesPerRun: 50, writesPerMinute: 30, writeConcurrency: 30 }),
    alerts: z
      .strictObject({
        topic: TopicName.optional(),
        pressure: z
          .number()
          .gt(0)
          .max(10)
          .default(0.9)
          .describe('Demand ÷ budget at which pool.pressure fires.'),
        renotifyAfter: Duration.default('1h'),
      })
      .default({ pressure: 0.9, renotifyAfter: '1h' }),
    audit: AuditSettings.default(AuditSettings.parse({})),
    function: FunctionSettings.default(FunctionSettings.parse({})),
    // Quota requests (docs/quota-requests.md): a section of its own.
    quotaRequests: QuotaRequestsSettings.optional(),
  })
  .describe('Cloud Run GPU governor policy');
export type Policy = z.infer<typeof Policy>;

/**
 * How old a work message, a unit's last run or a sibling's may be before it counts as stale
 * (`fanout.staleAfter`): its default also when the policy has no `fanout`.
 */
export function fanoutStaleAfter(policy: Pick<Policy, 'fanout'>): string {
  return policy.fanout?.staleAfter ?? DEFAULT_STALE_AFTER;
}
export type PolicyInput = z.input<typeof Policy>;

/** Whether the policy reads `region`: every region when it lists none. */
export function governsRegion(policy: Pick<Policy, 'regions'>, region: string): boolean {
  return policy.regions === undefined || policy.regions.includes(region);
}

/** Whether a place (a service, a pool) is in one of the policy's projects and regions. */
export function inPolicyScope(
  policy: Pick<Policy, 'projects' | 'regions'>,
  place: { project: string; region: string },
): boolean {
  return policy.projects.includes(place.project) && governsRegion(policy, place.region);
}

/** Parses and checks a policy document; throws InputError listing every fault. */
export function parsePolicy(raw: unknown, what = 'policy'): Policy {
  // reportInput: a key left out is told apart from a wrong value (zodFaults says "missing").
  const result = Policy.safeParse(raw, { reportInput: true });
  const faults = result.success ? [] : zodFaults(result.error, Policy);
  faults.push(...crossCheck(raw));
  if (!result.success || faults.length > 0) {
    throw new InputError(
      `${what} is invalid (${plural(faults.length, 'problem')})`,
      dedupe(faults),
    );
  }
  return result.data;
}

export function parsePolicyText(text: string, what = 'policy'): Policy {
  return parsePolicy(parseDocument(text, what), what);
}

function dedupe(faults: Fault[]): Fault[] {
  const seen = new Set<string>();
  return faults.filter((f) => {
    const k = `${f.path}\u0000${f.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// --- cross-field checks, on the raw document so that they run even when the shape is wrong ---

type Raw = Record<string, unknown>;
const isRecord = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function checkMinMax(
  faults: Fault[],
  path: string,
  min: number | undefined,
  max: number | undefined,
  note = '',
): void {
  if (min !== undefined && max !== undefined && min > max) {
    faults.push({ path, message: `min ${min} is greater than max ${max}${note}` });
  }
}

function checkWindow(
  faults: Fault[],
  path: string,
  w: Raw,
  ruleMin: number | undefined,
  ruleMax: number | undefined,
): void {
  const tz = str(w.timezone);
  // An empty zone is the schema's fault already.
  if (tz !== undefined && tz !== '' && !isValidTimeZone(tz)) {
    faults.push({ path: `${path}.timezone`, message: `unknown IANA time zone "${tz}"` });
  }
  const start = str(w.start);
  const end = str(w.end);
  if (start !== undefined && clockMinutes(start) === 24 * 60) {
    faults.push({ path: `${path}.start`, message: 'a window cannot start at 24:00' });
  }
  if (
    start !== undefined &&
    end !== undefined &&
    clockMinutes(start) !== null &&
    clockMinutes(start) === clockMinutes(end)
  ) {
    faults.push({
      path: `${path}.end`,
      message: `start and end are both ${start}: a window of no length, or of a whole day? Write 00:00 to 24:00 for whole days, or two windows`,
    });
  }
  const min = num(w.min) ?? ruleMin;
  const max = num(w.max) ?? ruleMax;
  checkMinMax(faults, path, min, max, ' while the window holds');
}

/**
 * Most wildcards a name glob may have. picomatch compiles a glob to a backtracking RegExp, where
 * each `*` becomes a lazy `[^/]*?`: a name that almost matches is tried in about n^k ways for k
 * wildcards. `*a*a*a*a*a*a*a*a*a*a*a*a*b` against a 49-character name ran for minutes; with 4
 * wildcards the worst name of that length takes about a millisecond, and real globs ("llm-*",
 * "*-prod-*") need one or two.
 */
export const MAX_GLOB_WILDCARDS = 4;

/**
 * Counts the constructs of a glob that match a variable number of characters or choose between
 * alternatives: each run of `*` (`**` is one), each extglob group (`+(…)`, `@(…)`, `!(…)`,
 * `?(…)`; `*(…)` is already a `*`) and each brace group (`{a,b}`, which picomatch compiles to an
 * alternation `(a|b)`: `{a,aa}` forty times over is tried in 2^40 ways against a name it almost
 * matches). Escaped characters and characters inside brackets are literal. Inside a brace
 * alternation every `*` counts, which errs on the safe side.
 */
export function globWildcards(glob: string): number {
  let count = 0;
  let lastStar = -2;
  for (const [c, i] of globSyntax(glob)) {
    if (c === '*') {
      if (lastStar !== i - 1) count++;
      lastStar = i;
    } else if ((c === '+' || c === '@' || c === '!' || c === '?') && glob[i + 1] === '(') {
      count++;
    } else if (c === '{') {
      count++;
    }
  }
  return count;
}

/**
 * The characters of a glob that are syntax, with their index: escaped characters and characters
 * inside brackets are literal and skipped.
 */
function* globSyntax(glob: string): Generator<[string, number]> {
  let inClass = false;
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '\\') {
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else {
      yield [c, i];
    }
  }
}

/**
 * The first construct of varying length (a `*`, a group, a brace alternation or a `|`) that a
 * repeating extglob group (`+(…)`, `*(…)`) encloses, or null when there is none. picomatch
 * compiles `+(*)` to `(?:[^/]*?)+`: a repetition of something that itself varies, which a
 * backtracking RegExp tries in exponentially many ways (`+(*)b` against 26 characters took 1.6
 * s, and doubles with every character), however few wildcards the glob has. A repeated group of
 * fixed width (`+([a-z])`, `*(ab)`) is linear and kept.
 */
export function repeatedVariable(glob: string): string | null {
  const open: boolean[] = []; // one per open group: whether it (or one around it) repeats
  const repeating = () => open.length > 0 && open[open.length - 1] === true;
  let groupAt = -1; // the index of the '(' that opens an extglob group just seen
  for (const [c, i] of globSyntax(glob)) {
    if (i === groupAt) continue;
    if ('*+@!?'.includes(c) && glob[i + 1] === '(') {
      if (repeating()) return `${c}(`;
      open.push(c === '*' || c === '+');
      groupAt = i + 1;
    } else if (c === '(') {
      open.push(repeating());
    } else if (c === ')') {
      open.pop();
    } else if (repeating() && (c === '*' || c === '{' || c === '|')) {
      return c;
    }
  }
  return null;
}

function checkGlob(faults: Fault[], path: string, glob: string): void {
  try {
    picomatch.makeRe(glob, { strictBrackets: true });
  } catch (e) {
    faults.push({ path, message: `invalid glob "${glob}": ${(e as Error).message}` });
    return;
  }
  const nested = repeatedVariable(glob);
  if (nested !== null) {
    faults.push({
      path,
      message: `glob "${glob}" repeats a pattern of varying length ("${nested}" inside "+(…)" or "*(…)"): matching a name could take exponential time`,
    });
    return;
  }
  const wildcards = globWildcards(glob);
  if (wildcards > MAX_GLOB_WILDCARDS) {
    faults.push({
      path,
      message: `glob "${glob}" has ${wildcards} wildcards (runs of "*", extglob groups and brace groups): at most ${MAX_GLOB_WILDCARDS} are allowed, so that matching a name takes bounded time`,
    });
  }
}

/** Google's most labels on one resource (https://cloud.google.com/resource-manager/docs/labels-overview#requirements). */
const MAX_RESOURCE_LABELS = 64;

/**
 * A label a rule matches on that breaks Google's label requirements (core/units.ts) is on no
 * service, so the rule could never match: `Team`, `team.name` or a value of 64 characters.
 */
function checkLabels(faults: Fault[], path: string, labels: Raw): void {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) {
      faults.push({
        path: `${path}.${key}`,
        message: `"${key}" cannot be a label key, so no service has it: Google's label keys are 1 to 63 lowercase letters, digits, "_" and "-", beginning with a letter (https://cloud.google.com/resource-manager/docs/labels-overview)`,
      });
    } else if (typeof value === 'string' && !LABEL_VALUE.test(value)) {
      faults.push({
        path: `${path}.${key}`,
        message: `"${value}" cannot be a label value, so no service has it: Google's label values are at most 63 lowercase letters, digits, "_" and "-" (https://cloud.google.com/resource-manager/docs/labels-overview)`,
      });
    }
  }
}

/**
 * Earlier rules, of those without a literal name, that a rule is compared with: a policy with
 * thousands of rules has them by literal name (core/rules.ts), which are compared by bucket, so
 * this bounds the check's cost (rules × this); a rule shadowed only by a later one of them is
 * not reported (it still never matches, as before).
 */
const SHADOW_CANDIDATES = 100;

/**
 * The keys of a match compared by equal value (every key but the name's glob and the labels):
 * read off Match itself, so that a key added to it is compared too, never taken as matching all.
 */
const EXACT_MATCH_KEYS = Object.keys(Match.shape).filter((k) => k !== 'name' && k !== 'labels');

/**
 * Rules that can never match because an earlier rule matches every service they would (first
 * match wins): the earlier rule's every key is also the later rule's, with the same value, or
 * broader for the name. Conservative: a name is broader only when the earlier rule has none, is
 * `*`, is the same glob, or is a glob that matches the later rule's literal name. Two globs that
 * differ are never compared (which one is broader is not decided here).
 */
function shadowedRules(rules: readonly unknown[]): Fault[] {
  interface Seen {
    index: number;
    match: Raw;
    labels: [string, string][];
  }
  const byName = new Map<string, Seen[]>();
  const others: Seen[] = [];
  const faults: Fault[] = [];
  const matchers = new Map<string, (name: string) => boolean>();
  const matcher = (glob: string) => {
    let m = matchers.get(glob);
    if (!m) {
      try {
        m = nameMatcher(glob);
      } catch {
        m = () => false; // an invalid glob is checkGlob's fault
      }
      matchers.set(glob, m);
    }
    return m;
  };
  const covers = (a: Seen, b: Raw, bLabels: Raw): boolean => {
    for (const key of EXACT_MATCH_KEYS) {
      if (a.match[key] !== undefined && a.match[key] !== b[key]) return false;
    }
    for (const [k, v] of a.labels) if (!Object.hasOwn(bLabels, k) || bLabels[k] !== v) return false;
    const aName = str(a.match.name);
    const bName = str(b.name);
    if (aName === undefined || aName === '*' || aName === '**' || aName === bName) return true;
    return bName !== undefined && literalName.test(bName) && matcher(aName)(bName);
  };
  for (const [index, rule] of rules.entries()) {
    if (!isRecord(rule) || !isRecord(rule.match)) continue;
    const match = rule.match;
    const labels = isRecord(match.labels) ? match.labels : {};
    const name = str(match.name);
    const literal = name !== undefined && literalName.test(name);
    const first = (seen: readonly Seen[], limit: number) => {
      for (let k = 0; k < Math.min(seen.length, limit); k++) {
        const c = seen[k];
        if (c && covers(c, match, labels)) return c;
      }
      return undefined;
    };
    const byLiteral = literal ? first(byName.get(name) ?? [], Infinity) : undefined;
    const general = first(others, SHADOW_CANDIDATES);
    const earlier =
      byLiteral && general
        ? byLiteral.index < general.index
          ? byLiteral
          : general
        : (byLiteral ?? general);
    if (earlier) {
      faults.push({
        path: `services[${index}].match`,
        message: `can never match: services[${earlier.index}] comes first and matches every service this rule would (the first matching rule wins); move this rule above it, or remove it`,
      });
      continue; // a dead rule shadows nothing more than the rule before it does
    }
    const seen: Seen = {
      index,
      match,
      labels: Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'),
    };
    if (literal) {
      const bucket = byName.get(name) ?? [];
      bucket.push(seen);
      byName.set(name, bucket);
    } else {
      others.push(seen);
    }
  }
  return faults;
}

/**
 * The shortest `staleAfter` (5 minutes). Google Cloud metrics become visible some minutes after
 * they are sampled ("Sampled every 60 seconds. After sampling, data is not visible for up to 240
 * seconds", the example of https://cloud.google.com/monitoring/api/v3/latency-n-retention; the
 * figure varies by metric). A service whose newest point is older than staleAfter while the
 * project's others are fresh is read as stopped (in use 0), so a limit under that latency would
 * read running services as stopped.
 */
const MIN_STALE_AFTER_MS = 5 * 60_000;
/**
 * The longest `lookback` (7 days): the governor reads every minute of it for every service in
 * each run (observe/observe.ts), 10,080 points a series at this limit.
 */
export const MAX_LOOKBACK_MS = 7 * 24 * 3_600_000;

/**
 * `staleAfter` at least {@link MIN_STALE_AFTER_MS}; `lookback` at least `staleAfter` (a project
 * with no point at all in its lookback is read as every service at zero, which is true only when
 * the lookback is longer than Monitoring's latency) and at most {@link MAX_LOOKBACK_MS}.
 */
function checkWindows(faults: Fault[], defaults: Raw): void {
  // A value absent takes the schema's default; a malformed one is reported by the schema.
  const ms = (v: unknown, field: z.ZodDefault<typeof Duration>): number | null => {
    const text = v === undefined ? field.parse(undefined) : str(v);
    return text !== undefined && Duration.safeParse(text).success ? durationMs(text) : null;
  };
  const stale = ms(defaults.staleAfter, Defaults.shape.staleAfter);
  const lookback = ms(defaults.lookback, Defaults.shape.lookback);
  if (stale !== null && stale < MIN_STALE_AFTER_MS) {
    faults.push({
      path: 'defaults.staleAfter',
      message:
        'expected at least 5m: Cloud Monitoring shows a minute up to about 4 minutes after it is sampled, so a running service would read as stopped',
    });
  }
  if (lookback !== null && stale !== null && lookback < stale) {
    faults.push({
      path: 'defaults.lookback',
      message: `expected at least staleAfter (${formatDuration(stale)}): a shorter window may hold no point of a running service, which then reads as idle`,
    });
  }
  if (lookback !== null && lookback > MAX_LOOKBACK_MS) {
    faults.push({
      path: 'defaults.lookback',
      message: 'expected at most 7d: every minute of it is read for every service in each run',
    });
  }
}

function crossCheck(raw: unknown): Fault[] {
  const faults: Fault[] = [];
  if (!isRecord(raw)) return faults;
  faults.push(...checkQuotaRequests(raw.quotaRequests));
  const defaults = isRecord(raw.defaults) ? raw.defaults : {};
  const dMin = num(defaults.min) ?? 1;
  const dMax = num(defaults.max);
  checkMinMax(faults, 'defaults', dMin, dMax);
  checkWindows(faults, defaults);

  const projects = list(raw.projects)
    .map(str)
    .filter((p): p is string => !!p);
  const regions = Array.isArray(raw.regions) ? list(raw.regions).map(str) : undefined;
  if (list(raw.projects).length === 0) {
    const d = isRecord(raw.discovery) ? raw.discovery : null;
    if (!d || (d.organization === undefined && d.folders === undefined)) {
      faults.push({
        path: 'projects',
        message:
          'expected at least one project, or a discovery section naming an organization or folders',
      });
    }
  }
  if (isRecord(raw.fanout) && raw.fanout.splitAbove !== undefined && !isRecord(raw.discovery)) {
    faults.push({
      path: 'fanout.splitAbove',
      message:
        'splits only what discovery counted (services per project and region): add a discovery section, or remove splitAbove',
    });
  }
  if (isRecord(raw.discovery)) {
    if (raw.discovery.organization === undefined && raw.discovery.folders === undefined) {
      faults.push({
        path: 'discovery',
        message: 'expected an organization or folders to search for projects',
      });
    }
    for (const [i, g] of [
      ...list(raw.discovery.include),
      ...list(raw.discovery.exclude),
    ].entries()) {
      const glob = str(g);
      const key = i < list(raw.discovery.include).length ? 'include' : 'exclude';
      const at = key === 'include' ? i : i - list(raw.discovery.include).length;
      if (glob) checkGlob(faults, `discovery.${key}[${at}]`, glob);
    }
    // A resource must carry every one of these labels to be found: one that no label can be, or
    // more labels than a resource can have, would find nothing, and nothing would be governed.
    if (isRecord(raw.discovery.labels)) {
      const count = Object.keys(raw.discovery.labels).length;
      if (count > MAX_RESOURCE_LABELS) {
        faults.push({
          path: 'discovery.labels',
          message: `${count} labels: a Cloud Run service or worker pool has at most ${MAX_RESOURCE_LABELS} (https://cloud.google.com/resource-manager/docs/labels-overview#requirements), so none would be found`,
        });
      } else checkLabels(faults, 'discovery.labels', raw.discovery.labels);
    }
  }
  // A project or region listed twice is a slip (a merge, a copy): said, as a pool listed twice is.
  for (const [key, names] of [
    ['projects', projects],
    ['regions', regions ?? []],
  ] as const) {
    const seen = new Set<string>();
    for (const [i, name] of names.entries()) {
      if (name === undefined) continue; // not a string: the schema says so
      if (seen.has(name))
        faults.push({ path: `${key}[${i}]`, message: `"${name}" is listed twice` });
      seen.add(name);
    }
  }

  for (const [i, rule] of list(raw.services).entries()) {
    if (!isRecord(rule)) continue;
    const path = `services[${i}]`;
    const min = num(rule.min) ?? dMin;
    const max = num(rule.max) ?? dMax;
    checkMinMax(
      faults,
      path,
      min,
      max,
      rule.min === undefined || rule.max === undefined ? ' (with the defaults)' : '',
    );
    const match = isRecord(rule.match) ? rule.match : {};
    const name = str(match.name);
    if (name) checkGlob(faults, `${path}.match.name`, name);
    const project = str(match.project);
    if (project && projects.length && !isRecord(raw.discovery) && !projects.includes(project)) {
      faults.push({
        path: `${path}.match.project`,
        message: `"${project}" is not one of the policy's projects`,
      });
    }
    const region = str(match.region);
    if (region && regions && !regions.includes(region)) {
      faults.push({
        path: `${path}.match.region`,
        message: `"${region}" is not one of the policy's regions: no service there is read, so the rule can never match`,
      });
    }
    if (isRecord(match.labels)) checkLabels(faults, `${path}.match.labels`, match.labels);
    for (const [j, w] of list(rule.schedule).entries()) {
      if (isRecord(w)) checkWindow(faults, `${path}.schedule[${j}]`, w, min, max);
    }
  }
  faults.push(...shadowedRules(list(raw.services)));

  const poolKeys = new Map<string, number>();
  for (const [i, pool] of list(raw.pools).entries()) {
    if (!isRecord(pool)) continue;
    const path = `pools[${i}]`;
    const region = str(pool.region);
    const project = str(pool.project);
    if (project && projects.length && !isRecord(raw.discovery) && !projects.includes(project)) {
      faults.push({
        path: `${path}.project`,
        message: `"${project}" is not one of the policy's projects`,
      });
    }
    if (region && regions && !regions.includes(region)) {
      faults.push({
        path: `${path}.region`,
        message: `"${region}" is not one of the policy's regions`,
      });
    }
    // `*`: an entry for every project.
    const key = poolKey({
      project: project ?? '*',
      region: region ?? '',
      accelerator: str(pool.accelerator) ?? DEFAULT_ACCELERATOR,
      zonalRedundancy: pool.zonalRedundancy !== false,
    });
    const before = poolKeys.get(key);
    if (before !== undefined) {
      faults.push({ path, message: `same pool as pools[${before}] (${key})` });
    } else {
      poolKeys.set(key, i);
    }
  }
  return faults;
}

/**
 * Why a policy with no `projects` cannot be run project by project: its `discovery` finds the
 * projects, and the organisation entry points run each (docs/organization.md).
 */
export const NO_PROJECTS =
  'empty: this policy finds its projects by `discovery`, which only the organisation entry points use (governorDispatch and governorUnit, docs/organization.md); list the projects to run it here';
