import { status } from '@grpc/grpc-js';
import { issuesLine } from '../core/document.js';
import { z } from 'zod';
import { compareText } from '../core/pool.js';
import { RpcError, type Message } from './rpc.js';
import { SERVICES, serviceDefinition } from './protos.js';

/**
 * Seeded, reproducible fault injection for the emulator's gRPC APIs, configured through the
 * control surface (`setFaults`, `POST /faults`). Per RPC, in order: a latency drawn from the
 * matching rule's distribution, then an error code drawn from the matching error rules; on
 * UpdateService, the long-running operation may fail (the change is not applied and the
 * operation ends with an error) or never finish (the change applies, the operation stays
 * running for `hangMs`, so the service stays `reconciling` and clients time out polling); on reads,
 * Monitoring series may go missing (`monitoring.gapRate`) or lag (`monitoring.extraLagMs`), and
 * another actor may change a service just before the read sees it (`concurrent`). The same seed
 * and the same sequence of calls give the same faults.
 */

const FAULT_CODES = [
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'ABORTED',
  'PERMISSION_DENIED',
  'INTERNAL',
] as const;
const FaultCode = z.enum(FAULT_CODES);
type FaultCode = z.infer<typeof FaultCode>;

/** `*`, a method name (`UpdateService`) or a full name (`google.cloud.run.v2.Services/GetService`). */
const MethodPattern = z.string().min(1).default('*');

/**
 * The longest wait any emulated delay may ask for, in seconds (a day): a hung operation, a
 * deployment in flight. Longer leaves a service `reconciling` or an operation running for good.
 */
export const MAX_WAIT_SECONDS = 86_400;

const ErrorRule = z.strictObject({
  method: MethodPattern,
  code: FaultCode,
  rate: z.number().min(0).max(1),
  /**
   * Answered with the error as a `google.rpc.RetryInfo` detail (its `retry_delay`), as Google
   * attaches one to a RESOURCE_EXHAUSTED the client may retry after that delay.
   */
  retryDelayMs: z
    .number()
    .min(0)
    .max(MAX_WAIT_SECONDS * 1000)
    .optional(),
});

/** The longest delay a latency rule may draw, in ms (2 minutes). */
const MAX_LATENCY_MS = 120_000;

const LatencyRule = z
  .strictObject({
    method: MethodPattern,
    /** Share of matching calls delayed. */
    rate: z.number().min(0).max(1).default(1),
    /** Uniform between minMs and maxMs, or exponential with mean `meanMs` (capped at maxMs). */
    distribution: z.enum(['uniform', 'exponential']).default('uniform'),
    minMs: z.number().min(0).max(MAX_LATENCY_MS).default(0),
    maxMs: z.number().min(0).max(MAX_LATENCY_MS),
    meanMs: z.number().min(0).max(MAX_LATENCY_MS).optional(),
  })
  // Above maxMs, every delay drawn would be cut to maxMs: not the rule that was asked for.
  .refine((r) => r.minMs <= r.maxMs, {
    path: ['minMs'],
    message: 'must be at most maxMs (a delay is drawn between minMs and maxMs)',
  });

const WaitSeconds = z.number().min(0).max(MAX_WAIT_SECONDS);

export const FaultConfig = z.strictObject({
  seed: z.number().int().default(1),
  errors: z.array(ErrorRule).default([]),
  latency: z.array(LatencyRule).default([]),
  operations: z
    .strictObject({
      failRate: z.number().min(0).max(1).default(0),
      hangRate: z.number().min(0).max(1).default(0),
      /** Wall ms a hung operation stays running. */
      hangMs: z
        .number()
        .min(0)
        .max(MAX_WAIT_SECONDS * 1000)
        .default(3_600_000),
    })
    // One draw decides an operation (fail below failRate, hang below failRate + hangRate): past
    // 1 in all, fewer would hang than asked, not the rule that was asked for.
    .refine((o) => o.failRate + o.hangRate <= 1, {
      path: ['hangRate'],
      message:
        'failRate + hangRate must be at most 1 (one draw decides whether an operation fails or hangs)',
    })
    .default({ failRate: 0, hangRate: 0, hangMs: 3_600_000 }),
  monitoring: z
    .strictObject({
      /** Share of series dropped from each ListTimeSeries answer. */
      gapRate: z.number().min(0).max(1).default(0),
      /**
       * Added to the emulator's metrics lag (stale points). At most a day: Google's points are
       * "not visible for up to 240 seconds" in its example
       * (https://cloud.google.com/monitoring/api/v3/latency-n-retention); a day is far past any
       * lag Google documents, and more would only hide every point, with no error to say so.
       */
      extraLagMs: z
        .number()
        .min(0)
        .max(MAX_WAIT_SECONDS * 1000, 'must be at most 86400000 (a day)')
        .default(0),
    })
    .default({ gapRate: 0, extraLagMs: 0 }),
  paging: z
    .strictObject({
      /**
       * Share of list pages answered short: fewer results than the page size, none at times, with
       * a next_page_token all the same. Google's lists may do so: "The API may return fewer
       * results than the number requested (including zero results), even if not at the end of
       * the collection" (AIP-158, https://google.aip.dev/158). At most 0.9: a short page is
       * never the last, so at 1 a list would never end.
       */
      shortRate: z.number().min(0).max(0.9).default(0),
      /** Empty pages answered in a row before each page with results (each with a token). */
      emptyRun: z.number().int().min(0).max(100).default(0),
      /**
       * Share of ListQuotaPreferences pages answered without their preferences and with the
       * location in `unreachable`: ListQuotaPreferencesResponse.unreachable, "Locations that could
       * not be reached" (google/api/cloudquotas/v1/cloudquotas.proto). Such a page still answers
       * (no error), so a client that does not read `unreachable` takes the listing as complete.
       */
      unreachableRate: z.number().min(0).max(1).default(0),
    })
    .default({ shortRate: 0, emptyRun: 0, unreachableRate: 0 }),
  concurrent: z
    .strictObject({
      /** Chance, on each GetService / ListServices, that another actor changes a service first. */
      rate: z.number().min(0).max(1).default(0),
      /** What it does: deploy (reconciling), edit an annotation (etag), change the max. */
      kinds: z.array(z.enum(['deploy', 'annotate', 'max'])).default(['deploy', 'annotate', 'max']),
      deploySeconds: WaitSeconds.default(120),
    })
    .default({ rate: 0, kinds: ['deploy', 'annotate', 'max'], deploySeconds: 120 }),
  otherActor: z
    .strictObject({
      /**
       * Chance, right after each answered ListServices, GetQuotaInfo or applied UpdateService,
       * that another writer acts on the pool of that call: between the governor's reads and its
       * writes. What it does: `fill` raises a service's max, legally (within Cloud Run's own
       * per-service check), until the pool's caps reach the quota; `cut-quota` lowers the quota;
       * `deploy` starts a deployment (the service reconciles); `redeploy` deploys the service
       * from its own configuration, as a CI pipeline does: its max goes back to the configured
       * one (the fleet's, within Cloud Run's per-service check) and it reconciles; `manual`
       * switches a service to manual scaling (no new revision) at the min instances that bring
       * the pool up to its quota, without a manual instance count.
       */
      rate: z.number().min(0).max(1).default(0),
      kinds: z
        .array(z.enum(['fill', 'cut-quota', 'deploy', 'redeploy', 'manual']))
        .default(['fill', 'cut-quota', 'deploy', 'redeploy']),
      /** GPUs a quota cut takes, at most (at least 1). */
      maxCut: z.number().int().min(1).default(3),
      deploySeconds: WaitSeconds.default(120),
    })
    .default({
      rate: 0,
      kinds: ['fill', 'cut-quota', 'deploy', 'redeploy'],
      maxCut: 3,
      deploySeconds: 120,
    }),
});
export type FaultConfig = z.infer<typeof FaultConfig>;
export type FaultConfigInput = z.input<typeof FaultConfig>;

/** mulberry32: a small seeded generator, the same numbers on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every method the emulator's gRPC services define, by full name. */
function servedMethods(): string[] {
  return Object.values(SERVICES).flatMap((service) =>
    Object.keys(serviceDefinition(service)).map((method) => `${service}/${method}`),
  );
}

function methodMatches(pattern: string, fullName: string): boolean {
  if (pattern === '*') return true;
  if (pattern === fullName) return true;
  return fullName.endsWith(`/${pattern}`);
}

type OperationOutcome = 'ok' | 'fail' | 'hang';

/** What another actor does to a service, decided by the injector, done by the emulator. */
export type ConcurrentChange =
  | { kind: 'deploy'; seconds: number; pick: number }
  | { kind: 'annotate'; pick: number }
  | { kind: 'max'; pick: number; delta: number };

/** What the other writer does right after a governor's read or write, decided by the injector. */
export type OtherActorChange = { where: number } & (
  | { kind: 'fill'; pick: number }
  | { kind: 'manual'; pick: number }
  | { kind: 'cut-quota'; gpus: number }
  | { kind: 'deploy'; pick: number; seconds: number }
  | { kind: 'redeploy'; pick: number; seconds: number }
  /**
   * A new revision made at once with its own max (`size` of the most Cloud Run's per-service
   * check allows): `revision-max` takes the traffic as a deploy does, `no-traffic` leaves it where
   * it was (pinned by name to the older revision), `canary` also tags it.
   */
  | { kind: 'revision-max' | 'no-traffic' | 'canary'; pick: number; size: number }
  /**
   * The traffic split between the serving revision and the one before it, which keeps
   * `percent`; an older revision the emulator never modeled is taken with its own max of `size`
   * (0: unset).
   */
  | { kind: 'split'; pick: number; percent: number; size: number }
  /**
   * A worker pool of the pool's region splits its instances with an older revision that keeps
   * `percent`, of the other pool's GPU when `other` (a redeploy changed its zonal redundancy).
   */
  | { kind: 'pool-split'; pick: number; percent: number; other: boolean }
);

export class FaultInjector {
  private config: FaultConfig = FaultConfig.parse({});
  private random: () => number = seededRandom(1);
  private readonly counts = new Map<string, number>();

  configure(input: FaultConfigInput): FaultConfig {
    const parsed = FaultConfig.safeParse(input);
    if (!parsed.success) {
      throw new Error(`bad faults: ${issuesLine(parsed.error)}`);
    }
    // A rule whose method matches nothing the emulator serves would never fire, silently.
    const served = servedMethods();
    const unmatched = (['errors', 'latency'] as const).flatMap((kind) =>
      parsed.data[kind]
        .map((rule, i) => ({ where: `${kind}[${i}].method`, method: rule.method }))
        .filter(({ method }) => !served.some((name) => methodMatches(method, name))),
    );
    if (unmatched.length > 0) {
      throw new Error(
        `bad faults: ${unmatched.map((u) => `${u.where}: ${JSON.stringify(u.method.slice(0, 200))} names no method the emulator serves (such as "UpdateService" or "google.cloud.run.v2.Services/GetService")`).join('; ')}`,
      );
    }
    this.config = parsed.data;
    this.random = seededRandom(parsed.data.seed);
    return this.config;
  }

  current(): FaultConfig {
    return this.config;
  }

  /** Faults injected so far, by kind (`UNAVAILABLE`, `latency`, `operation-failed`, ...). */
  injected(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => compareText(a, b)));
  }

  count(kind: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  /** Before an RPC: its delay (ms) and the error to answer with, if any. */
  decide(method: string): { delayMs: number; error: RpcError | undefined } {
    let delayMs = 0;
    for (const rule of this.config.latency) {
      if (!methodMatches(rule.method, method) || this.random() >= rule.rate) continue;
      const r = this.random();
      const drawn =
        rule.distribution === 'exponential'
          ? rule.minMs - Math.log(1 - r) * (rule.meanMs ?? (rule.maxMs - rule.minMs) / 2)
          : rule.minMs + r * (rule.maxMs - rule.minMs);
      delayMs = Math.min(rule.maxMs, drawn);
      this.count('latency');
      break;
    }
    for (const rule of this.config.errors) {
      if (!methodMatches(rule.method, method)) continue;
      if (this.random() < rule.rate) {
        this.count(rule.code);
        return {
          delayMs,
          error: new RpcError(
            status[rule.code],
            `injected ${rule.code} on ${method}`,
            rule.retryDelayMs,
          ),
        };
      }
    }
    return { delayMs, error: undefined };
  }

  /** The FaultHook body: waits the drawn latency, then answers the drawn error, when one was drawn. */
  async hook(call: {
    readonly method: string;
    readonly request: Message;
  }): Promise<RpcError | undefined> {
    const { delayMs, error } = this.decide(call.method);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    return error;
  }

  operationOutcome(): OperationOutcome {
    const { failRate, hangRate } = this.config.operations;
    if (failRate === 0 && hangRate === 0) return 'ok';
    const r = this.random();
    if (r < failRate) {
      this.count('operation-failed');
      return 'fail';
    }
    if (r < failRate + hangRate) {
      this.count('operation-hung');
      return 'hang';
    }
    return 'ok';
  }

  get hangMs(): number {
    return this.config.operations.hangMs;
  }

  get extraLagMs(): number {
    return this.config.monitoring.extraLagMs;
  }

  /** Whether to drop one series of a ListTimeSeries answer. */
  dropSeries(): boolean {
    const { gapRate } = this.config.monitoring;
    if (gapRate === 0 || this.random() >= gapRate) return false;
    this.count('monitoring-gap');
    return true;
  }

  /**
   * How many of the `n` results a whole page would hold to serve: none while fewer than
   * `paging.emptyRun` empty pages were answered in a row here; else `n`, or, at
   * `paging.shortRate`, fewer, from 0 to n - 1 (paginate() in rpc.ts then still gives a
   * next_page_token: the page is short, not the last).
   */
  readonly pageCut = (n: number, empties: number): number => {
    const { shortRate, emptyRun } = this.config.paging;
    if (n > 0 && empties < emptyRun) {
      this.count('empty-page');
      return 0;
    }
    if (shortRate === 0 || n <= 0 || this.random() >= shortRate) return n;
    this.count('short-page');
    return Math.floor(this.random() * n);
  };

  /** Whether a ListQuotaPreferences page answers its location as unreachable (`paging.unreachableRate`). */
  unreachable(): boolean {
    const { unreachableRate } = this.config.paging;
    if (unreachableRate === 0 || this.random() >= unreachableRate) return false;
    this.count('unreachable');
    return true;
  }

  /**
   * The other writer's change right after a governor's read or write, or null. `where` picks the
   * pool among those of the call, `pick` the service in it; both in [0, 1). Not counted here: the
   * caller counts it once it changed something (a full pool cannot be filled).
   */
  otherActorChange(): OtherActorChange | null {
    const { rate, kinds, maxCut, deploySeconds } = this.config.otherActor;
    if (rate === 0 || kinds.length === 0 || this.random() >= rate) return null;
    const kind = kinds[Math.floor(this.random() * kinds.length)] ?? 'fill';
    const where = this.random();
    if (kind === 'cut-quota') return { where, kind, gpus: 1 + Math.floor(this.random() * maxCut) };
    if (kind === 'deploy' || kind === 'redeploy')
      return { where, kind, pick: this.random(), seconds: deploySeconds };
    return { where, kind, pick: this.random() };
  }

  /**
   * Another actor's change just before a Cloud Run read, or null. `pick` in [0, 1). Counted by
   * the caller once it changed something (a max past the quota is not written).
   */
  concurrentChange(): ConcurrentChange | null {
    const { rate, kinds, deploySeconds } = this.config.concurrent;
    if (rate === 0 || kinds.length === 0 || this.random() >= rate) return null;
    const kind = kinds[Math.floor(this.random() * kinds.length)] ?? 'annotate';
    const pick = this.random();
    if (kind === 'deploy') return { kind, seconds: deploySeconds, pick };
    if (kind === 'max') return { kind, pick, delta: this.random() < 0.5 ? -1 : 1 };
    return { kind, pick };
  }
}
