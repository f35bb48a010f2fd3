/**
 * The resource name of a Cloud Quotas preference, as the governor accepts it: from Google's
 * answers, and from the quota-request ledger of the state, which anyone may edit.
 *
 * Google's form is `projects/{project}/locations/global/quotaPreferences/{id}` ("The ID component
 * following "locations/" must be "global""; QuotaPreference.name,
 * https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).
 * Google's own example names the project by its NUMBER (`projects/123/locations/global/...`), and
 * its how-to calls the API with `projects/PROJECT_NUMBER/...`
 * (https://cloud.google.com/docs/quotas/implement-common-use-cases), so a name read back may carry
 * the project's number where the governor asked with its id. A number cannot be compared with an
 * id here: {@link preferenceNameFault} lets it pass, and the caller accepts it only when it is the
 * number Google answered for that project (a name its listing of the project returned).
 *
 * Google states no form for a preference id it generates; the governor's own are AIP-122 ids. So
 * an id is 1 to 100 letters, digits, `-`, `_` and `.`, not beginning with a dot (no `.` or `..`
 * segment), and the name has exactly these six segments.
 */
import { ProjectId } from './units.js';

/** The longest preference name accepted (a project of 30 and an id of 100 fit well within it). */
export const MAX_PREFERENCE_NAME = 300;

/**
 * A Cloud Quotas quota id as the governor files and tracks them (`NvidiaL4GpuAllocPerProjectRegion`):
 * letters and digits, at most 100.
 */
export const QUOTA_ID = /^[A-Za-z0-9]{1,100}$/;

const NAME = /^projects\/([^/]+)\/locations\/global\/quotaPreferences\/([^/]+)$/;
const ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
const NUMBER = /^[1-9]\d{0,19}$/;

/** The project segment of a preference name, or null when the name is not one. */
export function preferenceProject(name: string): string | null {
  return NAME.exec(name)?.[1] ?? null;
}

/** Whether a project segment is a project number (a project id never is all digits). */
function isProjectNumber(segment: string): boolean {
  return NUMBER.test(segment);
}

/**
 * Why `name` is not the name of a preference of `project`, or null when it is one: its project
 * segment is `project`, or a project number (to be confirmed by the caller, see above). Without
 * `project`, only the form is checked.
 */
export function preferenceNameFault(name: unknown, project?: string): string | null {
  if (typeof name !== 'string') return `is ${typeof name}, not a preference name`;
  const shown = JSON.stringify(name.slice(0, 100)) + (name.length > 100 ? '…' : '');
  if (name.length > MAX_PREFERENCE_NAME)
    return `is ${name.length} characters, more than the ${MAX_PREFERENCE_NAME} of a preference name (${shown})`;
  const m = NAME.exec(name);
  const [, segment = '', id = ''] = m ?? [];
  if (!m || !ID.test(id) || !ProjectId.safeParse(segment).success)
    return `must look like projects/PROJECT/locations/global/quotaPreferences/ID, not ${shown}`;
  if (project !== undefined && segment !== project && !isProjectNumber(segment))
    return `names a preference of project "${segment}", not of "${project}"`;
  return null;
}

/**
 * Whether two names are the same preference as one project's listing answers them: the same id,
 * and the same project segment, or a project number for exactly one of them (Google may answer the
 * number where the governor asked with the id; see above). For names read from, or filed under,
 * one project only.
 */
export function samePreference(a: string, b: string): boolean {
  if (a === b) return true;
  const ma = NAME.exec(a);
  const mb = NAME.exec(b);
  if (!ma || !mb || ma[2] !== mb[2]) return false;
  const [pa = '', pb = ''] = [ma[1], mb[1]];
  // A project number stands for the project id asked with; two numbers are two projects.
  return pa === pb || isProjectNumber(pa) !== isProjectNumber(pb);
}
