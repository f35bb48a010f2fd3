import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { loadGooglePorts } from '../adapters/load.js';
import { createClock } from '../adapters/clock.js';
import { durationMs, UNIT_ORDER_HINT, unitsOutOfOrder } from '../core/duration.js';
import { InputError, UpstreamError, UsageError } from '../core/errors.js';
import { inPolicyScope, type Policy } from '../core/policy.js';
import { compileRules } from '../core/rules.js';
import { oneLine, printedJson } from '../core/text.js';
import type { Fleet } from '../emulator/fleet.js';
import {
  buildReplayInput,
  historyWarning,
  replayNotes,
  type ReplayInput,
} from '../simulate/replay.js';
import {
  checkInputSize,
  DEFAULT_SIMULATED_HOURS,
  loadSimulationInput,
  MAX_SIMULATED_HOURS,
  type SimulationInput,
} from '../simulate/scenario.js';
import { progressBar } from '../simulate/progress.js';
import {
  DEFAULT_LAG_MINUTES,
  DEFAULT_TICK_MINUTES,
  type SimulationOptions,
} from '../simulate/result.js';
import type { SimulationResult } from '../simulate/simulate.js';
import { loadRenderReport, loadSimulate } from '../simulate/load.js';
import { makeFolder } from '../adapters/file-lock.js';
import { fileFaultText } from '../read-capped.js';
import { writeWhole } from '../write-whole.js';
import { loadPolicy } from './files.js';
import { closeOrWarn, warnClose, type Streams } from './io.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { assertReadyToRead } from './ready.js';

/**
 * `governor simulate` and `governor replay`: the real planner and reconcile on a virtual clock
 * against the emulator's fleet model, beside the baselines, on the same demand. See
 * docs/simulation.md.
 */

export interface SimulateFlags {
  policy: string;
  fleet: string;
  hours?: string;
  report?: string;
  json?: boolean;
  viaEmulator?: boolean;
  tick?: string;
  lag?: string;
}

export interface ReplayFlags {
  policy: string;
  since: string;
  report?: string;
  json?: boolean;
  tick?: string;
  lag?: string;
}

/** A plain decimal number: `Number` would also take "0x10" (16), "1e1" and " 2". */
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;

function parseHours(text: string): number {
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > MAX_SIMULATED_HOURS) {
    throw new UsageError(
      `--hours ${JSON.stringify(text)}: expected a number of hours above 0 and at most ${MAX_SIMULATED_HOURS}`,
    );
  }
  return n;
}

/** A flag's duration in milliseconds, or a UsageError naming the flag, its text and an `example`. */
function flagDurationMs(flag: string, text: string, example: string): number {
  try {
    return durationMs(text);
  } catch (e) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: ${unitsOutOfOrder(text) ? UNIT_ORDER_HINT : `expected a duration such as ${example}`}`,
      { cause: e },
    );
  }
}

/** `--tick` (whole minutes, at least 1) and `--lag` (at least 0), else the simulator's defaults. */
function tickAndLag(flags: { tick?: string; lag?: string }): { tick: number; lag: number } {
  return {
    tick: parseMinutes('--tick', flags.tick, DEFAULT_TICK_MINUTES, 1),
    lag: parseMinutes('--lag', flags.lag, DEFAULT_LAG_MINUTES, 0),
  };
}

/** The simulation, with its progress bar on stderr, taken down however the simulation ends. */
async function simulateWithProgress(
  input: SimulationInput,
  policy: Policy,
  options: Omit<SimulationOptions, 'onProgress'>,
  io: Streams,
): Promise<SimulationResult> {
  const simulate = await loadSimulate();
  const bar = progressBar(io.stderr);
  // The result stands when the emulator (--via-emulator) fails to close after it: a warning,
  // written once the bar is taken down.
  const closeFailures: unknown[] = [];
  try {
    return await simulate(input, policy, {
      ...options,
      onProgress: (d, t, what) => bar.update(d, t, what),
      onCloseFailure: (e) => closeFailures.push(e),
    });
  } finally {
    bar.done();
    closeFailures.forEach(warnClose("the emulator and Google's clients", io));
  }
}

function parseMinutes(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
): number {
  if (text === undefined) return fallback;
  const ms = /^\d+$/.test(text) ? Number(text) * 60_000 : flagDurationMs(flag, text, '"5m"');
  const minutes = ms / 60_000;
  if (!Number.isInteger(minutes) || minutes < min || minutes > 24 * 60) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: expected whole minutes between ${min}m and 24h`,
    );
  }
  return minutes;
}

/**
 * What a `--lag` past the policy's `staleAfter` does, said: every run then finds each service's
 * newest instance count older than `staleAfter` and fails static (rule 4 of docs/rules.md): no
 * cap is lowered to make room, so the governor's figures say how it fails safe, not how the policy
 * splits the pool. A run that asks for it
 * may mean it (how the governor fails safe); one that does not must not read the result as a
 * policy's. Null within `staleAfter`.
 */
function lagBeyondStaleness(policy: Policy, lagMinutes: number, lagFlag: string): string | null {
  if (lagMinutes * 60_000 <= durationMs(policy.defaults.staleAfter)) return null;
  return `--lag ${lagFlag} is more than the policy's staleAfter (${policy.defaults.staleAfter}): every run sees its instance counts as stale and fails static, lowering no cap to make room (rule 4 of docs/rules.md): the governor's figures say how it fails safe, not how the policy splits the pool`;
}

/**
 * A simulation of a policy that governs nothing would run, and report, as if nothing were wrong:
 * it is bad input (exit 2), said plainly. `governor demo` asks the same before its day.
 */
export function assertGoverns(
  policy: Policy,
  fleet: Fleet,
  flags: Pick<SimulateFlags, 'policy' | 'fleet'>,
): void {
  const resolve = compileRules(policy, Date.parse(fleet.start));
  const gpu = fleet.projects.flatMap((p) =>
    p.services
      .filter((s) => s.gpu !== undefined && s.scalingMode !== 'MANUAL')
      .map((s) => ({
        project: p.id,
        region: s.region,
        name: s.name,
        labels: s.labels,
        accelerator: s.gpu?.accelerator ?? '',
      })),
  );
  const governed = gpu.filter((s) => inPolicyScope(policy, s) && resolve(s).managed);
  if (governed.length > 0) return;
  const fleetProjects = [...new Set(fleet.projects.map((p) => p.id))].join(', ');
  throw new InputError(
    `policy ${flags.policy} governs none of the ${gpu.length} GPU service(s) of ${flags.fleet}: the policy's projects are ${policy.projects.join(', ')}${policy.regions ? ` (regions ${policy.regions.join(', ')})` : ''}, the fleet's ${fleetProjects}; check projects, regions and the rules under services`,
    [],
  );
}

/**
 * `--report` names a file that can be written, checked before minutes of simulation rather than
 * after: an empty name or an existing folder is bad usage, and so is one of the command's own input
 * files (the page would replace it), and a path whose nearest existing ancestor is not
 * a folder this process may write in (the report's folders are made when it is written). Other
 * faults (no space, a read-only file system) surface when the report is written, naming the file.
 */
async function checkReportPath(
  report: string | undefined,
  inputs: readonly (readonly [flag: string, path: string])[],
): Promise<void> {
  if (report === undefined) return;
  if (report.trim() === '') {
    throw new UsageError(`--report ${JSON.stringify(report)}: name the HTML file to write`);
  }
  const info = await stat(report).catch(() => null);
  if (info?.isDirectory()) {
    throw new UsageError(`--report ${report}: is a directory; name the HTML file to write`);
  }
  if (info) {
    // The same file by any name (a symlink, a hard link): its device and inode.
    for (const [flag, path] of inputs) {
      const input = await stat(path).catch(() => null);
      if (input && input.dev === info.dev && input.ino === info.ino) {
        throw new UsageError(
          `--report ${report}: is the ${flag} file; name another file for the report`,
        );
      }
    }
    return;
  }
  let ancestor = dirname(resolvePath(report));
  for (;;) {
    const found = await stat(ancestor).catch(() => null);
    if (found) {
      const writable = found.isDirectory()
        ? await access(ancestor, constants.W_OK).then(
            () => true,
            () => false,
          )
        : false;
      if (!writable) {
        throw new UsageError(
          `--report ${report}: ${ancestor} is ${found.isDirectory() ? 'a folder this process cannot write in' : 'not a folder'}; name a file in a folder you can write`,
        );
      }
      return;
    }
    const parent = dirname(ancestor);
    if (parent === ancestor) return;
    ancestor = parent;
  }
}

export async function runSimulate(flags: SimulateFlags, io: Streams): Promise<number> {
  const hoursFlag = flags.hours === undefined ? null : parseHours(flags.hours);
  await checkReportPath(flags.report, [
    ['--policy', flags.policy],
    ['--fleet', flags.fleet],
  ]);
  const { tick, lag } = tickAndLag(flags);
  const policy = await loadPolicy(flags.policy);
  const input = await loadSimulationInput(flags.fleet, hoursFlag ?? undefined);
  // The traces the fleet names are known once it is read, still before a minute is simulated.
  await checkReportPath(
    flags.report,
    (input.sources ?? []).map((file) => ['trace', file] as const),
  );
  const hours = hoursFlag ?? input.hours ?? DEFAULT_SIMULATED_HOURS;
  if (hours * 60 < tick) {
    const where = hoursFlag === null ? `${flags.fleet}: hours` : '--hours';
    throw new UsageError(
      `${where} ${hours}: shorter than one tick of the governor (${tick} min), which would never run`,
    );
  }
  assertGoverns(policy, input.fleet, flags);
  const stale = lagBeyondStaleness(policy, lag, flags.lag ?? '');
  if (stale) io.stderr.write(`warning: ${stale}\n`);
  const result = await simulateWithProgress(
    input,
    policy,
    { hours, tickMinutes: tick, lagMinutes: lag, viaEmulator: flags.viaEmulator ?? false },
    io,
  );
  return output(
    result,
    flags,
    io,
    `policy ${flags.policy} on ${flags.fleet}`,
    stale ? [stale] : [],
  );
}

export async function runReplay(
  flags: ReplayFlags,
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const sinceMs = flagDurationMs('--since', flags.since, '"7d" or "24h"');
  if (sinceMs < 3_600_000 || sinceMs > MAX_SIMULATED_HOURS * 3_600_000)
    throw new UsageError(
      `--since ${flags.since}: expected between 1h and ${MAX_SIMULATED_HOURS / 24}d`,
    );
  await checkReportPath(flags.report, [['--policy', flags.policy]]);
  const { tick, lag } = tickAndLag(flags);
  // As simulate refuses a run shorter than one tick: the governor would not run its tick.
  if (sinceMs < tick * 60_000) {
    throw new UsageError(
      `--tick ${flags.tick}: longer than the ${sinceMs / 3_600_000} h to replay (--since ${flags.since}), so the governor would never run; ask for a shorter --tick or a longer --since`,
    );
  }
  const policy = await loadPolicy(flags.policy, { forProjects: 'replay' });
  // One line and a hint without credentials, before a client fails in the background.
  await assertReadyToRead(options);
  const ports = await loadGooglePorts(options);
  let input: ReplayInput;
  try {
    const now = await createClock(options)();
    input = await buildReplayInput(policy, ports, now, sinceMs);
  } finally {
    await closeOrWarn(() => ports.close(), "Google's clients", io);
  }
  if (input.history.gpuServices === 0) {
    throw new InputError(
      `${policy.projects.join(', ')} ${policy.projects.length === 1 ? 'has' : 'have'} no GPU services${policy.regions ? ` in ${policy.regions.join(', ')}` : ''}: nothing to replay`,
      [],
    );
  }
  if (input.history.minutes <= 0) {
    throw new InputError(
      `Monitoring has no instance counts for the GPU services of ${policy.projects.join(', ')} in the last ${flags.since}: nothing to replay`,
      [],
    );
  }
  const hours = input.hours ?? sinceMs / 3_600_000;
  // Checked here as well as in the simulation, so that the advice names the flag replay takes.
  checkInputSize(input, hours, (most) =>
    most >= 1 ? `replay at most ${most} h (--since ${most}h)` : null,
  );
  if (input.history.minutes < tick) {
    throw new UsageError(
      `--tick ${flags.tick}: longer than the ${(input.history.minutes / 60).toFixed(1)} h Monitoring has of the window (--since ${flags.since}), so the governor would never run; ask for a shorter --tick`,
    );
  }
  const notes = replayNotes(input.history, flags.since);
  const warning = historyWarning(input.history, flags.since);
  if (warning) io.stderr.write(`warning: ${warning}\n`);
  const stale = lagBeyondStaleness(policy, lag, flags.lag ?? '');
  if (stale) {
    io.stderr.write(`warning: ${stale}\n`);
    notes.push(stale);
  }
  const result = await simulateWithProgress(
    input,
    policy,
    { hours, tickMinutes: tick, lagMinutes: lag },
    io,
  );
  const over = warning
    ? `the last ${(input.history.minutes / 60).toFixed(1)} h (of --since ${flags.since})`
    : `the last ${flags.since}`;
  return output(result, flags, io, `policy ${flags.policy}, replayed over ${over}`, notes);
}

async function output(
  result: SimulationResult,
  flags: { report?: string; json?: boolean },
  io: Streams,
  subtitle: string,
  notes: readonly string[] = [],
): Promise<number> {
  if (flags.report) {
    const renderReport = await loadRenderReport();
    const html = renderReport(result, { subtitle, notes });
    try {
      await makeFolder(dirname(flags.report));
      await writeWhole(flags.report, html);
    } catch (e) {
      throw new UpstreamError(`cannot write the report ${flags.report}: ${fileFaultText(e)}`, {
        cause: e,
      });
    }
  }
  if (flags.json) {
    // The notes (a replay's assumptions) travel with the figures; a simulation has none.
    const json = notes.length > 0 ? { ...summary(result), notes } : summary(result);
    io.stdout.write(printedJson(json));
  } else {
    io.stdout.write(renderTable(result));
    if (notes.length > 0)
      io.stdout.write('\n' + notes.map((n) => `  note: ${oneLine(n)}\n`).join(''));
    if (flags.report) io.stdout.write(`\nreport: ${oneLine(flags.report)}\n`);
  }
  const violations = result.headline?.invariantViolations ?? 0;
  return violations > 0 ? 1 : 0;
}

/** The result without per-minute series: what `--json` prints. */
function summary(result: SimulationResult): Omit<SimulationResult, 'strategies'> & {
  strategies: Omit<SimulationResult['strategies'][number], 'series'>[];
} {
  return { ...result, strategies: result.strategies.map(({ series: _series, ...rest }) => rest) };
}

function renderTable(result: SimulationResult): string {
  const lines = [
    `${oneLine(result.label)}: ${(result.minutes / 60).toFixed(1)} h, governor every ${result.tickMinutes} min, metrics ${result.lagMinutes} min behind`,
    '',
  ];
  // The first column as wide as the longest strategy's name, so the numbers stay in columns.
  const width = Math.max('strategy'.length, ...result.strategies.map((s) => s.label.length));
  lines.push(
    `  ${'strategy'.padEnd(width)} ${'refused GPU-min'.padStart(15)} ${'idle GPU-min'.padStart(12)} ${'writes/svc/h'.padStart(12)} ${'share err'.padStart(9)} ${'inversions'.padStart(10)} ${'violations'.padStart(10)}`,
  );
  for (const s of result.strategies) {
    const share = s.pools.filter((p) => p.shareError !== null);
    const err = share.length
      ? (share.reduce((a, p) => a + (p.shareError ?? 0), 0) / share.length).toFixed(3)
      : '—';
    const inv = s.pools.reduce((a, p) => a + p.priorityInversions, 0);
    lines.push(
      `  ${s.label.padEnd(width)} ${Math.round(s.totals.refusedGpuMinutes).toString().padStart(15)} ${Math.round(s.totals.idleGpuMinutes).toString().padStart(12)} ${s.totals.writesPerServiceHour.toFixed(2).padStart(12)} ${err.padStart(9)} ${String(inv).padStart(10)} ${(s.totals.invariantViolations === null ? '—' : String(s.totals.invariantViolations)).padStart(10)}`,
    );
  }
  const h = result.headline;
  if (h) {
    lines.push('');
    lines.push(
      `  gap closed (equal split − governor) ÷ (equal split − best at the same tick): ${h.gapClosed === null ? 'no gap' : h.gapClosed.toFixed(2)}${h.gapClosed !== null && h.gapClosed < 0 ? ' (negative: the governor refused more than the equal split)' : ''}`,
    );
    lines.push(
      `  against the clairvoyant oracle (re-split every minute): ${h.gapClosedClairvoyant === null ? 'no gap' : h.gapClosedClairvoyant.toFixed(2)}`,
    );
    lines.push(
      `  refused, governor ÷ equal split: ${h.refusedVsEqualSplit === null ? '—' : h.refusedVsEqualSplit.toFixed(2)}`,
    );
  }
  const gov = result.strategies.find((s) => s.strategy === 'governor');
  for (const v of gov?.violations ?? []) lines.push(`  violation: ${v}`);
  lines.push(
    ...notListed(gov?.violations.length ?? 0, gov?.totals.invariantViolations, 'violation'),
  );
  for (const f of gov?.failedRuns ?? []) lines.push(`  failed run: ${f}`);
  lines.push(...notListed(gov?.failedRuns.length ?? 0, gov?.totals.failedRuns, 'failed run'));
  return lines.join('\n') + '\n';
}

/** The line after a capped list of a result's violations or failed runs: how many it leaves out. */
export function notListed(
  listed: number,
  total: number | null | undefined,
  what: string,
): string[] {
  const rest = (total ?? 0) - listed;
  return rest > 0 ? [`  … and ${rest} more ${what}${rest === 1 ? '' : 's'}`] : [];
}
