import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface MemoryRow {
  services: number;
  peakRssMb: number;
  baselineRssMb: number;
  runMs: number;
  writes: number;
  outcome: string;
}

/** Peak memory of one governor run over `services` services, measured in a fresh process. */
export async function benchMemory(services = 10_000): Promise<MemoryRow> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [new URL('./memory-child.js', import.meta.url).pathname, String(services)],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as MemoryRow;
}
