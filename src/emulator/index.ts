import { dirname, resolve } from 'node:path';
import { startAdminServer } from './admin.js';
import { VirtualClock } from './clock.js';
import { EmulatorContext, type FaultHook, type AnswerHook } from './context.js';
import { EmulatorControl } from './control.js';
import type { FaultConfigInput } from './faults.js';
import type { InvariantSpecInput } from './invariants.js';
import { loadFleet, loadTraces, validateFleet, type Fleet, type FleetInput } from './fleet.js';
import { DEFAULT_METRICS_LAG_MS, FleetModel } from './model.js';
import type { PublishedMessage } from './pubsub-store.js';
import { startGrpcServer } from './server.js';

/**
 * The local emulator of Cloud Run Admin v2, Cloud Monitoring v3, Cloud Quotas v1, Cloud Asset
 * Inventory v1's search and Pub/Sub's publisher (one gRPC port), with a control surface (this object and an HTTP admin port). See
 * docs/emulator.md.
 */

/** Points the governor's Cloud Run, Monitoring and Cloud Quotas adapters at the emulator. */
const EMULATOR_HOST_ENV = 'GOVERNOR_EMULATOR_HOST';
/** The emulator's HTTP admin endpoint. */
const EMULATOR_ADMIN_ENV = 'GOVERNOR_EMULATOR_ADMIN';
/** Points the Pub/Sub client library at the emulator's publisher (plaintext, no credentials). */
const PUBSUB_EMULATOR_ENV = 'PUBSUB_EMULATOR_HOST';

export interface EmulatorOptions {
  /** A fleet (as parsed, or as written in a file) or the path of a fleet file. */
  readonly fleet: Fleet | FleetInput | string;
  /** gRPC port on 127.0.0.1 (default 0: a free one). */
  readonly port?: number;
  /** HTTP admin port on 127.0.0.1 (default 0: a free one). */
  readonly adminPort?: number;
  /** Virtual seconds per wall second, or 'manual' (time moves only through advance). Default 1. */
  readonly speed?: number | 'manual';
  /** Wall-clock ms an UpdateService operation runs before it is done (default 1000). */
  readonly operationDelayMs?: number;
  /** Virtual ms before a metric point is visible (default {@link DEFAULT_METRICS_LAG_MS}). */
  readonly metricsLagMs?: number;
  /** Page size of List calls that set none (default 5). */
  readonly pageSize?: number;
  /** Minutes of per-minute history kept for metrics (default 2880: two days). */
  readonly historyMinutes?: number;
  /** Answer a ListTimeSeries asked again at the same virtual time from memory (default false). */
  readonly memoizeMetrics?: boolean;
  /**
   * The folder trace files must be in when `fleet` is not a path (default: the working
   * directory); for a path, the fleet file's folder.
   */
  readonly baseDir?: string;
  /** Seam for fault injection: may answer any RPC with an error instead of its handler. */
  readonly faults?: FaultHook;
  /**
   * Test seam: may answer a ListTimeSeries, ListServices, GetService, ListWorkerPools,
   * ListExecutions, GetQuotaInfo or SearchAllResources with a raw response instead of the fleet's (the request is still checked as
   * Google checks it). In process only; see docs/emulator.md.
   */
  readonly answer?: AnswerHook;
  /**
   * The wall clock operations are timed by, in ms (default `Date.now`): a test steps it to show
   * what a slow handler answers, where the machine's speed would decide.
   */
  readonly wallClock?: () => number;
  /** Seeded fault injection from the start (also `setFaults` / `POST /faults` later). */
  readonly inject?: FaultConfigInput;
  /** What the invariant monitor counts as governed, reserve and floors (also `setInvariants`). */
  readonly invariants?: InvariantSpecInput;
  /** Called with each message published to the emulator's Pub/Sub, once it is recorded. */
  readonly onPublish?: (message: PublishedMessage) => void;
}

export interface RunningEmulator extends EmulatorControl {
  readonly port: number;
  readonly adminPort: number;
  /** The gRPC address, `127.0.0.1:PORT` (GOVERNOR_EMULATOR_HOST, and PUBSUB_EMULATOR_HOST). */
  readonly host: string;
  /** The admin endpoint, `http://127.0.0.1:ADMINPORT` (GOVERNOR_EMULATOR_ADMIN). */
  readonly adminUrl: string;
  /**
   * `GOVERNOR_EMULATOR_HOST`, `GOVERNOR_EMULATOR_ADMIN` and `PUBSUB_EMULATOR_HOST` for a governor
   * to export.
   */
  readonly env: Readonly<Record<string, string>>;
  /** The fleet model (read it; change it through the control methods). */
  readonly model: FleetModel;
  stop(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const baseDir =
    typeof options.fleet === 'string'
      ? dirname(resolve(options.fleet))
      : resolve(options.baseDir ?? process.cwd());
  const loaded =
    typeof options.fleet === 'string'
      ? await loadFleet(options.fleet)
      : await (async () => {
          const fleet = validateFleet(options.fleet);
          return { fleet, traces: await loadTraces(fleet, baseDir) };
        })();
  const model = new FleetModel(loaded.fleet, {
    traces: loaded.traces,
    historyMinutes: options.historyMinutes,
  });
  const speed = options.speed ?? 1;
  const clock = new VirtualClock(
    model.startMs,
    speed === 'manual' ? { kind: 'manual' } : { kind: 'real', speed },
  );
  const ctx = new EmulatorContext(
    model,
    clock,
    {
      operationDelayMs: options.operationDelayMs ?? 1000,
      metricsLagMs: options.metricsLagMs ?? DEFAULT_METRICS_LAG_MS,
      pageSize: options.pageSize ?? 5,
      memoizeMetrics: options.memoizeMetrics ?? false,
      ...(options.answer ? { answer: options.answer } : {}),
    },
    options.faults,
    options.wallClock,
  );
  for (const topic of loaded.fleet.topics) ctx.pubsub.createTopic(topic);
  if (options.onPublish) ctx.pubsub.onPublish(options.onPublish);
  const control = new EmulatorControl(ctx, loaded.traces, baseDir);
  if (options.inject) control.setFaults(options.inject);
  if (options.invariants) control.setInvariants(options.invariants);
  const grpc = await startGrpcServer(ctx, options.port ?? 0);
  const adminServer = await startAdminServer(control, options.adminPort ?? 0).catch(
    async (error: unknown) => {
      await grpc.stop();
      throw error;
    },
  );
  const host = `127.0.0.1:${grpc.port}`;
  const adminUrl = `http://127.0.0.1:${adminServer.port}`;
  return Object.assign(control, {
    port: grpc.port,
    adminPort: adminServer.port,
    host,
    adminUrl,
    env: { [EMULATOR_HOST_ENV]: host, [EMULATOR_ADMIN_ENV]: adminUrl, [PUBSUB_EMULATOR_ENV]: host },
    model,
    stop: async () => {
      await Promise.all([grpc.stop(), adminServer.stop()]);
    },
  });
}

export { FleetError, type Fleet, type FleetInput } from './fleet.js';
export { DEFAULT_METRICS_LAG_MS, FleetModel } from './model.js';
export { MAX_CLOCK_SPEED } from './clock.js';
export type { AnswerHook, CallRecord, FaultHook } from './context.js';
export { seededRandom, type FaultConfigInput } from './faults.js';
export type { InvariantSpecInput } from './invariants.js';
export { RpcError } from './rpc.js';
export type { PublishedMessage } from './pubsub-store.js';

export { decideQuotaPreference, quotaPreferences } from './quota-preferences.js';
export { setQuotaIncreaseEligibility } from './quotas-api.js';
