/** Google resource names in what an API answers, checked against what was asked. */

/**
 * Whether `name` is `projects/P/locations/R/` + `collection` + a rest matching `rest`. The project
 * segment may also be a project number: Google's APIs may name a project by number in what they
 * answer though asked by id (as Cloud Quotas does, docs/quota-requests.md), and a number cannot
 * be compared with the id here, so a numeric one is let through; the region and the collection
 * must be the ones asked.
 */
export function namedUnder(
  name: string,
  project: string,
  region: string,
  collection: string,
  rest: RegExp,
): boolean {
  const prefix = `/locations/${region}/${collection}`;
  const match = /^projects\/([^/]+)(\/.*)$/.exec(name);
  if (!match) return false;
  const [, owner = '', tail = ''] = match;
  if (owner !== project && !/^[0-9]+$/.test(owner)) return false;
  return tail.startsWith(prefix) && rest.test(tail.slice(prefix.length));
}
