import { z } from 'zod';
import { StringMap } from './document.js';
import { compareText } from './pool.js';

/**
 * Units of the fan-out (docs/organization.md): what one function run governs. A unit is a whole
 * project, or, when the policy's `fanout.splitAbove` says a project is large, one region of it.
 *
 * A region is the smallest honest unit: Cloud Run lists services per region (`ListServices`
 * takes `projects/{p}/locations/{region}` and no `-` wildcard: docs/architecture.md), both
 * zonal-redundancy pools of a region come from that one list, and a pool never spans regions
 * (its quota is per project and region: the Cloud Quotas `dimensions.region`). So two regional
 * units of one project write disjoint services against disjoint quotas.
 *
 * Every unit has its own state (lease, conditions, outbox, run records) under its **unit key**:
 * the project id for a project unit, `project@region` for a regional unit. `@` occurs in neither
 * a project ({@link ProjectId}) nor a region name (below), so no project's key is ever a regional unit's, and the stores escape it like any other
 * character they do not keep as it is (`encodeURIComponent`: `%40`).
 */

/**
 * A Cloud Run region name: an area, a hyphen, a direction and a number, as every region Google
 * lists for Cloud Run is spelled (`us-central1`, `europe-west12`, `northamerica-northeast2`,
 * `me-central2`: https://cloud.google.com/run/docs/locations). Zones (`us-central1-a`), `global`,
 * multi-regions and anything with another character are refused.
 */
export const REGION_NAME = /^[a-z]{2,15}-[a-z]{4,15}[1-9][0-9]?$/;

const REGION_EXPECTED = 'expected a Cloud Run region such as "us-central1"';
export const RegionName = z.string().max(40, REGION_EXPECTED).regex(REGION_NAME, REGION_EXPECTED);

/**
 * A project of the policy, and of a work message (the dispatch sends the policy's projects as
 * they are): it names resources (`projects/{project}/locations/{region}`), a
 * Monitoring filter and the state store's file, so only the characters of Google's project ids
 * are accepted: lower-case letters, digits and hyphens, at most 30, not beginning or ending with a
 * hyphen ("must be 6 to 30 characters", https://cloud.google.com/resource-manager/docs/creating-managing-projects);
 * a project number is digits; a legacy domain-scoped project is `example.com:my-project`. Never
 * "a/b", "../x", spaces or quotes, which would otherwise reach Google as a name and fail the run.
 */
const PROJECT_ID = /^([a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$/;
/** What a project id is made of, as a policy's project and a topic's project are told it. */
const PROJECT_ID_RULE =
  'lower-case letters, digits and hyphens, at most 30, not beginning or ending with a hyphen';
export const ProjectId = z
  .string()
  .regex(PROJECT_ID, `expected a project id such as "my-project": ${PROJECT_ID_RULE}`);

const TOPIC_NAME = /^projects\/([^/]+)\/topics\/([^/]+)$/;
const TOPIC_ID = /^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;

/**
 * Why `name` is not a full Pub/Sub topic name (`projects/P/topics/T`) Google takes, or undefined
 * when it is one. Google's rule for the topic id: it "must start with a letter, and contain only
 * letters ([A-Za-z]), numbers ([0-9]), dashes (-), underscores (_), periods (.), tildes (~), plus
 * (+) or percent signs (%). It must be between 3 and 255 characters in length, and it must not
 * start with "goog"" (`Topic.name`,
 * https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics). The policy's topics
 * and the emulator's are held to it alike: a policy naming one Google refuses passed validation,
 * then failed every publish of its runs.
 */
export function topicNameFault(name: string): string | undefined {
  const match = TOPIC_NAME.exec(name);
  if (!match) return 'expected projects/PROJECT/topics/TOPIC';
  // The project is the project's id ("projects/{project}/topics/{topic}", the `{project}` a
  // project id: https://cloud.google.com/dotnet/docs/reference/Google.Cloud.PubSub.V1/latest/Google.Cloud.PubSub.V1.TopicName,
  // `TopicName(projectId, topicId)`). Any other text there names no topic, and a topic is printed
  // where its name is said: a terminal escape in it acted on the terminal that showed it.
  if (!PROJECT_ID.test(match[1] ?? '')) {
    return `the topic's project must be a project id: ${PROJECT_ID_RULE}`;
  }
  const id = match[2] ?? '';
  if (!TOPIC_ID.test(id)) {
    return 'the topic id must start with a letter, have only letters, digits and - _ . ~ + %, and be 3 to 255 characters long';
  }
  if (id.toLowerCase().startsWith('goog')) return 'the topic id must not start with "goog"';
  return undefined;
}

/**
 * A label of a Google Cloud resource, as Google's label requirements state them
 * (https://cloud.google.com/resource-manager/docs/labels-overview, "Requirements for labels"; a
 * Cloud Run service's labels follow them): keys of 1 to 63 characters, values of at most 63 (may
 * be empty), only lowercase letters, digits, underscores and dashes, international characters
 * allowed, a key beginning with a lowercase letter or an international character. "Lowercase"
 * is read as no upper- or title-case letter, so that no label Google accepts is refused here.
 */
export const LABEL_KEY = /^[\p{Ll}\p{Lo}\p{Lm}][\p{Ll}\p{Lo}\p{Lm}\p{M}\p{N}_-]{0,62}$/u;
export const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{Lm}\p{M}\p{N}_-]{0,63}$/u;

/**
 * Labels a service rule or discovery matches on. The policy's own check (core/policy.ts
 * `checkLabels`) refuses a label no resource can have, with a message per label; the JSON Schema
 * states the same two patterns, so that an editor underlines what `governor validate` refuses.
 * A JSON Schema pattern is an ECMA-262 regular expression
 * (https://json-schema.org/draft/2020-12/json-schema-validation#section-6.3.3); these use Unicode
 * property escapes (`\p{Ll}`), which a validator reads when it compiles patterns in Unicode mode,
 * as ajv does by default.
 */
export const LabelsToMatch = StringMap.meta({
  propertyNames: { type: 'string', pattern: LABEL_KEY.source },
  additionalProperties: { type: 'string', pattern: LABEL_VALUE.source },
});

/** Between the project and the region of a regional unit's key. */
export const UNIT_SEPARATOR = '@';

/** A unit: a project, or one region of it. */
export interface Unit {
  project: string;
  /** Absent: the whole project. */
  region?: string;
}

/** The unit's state key: the project id, or `project@region`. */
export function unitKey(unit: Unit): string {
  return unit.region === undefined
    ? unit.project
    : `${unit.project}${UNIT_SEPARATOR}${unit.region}`;
}

/** How people read a unit: `project`, or `project (region)`. */
export function unitLabel(unit: Unit): string {
  return unit.region === undefined ? unit.project : `${unit.project} (${unit.region})`;
}

/** Cloud Run services found per project and region (what discovery counts). */
type ServiceCounts = Readonly<Record<string, Readonly<Record<string, number>>>>;

/**
 * The units of a dispatch. Without `splitAbove` every project is one unit (nothing changes). With
 * it, a project is split into one unit per region when the services discovery counted in it are
 * more than `splitAbove` and lie in more than one of the regions the policy governs (a project in
 * one region gains nothing from a split). A project discovery did not count (named only in the
 * policy's `projects`) stays one unit: nothing says where its services are. Regions the policy's
 * `regions` leaves out get no unit. Sorted by project, then region.
 */
export function splitUnits(
  projects: readonly string[],
  counts: ServiceCounts | undefined,
  splitAbove: number | undefined,
  regions: readonly string[] | undefined,
): Unit[] {
  const units: Unit[] = [];
  for (const project of [...new Set(projects)].sort()) {
    const byRegion = Object.entries(counts?.[project] ?? {}).filter(
      ([r, n]) => n > 0 && REGION_NAME.test(r) && (regions === undefined || regions.includes(r)),
    );
    const total = byRegion.reduce((s, [, n]) => s + n, 0);
    if (splitAbove === undefined || total <= splitAbove || byRegion.length < 2) {
      units.push({ project });
      continue;
    }
    for (const [region] of byRegion.sort(([a], [b]) => compareText(a, b)))
      units.push({ project, region });
  }
  return units;
}

/** Another regional unit of the same project, as a regional unit sees it: its newest run. */
export interface SiblingRun {
  region: string;
  /** The time its newest kept run planned at (or started); null when it has none. */
  lastRunAt: string | null;
  /** How long ago that run was (ms, each on its own clock); null when it has none. */
  ageMs: number | null;
}

/**
 * The regional units of a project that stopped running, as one of its running regional units
 * judges them, and whether that unit is the one to say so. The fan-out's "has not run" alert
 * policy (terraform/) merges a project's units, so it cannot see one of them stop while another
 * runs: the running ones can (docs/organization.md, "Regional units").
 *
 * - A sibling stopped when its newest run is older than `staleAfterMs` (`fanout.staleAfter`,
 *   after which a work message is dropped as stale and `governor status --org` shows it stuck).
 * - A sibling with no run at all stopped only once this unit's own oldest kept run is that old,
 *   and so is the discovery that counts it (`countedForMs`: how long ago it was found, on its own
 *   clock; null when unknown): before, the split may be newer than its first run, or the region
 *   new to it.
 * - Of the units still running, only the first by region name says so, so that one fact makes
 *   one alert; when it stops too, the next one takes over (and names both).
 */
export function stoppedSiblings(args: {
  region: string;
  siblings: readonly SiblingRun[];
  /** How long ago this unit's oldest kept run was (ms); null when this is its first. */
  firstRunAgeMs: number | null;
  /** How long ago the discovery that splits the project was found; null when unknown. */
  countedForMs: number | null;
  staleAfterMs: number;
}): { stopped: SiblingRun[]; reporter: boolean } {
  const old = (ageMs: number | null) => ageMs !== null && ageMs > args.staleAfterMs;
  const counted = args.countedForMs === null || args.countedForMs > args.staleAfterMs;
  const stopped = args.siblings
    .filter((s) => s.region !== args.region)
    .filter((s) => (s.ageMs === null ? counted && old(args.firstRunAgeMs) : old(s.ageMs)))
    .sort((a, b) => compareText(a.region, b.region));
  const down = new Set(stopped.map((s) => s.region));
  const live = [args.region, ...args.siblings.map((s) => s.region).filter((r) => !down.has(r))];
  const first = live.reduce((a, b) => (compareText(b, a) < 0 ? b : a));
  return { stopped, reporter: first === args.region };
}
