import { samePool } from '../core/pool.js';
import { BoundedLog } from './bounded-log.js';
import type { VirtualClock } from './clock.js';
import { FaultInjector, type ConcurrentChange, type OtherActorChange } from './faults.js';
import { InvariantMonitor } from './invariants.js';
import {
  effectiveMax,
  gpusPerInstance,
  otherRevisionIndex,
  revisionOf,
  splitRefusal,
  workerPoolRevisions,
  type FleetModel,
  type ServiceKey,
  type ServiceState,
} from './model.js';
import { CustomMetricStore } from './custom-metrics.js';
import { PubSubStore } from './pubsub-store.js';
import type { Message, RpcError } from './rpc.js';

/** One RPC as the emulator saw it. */
export interface CallRecord {
  readonly seq: number;
  /** `package.Service/Method`, e.g. `google.cloud.run.v2.Services/UpdateService`. */
  readonly method: string;
  /** The request as decoded (snake_case fields, int64 as strings). */
  readonly request: unknown;
  /** Virtual time of the call (ISO). */
  readonly at: string;
  readonly wallTime: string;
  /** gRPC status name once answered (`OK`, `NOT_FOUND`, ...); `PENDING` until then. */
  code: string;
  message?: string;
}

export interface PoolTotals {
  readonly project: string;
  readonly region: string;
  readonly accelerator: string;
  readonly zonalRedundancy: boolean;
  /** Sum of effective max x GPUs per instance of every service in the pool. */
  readonly capsGpus: number;
  readonly quota: number | null;
  readonly workerPoolGpus: number;
}

/** A successful write, with its pool's totals right after it. */
export interface WriteRecord {
  readonly seq: number;
  readonly at: string;
  readonly wallTime: string;
  readonly method: string;
  readonly service: ServiceKey;
  readonly updateMask: readonly string[];
  readonly before: { maxInstances: number; annotations: Record<string, string>; etag: string };
  readonly after: { maxInstances: number; annotations: Record<string, string>; etag: string };
  readonly pool: PoolTotals | null;
}

export interface OperationRecord {
  readonly name: string;
  readonly service: ServiceKey;
  /** Wall-clock time (ms) at which the operation is done. */
  readonly doneAt: number;
  readonly createdAt: number;
  /** Set when the operation fails (fault injection): the change was not applied. */
  readonly error?: { code: number; message: string };
  /**
   * A `DeleteRevision`'s: the revision deleted, as GetRevision answered it before, its metadata and
   * response (the rpc's `operation_info`, google/cloud/run/v2/revision.proto). It changes no
   * service: the service does not reconcile while it runs.
   */
  readonly revision?: Message;
  /**
   * An `UpdateService`'s result: the service as that update left it, encoded as it was written
   * (an `Any`, a kilobyte or so, not the rendered object, as many are kept).
   * A done operation's `response` is "the normal, successful response of the operation"
   * (google/longrunning/operations.proto): the update's outcome, which a later write by someone
   * else does not change. Answered re-rendered from the service now, the governor would take
   * another writer's etag for its own and overwrite that writer's change unrefused.
   */
  readonly result?: { type_url: string; value: Buffer };
}

/**
 * Called before every RPC is handled: return an error to answer the call with it instead. The seam
 * for fault injection (none is built in).
 */
export type FaultHook = (call: {
  readonly method: string;
  readonly request: Message;
}) => RpcError | undefined | Promise<RpcError | undefined>;

interface EmulatorSettings {
  /** Wall-clock ms a long-running operation takes before GetOperation reports it done. */
  readonly operationDelayMs: number;
  /** Virtual ms before a metric point becomes visible. */
  readonly metricsLagMs: number;
  /** Page size of List calls that give none. */
  readonly pageSize: number;
  /**
   * A ListTimeSeries asked again at the same virtual time (and injected lag) is answered from
   * memory rather than computed again: for benchmarks with thousands of services, where computing
   * the answer takes the emulator longer than the client waits. Off by default: a change to the
   * fleet's history at the same instant would not be seen.
   */
  readonly memoizeMetrics?: boolean;
  /** Test seam: a raw answer instead of the fleet's to a read (see EmulatorOptions.answer). */
  readonly answer?: AnswerHook;
}

/** The reads whose answer a test may replace (EmulatorOptions.answer). */
export type AnsweredMethod =
  | 'ListTimeSeries'
  | 'ListServices'
  | 'GetService'
  | 'GetRevision'
  | 'GetOperation'
  | 'ListWorkerPools'
  | 'ListExecutions'
  | 'GetQuotaInfo'
  | 'SearchAllResources';

/**
 * Given one of those reads, once the emulator has checked the request as Google would (parent,
 * name, scope, filter, permission), and `fleetAnswer` (computing the answer the fleet would give to
 * this very request, fields as the proto names them, or throwing its error), a raw answer to send
 * as is, or undefined to send the fleet's. A test seam, in process only: it makes the emulator send
 * what Google could put on the wire, however odd.
 */
export type AnswerHook = (
  method: AnsweredMethod,
  request: Message,
  fleetAnswer: () => Message,
) => Message | undefined;

/** A read's answer: the test seam's, if it gives one, else the fleet's (EmulatorOptions.answer). */
export function answerOf(
  ctx: EmulatorContext,
  method: AnsweredMethod,
  request: Message,
  fleetAnswer: () => Message,
): Message {
  return ctx.settings.answer?.(method, request, fleetAnswer) ?? fleetAnswer();
}

/** The most calls the call log keeps: older ones are dropped first. */
const MAX_LOGGED_CALLS = 20_000;
/** The most bytes of logged requests (as JSON) the call log keeps: older calls are dropped first. */
export const MAX_CALL_LOG_BYTES = 32 << 20;
/** A logged request over this many bytes of JSON is kept as its size only. */
export const MAX_LOGGED_REQUEST_BYTES = 1 << 20;

/** The most operations kept that are done: the oldest done ones are dropped first. */
export const MAX_KEPT_OPERATIONS = 10_000;

/**
 * The long-running operations UpdateService returned, by name, for GetOperation and
 * ListOperations. Google does not document how long it keeps a Cloud Run operation; the emulator
 * keeps the newest {@link MAX_KEPT_OPERATIONS} that are done (one dropped is NOT_FOUND) and every
 * one still running, so that a service stays reconciling for as long as its operation runs.
 * Unbounded, an emulator left running under a governor kept every operation of every write, and
 * scanned them all whenever it asked whether a service is reconciling.
 */
export class OperationStore {
  private readonly byName = new Map<string, OperationRecord>();

  constructor(
    readonly maxDone: number,
    /** Wall-clock ms, against which `doneAt` is read. */
    private readonly wallNow: () => number,
  ) {
    if (!Number.isInteger(maxDone) || maxDone < 0)
      throw new RangeError(`maxDone must be an integer of at least 0, got ${maxDone}`);
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): OperationRecord | undefined {
    return this.byName.get(name);
  }

  /** Adds an operation, the newest; drops the oldest done ones beyond the bound. */
  set(name: string, op: OperationRecord): void {
    this.byName.set(name, op);
    if (this.byName.size <= this.maxDone) return;
    const now = this.wallNow();
    let done = 0;
    for (const kept of this.byName.values()) if (kept.doneAt <= now) done += 1;
    // Oldest first: a Map iterates in the order its keys were added.
    for (const [key, kept] of this.byName) {
      if (done <= this.maxDone) break;
      if (kept.doneAt <= now) {
        this.byName.delete(key);
        done -= 1;
      }
    }
  }

  keys(): IterableIterator<string> {
    return this.byName.keys();
  }

  values(): IterableIterator<OperationRecord> {
    return this.byName.values();
  }
}

/** The most write records `writes()` keeps: older ones are dropped first. */
const MAX_WRITE_RECORDS = 20_000;
/** The most bytes of write records (as JSON) kept: older ones are dropped first. */
export const MAX_WRITE_LOG_BYTES = 32 << 20;

/** What every API handler shares: the model, the clock, and the records of calls and writes. */
export class EmulatorContext {
  /**
   * The call log, bounded: at most {@link MAX_LOGGED_CALLS} calls and {@link MAX_CALL_LOG_BYTES} of
   * their requests (as JSON), the oldest dropped first and counted, so a client sending big
   * requests for hours (or an attacker) cannot fill the emulator's memory or make `GET /calls` too
   * large to answer.
   */
  readonly calls = new BoundedLog<CallRecord>(MAX_LOGGED_CALLS, MAX_CALL_LOG_BYTES);
  /**
   * The writes, bounded as the call log is: at most {@link MAX_WRITE_RECORDS} records and
   * {@link MAX_WRITE_LOG_BYTES} of them (as JSON), the oldest dropped first and counted. Unbounded,
   * an emulator left running under a governor grew with every write it ever took (each record
   * holds the service's annotations before and after, up to 256 KiB each).
   */
  readonly writes = new BoundedLog<WriteRecord>(MAX_WRITE_RECORDS, MAX_WRITE_LOG_BYTES);
  readonly operations = new OperationStore(MAX_KEPT_OPERATIONS, () => this.wallNow());
  /** Seeded fault injection, configured through the control surface (see faults.ts). */
  readonly injector = new FaultInjector();
  /** Checks the pool after every write (see invariants.ts). */
  readonly monitor = new InvariantMonitor();
  /** Pub/Sub topics and the messages published to them (see pubsub-api.ts). */
  readonly pubsub = new PubSubStore();
  /** Custom metrics written with CreateTimeSeries (see custom-metrics.ts). */
  readonly customMetrics = new CustomMetricStore();
  private seq = 0;

  constructor(
    readonly model: FleetModel,
    readonly clock: VirtualClock,
    readonly settings: EmulatorSettings,
    readonly faults: FaultHook | undefined,
    readonly wallNow: () => number = Date.now,
  ) {}

  /** Brings the model up to the clock's time. */
  sync(): number {
    const now = this.clock.now();
    this.model.advanceTo(now);
    return this.model.now;
  }

  nowIso(): string {
    return new Date(this.model.now).toISOString();
  }

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  /** A deployment in flight, or an update whose operation is not done yet. */
  reconciling(s: ServiceState): boolean {
    if (s.deployingUntil !== null) return true;
    const now = this.wallNow();
    for (const op of this.operations.values()) {
      if (
        op.doneAt > now &&
        op.revision === undefined &&
        op.service.project === s.project &&
        op.service.region === s.region &&
        op.service.name === s.name
      ) {
        return true;
      }
    }
    return false;
  }

  poolTotals(s: ServiceState): PoolTotals | null {
    const key = this.model.poolOf(s);
    if (!key) return null;
    const pool = this.model.pool(key);
    return {
      ...key,
      capsGpus: pool?.capsGpus ?? effectiveMax(s) * gpusPerInstance(s),
      quota: this.model.quotaFor(key) ?? null,
      workerPoolGpus: pool?.workerPoolGpus ?? 0,
    };
  }
}

/**
 * Another actor's change to one of the fleet's GPU services (not a governor write: not logged,
 * not checked): a deployment (reconciling), an annotation edit (a new etag), or a max one up or
 * down (within Cloud Run's own per-service quota check). Returns the service changed, or null when
 * nothing changed (no GPU service, a max already at its bound or over the quota). Only a change of
 * the service's cap (its effective max) is told to `monitor` as another writer acting on the
 * pool's room: a deployment or an annotation edit leaves the pool's caps as they were, so a raise
 * over the quota after one is the governor's own, not a race.
 */
export function applyConcurrentChange(
  model: FleetModel,
  change: ConcurrentChange,
  monitor?: InvariantMonitor,
): ServiceKey | null {
  const candidates = model
    .listServices()
    .filter((s) => s.spec.gpu !== undefined && s.spec.scalingMode !== 'MANUAL');
  const s = candidates[Math.floor(change.pick * candidates.length)];
  if (!s) return null;
  if (change.kind === 'deploy') model.startDeployment(s, change.seconds * 1000);
  else if (change.kind === 'annotate')
    model.update(s, {
      annotations: { ...s.annotations, 'chaos.example/touched': String(s.generation) },
    });
  else {
    const max = Math.max(1, s.minInstances, effectiveMax(s) + change.delta);
    const pool = model.poolOf(s);
    const quota = pool ? model.quotaFor(pool) : undefined;
    if (quota !== undefined && max * gpusPerInstance(s) > quota) return null;
    if (max === s.maxInstances) return null;
    const before = effectiveMax(s);
    model.update(s, { maxInstances: max });
    if (pool && effectiveMax(s) !== before) monitor?.otherActed(pool, 'caps');
  }
  return s;
}

/** A pool, as the model keys it. */
export interface ModelPool {
  project: string;
  region: string;
  accelerator: string;
  zonalRedundancy: boolean;
}

/**
 * The other writer's change to one pool (not a governor write: not logged, not checked), right
 * after one of the governor's reads or writes of that pool:
 * - `fill`: one of the pool's automatically scaled GPU services (managed or not) gets the max
 *   that brings the pool's caps, worker pools and running jobs up to the quota, within Cloud Run's
 *   own check (one service's max x GPUs ≤ the quota): legal at that moment;
 * - `cut-quota`: the quota goes down by `gpus` (not below 0);
 * - `deploy`: one of its services starts a deployment;
 * - `redeploy`: one of its services is deployed again from its own configuration (a CI pipeline):
 *   its max goes back to the configured one (the fleet's; within Cloud Run's per-service check,
 *   one service's max x GPUs ≤ the quota), and it starts a deployment;
 * - `manual`: one of its automatically scaled services is switched to manual scaling, which Cloud
 *   Run changes without a new revision
 *   (https://cloud.google.com/run/docs/configuring/services/manual-scaling), at the min instances
 *   that bring the pool up to its quota and without a manual instance count: it then runs its
 *   min instances ("Scale to exactly min instances and ignore max instances", ScalingMode.MANUAL).
 * Returns what changed, for the invariant monitor, or null when nothing did.
 */
export function applyOtherActor(
  model: FleetModel,
  pool: ModelPool,
  change: OtherActorChange,
): 'caps' | 'quota' | null {
  const quota = model.quotaFor(pool);
  if (change.kind === 'pool-split') return splitWorkerPool(model, pool, change);
  if (change.kind === 'cut-quota') {
    if (quota === undefined || quota === 0) return null;
    model.setQuota(pool, Math.max(0, quota - change.gpus));
    return 'quota';
  }
  const members = model.listServices(pool.project).filter((s) => {
    const p = model.poolOf(s);
    return p !== undefined && samePool(p, pool) && s.spec.scalingMode !== 'MANUAL';
  });
  const s = members[Math.floor(change.pick * members.length)];
  if (!s) return null;
  if (change.kind === 'deploy') {
    model.startDeployment(s, change.seconds * 1000);
    return 'caps';
  }
  if (change.kind === 'revision-max' || change.kind === 'no-traffic' || change.kind === 'canary') {
    // Cloud Run holds a deploy's revision max x GPUs to the regional quota
    // (https://cloud.google.com/run/docs/configuring/max-instances-limits).
    const g = gpusPerInstance(s);
    const most = quota === undefined ? 10 : Math.floor(quota / Math.max(1, g));
    if (most < 1) return null;
    const max = 1 + Math.floor(change.size * most);
    if (change.kind === 'revision-max') {
      s.revisionMaxInstances = max;
      model.startDeployment(s, 0);
    } else
      model.deployNoTraffic(s, {
        maxInstances: max,
        ...(change.kind === 'canary' ? { tag: 'canary' } : {}),
      });
    return 'caps';
  }
  if (change.kind === 'split') {
    // A split moves traffic and changes no revision: the one before the serving revision keeps
    // its own max, and one never modeled is taken with the drawn one (model.ts, splitRefusal).
    const g = gpusPerInstance(s);
    const most = quota === undefined ? 10 : Math.floor(quota / Math.max(1, g));
    const before = otherRevisionIndex(s);
    const modeled = before !== undefined && revisionOf(s, before) !== undefined;
    const max = Math.floor(change.size * (most + 1));
    const previousRevision = { percent: change.percent, ...(modeled ? {} : { maxInstances: max }) };
    if (splitRefusal(s, previousRevision) !== undefined) return null;
    model.update(s, { previousRevision });
    return 'caps';
  }
  if (change.kind === 'redeploy') {
    const configured = s.spec.maxInstances ?? s.maxInstances;
    const g = gpusPerInstance(s);
    const max = Math.max(
      1,
      Math.min(configured, quota === undefined ? configured : Math.floor(quota / g)),
    );
    if (quota !== undefined && max * g > quota) return null;
    model.update(s, { maxInstances: max });
    model.startDeployment(s, change.seconds * 1000);
    return 'caps';
  }
  if (quota === undefined) return null;
  const usage = model.pool(pool);
  const used = (usage?.capsGpus ?? 0) + (usage?.workerPoolGpus ?? 0) + (usage?.jobGpus ?? 0);
  const g = gpusPerInstance(s);
  const max = Math.min(effectiveMax(s) + Math.floor((quota - used) / g), Math.floor(quota / g));
  if (change.kind === 'manual') {
    if (max < 1) return null;
    model.update(s, { scalingMode: 'MANUAL', minInstances: max, manualInstanceCount: null });
    return 'caps';
  }
  if (max <= effectiveMax(s) || max < 1) return null;
  model.update(s, { maxInstances: max });
  return 'caps';
}

/**
 * A worker pool of `pool`'s region splits its instances with an older revision (Cloud Run's
 * instance splits, https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks),
 * whose GPU is the pool's own or, with `other`, the other zonal redundancy's (a redeploy changed
 * it). Only a worker pool with a GPU and not split already; returns 'caps' when one was split.
 */
function splitWorkerPool(
  model: FleetModel,
  pool: ModelPool,
  change: { pick: number; percent: number; other: boolean },
): 'caps' | null {
  const candidates = model
    .listWorkerPools(pool.project)
    .filter((w) => w.region === pool.region && w.spec.gpu && !w.spec.previousRevision);
  const w = candidates[Math.floor(change.pick * candidates.length)];
  const gpu = w?.spec.gpu;
  if (!w || !gpu) return null;
  model.splitWorkerPool(w, {
    percent: change.percent,
    ...(change.other ? { gpu: { ...gpu, zonalRedundancy: !gpu.zonalRedundancy } } : {}),
  });
  return 'caps';
}

/** The pools whose GPUs a worker pool's revisions hold (for the monitor after a split). */
export function workerPoolPools(model: FleetModel, project: string, region: string): ModelPool[] {
  const out: ModelPool[] = [];
  for (const w of model.listWorkerPools(project))
    if (w.region === region)
      for (const r of workerPoolRevisions(w))
        if (r.gpu && !out.some((p) => samePool(p, { project, region, ...r.gpu! })))
          out.push({
            project,
            region,
            accelerator: r.gpu.accelerator,
            zonalRedundancy: r.gpu.zonalRedundancy,
          });
  return out;
}
