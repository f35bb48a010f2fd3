import { groupBy } from '../core/collections.js';

/**
 * More lines alike than this print as one line that counts them and names the first
 * {@link ALIKE_NAMED}: `check`'s checks of services, `apply`'s writes not made, `plan`'s and
 * `status`'s services with nothing to report. A fleet of 3,000 services is thousands of such
 * lines, which no one reads one by one; `--json` lists each.
 */
export const ALIKE_LISTED = 10;
/** The items a line of alike ones names, before "and N more". */
export const ALIKE_NAMED = 5;

/** One entry of a list for people: an item on its own, or a group of alike items as one line. */
export type Alike<T> = { item: T; group?: undefined } | { group: T[]; item?: undefined };

/**
 * The items in order, each group of more than `listed` items with the same key as one entry,
 * where its first item was. An item whose key is null (a change, a problem) is never grouped.
 */
export function alike<T>(
  items: readonly T[],
  key: (item: T) => string | null,
  listed = ALIKE_LISTED,
): Alike<T>[] {
  const keyed = items.map((item) => ({ item, key: key(item) }));
  const groups = groupBy(
    keyed.filter((k) => k.key !== null),
    (k) => k.key ?? '',
  );
  const out: Alike<T>[] = [];
  for (const k of keyed) {
    const group = k.key === null ? undefined : groups.get(k.key);
    if (!group || group.length <= listed) out.push({ item: k.item });
    else if (group[0] === k) out.push({ group: group.map((g) => g.item) });
  }
  return out;
}
