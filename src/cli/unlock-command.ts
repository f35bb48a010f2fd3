import { hostname } from 'node:os';

import { processExists } from '../adapters/file-lock.js';

import { beyondSkew } from '../core/duration.js';
import { oneLine } from '../core/text.js';
import { unitKey, unitLabel, type Unit } from '../core/units.js';
import { cutText, faultText, UsageError } from '../core/errors.js';
import { LeaseCorruptError, type Lease, type SeenLease, type StateStore } from '../ports/index.js';
import { leaseTtlMs } from '../reconcile/lease.js';
import { openCliStore } from '../runtime.js';
import { MAX_RUN_DEADLINE_MS, type RuntimeOptions } from '../runtime-options.js';
import { loadPolicy } from './files.js';
import { askYes, mustFinish } from './finishing.js';
import { closeOrWarn, type Streams } from './io.js';

interface UnlockFlags {
  policy: string;
  yes?: boolean;
  stateDir?: string;
}

/**
 * `governor unlock`: shows who holds each project's writer lease and until when, and breaks it
 * once confirmed (on a terminal: "yes"; elsewhere: --yes, without which it only shows them). For
 * a lease left by a run that died, or one that will not end (an expiry far in the future);
 * breaking the lease of a governor that is still running lets two write at once, hence the
 * confirmation.
 */
export async function runUnlock(
  flags: UnlockFlags,
  io: Streams,
  options: RuntimeOptions,
): Promise<number> {
  const policy = await loadPolicy(flags.policy, { forProjects: 'unlock' });
  const interactive = Boolean(process.stdin.isTTY && io.stdout.isTTY);
  const store = await openCliStore(
    options.stateStore,
    flags.stateDir,
    // Shown only, without --yes and without a terminal to confirm on: nothing is written.
    flags.yes || interactive ? 'write' : 'read',
  );
  try {
    // With `fanout.splitAbove`, a large project's regions are units of their own, each with its
    // lease (src/reconcile/unit-lease.ts): the regions the kept discovery counted for it.
    const counts = policy.fanout?.splitAbove ? ((await store.loadDiscovery())?.services ?? {}) : {};
    const units: Unit[] = policy.projects.flatMap((project) => [
      { project },
      ...Object.keys(counts[project] ?? {})
        .sort()
        .map((region) => ({ project, region })),
    ]);
    // Each lease as shown: only that lease is broken once confirmed (see stillTheLease).
    const held: { unit: Unit; seen: SeenLease }[] = [];
    // The wall clock, on which every run stamps its lease whatever clock it plans on (even the
    // emulator's virtual one: src/reconcile/lease.ts), so that leases are shared across clocks.
    const nowMs = Date.now();
    for (const unit of units) {
      const lease = await readOrReport(store, unit, io);
      if (lease === 'unreadable') {
        held.push({ unit, seen: lease });
        continue;
      }
      if (lease === null) {
        // A regional unit without a lease says nothing worth reading.
        if (unit.region === undefined) io.stdout.write(`${unitLabel(unit)}: no lease held\n`);
        continue;
      }
      io.stdout.write(
        `${unitLabel(unit)}: lease held by ${oneLine(lease.holder)} since ${lease.acquiredAt} until ${lease.expiresAt}${leaseDating(lease, nowMs)}; ${holderProcess(lease.holder)}\n`,
      );
      held.push({ unit, seen: lease });
    }
    if (held.length === 0) return 0;
    // Showing needs no confirmation; breaking does, and only a terminal can give it.
    if (!flags.yes && !interactive) {
      throw new UsageError(
        'not on a terminal, so nothing can be confirmed: pass --yes to break the lease',
      );
    }
    if (!flags.yes && !(await confirm(held.length))) {
      io.stdout.write('Nothing broken: not confirmed.\n');
      return 0;
    }
    // Once confirmed, every lease shown is tried, even if the reader of stdout has gone.
    return await mustFinish(async () => {
      let changed = 0;
      for (const { unit, seen } of held) {
        if (await store.breakLease(unitKey(unit), seen)) {
          io.stdout.write(
            `${unitLabel(unit)}: lease broken${seen === 'unreadable' ? ' (it was unreadable: removed)' : ''}\n`,
          );
          continue;
        }
        const now = await readOrReport(store, unit, io);
        if (now === null) {
          io.stdout.write(`${unitLabel(unit)}: the lease was already gone\n`);
          continue;
        }
        changed += 1;
        const holder =
          now === 'unreadable'
            ? 'an unreadable lease'
            : `${oneLine(now.holder)} since ${now.acquiredAt}`;
        io.stdout.write(
          `${unitLabel(unit)}: not broken: the lease changed since it was shown (now ${holder}); a run may have taken it: run unlock again if no other governor is running\n`,
        );
      }
      return changed > 0 ? 1 : 0;
    });
  } finally {
    await closeOrWarn(() => store.close(), 'the state store', io);
  }
}

/**
 * The longest a governor takes a lease for: the longest run deadline, and the margin after it
 * (reconcile/lease.ts leaseTtlMs).
 */
const MAX_LEASE_TTL_MS = leaseTtlMs({ deadlineMs: MAX_RUN_DEADLINE_MS });

/**
 * What the times of a shown lease mean: expired, or ending by itself at its expiry; but a lease
 * dated beyond any a governor takes (a wrong clock or a hand edit) does not hold until then: the
 * next run that asks for it cuts its expiry to that run's own time-to-live (ports/state.ts
 * decideLease), so waiting for it, or breaking it for that reason, is not needed. A lease taken
 * later than now (past the clock skew allowed) is said to be so too.
 */
function leaseDating(lease: Lease, nowMs: number): string {
  const expiresMs = Date.parse(lease.expiresAt);
  const far = expiresMs > nowMs + MAX_LEASE_TTL_MS;
  const odd = [
    ...(beyondSkew(lease.acquiredAt, nowMs) ? ['taken later than now'] : []),
    ...(far
      ? [
          'ending later than any lease a governor takes (its run deadline, at most 24 days, and a minute)',
        ]
      : []),
  ];
  const why = odd.length > 0 ? `${odd.join(' and ')}: a wrong clock or a hand edit` : '';
  if (expiresMs <= nowMs) return ` (expired${why ? `; ${why}` : ''})`;
  if (far) {
    return ` (${why}; it does not hold until then: the next run that asks for it cuts it to end within that run's deadline and a minute)`;
  }
  return ` (it ends by itself then${why ? `; ${why}` : ''})`;
}

/**
 * What this machine can tell of a lease's holder, named `governor-id/run-id@host:pid` (see
 * reconcile.ts): whether its process still runs when it ran here, so that the person deciding to
 * break the lease knows whether a run is still writing. A pid may have been reused since.
 */
export function holderProcess(holder: string, here = hostname()): string {
  const m = /@([^@]*):(\d+)$/.exec(holder);
  const host = m?.[1];
  const pid = Number(m?.[2]);
  if (host === undefined || !Number.isSafeInteger(pid) || pid <= 0)
    return 'its holder names no process this machine can check: make sure no governor run is in progress before breaking it';
  if (host !== here)
    return `its holder ran on host ${oneLine(host)}, not here: check there (or the function's logs) that no run is in progress before breaking it`;
  return processExists(pid)
    ? `process ${pid} is running on this host: if it is that run, breaking the lease lets two write at once; let it finish`
    : `process ${pid} is gone from this host: if the run ran here, not in another container of this host name (each has processes of its own), it has ended, and breaking it is safe`;
}

/**
 * The unit's lease; 'unreadable' when it does not parse (LeaseCorruptError), said on stdout with
 * its faults: no run can take such a lease, and breaking it is the one way to remove it.
 */
async function readOrReport(
  store: StateStore,
  unit: Unit,
  io: Streams,
): Promise<Lease | null | 'unreadable'> {
  try {
    return await store.readLease(unitKey(unit));
  } catch (e) {
    if (!(e instanceof LeaseCorruptError)) throw e;
    const faults = e.faults.map(faultText).join('; ');
    io.stdout.write(
      `${unitLabel(unit)}: the lease cannot be read (${cutText(faults, 500)}): no run can take it; breaking it removes it\n`,
    );
    return 'unreadable';
  }
}

function confirm(count: number): Promise<boolean> {
  return askYes(
    `\nBreak ${count} lease(s)? If another governor is still running, two will write at once. Only "yes" is accepted: `,
  );
}
