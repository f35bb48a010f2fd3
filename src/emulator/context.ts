import type { VirtualClock } from './clock.js';
import {
  effectiveMax,
  gpusPerInstance,
  type FleetModel,
  type ServiceKey,
  type ServiceState,
} from './model.js';
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
}

/**
 * Called before every RPC is handled: return an error to answer the call with it instead. The seam
 * for fault injection (none is built in).
 */
export type FaultHook = (call: {
  readonly method: string;
  readonly request: Message;
}) => RpcError | undefined | Promise<RpcError | undefined>;

export interface EmulatorSettings {
  /** Wall-clock ms a long-running operation takes before GetOperation reports it done. */
  readonly operationDelayMs: number;
  /** Virtual ms before a metric point becomes visible. */
  readonly metricsLagMs: number;
  /** Page size of List calls that give none. */
  readonly pageSize: number;
}

/** What every API handler shares: the model, the clock, and the records of calls and writes. */
export class EmulatorContext {
  readonly calls: CallRecord[] = [];
  readonly writes: WriteRecord[] = [];
  readonly operations = new Map<string, OperationRecord>();
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
    const pool = this.model
      .pools()
      .find(
        (p) =>
          p.project === key.project &&
          p.region === key.region &&
          p.accelerator === key.accelerator &&
          p.zonalRedundancy === key.zonalRedundancy,
      );
    return {
      ...key,
      capsGpus: pool?.capsGpus ?? effectiveMax(s) * gpusPerInstance(s),
      quota: this.model.quotaFor(key) ?? null,
      workerPoolGpus: pool?.workerPoolGpus ?? 0,
    };
  }
}
