import { randomBytes } from 'node:crypto';
import type { Policy } from '../core/policy.js';
import type { WorkMessage } from '../core/work.js';
import type { Logger } from '../log.js';
import type { AssetSearchPort, DiscoveryCacheStore, WorkPublisher } from '../ports/index.js';
import { discoverProjects, type Discovered } from './discover.js';

/**
 * The dispatch run of the fan-out: find the projects (discover.ts), publish one work message per
 * project to the work topic, and stop. It reads and writes nothing in the projects themselves:
 * each is governed by its own function run (unit.ts), which Pub/Sub retries and, after the
 * subscription's attempts, sends to the dead-letter topic.
 */
export interface DispatchReport {
  dispatchId: string;
  discovery: Discovered['source'];
  units: number;
  published: number;
  /** Projects whose message could not be published, with why. */
  failed: { project: string; error: string }[];
}

export function newDispatchId(nowMs: number): string {
  return `dispatch-${new Date(nowMs).toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

export async function dispatch(
  policy: Policy,
  deps: {
    search: AssetSearchPort | null;
    cache: DiscoveryCacheStore;
    publisher: WorkPublisher;
    nowMs: number;
    log: Logger;
  },
): Promise<DispatchReport> {
  const found = await discoverProjects(policy, deps);
  const dispatchId = newDispatchId(deps.nowMs);
  const issuedAt = new Date(deps.nowMs).toISOString();
  const messages = found.projects.map((project) => {
    const body: WorkMessage = { version: 1, kind: 'govern', project, dispatchId, issuedAt };
    return { data: JSON.stringify(body), attributes: { project, dispatchId } };
  });
  const { failed } = await deps.publisher.publish(messages);
  const report: DispatchReport = {
    dispatchId,
    discovery: found.source,
    units: messages.length,
    published: messages.length - failed.length,
    failed: failed.map((f) => ({ project: found.projects[f.index] ?? '?', error: f.error })),
  };
  deps.log.log(
    failed.length > 0 ? 'ERROR' : 'INFO',
    `${dispatchId}: ${report.published} of ${report.units} unit(s) sent to ${deps.publisher.topic} (projects from ${found.source})`,
    { failed: report.failed.slice(0, 20) },
  );
  return report;
}
