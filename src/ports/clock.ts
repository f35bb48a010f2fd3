/**
 * The run's time, read once per run at the edge (the core takes the time as input): the wall
 * clock, or the emulator's virtual clock so that observation windows match the metrics it serves.
 * Milliseconds since the epoch.
 */
export type Clock = () => Promise<number>;
