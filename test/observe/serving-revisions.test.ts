import { describe, expect, it } from 'vitest';
import { maxInForce } from '../../src/core/pool.js';
import type { ObservationProblem } from '../../src/core/problems.js';
import type { ObservedService } from '../../src/core/service.js';
import {
  REVISION_READS,
  RevisionMemo,
  taggedUnknown,
  unreadPastBudget,
  withRevisionsRead,
  withServingRevisions,
} from '../../src/observe/serving-revisions.js';
import type { ObservedWorkerPool } from '../../src/ports/cloud-run.js';
import type { CloudRunPort } from '../../src/ports/index.js';
import { observedService } from '../support/fixtures.js';

/**
 * The revisions read for services whose latest revision does not serve share Cloud Run's read
 * quota per region with deploys and the console: a listing reads at most REVISION_READS of them,
 * a few at a time, and counts the rest coarsely, saying so once.
 */

/** A service with traffic pinned on an older revision and no service-level max. */
function pinned(name: string, revisions = 1): ObservedService {
  return observedService(name, {
    serviceMaxInstances: null,
    revisionMaxInstances: 1,
    templateServes: false,
    servingRevisions: Array.from({ length: revisions }, (_, i) => ({
      // Numbered from 00001, as Cloud Run numbers revisions.
      name: `${name}-${String(i + 1).padStart(5, '0')}`,
      inSplit: true,
    })),
    unsetMax: 8,
  });
}

function port(): { run: CloudRunPort; calls: () => number; mostInFlight: () => number } {
  let calls = 0;
  let inFlight = 0;
  let most = 0;
  const fail = () => Promise.reject(new Error('not used'));
  return {
    calls: () => calls,
    mostInFlight: () => most,
    run: {
      listRegions: fail,
      listServices: fail,
      getService: fail,
      listWorkerPools: fail,
      listRunningExecutions: fail,
      updateMaxInstances: fail,
      async getRevisionMax() {
        calls += 1;
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight -= 1;
        return {
          maxInstances: 3,
          minInstances: null,
          gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
        };
      },
    },
  };
}

describe('withServingRevisions', () => {
  it('reads at most REVISION_READS revisions of a listing, a few at a time, and says the rest were not read', async () => {
    const { run, calls, mostInFlight } = port();
    const services = Array.from({ length: REVISION_READS + 12 }, (_, i) =>
      pinned(`svc-${String(i).padStart(3, '0')}`),
    );
    const problems: ObservationProblem[] = [];
    const read = await withServingRevisions(run, services, problems);
    expect(calls()).toBe(REVISION_READS);
    expect(mostInFlight()).toBeLessThanOrEqual(8);
    expect(read.slice(0, REVISION_READS).every((s) => maxInForce(s).max === 3)).toBe(true);
    const rest = read.slice(REVISION_READS);
    expect(rest.map((s) => [maxInForce(s).max, s.revisionsUnread?.startsWith('not read')])).toEqual(
      Array(12).fill([8, true]),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]?.error).toMatch(/^12 service\(s\) from svc-300 on: not read: more than 300/);
  });

  it('reads a later service that still fits after one that does not', async () => {
    const { run, calls } = port();
    const services = [
      ...Array.from({ length: REVISION_READS - 1 }, (_, i) => pinned(`a-${i}`)),
      pinned('two', 2),
      pinned('one'),
    ];
    const read = await withServingRevisions(run, services, []);
    expect(calls()).toBe(REVISION_READS);
    expect(read.map((s) => s.revisionsUnread === undefined).slice(-2)).toEqual([false, true]);
  });

  it('spends the reads on GPU services first: a listing of services without a GPU cannot leave one counted coarsely', async () => {
    const { run, calls } = port();
    // Pinned services without a GPU in their template, listed (by name) before the GPU one: their
    // revisions are read too (an older one may hold a GPU), but only with what the GPU services leave.
    const cpu = Array.from({ length: REVISION_READS }, (_, i) => ({
      ...pinned(`a-${String(i).padStart(3, '0')}`),
      gpu: null,
    }));
    const problems: ObservationProblem[] = [];
    const read = await withServingRevisions(run, [...cpu, pinned('z-gpu')], problems);
    expect(calls()).toBe(REVISION_READS);
    expect(read.at(-1)?.name).toBe('z-gpu');
    expect(read.at(-1)?.revisionsUnread).toBeUndefined();
    expect(maxInForce(read.at(-1) as ObservedService).max).toBe(3);
    expect(read.filter((s) => s.revisionsUnread !== undefined).map((s) => s.name)).toEqual([
      `a-${String(REVISION_READS - 1).padStart(3, '0')}`,
    ]);
    expect(problems[0]?.error).toMatch(/^1 service\(s\) from a-299 on: not read/);
  });

  it('makes no call for services whose template serves, and reads a manually scaled one whose does not', async () => {
    // A manually scaled service runs its fixed count whatever its revisions' max, but a revision
    // of its split may hold GPUs of another pool, and one only tagged holds its own min
    // (countedRevisions): read as any other.
    const { run, calls } = port();
    const manual = { ...pinned('manual'), scalingMode: 'MANUAL' as const, manualInstanceCount: 1 };
    const read = await withServingRevisions(run, [observedService('plain'), manual], []);
    expect(calls()).toBe(1);
    expect(read[0]?.revisionsUnread).toBeUndefined();
    expect(read[1]?.servingRevisions?.[0]).toMatchObject({ maxInstances: 3, inSplit: true });
  });
});

describe('withServingRevisions: GPUs an instance', () => {
  it('counts the service at the most GPUs an instance of a revision in the split, not of one only tagged', async () => {
    const L4 = { accelerator: 'nvidia-l4', zonalRedundancy: true };
    const fail = () => Promise.reject(new Error('not used'));
    const run: CloudRunPort = {
      listRegions: fail,
      listServices: fail,
      getService: fail,
      listWorkerPools: fail,
      listRunningExecutions: fail,
      updateMaxInstances: fail,
      // The revision ending in -wide holds 2 GPUs an instance, the others the template's 1.
      getRevisionMax: (_p, _r, _s, revision) =>
        Promise.resolve({
          maxInstances: 3,
          minInstances: null,
          gpu: { ...L4, count: revision.endsWith('-wide') ? 2 : 1 },
        }),
    };
    const withWide = (inSplit: boolean): ObservedService => ({
      ...pinned('svc'),
      gpu: { ...L4, count: 1 },
      servingRevisions: [
        { name: 'svc-00001', inSplit: true },
        { name: 'svc-00002-wide', inSplit },
      ],
    });
    const [split] = await withServingRevisions(run, [withWide(true)], []);
    expect(split?.gpu?.count).toBe(2);
    // Only tagged, it is counted apart at its own 2 GPUs an instance (countedRevisions).
    const [tagged] = await withServingRevisions(run, [withWide(false)], []);
    expect(tagged?.gpu?.count).toBe(1);
  });
});

/**
 * A port that answers each revision by its full name (its own max: the number in `maxOf`, 3
 * unless set), fails the reads `failing` names, and logs every call.
 */
function namedPort(maxOf: Record<string, number> = {}, failing: Set<string> = new Set()) {
  const read: string[] = [];
  const fail = () => Promise.reject(new Error('not used'));
  const run: CloudRunPort = {
    listRegions: fail,
    listServices: fail,
    getService: fail,
    listWorkerPools: fail,
    listRunningExecutions: fail,
    updateMaxInstances: fail,
    async getRevisionMax(project, region, service, revision) {
      const name = `${project}/${region}/${service}/${revision}`;
      read.push(name);
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (failing.has(name)) throw new Error(`injected: ${name} refused`);
      return {
        maxInstances: maxOf[name] ?? 3,
        minInstances: null,
        gpu: { accelerator: 'nvidia-l4', count: 1, zonalRedundancy: true },
      };
    },
  };
  return { run, read };
}

describe('withServingRevisions with the memo of a run', () => {
  it('reads each revision once in the run: what it read costs no read of the next listings', async () => {
    const { run, read } = namedPort();
    const memo = new RevisionMemo();
    const services = Array.from({ length: REVISION_READS + 12 }, (_, i) =>
      pinned(`svc-${String(i).padStart(3, '0')}`),
    );
    const first = await withServingRevisions(run, services, [], memo);
    expect(read).toHaveLength(REVISION_READS);
    expect(first.filter((s) => s.revisionsUnread !== undefined)).toHaveLength(12);
    // The next listing of the region (the read before the raises): the 300 already read are
    // answered by the memo at no cost, so the 12 left past the budget fit in it now.
    const problems: ObservationProblem[] = [];
    const second = await withServingRevisions(run, services, problems, memo);
    expect(read).toHaveLength(REVISION_READS + 12);
    expect(new Set(read).size).toBe(read.length);
    expect(problems).toEqual([]);
    expect(second.every((s) => s.revisionsUnread === undefined && maxInForce(s).max === 3)).toBe(
      true,
    );
    // And the verify read: no call at all.
    const third = await withServingRevisions(run, services, [], memo);
    expect(read).toHaveLength(REVISION_READS + 12);
    expect(third).toEqual(second);
  });

  it('spends the budget on the revisions not yet read only, and counts the rest coarsely as before', async () => {
    const { run, read } = namedPort();
    const memo = new RevisionMemo();
    const known = Array.from({ length: 10 }, (_, i) => pinned(`known-${i}`));
    await withServingRevisions(run, known, [], memo);
    expect(read).toHaveLength(10);
    const fresh = Array.from({ length: REVISION_READS + 1 }, (_, i) =>
      pinned(`new-${String(i).padStart(3, '0')}`),
    );
    const problems: ObservationProblem[] = [];
    const out = await withServingRevisions(run, [...known, ...fresh], problems, memo);
    // The 10 known cost nothing; of the new ones, the budget's worth are read.
    expect(read).toHaveLength(10 + REVISION_READS);
    expect(out.slice(0, 10).every((s) => s.revisionsUnread === undefined)).toBe(true);
    expect(out.filter((s) => s.revisionsUnread !== undefined).map((s) => s.name)).toEqual([
      'new-300',
    ]);
    expect(maxInForce(out.at(-1) as ObservedService).max).toBe(8);
    expect(problems[0]?.error).toMatch(/^1 service\(s\) from new-300 on: not read: more than 300/);
  });

  it('does not remember a read that failed: the next listing reads it again', async () => {
    const failing = new Set(['p/us-central1/a/a-00001']);
    const { run, read } = namedPort({}, failing);
    const memo = new RevisionMemo();
    const problems: ObservationProblem[] = [];
    const [first] = await withServingRevisions(run, [pinned('a')], problems, memo);
    expect(first?.revisionsUnread).toContain('injected');
    expect(problems).toHaveLength(1);
    failing.clear();
    const [second] = await withServingRevisions(run, [pinned('a')], [], memo);
    expect(read).toEqual(['p/us-central1/a/a-00001', 'p/us-central1/a/a-00001']);
    expect(second?.revisionsUnread).toBeUndefined();
    expect(maxInForce(second as ObservedService).max).toBe(3);
  });

  it('remembers the reads of a service that succeeded when another of its revisions failed', async () => {
    const failing = new Set(['p/us-central1/two/two-00002']);
    const { run, read } = namedPort({}, failing);
    const memo = new RevisionMemo();
    const [first] = await withServingRevisions(run, [pinned('two', 2)], [], memo);
    expect(first?.revisionsUnread).toContain('injected');
    failing.clear();
    const [second] = await withServingRevisions(run, [pinned('two', 2)], [], memo);
    expect(read.slice(2)).toEqual(['p/us-central1/two/two-00002']);
    expect(second?.revisionsUnread).toBeUndefined();
    expect(maxInForce(second as ObservedService).max).toBe(6);
  });

  it('knows a revision by its full name: the same names in another project or region are read', async () => {
    const { run, read } = namedPort({
      'p/us-central1/a/a-00001': 2,
      'p/europe-west4/a/a-00001': 5,
      'q/us-central1/a/a-00001': 7,
    });
    const memo = new RevisionMemo();
    const here = await withServingRevisions(run, [pinned('a')], [], memo);
    const region = await withServingRevisions(
      run,
      [{ ...pinned('a'), region: 'europe-west4' }],
      [],
      memo,
    );
    const project = await withServingRevisions(run, [{ ...pinned('a'), project: 'q' }], [], memo);
    expect(read).toEqual([
      'p/us-central1/a/a-00001',
      'p/europe-west4/a/a-00001',
      'q/us-central1/a/a-00001',
    ]);
    expect([here, region, project].map((s) => maxInForce(s[0] as ObservedService).max)).toEqual([
      2, 5, 7,
    ]);
  });

  it('answers what the listing says serves: a revision no longer serving is left out, a new one is read', async () => {
    const { run, read } = namedPort({ 'p/us-central1/a/a-00001': 2, 'p/us-central1/a/a-00002': 5 });
    const memo = new RevisionMemo();
    const before = pinned('a');
    await withServingRevisions(run, [before], [], memo);
    // Traffic moved from a-00001 to a-00002 between the listings.
    const after = { ...before, servingRevisions: [{ name: 'a-00002', inSplit: true }] };
    const [now] = await withServingRevisions(run, [after], [], memo);
    expect(read).toEqual(['p/us-central1/a/a-00001', 'p/us-central1/a/a-00002']);
    expect(now?.servingRevisions?.map((r) => [r.name, r.maxInstances])).toEqual([['a-00002', 5]]);
    expect(maxInForce(now as ObservedService).max).toBe(5);
  });

  it('without a memo, reads every listing afresh: a memo is given to one run only', async () => {
    const { run, read } = namedPort();
    await withServingRevisions(run, [pinned('a')], []);
    await withServingRevisions(run, [pinned('a')], []);
    expect(read).toHaveLength(2);
  });

  // Whether revisions were left unread for the reads allowed or refused is what was done, not how
  // it reads: a refusal worded as the budget's note (Google's words, or a proxy's) is a refusal.
  it('tells a read refused from one left for the budget by what happened, not by its words', async () => {
    const budgetWords = (await withServingRevisions(port().run, tooMany(), [])).at(
      -1,
    )?.revisionsUnread;
    expect(budgetWords).toMatch(/^not read: more than/);
    const refusing: CloudRunPort = {
      ...port().run,
      getRevisionMax: () => Promise.reject(new Error(budgetWords)),
    };
    // A service without a GPU with a revision only tagged: a refused read holds its region, one
    // left for the budget does not (taggedUnknown).
    const tagged: ObservedService = {
      ...pinned('cpu'),
      gpu: null,
      templateServes: true,
      servingRevisions: [{ name: 'cpu-00001', inSplit: false }],
    };
    const problems: ObservationProblem[] = [];
    const [refused] = await withServingRevisions(refusing, [tagged], problems);
    expect(refused?.revisionsUnread).toBe(budgetWords);
    expect(unreadPastBudget(refused as ObservedService)).toBe(false);
    expect(taggedUnknown(refused as ObservedService)).toBe(true);
    expect(problems.map((p) => p.subject)).toEqual(['tagged-revisions']);
    // A worker pool refused so keeps the refusal's words, said once.
    const pool: ObservedWorkerPool = {
      project: 'p',
      region: 'us-central1',
      name: 'pool',
      gpu: null,
      manualInstanceCount: 1,
      templateServes: false,
      servingRevisions: [{ name: 'pool-00001', inSplit: true }],
    };
    const poolProblems: ObservationProblem[] = [];
    const { workerPools } = await withRevisionsRead(
      refusing,
      { services: [], workerPools: [pool] },
      poolProblems,
    );
    expect(workerPools[0]?.revisionsUnread).toBe(budgetWords);
    expect(poolProblems).toHaveLength(1);
  });
});

/** More pinned GPU services than a listing reads: the last is left unread for the budget. */
function tooMany(): ObservedService[] {
  return Array.from({ length: REVISION_READS + 1 }, (_, i) =>
    pinned(`svc-${String(i).padStart(3, '0')}`),
  );
}
