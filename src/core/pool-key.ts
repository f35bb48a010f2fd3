/** Moved to `pool.ts`, which owns every rule about pools; kept until its last importers move. */
export { compareText, poolKey, samePool, type PoolId } from './pool.js';
