/**
 * `items` grouped by `key`, groups in the order of their first item and items in their order
 * (what `Map.groupBy` does from Node 21; the governor runs on Node 20 too).
 */
export function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
