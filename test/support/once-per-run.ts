/**
 * What a vitest global setup makes once for the whole run, whichever projects list the setup:
 * each project runs its global setups, all in vitest's one main process
 * (https://vitest.dev/config/globalsetup), so a setup listed by the unit and both integration
 * projects would otherwise make its directory, service or warning once per project. The first
 * setup to ask makes it (`first`); the `release` of the last one ends it.
 */
const held = globalThis as {
  governorOncePerRun?: Map<string, { value: unknown; users: number }>;
};

export function oncePerRun<T>(
  key: string,
  make: () => T,
  end: (value: T) => void | Promise<void>,
): { value: T; first: boolean; release: () => void | Promise<void> } {
  const all = (held.governorOncePerRun ??= new Map());
  const found = all.get(key) as { value: T; users: number } | undefined;
  const entry = found ?? { value: make(), users: 0 };
  if (found === undefined) all.set(key, entry);
  entry.users += 1;
  return {
    value: entry.value,
    first: found === undefined,
    release: () => {
      entry.users -= 1;
      if (entry.users > 0) return;
      all.delete(key);
      return end(entry.value);
    },
  };
}
