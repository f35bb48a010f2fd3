import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';

/**
 * What running the governor costs, in the units Cloud Run bills: GiB-seconds and vCPU-seconds.
 *
 * Cloud Run functions (what the Terraform module deploys, through the Cloud Functions v2 API) are
 * billed as Cloud Run services (cloud.google.com/functions/pricing: "pricing is based on Cloud Run
 * pricing"). Cloud Run bills "the resources you use, rounded up to the nearest 100 millisecond",
 * in vCPU-seconds and GiB-seconds ("running a 1 gibibyte instance for 1 second",
 * cloud.google.com/run/pricing). With request-based billing, Cloud Run's default, an instance is
 * charged "when they process requests, when they start, and when they shut down"
 * (cloud.google.com/run/docs/configuring/billing-settings). Prices per unit differ by region and
 * change: they are not printed here; multiply by those of the pricing page for your region.
 */

export interface FunctionResources {
  /** The module's defaults, as terraform/variables.tf writes them. */
  memory: string;
  cpu: string;
  schedule: string;
  memoryGiB: number;
  vcpu: number;
  /** Runs in a 30-day month at the schedule (in UTC), or null for a schedule not understood. */
  runsPerMonth: number | null;
}

/** The function's memory, CPU and schedule defaults, read from the Terraform module. */
export async function terraformDefaults(dir = 'terraform'): Promise<FunctionResources> {
  const parsed = (await parse(
    'variables.tf',
    await readFile(join(dir, 'variables.tf'), 'utf8'),
  )) as { variable?: Record<string, Array<{ type?: string; default?: unknown }>> };
  const variables = parsed.variable ?? {};
  const type = String(variables.function?.[0]?.type ?? '');
  const option = (name: string) => {
    const m = new RegExp(`${name}\\s*=\\s*optional\\(string,\\s*"([^"]+)"\\)`).exec(type);
    if (!m?.[1]) throw new Error(`terraform/variables.tf: no default for function.${name}`);
    return m[1];
  };
  const memory = option('available_memory');
  const cpu = option('available_cpu');
  const schedule = String(variables.schedule?.[0]?.default ?? '');
  return {
    memory,
    cpu,
    schedule,
    memoryGiB: memoryMiB(memory) / 1024,
    vcpu: vcpus(cpu),
    runsPerMonth: runsIn30Days(schedule),
  };
}

/** Cloud Run's memory quantities: 512Mi, 1Gi (binary), 512M, 1G (decimal). */
export function memoryMiB(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)$/.exec(quantity.trim());
  if (!m) throw new Error(`not a memory quantity: ${quantity}`);
  const n = Number(m[1]);
  const unit = m[2];
  if (unit === 'Mi') return n;
  if (unit === 'Gi') return n * 1024;
  if (unit === 'M') return (n * 1e6) / 2 ** 20;
  return (n * 1e9) / 2 ** 20;
}

/**
 * The V8 heap limit Node.js gives itself in an instance of `memory`: Node sizes the heap from
 * the memory it is constrained to (`uv_get_constrained_memory`, else the machine's), through
 * V8's `Heap::HeapSizeFromPhysicalMemory`: an old space of a quarter of the memory times V8's
 * 64-bit multiplier of 2, at least 256 MiB and at most 2 GiB (V8's own unit test,
 * HeapSizeFromPhysicalMemory: 512 MB → 256 MiB, 1 GB → 512 MiB, 4 GB and more → 2 GiB). The bench
 * gives the function that limit, as the instance would: on this machine Node would otherwise
 * size its heap for the machine's memory and collect garbage later than it does when deployed.
 */
export function nodeHeapLimitMb(memory: string): number {
  return Math.min(2048, Math.max(256, Math.floor(memoryMiB(memory) / 2)));
}

/** Cloud Run's CPU quantities: "1", "0.5", "2", or millicores such as "1000m". */
export function vcpus(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity.trim());
  if (!m) throw new Error(`not a CPU quantity: ${quantity}`);
  return m[2] === 'm' ? Number(m[1]) / 1000 : Number(m[1]);
}

/**
 * How often a five-field cron expression fires in 30 days (from a Sunday, in UTC), counted minute
 * by minute. Numbers, `*`, ranges, lists and steps; null for anything else (names, `?`, `L`).
 */
export function runsIn30Days(expression: string): number | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) return null;
  const bounds: Array<[number, number]> = [
    [0, 59],
    [0, 23],
    [1, 31],
    [1, 12],
    [0, 7],
  ];
  const sets = fields.map((f, i) => cronField(f, ...(bounds[i] ?? [0, 0])));
  const [minutes, hours, days, months, weekdays] = sets;
  if (!minutes || !hours || !days || !months || !weekdays) return null;
  if (weekdays.has(7)) weekdays.add(0);
  // Day of month and day of week: either may match when both are restricted (cron's rule).
  const domAny = fields[2] === '*';
  const dowAny = fields[4] === '*';
  const start = Date.UTC(2026, 10, 1); // a Sunday
  let runs = 0;
  for (let minute = 0; minute < 30 * 24 * 60; minute++) {
    const t = new Date(start + minute * 60_000);
    if (!minutes.has(t.getUTCMinutes()) || !hours.has(t.getUTCHours())) continue;
    if (!months.has(t.getUTCMonth() + 1)) continue;
    const dom = days.has(t.getUTCDate());
    const dow = weekdays.has(t.getUTCDay());
    const day = domAny && dowAny ? true : domAny ? dow : dowAny ? dom : dom || dow;
    if (day) runs++;
  }
  return runs;
}

function cronField(field: string, lo: number, hi: number): Set<number> | null {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part);
    if (!m) return null;
    const [from, to] =
      m[1] === '*'
        ? [lo, hi]
        : (m[1] ?? '').includes('-')
          ? (m[1] ?? '').split('-').map(Number)
          : [Number(m[1]), m[2] ? hi : Number(m[1])];
    const step = m[2] ? Number(m[2]) : 1;
    if (from === undefined || to === undefined || from < lo || to > hi || step < 1) return null;
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

export interface RunCost {
  /** Billed seconds of one run: its duration rounded up to the next 100 ms. */
  billedSeconds: number;
  gibSeconds: number;
  vcpuSeconds: number;
  /** At the schedule, every run like this one; null when the schedule was not understood. */
  perMonth: { gibSeconds: number; vcpuSeconds: number } | null;
}

/** The billed units of one run of `ms` on an instance of the module's size, and per month. */
export function runCost(ms: number, resources: FunctionResources): RunCost {
  const billedSeconds = Math.ceil(ms / 100) / 10;
  const gibSeconds = billedSeconds * resources.memoryGiB;
  const vcpuSeconds = billedSeconds * resources.vcpu;
  const runs = resources.runsPerMonth;
  return {
    billedSeconds,
    gibSeconds,
    vcpuSeconds,
    perMonth:
      runs === null ? null : { gibSeconds: gibSeconds * runs, vcpuSeconds: vcpuSeconds * runs },
  };
}
