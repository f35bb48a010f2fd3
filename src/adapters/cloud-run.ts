/**
 * The fleet, as Cloud Run Admin API v2 shows it: services, worker pools and running job executions
 * per region, and the one write the governor makes, the service-level `scaling.max_instance_count`.
 *
 * Built on `@google-cloud/run` (gRPC). `clientConfig` (./client-config.ts) decides where it
 * connects: Google with Application Default Credentials, or the emulator.
 *
 * Budget: Cloud Run allows about 600 reads and 30-60 writes per minute per region (unconfirmed
 * defaults). Listing a region costs one read per page (pages of `pageSize`, 100 by default, so
 * usually one). One `updateMaxInstances` costs one GetService (none when the caller passes the
 * annotations it has just read), one UpdateService, a few GetOperation polls, and one GetService
 * more should the finished operation not carry the service. Spacing the writes belongs to the
 * reconcile step; this adapter only retries what is safe to retry (see `readOptions` and
 * `writeOptions`).
 */
import { randomUUID } from 'node:crypto';

import { v2 } from '@google-cloud/run';
import type { protos } from '@google-cloud/run';
import { status } from '@grpc/grpc-js';
import type { CallOptions } from 'google-gax';

import { parseCpu, parseGpuCount, parseMemory } from '../core/quantity.js';
import {
  ConflictError,
  cutText,
  InputError,
  NotFoundError,
  QuotaRejectedError,
  RefusedError,
  UnavailableError,
  UpstreamError,
} from '../core/errors.js';
import type { Fault } from '../core/errors.js';
import type {
  CloudRunPort,
  MaxInstancesUpdate,
  ObservedJobExecution,
  ObservedWorkerPool,
} from '../ports/index.js';
import type {
  GpuSpec,
  ObservedContainer,
  ObservedService,
  ServingRevision,
} from '../core/service.js';
import { MAX_INSTANCE_COUNT, reservedAnnotationPrefix } from '../core/service.js';
import { clientConfig, closeClients, projectFaults } from './client-config.js';
import { translateGrpcError } from './grpc-errors.js';
import { allPages } from './paging.js';
import { namedUnder } from './resource-names.js';
import {
  checkRetryPolicy,
  closingRetries,
  defaultRetryPolicy,
  definedOnly,
  gaxBackoff,
  gaxReadOptions,
  grpcCode,
} from './retry.js';
import type { RetryPolicy } from './retry.js';

type Service = protos.google.cloud.run.v2.IService;
type WorkerPool = protos.google.cloud.run.v2.IWorkerPool;
type Execution = protos.google.cloud.run.v2.IExecution;
type Container = protos.google.cloud.run.v2.IContainer;

/** How long `updateMaxInstances` polls the long-running operation, and how often. */
interface OperationPolling {
  /** First wait before polling; each later wait is 1.5 times longer, up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Give up waiting (UnavailableError; the write may still apply) after this long. */
  timeoutMs: number;
}

/**
 * A service-level max change applies without a new revision and completes in seconds; polling
 * from 1 s, at most every 5 s, keeps the GetOperation reads few.
 */
const defaultOperationPolling: Readonly<OperationPolling> = {
  initialDelayMs: 1_000,
  maxDelayMs: 5_000,
  timeoutMs: 120_000,
};

interface CloudRunAdapterOptions {
  /** `HOST:PORT` of the emulator (GOVERNOR_EMULATOR_HOST); null or absent: Google. */
  emulatorHost?: string | null;
  /**
   * Services (worker pools, regions) asked per List page, 1 to 1000 (default 100): a region
   * rarely holds more, so listing it usually costs one read of the 600 a minute. Cloud Run states
   * no maximum for `page_size` (ListServicesRequest: "Maximum number of Services to return in
   * this call",
   * https://cloud.google.com/ruby/docs/reference/google-cloud-run-v2/latest/Google-Cloud-Run-V2-ListServicesRequest);
   * 1000 is this adapter's own bound, the one AIP-158 gives as its example
   * (https://google.aip.dev/158), and a page may hold fewer than asked: every List follows
   * `next_page_token` to the end, so the size changes the number of reads, never what is read.
   */
  pageSize?: number;
  /** Attempts, backoff and per-attempt deadline of every RPC (default `defaultRetryPolicy`). */
  retry?: Partial<RetryPolicy>;
  operationPolling?: Partial<OperationPolling>;
}

/** A {@link CloudRunPort} holding two gRPC clients, to be closed once no longer needed. */
export interface CloudRunAdapter extends CloudRunPort {
  testPermissions: NonNullable<CloudRunPort['testPermissions']>;
  probeOperations: NonNullable<CloudRunPort['probeOperations']>;
  getRevisionMax: NonNullable<CloudRunPort['getRevisionMax']>;
  close(): Promise<void>;
}

export function createCloudRunAdapter(options: CloudRunAdapterOptions = {}): CloudRunAdapter {
  const pageSize = checkPageSize(options.pageSize ?? 100);
  const policy = checkRetryPolicy({ ...defaultRetryPolicy, ...definedOnly(options.retry ?? {}) });
  const polling = checkPolling({
    ...defaultOperationPolling,
    ...definedOnly(options.operationPolling ?? {}),
  });
  const { options: clientOptions } = clientConfig(options);
  const services = new v2.ServicesClient(clientOptions);
  const workerPools = new v2.WorkerPoolsClient(clientOptions);
  const executions = new v2.ExecutionsClient(clientOptions);
  const revisions = new v2.RevisionsClient(clientOptions);
  const reads = readOptions(policy);
  // One page per call: allPages() follows the tokens itself.
  const pages: CallOptions = { ...reads, autoPaginate: false };
  const writes = writeOptions(policy, polling);
  const polls = pollOptions(policy);
  const retries = closingRetries(policy);
  /** A read, tried again on RESOURCE_EXHAUSTED after the delay Google asks for (retry.ts). */
  const read = retries.retry;

  async function fetchService(name: string): Promise<Service> {
    const [service] = await read(() => services.getService({ name }, reads)).catch(
      (error: unknown) => Promise.reject(translateGrpcError(error, `getting service ${name}`)),
    );
    return service;
  }

  /**
   * UpdateService's refusal as a typed error. A stale etag is a ConflictError whatever code says
   * it: Cloud Run documents none; AIP-154 (https://google.aip.dev/154) says a service "must send
   * an ABORTED error response" (the emulator does), but said FAILED_PRECONDITION until 2021
   * (its changelog), the code Cloud Run also may use for other refusals (a deployment in
   * flight). So on a FAILED_PRECONDITION that is not the quota refusal the service is read again:
   * an etag other than the one sent means the service changed (ConflictError, left for the next
   * run); otherwise, or if that read fails, a refusal (RefusedError): nothing was accepted. So
   * is an INVALID_ARGUMENT other than the quota refusal: arguments "problematic regardless of the
   * state of the system"
   * (https://cloud.google.com/java/docs/reference/gax/latest/com.google.api.gax.rpc.InvalidArgumentException),
   * answered with no operation.
   */
  async function writeRefusal(
    error: unknown,
    name: string,
    update: MaxInstancesUpdate,
  ): Promise<Error> {
    const translated = translateGrpcError(
      error,
      `setting max instances of ${name} to ${update.maxInstances}`,
    );
    if (translated instanceof QuotaRejectedError) return translated;
    if (grpcCode(error) === status.INVALID_ARGUMENT)
      return new RefusedError(translated.message, { cause: error });
    if (grpcCode(error) !== status.FAILED_PRECONDITION) return translated;
    const now = await fetchService(name).then(
      (s) => s.etag ?? '',
      () => undefined,
    );
    // Refused, not accepted: FAILED_PRECONDITION means "the operation was rejected because the
    // system is not in a state required for the operation's execution"
    // (https://cloud.google.com/java/docs/reference/gax/latest/com.google.api.gax.rpc.FailedPreconditionException),
    // and no operation came back, so nothing of the write can still apply.
    if (now === undefined || now === update.etag)
      return new RefusedError(translated.message, { cause: error });
    return new ConflictError(
      `${name} changed since it was read (etag ${update.etag}, now ${now}): not written (${translated.message})`,
      { cause: error },
    );
  }

  return {
    async listRegions(project) {
      const name = `projects/${checkedProject(project)}`;
      const locations = await allPages(
        (pageToken) =>
          read(() => services.locationsClient.listLocations({ name, pageSize, pageToken }, pages)),
        `listing the Cloud Run regions of ${name}`,
      );
      const regions = locations.map((l) => l.locationId || lastSegment(l.name ?? ''));
      return [...new Set(regions.filter((r) => r !== ''))].sort();
    },

    async listServices(project, region) {
      const parent = parentOf(project, region);
      const found = await allPages(
        (pageToken) => read(() => services.listServices({ parent, pageSize, pageToken }, pages)),
        `listing the services of ${parent}`,
      );
      ownItems(found, project, region, 'services/', `listing the services of ${parent}`);
      return found.map((s) => toObservedService(s, project, region));
    },

    async getService(project, region, name) {
      const asked = `${parentOf(project, region)}/services/${segment('name', name)}`;
      const service = await fetchService(asked);
      if (!namedUnder(service.name ?? '', project, region, `services/${name}`, /^$/)) {
        throw new UpstreamError(
          `getting service ${asked}: Cloud Run answered with "${cut(service.name ?? '')}", another resource; nothing of it is used`,
        );
      }
      return toObservedService(service, project, region);
    },

    /**
     * `Revisions.GetRevision` (google/cloud/run/v2/revision.proto), name
     * `projects/P/locations/L/services/S/revisions/R`, or a worker pool's
     * `projects/P/locations/L/workerPools/W/revisions/R` (the rpc's other HTTP binding); needs
     * `run.revisions.get`
     * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/get).
     * The revision's own `scaling.max_instance_count`, 0 meaning unset (null), and its own GPU: a
     * Revision carries its own `node_selector`, `containers` and `gpu_zonal_redundancy_disabled`
     * (google/cloud/run/v2/revision.proto), which a later deploy may have changed in the template.
     */
    async getRevisionMax(project, region, service, revision, kind = 'services') {
      const name = `${parentOf(project, region)}/${kind}/${segment('name', service)}/revisions/${segment('revision', revision)}`;
      const [found] = await read(() => revisions.getRevision({ name }, reads)).catch(
        (error: unknown) => Promise.reject(translateGrpcError(error, `getting revision ${name}`)),
      );
      // Another revision's max or GPU would be counted as this one's, as getService refuses.
      if (
        !namedUnder(
          found.name ?? '',
          project,
          region,
          `${kind}/${service}/revisions/${revision}`,
          /^$/,
        )
      ) {
        throw new UpstreamError(
          `getting revision ${name}: Cloud Run answered with "${cut(found.name ?? '')}", another resource; nothing of it is used`,
        );
      }
      return {
        maxInstances: setOrNull(found.scaling?.maxInstanceCount),
        minInstances: setOrNull(found.scaling?.minInstanceCount),
        gpu: gpuOf(found),
      };
    },

    async listWorkerPools(project, region) {
      const parent = parentOf(project, region);
      const found = await allPages(
        (pageToken) =>
          read(() => workerPools.listWorkerPools({ parent, pageSize, pageToken }, pages)),
        `listing the worker pools of ${parent}`,
      );
      ownItems(found, project, region, 'workerPools/', `listing the worker pools of ${parent}`);
      return found.map((w) => toObservedWorkerPool(w, project, region));
    },

    /**
     * One listing per region across the region's jobs (`jobs/-`, which execution.proto documents
     * for ListExecutions); needs `run.executions.list`. Cloud Run keeps completed executions for a
     * while: those with a `completion_time` are left out.
     */
    async listRunningExecutions(project, region) {
      const parent = `${parentOf(project, region)}/jobs/-`;
      const found = await allPages(
        (pageToken) =>
          read(() => executions.listExecutions({ parent, pageSize, pageToken }, pages)),
        `listing the job executions of ${parentOf(project, region)}`,
      );
      ownItems(
        found,
        project,
        region,
        'jobs/',
        `listing the job executions of ${parentOf(project, region)}`,
        /^[^/]+\/executions\/[^/]+$/,
      );
      return found
        .filter((e) => !e.completionTime)
        .map((e) => toObservedJobExecution(e, project, region));
    },

    /**
     * Reads the service, checks the etag, writes a minimal Service and waits for the operation.
     *
     * Why read first: Cloud Run's own enforcement of a stale etag is undocumented (its v2
     * reference says the etag "may be used to detect modification conflict during updates",
     * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services; AIP-154
     * says a mismatch gets ABORTED, FAILED_PRECONDITION before 2021), so a mismatch
     * is caught here (ConflictError, nothing sent); the etag is still sent, for the race between
     * this read and the write. And a masked write of `annotations` replaces the service's whole map,
     * so the governor's annotations are merged into the map of this same read (the caller's state,
     * since the etags match), with the etag guarding it: every user annotation is kept.
     * Annotations read in a reserved namespace are sent back unchanged (dropping them would ask
     * Cloud Run to remove them); no annotations given means the map is not written at all.
     */
    async updateMaxInstances(update) {
      checkUpdate(update);
      const name = `${parentOf(update.project, update.region)}/services/${segment('name', update.name)}`;
      // The caller's fresh read stands in for our own when it gives the annotations it read.
      const current: Pick<Service, 'etag' | 'annotations'> = update.currentAnnotations
        ? { etag: update.etag, annotations: update.currentAnnotations }
        : await fetchService(name);
      const etag = current.etag ?? '';
      if (etag !== update.etag) {
        throw new ConflictError(
          `${name} changed since it was read (etag ${update.etag}, now ${etag}): not written; read it again and decide again`,
        );
      }
      const writeAnnotations = Object.keys(update.annotations).length > 0;
      const service: Service = { name, etag, scaling: { maxInstanceCount: update.maxInstances } };
      if (writeAnnotations) service.annotations = { ...current.annotations, ...update.annotations };
      const paths = ['scaling.max_instance_count', ...(writeAnnotations ? ['annotations'] : [])];

      // Sent again on RESOURCE_EXHAUSTED only, after the delay its RetryInfo asks for (see
      // writeOptions for why that is safe), and never once the caller has given up on it.
      const [operation] = await retries
        .retry(
          () => services.updateService({ service, updateMask: { paths } }, writes),
          update.signal,
        )
        .catch(async (error: unknown) => Promise.reject(await writeRefusal(error, name, update)));
      // google-gax polls the operation with the options of the call that started it; the polls
      // (reads) keep their own: a refused poll tried again on the policy's short backoff, never
      // a long wait.
      operation._callOptions = polls;
      const [updated] = await operation.promise().catch((error: unknown) => {
        const what = `waiting for ${name} to take max instances ${update.maxInstances} (the write was accepted and may still apply)`;
        const translated = translateGrpcError(error, what);
        // Whatever the polling or the operation answers, the write was accepted and may still
        // apply: NOT_FOUND here is the operation's (GetOperation) or the service's after the
        // write, not "the service was never there"; ABORTED or RESOURCE_EXHAUSTED refuse a poll,
        // not the write; and Cloud Run keeps an accepted update's spec when its reconciliation
        // fails (the `reconciling` field of
        // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services).
        return Promise.reject(
          translated instanceof UnavailableError
            ? translated
            : new UnavailableError(translated.message, { cause: error }),
        );
      });
      // A done operation's result "can be either an `error` or a valid `response`... Some services
      // might not provide the result" (google/longrunning/operations.proto,
      // https://github.com/googleapis/googleapis/blob/master/google/longrunning/operations.proto),
      // and google-gax then resolves with an empty object. Read as the service written, that
      // would be a service of no name and no etag (the next write of it refused as unread). So
      // an answer that is not this service is set aside and the service read again: the write
      // is done, and this read is what it left.
      if (
        namedUnder(
          updated.name ?? '',
          update.project,
          update.region,
          `services/${update.name}`,
          /^$/,
        )
      )
        return toObservedService(updated, update.project, update.region);
      const now = await fetchService(name).catch((error: unknown) => {
        const translated = translateGrpcError(error, `reading ${name} after its update`);
        // Unavailable whatever the read's error: the write is done, its result not known.
        return Promise.reject(
          new UnavailableError(
            `${translated.message} (max instances ${update.maxInstances} was written, but the service could not be read again)`,
            { cause: error },
          ),
        );
      });
      return toObservedService(now, update.project, update.region);
    },

    /**
     * `Services.TestIamPermissions`: needs no permission of its own, answers the subset of the
     * permissions asked that the caller holds, and an empty set for a service that does not
     * exist (google/iam/v1/iam_policy.proto; Cloud Run's reference,
     * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/testIamPermissions).
     */
    async testPermissions(project, region, name, permissions) {
      const resource = `${parentOf(project, region)}/services/${segment('name', name)}`;
      const [answer] = await read(() =>
        services.testIamPermissions({ resource, permissions: [...permissions] }, reads),
      ).catch((error: unknown) =>
        Promise.reject(translateGrpcError(error, `testing permissions on ${resource}`)),
      );
      return answer.permissions ?? [];
    },

    /**
     * `Operations.GetOperation` on an operation that does not exist (a fresh UUID, the form of
     * Cloud Run's operation ids): Google checks the permission before it looks the resource up
     * ("Permission must be checked prior to checking if the resource or parent exists",
     * AIP-211, https://google.aip.dev/211), so NOT_FOUND means `run.operations.get` is held and
     * PERMISSION_DENIED that it is not. Nothing is written.
     */
    async probeOperations(project, region) {
      const name = `${parentOf(project, region)}/operations/${randomUUID()}`;
      try {
        // The typing asks for the message class; the client takes a plain object, as everywhere.
        const request = { name } as protos.google.longrunning.GetOperationRequest;
        await read(() => services.getOperation(request, reads));
      } catch (error) {
        const translated = translateGrpcError(
          error,
          `reading operation ${name} (a probe of run.operations.get)`,
        );
        if (translated instanceof NotFoundError) return;
        throw translated;
      }
    },

    close: async () => {
      retries.close();
      // Their operations clients' channels too, opened as they were built, whether or not the run
      // called them (client-config.ts closeClients).
      await closeClients([services, workerPools, executions, revisions]);
    },
  };
}

/**
 * Reads (List, Get, and the locations mixin) are idempotent: retried on UNAVAILABLE and
 * DEADLINE_EXCEEDED with exponential backoff and full jitter, each attempt with its own deadline;
 * on RESOURCE_EXHAUSTED (429: too many reads this minute) by `withRetryInfo` around the call,
 * which waits the delay Google's RetryInfo asks for. The client's own defaults would
 * retry GetService and ListServices on UNAVAILABLE alone, for up to ten minutes.
 */
function readOptions(policy: RetryPolicy): CallOptions {
  // As every adapter's reads (retry.ts): with one attempt, no retry loop at all, whose failure
  // google-gax would word as "Exceeded maximum number of retries" after a single call.
  return gaxReadOptions(policy);
}

/**
 * UpdateService is sent again on RESOURCE_EXHAUSTED only, by `withRetryInfo` around the call
 * (retry.ts): after the delay the refusal's `google.rpc.RetryInfo` asks for ("Clients should wait
 * until `retry_delay` amount of time has passed since receiving the error response before
 * retrying",
 * https://cloud.google.com/dotnet/docs/reference/Google.Api.CommonProtos/latest/Google.Rpc.RetryInfo),
 * plus the policy's jittered backoff, within the minute every call waits at most
 * (MAX_RETRY_INFO_DELAY_MS), and never once the caller has given up on the write (its
 * `signal`). google-gax's own loop would wait its backoff alone, spending every attempt within a
 * per-minute quota's refusal ("Write requests per minute per region",
 * https://cloud.google.com/run/quotas), so it is given no code to retry here.
 *
 * Sending again is safe only for a RESOURCE_EXHAUSTED answered to UpdateService itself: no
 * operation was returned, so Cloud Run accepted nothing to apply, and RetryInfo itself speaks of
 * "retrying the same request" after the delay. Google states no more than that, so the request
 * sent again is the very same one (the same etag, an absolute max and the whole annotation map,
 * its `written-at` stamp included): had the first applied after all, the second would be refused
 * as stale or set the same values. A refused poll of an accepted write never sends the write
 * again (pollOptions).
 * UNAVAILABLE and DEADLINE_EXCEEDED are not sent again: the server may have applied the write
 * before the answer was lost, and a blind resend would then meet a new etag (ABORTED) or a
 * service still reconciling, hiding what happened; the error goes back to the reconcile step,
 * which reads again and decides again. A request that never left the client (no stream opened,
 * or a stream refused before the server application saw it) is retried by @grpc/grpc-js itself
 * ("transparent retry"), so that case needs nothing here; and the GetService just before the
 * write, itself retried, fails first when the channel is down.
 */
function writeOptions(policy: RetryPolicy, polling: OperationPolling): CallOptions {
  return {
    timeout: policy.attemptTimeoutMs,
    retry: { retryCodes: [], backoffSettings: gaxBackoff(policy) },
    longrunning: {
      initialRetryDelayMillis: polling.initialDelayMs,
      retryDelayMultiplier: 1.5,
      maxRetryDelayMillis: polling.maxDelayMs,
      totalTimeoutMillis: polling.timeoutMs,
    },
  };
}

/**
 * The operation's polls (GetOperation, reads): a deadline per attempt, and UNAVAILABLE,
 * DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED tried again on google-gax's short backoff. GetOperation
 * is idempotent, so a poll lost to a network hiccup is retried as every read is ("clients should
 * retry ... UNAVAILABLE" for requests "for which repeated runs would not cause unintended state
 * changes", https://google.aip.dev/194; google-gax's own Operations client retries GetOperation
 * on UNAVAILABLE and DEADLINE_EXCEEDED, which these options replace): google-gax ends the wait at
 * a poll's first error, and an accepted write that applied would read as one that may not have.
 * RESOURCE_EXHAUSTED is not tried after the delays RetryInfo asks for, as the write is: a poll
 * never waits a long delay, since the write was accepted and a failed poll only makes it
 * uncertain (its message says the write may still apply).
 */
function pollOptions(policy: RetryPolicy): CallOptions {
  return {
    timeout: policy.attemptTimeoutMs,
    retry: {
      retryCodes: [status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED],
      backoffSettings: gaxBackoff(policy),
    },
  };
}

/** A Cloud Run service as the governor reads it; project and region are the caller's. */
function toObservedService(service: Service, project: string, region: string): ObservedService {
  const resourceName = service.name ?? '';
  const scaling = service.scaling ?? {};
  const template = service.template ?? {};
  const scalingMode = scalingModeOf(scaling.scalingMode);
  const manual = scaling.manualInstanceCount;
  return {
    project,
    region,
    name: lastSegment(resourceName),
    resourceName,
    gpu: gpuOf(template),
    labels: { ...service.labels },
    annotations: { ...service.annotations },
    serviceMaxInstances: setOrNull(scaling.maxInstanceCount),
    revisionMaxInstances: setOrNull(template.scaling?.maxInstanceCount),
    ...revisionsOf(routingOfService(service)),
    serviceMinInstances: setOrNull(scaling.minInstanceCount),
    revisionMinInstances: setOrNull(template.scaling?.minInstanceCount),
    scalingMode,
    // An explicit 0 matters in MANUAL mode (scaled to zero by hand); elsewhere 0 means unset.
    manualInstanceCount:
      typeof manual === 'number' && (manual > 0 || scalingMode === 'MANUAL') ? manual : null,
    reconciling: service.reconciling === true,
    etag: service.etag ?? '',
    generation: int64(service.generation),
    observedGeneration: int64(service.observedGeneration),
    updateTime: isoTime(service.updateTime),
    createTime: isoTime(service.createTime),
    containers: (template.containers ?? []).map(toObservedContainer),
    concurrency: setOrNull(template.maxInstanceRequestConcurrency),
  };
}

/**
 * Where the instances of a service or a worker pool go: the targets of its traffic or instance
 * split as observed (`traffic_statuses`, `instance_split_statuses`), else as asked (`traffic`,
 * `instance_splits`), and its latest created and latest ready revisions.
 */
interface Routing {
  targets: readonly {
    revision?: string | null;
    percent?: number | null;
    tag?: string | null;
    /** A LATEST target: the latest ready revision. */
    latest: boolean;
  }[];
  latestReadyRevision?: string | null;
  latestCreatedRevision?: string | null;
}

/**
 * A service's traffic: `traffic_statuses` (the observed routing), else `traffic`, which "If
 * traffic is empty or not provided, defaults to 100% traffic to the latest `Ready` Revision"
 * (google/cloud/run/v2/service.proto).
 */
function routingOfService(service: Service): Routing {
  const statuses = service.trafficStatuses ?? [];
  const targets = statuses.length > 0 ? statuses : (service.traffic ?? []);
  return {
    // The enum arrives by name from the library, by number from a raw decode.
    targets: targets.map((t) => ({
      ...t,
      latest: t.type === 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST' || (t.type as unknown) === 1,
    })),
    latestReadyRevision: service.latestReadyRevision,
    latestCreatedRevision: service.latestCreatedRevision,
  };
}

/**
 * A worker pool's instance split: `instance_split_statuses` (the observed one), else
 * `instance_splits`, which "If instance split is empty or not provided, defaults to 100%
 * instances assigned to the latest `Ready` Revision" (google/cloud/run/v2/worker_pool.proto). A
 * split has no tags. Cloud Run "lets you specify which revisions receive instances and specify
 * instance allocation percentages for each revision"
 * (https://cloud.google.com/run/docs/managing/workerpool-instance-splits-rollbacks).
 */
function routingOfWorkerPool(pool: WorkerPool): Routing {
  const statuses = pool.instanceSplitStatuses ?? [];
  const targets = statuses.length > 0 ? statuses : (pool.instanceSplits ?? []);
  return {
    targets: targets.map((t) => ({
      revision: t.revision,
      percent: t.percent,
      latest: t.type === 'INSTANCE_SPLIT_ALLOCATION_TYPE_LATEST' || (t.type as unknown) === 1,
    })),
    latestReadyRevision: pool.latestReadyRevision,
    latestCreatedRevision: pool.latestCreatedRevision,
  };
}

/**
 * Only targets that take a share or carry a tag (tagged revisions "are started",
 * https://cloud.google.com/run/docs/configuring/max-instances), each with the revision it names, a
 * LATEST target naming the latest READY revision (traffic_target.proto, instance_split.proto): ''
 * when it names none.
 */
function trafficTargets(routing: Routing): { revision: string; latest: boolean; share: boolean }[] {
  const ready = lastSegment(routing.latestReadyRevision ?? '');
  return routing.targets
    .filter((t) => (t.percent ?? 0) > 0 || Boolean(t.tag))
    .map((t) => ({
      revision: t.latest ? ready : lastSegment(t.revision ?? ''),
      latest: t.latest,
      share: (t.percent ?? 0) > 0,
    }));
}

/**
 * When the template does not serve, which revisions can hold instances (below); when it serves,
 * the revisions only tagged beside it, if any, which are started all the same and counted apart
 * (`countedRevisions`, core/revision-pools.ts); else nothing.
 */
function revisionsOf(
  routing: Routing,
): { templateServes?: false; servingRevisions: ServingRevision[] } | Record<string, never> {
  const revisions = servingRevisionsOf(routing);
  if (!templateServes(routing)) return { templateServes: false, servingRevisions: revisions };
  const tagged = revisions.filter((r) => !r.inSplit);
  return tagged.length > 0 ? { servingRevisions: tagged } : {};
}

/**
 * Whether the revision the template describes (the latest created) is the one serving, so that
 * its `scaling.max_instance_count` and GPU are the serving revision's: the template describes the
 * latest revision only, and each revision keeps its own ("applies only on a new revision"). It
 * serves when every target that takes a share of the traffic (a worker pool: instances) is LATEST
 * or names the latest created revision, and the latest created revision is the latest ready one.
 * A target that only carries a tag (0%) changes nothing of that: it sends the split nothing, and
 * its revision is started apart, outside the service-level max ("Tagged revisions are started,
 * but only count toward the service-level maximum instances if they are a part of a traffic
 * split", https://cloud.google.com/run/docs/configuring/max-instances), so it is listed and
 * counted apart whether the template serves or not (`revisionsOf`). Otherwise (traffic or
 * instances pinned on an older revision, as `gcloud run deploy --no-traffic` leaves it, a split,
 * a rollout in progress, or a latest revision that failed) the template's max is left aside: the
 * service is counted at its service-level max, which bounds every revision in the traffic split ("divided among all revisions with specified traffic",
 * ServiceScaling.max_instance_count in vendor_settings.proto), or without one at its serving
 * revisions' own max (`servingRevisionsOf`, read by observe/serving-revisions.ts; `maxInForce` in
 * core/pool.ts); and each serving revision of another pool than the template's is counted in its
 * own (core/revision-pools.ts).
 */
function templateServes(routing: Routing): boolean {
  const created = lastSegment(routing.latestCreatedRevision ?? '');
  const ready = lastSegment(routing.latestReadyRevision ?? '');
  if (created !== '' && ready !== '' && created !== ready) return false;
  return trafficTargets(routing).every(
    (t) => !t.share || t.latest || (created !== '' && t.revision === created),
  );
}

/**
 * The revisions that can hold instances: those the traffic (the instance split) sends a share to
 * or tags (`trafficTargets`), and with no target at all the latest ready one. A revision only
 * tagged (`inSplit: false`) is started but not bounded by the service-level max ("Tagged revisions
 * are started, but only count toward the service-level maximum instances if they are a part of a
 * traffic split", https://cloud.google.com/run/docs/configuring/max-instances): it is counted
 * apart from its service, in its pool (`countedRevisions`, core/revision-pools.ts).
 */
function servingRevisionsOf(routing: Routing): ServingRevision[] {
  const named = routing.targets.length > 0;
  const out = new Map<string, ServingRevision>();
  const add = (name: string, inSplit: boolean) => {
    if (name === '') return;
    const seen = out.get(name);
    out.set(name, { name, inSplit: inSplit || (seen?.inSplit ?? false) });
  };
  for (const t of trafficTargets(routing)) add(t.revision, t.share);
  if (!named) add(lastSegment(routing.latestReadyRevision ?? ''), true);
  return [...out.values()];
}

/**
 * A container's resources and startup probe, for the fleet audit. Probe fields Cloud Run leaves
 * at 0 on the wire take the API's documented defaults (period 10 s, failure threshold 3, timeout
 * 1 s, no initial delay), as Cloud Run applies them.
 */
export function toObservedContainer(container: Container, index: number): ObservedContainer {
  const limits = container.resources?.limits ?? {};
  const cpu = nonEmpty(limits['cpu']);
  const memory = nonEmpty(limits['memory']);
  const gpuLimit = nonEmpty(limits['nvidia.com/gpu']);
  const probe = container.startupProbe;
  const cpuIdle = container.resources?.cpuIdle;
  return {
    name: container.name || `container-${index}`,
    cpu,
    vcpus: cpu === null ? null : parseCpu(cpu),
    memory,
    memoryBytes: memory === null ? null : parseMemory(memory),
    gpuLimit,
    gpus: gpuLimit === null ? 0 : (parseGpuCount(gpuLimit) ?? 0),
    // "Determines whether CPU is only allocated during requests (true by default). However, if
    // ResourceRequirements is set, the caller must explicitly set this field to true to preserve
    // the default behavior." (ResourceRequirements.cpu_idle, google/cloud/run/v2/k8s.min.proto):
    // a container sent without resources has CPU throttled, as Cloud Run's default.
    cpuIdle: container.resources == null ? true : typeof cpuIdle === 'boolean' ? cpuIdle : null,
    startupProbe: probe
      ? {
          periodSeconds: probe.periodSeconds || 10,
          failureThreshold: probe.failureThreshold || 3,
          initialDelaySeconds: probe.initialDelaySeconds || 0,
          timeoutSeconds: probe.timeoutSeconds || 1,
        }
      : null,
  };
}

function nonEmpty(value: string | null | undefined): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

/**
 * A worker pool as the governor counts it: its instances are its `manual_instance_count`, an
 * `optional` field (WorkerPoolScaling, google/cloud/run/v2/vendor_settings.proto). Left unset, the
 * pool runs Cloud Run's default, one instance ("When you deploy a worker pool without enabling CPU
 * autoscaling, Cloud Run uses manual scaling with 1 instance by default",
 * https://cloud.google.com/run/docs/configuring/workerpools/cpu-autoscaling), never none; an
 * explicit 0 is a pool scaled to zero by hand.
 */
function toObservedWorkerPool(
  pool: WorkerPool,
  project: string,
  region: string,
): ObservedWorkerPool {
  const manual = pool.scaling?.manualInstanceCount;
  return {
    project,
    region,
    name: lastSegment(pool.name ?? ''),
    gpu: gpuOf(pool.template ?? {}),
    manualInstanceCount: typeof manual === 'number' ? manual : DEFAULT_WORKER_POOL_INSTANCES,
    ...revisionsOf(routingOfWorkerPool(pool)),
  };
}

/** The instances of a worker pool that sets no count (see toObservedWorkerPool). */
const DEFAULT_WORKER_POOL_INSTANCES = 1;

/**
 * A job execution: its task template declares the GPU as a revision template does (node selector,
 * container limit, `gpu_zonal_redundancy_disabled`). That field is `optional` on a TaskTemplate;
 * unset, the task is counted in the pool WITHOUT zonal redundancy: Google's jobs GPU page
 * (https://cloud.google.com/run/docs/configuring/jobs/gpu) says GPU jobs follow no-zonal-redundancy
 * pricing, and public quota errors show GPU jobs drawing on
 * `NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion` (the default is otherwise unconfirmed).
 */
export function toObservedJobExecution(
  execution: Execution,
  project: string,
  region: string,
): ObservedJobExecution {
  const counts = (n: number | null | undefined): number => (typeof n === 'number' && n > 0 ? n : 0);
  return {
    project,
    region,
    job: lastSegment(execution.job ?? '') || jobOf(execution.name ?? ''),
    name: lastSegment(execution.name ?? ''),
    gpu: gpuOf(execution.template ?? {}, false),
    runningTasks: counts(execution.runningCount),
    parallelism: counts(execution.parallelism),
    taskCount: counts(execution.taskCount),
  };
}

/** `projects/P/locations/R/jobs/J/executions/E` → J. */
function jobOf(name: string): string {
  return /\/jobs\/([^/]+)\/executions\//.exec(name)?.[1] ?? '';
}

/**
 * The GPU of a revision template (a service's or a worker pool's) or of a job's task template: its
 * node selector's accelerator, the `nvidia.com/gpu` limit of the container that has one (Cloud Run
 * allows one such container; the limit is required with an accelerator, 1 is assumed if it cannot
 * be read), and whether zonal redundancy was turned off (`zonalWhenUnset` when the field is not
 * sent). No accelerator: no GPU.
 */
function gpuOf(
  template: {
    nodeSelector?: protos.google.cloud.run.v2.INodeSelector | null;
    containers?: Container[] | null;
    gpuZonalRedundancyDisabled?: boolean | null;
  },
  zonalWhenUnset = true,
): GpuSpec | null {
  const accelerator = template.nodeSelector?.accelerator;
  if (!accelerator) return null;
  const limit = (template.containers ?? [])
    .map((c) => c.resources?.limits?.['nvidia.com/gpu'])
    .find((v) => v !== undefined && v !== '');
  // Read as the audit reads it (parseGpuCount): "1e3" or "0x10" is no whole number of GPUs.
  const count = limit === undefined ? null : parseGpuCount(limit);
  return {
    accelerator,
    count: count !== null && count > 0 ? count : 1,
    zonalRedundancy:
      typeof template.gpuZonalRedundancyDisabled === 'boolean'
        ? !template.gpuZonalRedundancyDisabled
        : zonalWhenUnset,
  };
}

/** `ServiceScaling.ScalingMode` may arrive as its name or its number (proto: 0, 1, 2). */
function scalingModeOf(mode: unknown): ObservedService['scalingMode'] {
  if (mode === 'AUTOMATIC' || mode === 1) return 'AUTOMATIC';
  if (mode === 'MANUAL' || mode === 2) return 'MANUAL';
  return 'UNSPECIFIED';
}

/** Scaling counts: 0 (the proto default) means unset. */
function setOrNull(value: number | null | undefined): number | null {
  return typeof value === 'number' && value > 0 ? value : null;
}

/** An int64 field: a number, a decimal string, or a Long, depending on the decoder. */
function int64(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number(value);
  if (typeof value === 'object' && value !== null) return Number(String(value));
  return 0;
}

/**
 * A Timestamp "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z inclusive"
 * and its nanos from 0 to 999,999,999 (google/protobuf/timestamp.proto,
 * https://protobuf.dev/reference/protobuf/google.protobuf/#timestamp): every other reads as no time
 * (unknown), never as a date nobody set, nor as a RangeError that would lose the whole listing.
 */
const TIMESTAMP_SECONDS = { min: -62_135_596_800, max: 253_402_300_799 };

function isoTime(ts: protos.google.protobuf.ITimestamp | null | undefined): string | null {
  if (!ts) return null;
  const seconds = int64(ts.seconds);
  const nanos = ts.nanos ?? 0;
  if (
    !Number.isInteger(seconds) ||
    seconds < TIMESTAMP_SECONDS.min ||
    seconds > TIMESTAMP_SECONDS.max ||
    !Number.isInteger(nanos) ||
    nanos < 0 ||
    nanos > 999_999_999
  )
    return null;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6)).toISOString();
}

/**
 * A listing is the parent's own collection: every item named under the project and region asked
 * and the collection (`namedUnder`), then one segment (for job executions, `J/executions/E` under
 * `jobs/`), each once. Cloud Run names resources
 * `projects/{project}/locations/{location}/services/{service_id}` (Service.name,
 * https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services) and lists "the
 * Services for a given project and location" (ListServicesRequest.parent). An item of another
 * project or region would be counted, and written, as this region's; one twice would be counted
 * twice. Neither can be read as the region's listing: an UpstreamError, so the region is left
 * out (observe fails static for it) with the names that were wrong.
 */
function ownItems(
  items: readonly { name?: string | null }[],
  project: string,
  region: string,
  collection: string,
  what: string,
  rest = /^[^/]+$/,
): void {
  const seen = new Set<string>();
  for (const { name } of items) {
    const full = name ?? '';
    if (!namedUnder(full, project, region, collection, rest)) {
      throw new UpstreamError(
        `${what}: Cloud Run listed "${cut(full)}", which is not under projects/${project}/locations/${region}/${collection.slice(0, -1)}; the listing is not used`,
      );
    }
    // The same resource whether its project is named by id or by number.
    const key = full.slice(full.indexOf('/locations/'));
    if (seen.has(key)) {
      throw new UpstreamError(
        `${what}: Cloud Run listed ${cut(full)} twice; the listing is not used`,
      );
    }
    seen.add(key);
  }
}

/** A name quoted in an error, cut to a readable length. */
function cut(text: string): string {
  return cutText(text, 200);
}

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/** `projects/P/locations/R`; Cloud Run lists one region at a time (no `-` wildcard). */
function parentOf(project: string, region: string): string {
  if (region.trim() === '-') {
    throw new InputError('Invalid region', [
      { path: 'region', message: 'Cloud Run lists one region at a time: "-" is not accepted' },
    ]);
  }
  return `projects/${checkedProject(project)}/locations/${segment('region', region)}`;
}

function checkedProject(project: string): string {
  const faults = projectFaults(project);
  if (faults.length > 0) throw new InputError('Invalid project', faults);
  return project;
}

/** One path segment of a resource name: not empty, no slash. */
function segment(path: string, value: string): string {
  if (value === '' || value.includes('/')) {
    throw new InputError(`Invalid ${path}`, [
      { path, message: `must be one non-empty name without "/", not "${value}"` },
    ]);
  }
  return value;
}

function checkUpdate(update: MaxInstancesUpdate): void {
  const faults: Fault[] = [];
  const { maxInstances, etag, annotations } = update;
  // No documented ceiling but the field's int32 and the quotas, which Cloud Run itself checks: a
  // service's max is "the minimum of ... regional GPU quota ... divided by the GPU configuration"
  // (https://cloud.google.com/run/docs/configuring/max-instances-limits).
  if (!Number.isInteger(maxInstances) || maxInstances < 1 || maxInstances > MAX_INSTANCE_COUNT) {
    faults.push({
      path: 'maxInstances',
      message: `must be an integer from 1 to ${MAX_INSTANCE_COUNT}, not ${maxInstances}`,
    });
  }
  if (etag === '') faults.push({ path: 'etag', message: 'must be the etag read before deciding' });
  for (const [key, value] of Object.entries(annotations)) {
    const reserved = reservedAnnotationPrefix(key);
    if (reserved !== undefined) {
      faults.push({
        path: `annotations.${key}`,
        message: `the ${reserved} namespace is reserved by Cloud Run and cannot be written`,
      });
    }
    if (typeof value !== 'string') {
      faults.push({ path: `annotations.${key}`, message: 'must be a string' });
    }
  }
  if (faults.length > 0)
    throw new InputError(`Invalid max instances update of ${update.name}`, faults);
}

function checkPageSize(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    throw new InputError('Invalid Cloud Run adapter options', [
      { path: 'pageSize', message: `must be an integer from 1 to 1000, not ${pageSize}` },
    ]);
  }
  return pageSize;
}

function checkPolling(polling: OperationPolling): OperationPolling {
  const faults: Fault[] = [];
  for (const [path, value] of Object.entries(polling)) {
    if (!Number.isFinite(value) || value <= 0) {
      faults.push({
        path: `operationPolling.${path}`,
        message: `must be a number of milliseconds above 0, not ${value}`,
      });
    }
  }
  if (faults.length > 0) throw new InputError('Invalid Cloud Run adapter options', faults);
  return polling;
}
