import { randomBytes } from 'node:crypto';
import type { Policy } from '../core/policy.js';
import { splitUnits, unitLabel } from '../core/units.js';
import type { WorkMessage } from '../core/work.js';
import { ERROR_EVENT, withFields, type Logger } from '../log.js';
import type { AssetSearchPort, DiscoveryCacheStore, WorkPublisher } from '../ports/index.js';
import { plural } from '../core/text.js';
import { beforeDeadline } from '../reconcile/act.js';
import { elapsedClock } from '../reconcile/elapsed.js';
import { discoverProjects, type Discovered } from './discover.js';

/**
 * The dispatch run of the fan-out: find the projects (discover.ts), publish one work message per
 * unit to the work topic (a project, or one region of it past `fanout.splitAbove`:
 * src/core/units.ts), and stop. It reads and writes nothing in the projects themselves:
 * each is governed by its own function run (unit.ts), which Pub/Sub retries and, after the
 * subscription's attempts, sends to the dead-letter topic.
 */
interface DispatchReport {
  dispatchId: string;
  discovery: Discovered['source'];
  units: number;
  published: number;
  /** Units whose message could not be published, with why (`project` or `project (region)`). */
  failed: { project: string; error: string }[];
}

export function newDispatchId(nowMs: number): string {
  return `dispatch-${new Date(nowMs).toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

/**
 * One dispatch. Every line it logs carries its `dispatchId` (the id its work messages, and so its
 * units' lines, carry), from the discovery's first: one filter finds the whole dispatch. A caller
 * that logs about the dispatch too passes the id it logs with.
 */
export async function dispatch(
  policy: Policy,
  deps: {
    search: AssetSearchPort | null;
    cache: DiscoveryCacheStore;
    publisher: WorkPublisher;
    nowMs: number;
    /**
     * The wall clock, read when the messages are sent (default: `nowMs`). A unit drops a message
     * issued more than `fanout.staleAfter` ago, so it is dated after the discovery, which may
     * take longer than that. Never a deadline's clock, unless `elapsedClock` is not given.
     */
    clock?: () => number;
    /**
     * The time elapsed (ms from any origin), on which `searchDeadline` and `sendDeadline` are
     * read (reconcile/elapsed.ts): the function's timeout counts in real time, and a
     * wall clock stepping back during the dispatch would otherwise have it wait past that timeout.
     * Default performance.now(), or `clock` when that is given (a virtual world's one clock).
     */
    elapsedClock?: () => number;
    log: Logger;
    dispatchId?: string;
    /** When the discovery's search must have answered, on `elapsedClock` (discover.ts). */
    searchDeadline?: number;
    /**
     * When the work messages must have been sent, on `elapsedClock`: past it the dispatch fails
     * (it throws), rather than wait on a publish that Pub/Sub's client retries for minutes until
     * the function's timeout ends the request with nothing logged. Default: no bound.
     */
    sendDeadline?: number;
  },
): Promise<DispatchReport> {
  const dispatchId = deps.dispatchId ?? newDispatchId(deps.nowMs);
  const log = withFields(deps.log, { dispatchId });
  const { searchDeadline, sendDeadline, ...rest } = deps;
  const elapsed = elapsedClock(deps.elapsedClock, deps.clock);
  const found = await discoverProjects(policy, {
    ...rest,
    log,
    ...(searchDeadline === undefined
      ? {}
      : { searchDeadline: { deadline: searchDeadline, clock: elapsed } }),
  });
  const issuedAt = new Date(deps.clock?.() ?? deps.nowMs).toISOString();
  const units = splitUnits(
    found.projects,
    found.services,
    policy.fanout?.splitAbove,
    policy.regions,
  );
  const messages = units.map(({ project, region }) => {
    const body: WorkMessage = {
      version: 1,
      kind: 'govern',
      project,
      ...(region === undefined ? {} : { region }),
      dispatchId,
      issuedAt,
    };
    return {
      data: JSON.stringify(body),
      attributes: { project, ...(region === undefined ? {} : { region }), dispatchId },
    };
  });
  const { publisher } = deps;
  const send = () => publisher.publish(messages);
  const { failed } =
    sendDeadline === undefined
      ? await send()
      : await beforeDeadline(
          send,
          { deadline: sendDeadline, clock: elapsed },
          `sending ${plural(messages.length, 'work message')} to ${publisher.topic}`,
        );
  const report: DispatchReport = {
    dispatchId,
    discovery: found.source,
    units: messages.length,
    published: messages.length - failed.length,
    failed: failed.map((f) => {
      const unit = units[f.index];
      return { project: unit ? unitLabel(unit) : '?', error: f.error };
    }),
  };
  // A unit not sent is a failure of the dispatch (the function answers 500): one error event, its
  // message opening with the same words every time (ERROR_EVENT in log.ts), the counts after
  // them: Error Reporting groups by "the first 3 literal tokens of the message"
  // (https://cloud.google.com/error-reporting/docs/grouping-errors), and a count among them would
  // open a group for each number of units that failed.
  const sent = `${report.published} of ${report.units} unit(s) sent to ${deps.publisher.topic} (projects from ${found.source}; ${dispatchId})`;
  log.log(
    failed.length > 0 ? 'ERROR' : 'INFO',
    failed.length > 0 ? `dispatch failed to send units: ${sent}` : `dispatch: ${sent}`,
    { failed: report.failed.slice(0, 20), ...(failed.length > 0 ? ERROR_EVENT : {}) },
  );
  return report;
}
