/** A pool: one quota, keyed by (project, region, accelerator, zonal redundancy). */
export interface PoolId {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}

/** A stable string key for a pool, also used in alert dedup keys and ordering keys. */
export function poolKey(p: PoolId): string {
  return `${p.project}/${p.region}/${p.accelerator}/${p.zonalRedundancy ? 'zonal' : 'no-zonal'}`;
}

export function samePool(a: PoolId, b: PoolId): boolean {
  return (
    a.project === b.project &&
    a.region === b.region &&
    a.accelerator === b.accelerator &&
    a.zonalRedundancy === b.zonalRedundancy
  );
}

/** Code-point comparison: the same order on every machine and locale. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
