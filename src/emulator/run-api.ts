import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { answerOf, type EmulatorContext, type WriteRecord } from './context.js';
import { annotationsFault, fleetRegions, isReservedAnnotation } from './fleet.js';
import {
  effectiveMax,
  gpusPerInstance,
  jobExecutions,
  revisionDeletion,
  workerPoolRevisions,
  type ServiceKey,
} from './model.js';
import { testServicePermissions } from './iam.js';
import {
  camelToSnake,
  encodeWith,
  maskPathMaps,
  outputOnlyFields,
  runServiceType,
  SERVICES,
} from './protos.js';
import { gpuQuotaId } from './quotas-api.js';
import { MAX_INSTANCE_COUNT } from '../core/service.js';
import { compareText } from '../core/pool.js';
import {
  executionResource,
  jobResource,
  revisionResource,
  serviceRevisions,
  serviceResource,
  workerPoolResource,
  workerPoolRevisionResource,
} from './resources.js';
import {
  bool,
  field,
  int,
  invalid,
  notEmulated,
  isSet,
  notFound,
  listPaging,
  paginate,
  permissionDenied,
  requireFleetProject,
  RpcError,
  stringMap,
  strings,
  text,
  type Message,
  type Handlers,
  shown,
  checkSegment,
} from './rpc.js';

/**
 * Cloud Run Admin API v2 (Services, WorkerPools, Jobs and Executions, read-only for the last two)
 * and the long-running operations it returns.
 */

const PARENT = /^projects\/([^/]+)\/locations\/([^/]+)$/;
const SERVICE_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/services\/([^/]+)$/;
const OPERATION_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/operations\/[^/]+$/;
const SERVICE_TYPE = 'type.googleapis.com/google.cloud.run.v2.Service';
const REVISION_TYPE = 'type.googleapis.com/google.cloud.run.v2.Revision';

/** Update-mask paths the emulator accepts, with the camelCase spelling some clients send. */
const MASK_PATHS: Readonly<Record<string, 'max' | 'annotations'>> = {
  'scaling.max_instance_count': 'max',
  'scaling.maxInstanceCount': 'max',
  annotations: 'annotations',
};

/**
 * The project and region of a List call's `parent` (`projects/P/locations/R`), checked; a project
 * outside the fleet is refused for `permission` on `resource` (the request's parent: a job's for
 * ListExecutions).
 */
function parseParent(
  ctx: EmulatorContext,
  parent: string,
  what: string,
  permission: string,
  resource = parent,
): { project: string; region: string } {
  const m = PARENT.exec(parent);
  if (!m)
    throw invalid(
      `parent must look like projects/{project}/locations/{location}, got "${shown(parent)}"`,
    );
  const [, project = '', region = ''] = m;
  checkSegment('project', 'the project of parent', project);
  if (region !== '-') checkSegment('id', 'the location of parent', region);
  if (region === '-') {
    throw invalid(
      `Listing ${what} across all locations (location "-") is not supported: list each region, projects/${project}/locations/{region}`,
    );
  }
  requireFleetProject(ctx.model.fleet.projects, project, permission, resource);
  // Cloud Run refuses a location where it does not run: "Error 400: region: Unsupported region
  // northamerica-south1" with a BadRequest field violation on `region`
  // (https://github.com/turbot/steampipe-plugin-gcp/issues/696), not an empty list. The
  // emulator's Cloud Run runs where its ListLocations says, the regions of the project's fleet;
  // any other location (a misspelt region among them) is refused the same way.
  const inFleet = ctx.model.fleet.projects.find((p) => p.id === project);
  const regions = inFleet ? fleetRegions(inFleet, ctx.model.listServices(project)) : [];
  if (!regions.includes(region)) {
    throw invalid(
      `region: Unsupported region ${shown(region)} (Cloud Run runs in ${regions.join(', ') || 'no region'} for project ${project}, as ListLocations answers)`,
    );
  }
  return { project, region };
}

/**
 * `show_deleted` of a List request: "If true, returns deleted (but unexpired) resources along with
 * active ones" (ListServicesRequest, and the same field of ListWorkerPools, ListJobs and
 * ListExecutions, in google/cloud/run/v2/*.proto). The emulator keeps no deleted resource to list:
 * UNIMPLEMENTED, never the live ones alone as if none had been deleted.
 */
function refuseShowDeleted(request: Message): void {
  if (bool(request, 'show_deleted'))
    throw notEmulated('show_deleted', 'the emulator keeps no deleted resources to list');
}

function parseServiceName(name: string): ServiceKey {
  const m = SERVICE_NAME.exec(name);
  if (!m)
    throw invalid(
      `name must look like projects/{project}/locations/{location}/services/{service}, got "${shown(name)}"`,
    );
  const [, project = '', region = '', service = ''] = m;
  // Resource ids checked before anything is looked up (AIP-122; the rules are in checkSegment).
  checkSegment('project', 'the project of name', project);
  checkSegment('id', 'the location of name', region);
  checkSegment('service', 'the service id of name', service);
  return { project, region, name: service };
}

function renderService(ctx: EmulatorContext, key: ServiceKey): Message {
  const s = ctx.model.getService(key);
  if (!s)
    throw notFound(
      `Resource 'projects/${key.project}/locations/${key.region}/services/${key.name}' was not found`,
    );
  const reconciling = ctx.reconciling(s);
  ctx.monitor.saw(key, reconciling);
  return serviceResource(s, reconciling, s.updateTime);
}

function packService(service: Message): { type_url: string; value: Buffer } {
  return { type_url: SERVICE_TYPE, value: encodeWith(SERVICES.runServices, 'GetService', service) };
}

/**
 * The operation as GetOperation (and UpdateService, `created`) answer it. The answer that creates
 * it is done only when operations take no time: read against the clock, a handler slowed past
 * the operation's delay (a loaded machine) answered done, and its caller never polled, where
 * the same call on an idle machine polls.
 */
function operationMessage(ctx: EmulatorContext, name: string, created = false): Message {
  const op = ctx.operations.get(name);
  // An operation of a service deleted since (POST /delete) goes with it: Google does not say how
  // long it keeps either, and answering it would need a service that is no more.
  if (!op || !ctx.model.getService(op.service))
    throw notFound(`Operation ${shown(name)} was not found`);
  const done = created ? op.doneAt <= op.createdAt : ctx.wallNow() >= op.doneAt;
  const kept = op.revision === undefined && done ? op.result : undefined;
  // The kept result shows the service not reconciling (updateService): what the caller now saw
  // of it, as a read that renders the service tells the monitor.
  if (kept !== undefined) ctx.monitor.saw(op.service, false);
  const packed =
    op.revision !== undefined
      ? packRevision(op.revision)
      : (kept ?? packService(renderService(ctx, op.service)));
  const message: Message = { name: op.name, metadata: packed, done };
  if (done && op.error) message['error'] = op.error;
  else if (done) message['response'] = packed;
  return message;
}

function packRevision(revision: Message): { type_url: string; value: Buffer } {
  return {
    type_url: REVISION_TYPE,
    value: encodeWith(SERVICES.runRevisions, 'GetRevision', revision),
  };
}

let cachedOutputOnly: ReadonlySet<string> | undefined;
/**
 * The output-only fields of google.cloud.run.v2.Service (uid, generation, reconciling, uri,
 * conditions...): a request that carries them is not refused for it, they are ignored
 * (google/api/field_behavior.proto, OUTPUT_ONLY: "the server *must* ignore it and *must not*
 * throw an error as a result of the field's presence").
 */
function serviceOutputOnly(): ReadonlySet<string> {
  cachedOutputOnly ??= outputOnlyFields(
    '@google-cloud/run',
    'google/cloud/run/v2/service.proto',
    'Service',
  );
  return cachedOutputOnly;
}

/** Service.annotations as Cloud Run holds them (see annotationsFault): INVALID_ARGUMENT otherwise. */
function checkAnnotations(annotations: Record<string, string>): void {
  const fault = annotationsFault(annotations);
  if (fault) throw invalid(`annotations: ${fault}`);
}

function updateService(ctx: EmulatorContext, request: Message): Message {
  const service = field(request, 'service');
  if (!service) throw invalid('service is required');
  const key = parseServiceName(text(service, 'name'));
  requireFleetProject(
    ctx.model.fleet.projects,
    key.project,
    'run.services.update',
    text(service, 'name'),
  );
  const s = ctx.model.getService(key);
  if (!s) {
    if (request['allow_missing'] === true) {
      throw new RpcError(
        status.UNIMPLEMENTED,
        'UpdateService with allow_missing (creating a service) is not emulated',
      );
    }
    throw notFound(`Resource '${shown(text(service, 'name'))}' was not found`);
  }
  const paths = strings(field(request, 'update_mask'), 'paths');
  // "Update masks must support a special value `*`, meaning full replacement (the equivalent of
  // PUT)" (AIP-134, https://google.aip.dev/134): a whole replacement, as no mask is, and as valid.
  if (paths.length === 0 || paths.includes('*')) {
    throw new RpcError(
      status.UNIMPLEMENTED,
      `UpdateService ${paths.length === 0 ? 'without an update_mask' : 'with the update_mask "*"'} (a whole-service replacement that creates a revision) is not emulated: send update_mask "scaling.max_instance_count" and/or "annotations"`,
    );
  }
  // A path that maps to no field of Service, at any depth, is the client's error: "return an
  // INVALID_ARGUMENT error if any path is unmappable" (google/protobuf/field_mask.proto, "Field
  // Mask Verification"). One that names a field the emulator does not write (labels, template...)
  // is valid on Cloud Run: UNIMPLEMENTED.
  const unsupported = paths.filter((p) => MASK_PATHS[p] === undefined);
  const unknown = unsupported.filter(
    (p) => !maskPathMaps(runServiceType(), p.split('.').map(camelToSnake)),
  );
  if (unknown.length > 0) {
    throw invalid(
      `update_mask path(s) ${shown(unknown.join(', '))} name no field of google.cloud.run.v2.Service`,
    );
  }
  if (unsupported.length > 0) {
    throw new RpcError(
      status.UNIMPLEMENTED,
      `update_mask path(s) ${shown(unsupported.join(', '))} are not emulated: only scaling.max_instance_count and annotations (which create no new revision)`,
    );
  }
  const wants = new Set(paths.map((p) => MASK_PATHS[p]));
  // Fields outside the mask: AIP-161 (https://google.aip.dev/161) says a mask lets a service
  // "ignore the rest, even if the user sends new values", but Cloud Run does not do so for the
  // whole fetched Service: sent with update_mask "scaling.minInstanceCount" it answered 409
  // "Revision named '...' with different configuration already exists"
  // (https://github.com/googleapis/google-cloud-python/issues/14259). So the template is refused as
  // reported (ALREADY_EXISTS), and any other field outside the minimal Service too, since what
  // Cloud Run does with it is undocumented: the emulator fails safe, and the governor sends
  // {name, etag, scaling.max_instance_count, annotations} only (src/adapters/cloud-run.ts).
  // Output-only fields are ignored, never refused (serviceOutputOnly).
  const { template, ...rest } = service;
  if (isSet(template)) {
    const revision = text(field(service, 'template'), 'revision') || 'the serving revision';
    throw new RpcError(
      status.ALREADY_EXISTS,
      `Revision named '${revision}' with different configuration already exists: send a minimal Service {name, etag, scaling.max_instance_count, annotations}, not the whole fetched one`,
    );
  }
  for (const [k, v] of Object.entries(rest)) {
    if (
      !['name', 'etag', 'scaling', 'annotations'].includes(k) &&
      !serviceOutputOnly().has(k) &&
      isSet(v)
    ) {
      throw invalid(
        `Service.${k} is set: send a minimal Service {name, etag, scaling.max_instance_count, annotations} (Cloud Run refuses the whole fetched Service even with an update mask)`,
      );
    }
  }
  for (const [k, v] of Object.entries(field(service, 'scaling') ?? {})) {
    if (k !== 'max_instance_count' && isSet(v)) {
      throw invalid(
        `Service.scaling.${camelToSnake(k)} is set: only scaling.max_instance_count can be written here`,
      );
    }
  }
  const scaling = field(service, 'scaling');
  // Arguments wrong whatever the service's state are refused before the state is looked at (a
  // stale etag, ABORTED; an operation in flight, FAILED_PRECONDITION): INVALID_ARGUMENT "indicates
  // arguments that are problematic regardless of the state of the system" (google/rpc/code.proto,
  // https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto). The checks that
  // compare with the service (its min, its pool's quota) come after.
  if (wants.has('max')) {
    const max = int(scaling, 'max_instance_count');
    // An int32 (vendor_settings.proto); above the quota is refused below, with Cloud Run's words.
    if (!Number.isInteger(max) || max < 0 || max > MAX_INSTANCE_COUNT) {
      throw invalid(
        `scaling.max_instance_count must be an integer from 0 (unset) to ${MAX_INSTANCE_COUNT}, got ${max}`,
      );
    }
  }
  if (wants.has('annotations')) {
    checkAnnotations(stringMap(service, 'annotations'));
    const reserved = Object.keys(stringMap(service, 'annotations')).filter(isReservedAnnotation);
    if (reserved.length > 0) {
      throw invalid(
        `annotations ${shown(reserved.join(', '))}: the run.googleapis.com, autoscaling.knative.dev, serving.knative.dev and cloud.googleapis.com namespaces are reserved and cannot be set by users`,
      );
    }
  }
  checkEtag(
    text(service, 'etag'),
    s.etag,
    `${shown(text(service, 'name'))}: the service changed since it was read`,
  );
  if (ctx.reconciling(s)) {
    throw new RpcError(
      status.FAILED_PRECONDITION,
      `Service ${shown(text(service, 'name'))} is reconciling (a deployment or another operation is in progress); retry when it is done`,
    );
  }

  const change: { maxInstances?: number; annotations?: Record<string, string> } = {};
  if (wants.has('max')) {
    const max = int(scaling, 'max_instance_count');
    if (max > 0 && max < s.minInstances) {
      throw invalid(
        `scaling.max_instance_count (${max}) must be greater than or equal to scaling.min_instance_count (${s.minInstances})`,
      );
    }
    const pool = ctx.model.poolOf(s);
    const quota = pool ? ctx.model.quotaFor(pool) : undefined;
    const gpus = gpusPerInstance(s);
    // The max the request specifies is held to the quota: "the maximum number of instances
    // available for your service is the minimum of ... regional GPU quota ... divided by the GPU
    // configuration for the service", which "would allow a deployment ... to specify a maximum
    // of" that many (https://cloud.google.com/run/docs/configuring/max-instances-limits). Whether
    // Cloud Run would let a lower revision-level max excuse a service-level max above the quota
    // is not documented: the emulator does not (fail safe). Writing it back to unset (0) is held
    // to the max then in force.
    const requested =
      (max > 0
        ? max
        : effectiveMax({
            maxInstances: max,
            revisionMaxInstances: s.revisionMaxInstances,
            unsetMax: s.unsetMax,
          })) * gpus;
    if (pool && quota !== undefined && requested > quota) {
      throw invalid(
        `spec.template.spec.containers[0].resources.limits.nvidia.com/gpu: Max instances must be set to ${Math.floor(quota / gpus)} or fewer in order to set GPU requirements in region ${pool.region}. Quota violated: ${gpuQuotaId(pool.accelerator, pool.zonalRedundancy)} requested: ${requested} allowed: ${quota}`,
      );
    }
    change.maxInstances = max;
  }
  if (wants.has('annotations')) {
    change.annotations = stringMap(service, 'annotations');
  }

  const name = `projects/${key.project}/locations/${key.region}/operations/${randomUUID()}`;
  if (request['validate_only'] === true) {
    const preview = serviceResource(
      {
        ...s,
        maxInstances: change.maxInstances ?? s.maxInstances,
        annotations: change.annotations ?? s.annotations,
      },
      false,
      s.updateTime,
    );
    return { name, metadata: packService(preview), done: true, response: packService(preview) };
  }

  const before = { maxInstances: s.maxInstances, annotations: { ...s.annotations }, etag: s.etag };
  const wall = ctx.wallNow();
  const seq = ctx.nextSeq();
  const capBefore = effectiveMax(s);
  const capAfter =
    change.maxInstances === undefined
      ? capBefore
      : effectiveMax({
          maxInstances: change.maxInstances,
          revisionMaxInstances: s.revisionMaxInstances,
          unsetMax: s.unsetMax,
        });
  ctx.monitor.beforeWrite(key, seq, ctx.nowIso(), capBefore, capAfter);
  const outcome = ctx.injector.operationOutcome();
  if (outcome === 'fail') {
    // The operation fails: nothing changes, and polling it ends with the error.
    ctx.operations.set(name, {
      name,
      service: key,
      createdAt: wall,
      doneAt: wall + ctx.settings.operationDelayMs,
      error: { code: status.INTERNAL, message: 'injected: the update operation failed' },
    });
    return operationMessage(ctx, name, true);
  }
  ctx.model.update(key, change);
  ctx.operations.set(name, {
    name,
    service: key,
    // The service as this update leaves it, once its operation is done (OperationRecord.result).
    result: packService(serviceResource(s, false, s.updateTime)),
    createdAt: wall,
    // A hung operation: the change applied, but the operation runs on (the service reconciles).
    doneAt: wall + (outcome === 'hang' ? ctx.injector.hangMs : ctx.settings.operationDelayMs),
  });
  const record: WriteRecord = {
    seq,
    at: ctx.nowIso(),
    wallTime: new Date(wall).toISOString(),
    method: `${SERVICES.runServices}/UpdateService`,
    service: key,
    // Each path once: a mask may repeat a path any number of times (30,000 copies were kept in
    // every write record), and the write is the same.
    updateMask: [...new Set(paths)],
    before,
    after: { maxInstances: s.maxInstances, annotations: { ...s.annotations }, etag: s.etag },
    pool: ctx.poolTotals(s),
  };
  ctx.writes.add(record, JSON.stringify(record).length);
  ctx.monitor.afterWrite(ctx.model, key, seq, ctx.nowIso(), capBefore, effectiveMax(s));
  return operationMessage(ctx, name, true);
}

export function runServicesHandlers(ctx: EmulatorContext): Handlers {
  return {
    ListServices: (request) => {
      const { project, region } = parseParent(
        ctx,
        text(request, 'parent'),
        'services',
        'run.services.list',
      );
      refuseShowDeleted(request);
      const fleetAnswer = (): Message => {
        const all = ctx.model.listServices(project).filter((s) => s.region === region);
        const { page, nextPageToken } = paginate(
          all,
          listPaging(request, ctx, ['ListServices', project, region]),
        );
        return {
          services: page.map((s) => {
            const reconciling = ctx.reconciling(s);
            ctx.monitor.saw(s, reconciling);
            return serviceResource(s, reconciling, s.updateTime);
          }),
          next_page_token: nextPageToken,
        };
      };
      return answerOf(ctx, 'ListServices', request, fleetAnswer);
    },
    GetService: (request) => {
      const name = text(request, 'name');
      const key = parseServiceName(name);
      requireFleetProject(ctx.model.fleet.projects, key.project, 'run.services.get', name);
      const fleetAnswer = () => renderService(ctx, key);
      return answerOf(ctx, 'GetService', request, fleetAnswer);
    },
    UpdateService: (request) => updateService(ctx, request),
    TestIamPermissions: (request) =>
      testServicePermissions(
        ctx.model.fleet,
        request,
        (project, region, name) => ctx.model.getService({ project, region, name }) !== undefined,
      ),
  };
}

const REVISION_NAME =
  /^projects\/([^/]+)\/locations\/([^/]+)\/(services|workerPools)\/([^/]+)\/revisions\/([^/]+)$/;

/**
 * `Revisions.DeleteRevision` (google/cloud/run/v2/revision.proto): "Request message for deleting
 * a retired Revision. [...] Only retired revisions can be deleted with this API"; a long-running
 * operation whose metadata and response are the Revision; `run.revisions.delete`
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/delete).
 * The rule is the admin `edit`'s `deleteRevision` (model.ts, revisionDeletion): NOT_FOUND for a
 * revision the emulator does not model or that was deleted, FAILED_PRECONDITION for one that can
 * receive traffic or is the latest created (every revision of a worker pool the emulator models
 * holds a share of its instances). `etag`, "A system-generated fingerprint for this version of
 * the resource. This may be used to detect modification conflict", is the revision's own (as
 * GetRevision shows it): another is ABORTED, as UpdateService answers a stale etag.
 * `validate_only`: "validated without actually deleting any resources": every check made, an
 * operation answered done, nothing deleted and nothing kept. The deletion takes effect at once and
 * the operation is done after the emulator's operation delay; deleting a revision changes no
 * service, so none reconciles meanwhile (Google does not say).
 */
function deleteRevision(ctx: EmulatorContext, request: Message): Message {
  const name = text(request, 'name');
  const { project, region, pool, parent, revision } = parseRevisionName(name);
  requireFleetProject(ctx.model.fleet.projects, project, 'run.revisions.delete', name);
  const missing = () => notFound(`Resource '${shown(name)}' was not found`);
  if (pool) {
    const w = ctx.model
      .listWorkerPools(project)
      .find((x) => x.region === region && x.name === parent);
    const found = w ? workerPoolRevisions(w).find((r) => r.name === revision) : undefined;
    if (!w || !found) throw missing();
    checkRevisionEtag(request, workerPoolRevisionResource(w, found), name);
    throw new RpcError(
      status.FAILED_PRECONDITION,
      `Revision "${revision}" cannot be directly deleted because it is actively serving. (it runs ${found.percent}% of the worker pool's instances: only retired revisions can be deleted)`,
    );
  }
  const s = ctx.model.getService({ project, region, name: parent });
  const found = s ? serviceRevisions(s).find((r) => r.name === revision) : undefined;
  const deletion = s ? revisionDeletion(s, revision) : undefined;
  if (!s || !found || !deletion || 'missing' in deletion) throw missing();
  const resource = revisionResource(s, found);
  checkRevisionEtag(request, resource, name);
  if ('refused' in deletion) throw new RpcError(status.FAILED_PRECONDITION, deletion.refused);
  const op = `projects/${project}/locations/${region}/operations/${randomUUID()}`;
  const packed = packRevision(resource);
  if (bool(request, 'validate_only'))
    return { name: op, metadata: packed, done: true, response: packed };
  s.deletedRevisions.push(revision);
  const wall = ctx.wallNow();
  ctx.operations.set(op, {
    name: op,
    service: { project, region, name: parent },
    createdAt: wall,
    doneAt: wall + ctx.settings.operationDelayMs,
    revision: resource,
  });
  return operationMessage(ctx, op, true);
}

function checkRevisionEtag(request: Message, resource: Message, name: string): void {
  checkEtag(text(request, 'etag'), String(resource['etag']), shown(name));
}

/**
 * A request's `etag` (empty: none sent) against the resource's now: another is ABORTED, as
 * AIP-154 has a stale etag answered (https://google.aip.dev/154). `of`: the resource, as shown.
 */
function checkEtag(etag: string, current: string, of: string): void {
  if (etag !== '' && etag !== current)
    throw new RpcError(
      status.ABORTED,
      `The etag ${shown(etag)} does not match the current etag ${current} of ${of}`,
    );
}

/**
 * A revision's name, `projects/P/locations/L/services/S/revisions/R` or
 * `projects/P/locations/L/workerPools/W/revisions/R` (the rpcs' other HTTP binding), its ids
 * checked before anything is looked up.
 */
function parseRevisionName(name: string): {
  project: string;
  region: string;
  pool: boolean;
  parent: string;
  revision: string;
} {
  const m = REVISION_NAME.exec(name);
  if (!m)
    throw invalid(
      `name must look like projects/{project}/locations/{location}/services/{service}/revisions/{revision} or projects/{project}/locations/{location}/workerPools/{worker_pool}/revisions/{revision}, got "${shown(name)}"`,
    );
  const [, project = '', region = '', kind = '', parent = '', revision = ''] = m;
  const pool = kind === 'workerPools';
  checkSegment('project', 'the project of name', project);
  checkSegment('id', 'the location of name', region);
  checkSegment('service', `the ${pool ? 'worker pool' : 'service'} id of name`, parent);
  // A revision id no revision can have is malformed, not missing: INVALID_ARGUMENT, before
  // anything is looked up (AIP-122 resource ids, https://google.aip.dev/122; Google documents
  // no rule of its own for revision ids, so the emulator's general id rule holds).
  checkSegment('id', 'the revision id of name', revision);
  return { project, region, pool, parent, revision };
}

/**
 * `Revisions.ListRevisions` lists every revision the emulator keeps of a service (or of every
 * service of the region, `services/-`), newest first, retired ones included: Cloud Run keeps up to
 * 1000 of a service (https://cloud.google.com/run/docs/managing/revisions); `run.revisions.list`.
 *
 * `Revisions.GetRevision` (google/cloud/run/v2/revision.proto): name
 * `projects/P/locations/L/services/S/revisions/R`, or `projects/P/locations/L/workerPools/W/revisions/R`
 * (the rpc's other HTTP binding, a worker pool's revision);
 * `run.revisions.get` (iam.ts); NOT_FOUND for a revision the emulator does not model or another
 * writer deleted. The revision carries its own GPU, and a service's its own
 * `scaling.max_instance_count` and whether it is ready.
 */
export function runRevisionsHandlers(ctx: EmulatorContext): Handlers {
  return {
    GetRevision: (request) => {
      const name = text(request, 'name');
      const { project, region, pool, parent, revision } = parseRevisionName(name);
      requireFleetProject(ctx.model.fleet.projects, project, 'run.revisions.get', name);
      const fleetAnswer = () => {
        if (pool) {
          const w = ctx.model
            .listWorkerPools(project)
            .find((x) => x.region === region && x.name === parent);
          const found = w ? workerPoolRevisions(w).find((r) => r.name === revision) : undefined;
          if (!w || !found) throw notFound(`Resource '${shown(name)}' was not found`);
          return workerPoolRevisionResource(w, found);
        }
        const s = ctx.model.getService({ project, region, name: parent });
        const found = s ? serviceRevisions(s).find((r) => r.name === revision) : undefined;
        if (!s || !found) throw notFound(`Resource '${shown(name)}' was not found`);
        return revisionResource(s, found);
      };
      return answerOf(ctx, 'GetRevision', request, fleetAnswer);
    },
    DeleteRevision: (request) => deleteRevision(ctx, request),
    ListRevisions: (request) => {
      const parent = text(request, 'parent');
      const m = REVISIONS_PARENT.exec(parent);
      if (!m)
        throw invalid(
          `parent must look like projects/{project}/locations/{location}/services/{service} (or services/-), got "${shown(parent)}"`,
        );
      const [, location = '', kind = '', service = ''] = m;
      if (kind === 'workerPools') throw notEmulated("ListRevisions of a worker pool's revisions");
      if (service !== '-') checkSegment('service', 'the service id of parent', service);
      const { project, region } = parseParent(
        ctx,
        location,
        'revisions',
        'run.revisions.list',
        parent,
      );
      refuseShowDeleted(request);
      const owners = ctx.model
        .listServices(project)
        .filter((s) => s.region === region && (service === '-' || s.name === service));
      if (service !== '-' && owners.length === 0)
        throw notFound(`Resource '${shown(parent)}' was not found`);
      // "Results are sorted by creation time, descending" (ListRevisions,
      // google/cloud/run/v2/revision.proto): every revision Cloud Run keeps, retired ones too.
      const all = owners
        .flatMap((s) => serviceRevisions(s).map((r) => ({ s, r })))
        .sort((a, b) => b.r.madeAt - a.r.madeAt || compareText(b.r.name, a.r.name));
      const { page, nextPageToken } = paginate(
        all,
        listPaging(request, ctx, ['ListRevisions', parent]),
      );
      return {
        revisions: page.map(({ s, r }) => revisionResource(s, r)),
        next_page_token: nextPageToken,
      };
    },
  };
}

const REVISIONS_PARENT = /^(projects\/[^/]+\/locations\/[^/]+)\/(services|workerPools)\/([^/]+)$/;

export function runWorkerPoolsHandlers(ctx: EmulatorContext): Handlers {
  return {
    ListWorkerPools: (request) => {
      const { project, region } = parseParent(
        ctx,
        text(request, 'parent'),
        'worker pools',
        'run.workerpools.list',
      );
      refuseShowDeleted(request);
      const fleetAnswer = (): Message => {
        const all = ctx.model.listWorkerPools(project).filter((w) => w.region === region);
        const { page, nextPageToken } = paginate(
          all,
          listPaging(request, ctx, ['ListWorkerPools', project, region]),
        );
        return { worker_pools: page.map(workerPoolResource), next_page_token: nextPageToken };
      };
      return answerOf(ctx, 'ListWorkerPools', request, fleetAnswer);
    },
  };
}

/** `ListJobs`: the jobs of one region, paged. */
export function runJobsHandlers(ctx: EmulatorContext): Handlers {
  return {
    ListJobs: (request) => {
      const { project, region } = parseParent(
        ctx,
        text(request, 'parent'),
        'jobs',
        'run.jobs.list',
      );
      refuseShowDeleted(request);
      const all = ctx.model.listJobs(project).filter((j) => j.region === region);
      const { page, nextPageToken } = paginate(
        all,
        listPaging(request, ctx, ['ListJobs', project, region]),
      );
      return {
        jobs: page.map((j) => jobResource(j, ctx.model.now)),
        next_page_token: nextPageToken,
      };
    },
  };
}

const JOB_PARENT = /^(projects\/[^/]+\/locations\/[^/]+)\/jobs\/([^/]+)$/;

/**
 * `ListExecutions`: parent `projects/P/locations/R/jobs/J`, or `jobs/-` for every job of the region
 * (execution.proto: 'To list all Executions across Jobs, use "-" instead of Job name'). Executions
 * started by now, running or completed, newest first within a job. An unknown job is NOT_FOUND.
 */
export function runExecutionsHandlers(ctx: EmulatorContext): Handlers {
  return {
    ListExecutions: (request) => {
      const parent = text(request, 'parent');
      const m = JOB_PARENT.exec(parent);
      if (!m) {
        throw invalid(
          `parent must look like projects/{project}/locations/{location}/jobs/{job} (or jobs/-), got "${shown(parent)}"`,
        );
      }
      const [, location = '', job = ''] = m;
      // A job id no job can have is malformed, not missing (as a revision id, above): Google
      // documents no job id rule in CreateJobRequest.job_id, so the general id rule holds.
      if (job !== '-') checkSegment('id', 'the job id of parent', job);
      const { project, region } = parseParent(
        ctx,
        location,
        'executions',
        'run.executions.list',
        parent,
      );
      refuseShowDeleted(request);
      const jobs = ctx.model
        .listJobs(project)
        .filter((j) => j.region === region && (job === '-' || j.name === job));
      if (job !== '-' && jobs.length === 0)
        throw notFound(`Resource '${shown(parent)}' was not found`);
      const fleetAnswer = (): Message => {
        const all = jobs
          .flatMap((j) => jobExecutions(j, ctx.model.now).sort((a, b) => b.startAt - a.startAt))
          .map(executionResource);
        const { page, nextPageToken } = paginate(
          all,
          listPaging(request, ctx, ['ListExecutions', parent]),
        );
        return { executions: page, next_page_token: nextPageToken };
      };
      return answerOf(ctx, 'ListExecutions', request, fleetAnswer);
    },
  };
}

export function operationsHandlers(ctx: EmulatorContext): Handlers {
  return {
    GetOperation: (request) => {
      const name = text(request, 'name');
      const m = OPERATION_NAME.exec(name);
      if (!m) {
        throw invalid(
          `name must look like projects/{project}/locations/{location}/operations/{id}, got "${shown(name)}"`,
        );
      }
      const [, project = '', location = ''] = m;
      // Resource ids checked before anything is looked up, as ListOperations checks them.
      checkSegment('project', 'the project of name', project);
      checkSegment('id', 'the location of name', location);
      requireFleetProject(ctx.model.fleet.projects, project, 'run.operations.get', name);
      return answerOf(ctx, 'GetOperation', request, () => operationMessage(ctx, name));
    },
    ListOperations: (request) => {
      const parent = text(request, 'name');
      const m = PARENT.exec(parent);
      if (!m)
        throw invalid(
          `name must look like projects/{project}/locations/{location}, got "${shown(parent)}"`,
        );
      const [, project = '', location = ''] = m;
      checkSegment('project', 'the project of name', project);
      checkSegment('id', 'the location of name', location);
      // Permission before existence (AIP-211), as GetOperation and every list here.
      requireFleetProject(ctx.model.fleet.projects, project, 'run.operations.list', parent);
      if (text(request, 'filter') !== '') throw notEmulated('ListOperations filter');
      // The operations of the location's services; those of a deleted service went with it.
      const names = [...ctx.operations.keys()]
        .filter((n) => n.startsWith(`${parent}/operations/`))
        .filter((n) => {
          const op = ctx.operations.get(n);
          return op !== undefined && ctx.model.getService(op.service) !== undefined;
        })
        .sort();
      const { page, nextPageToken } = paginate(
        names,
        listPaging(request, ctx, ['ListOperations', parent]),
      );
      return {
        operations: page.map((n) => operationMessage(ctx, n)),
        next_page_token: nextPageToken,
      };
    },
  };
}

const PROJECT_NAME = /^projects\/([^/]+)$/;

/**
 * The `google.cloud.location.Locations` mixin the Cloud Run clients expose (`listLocations`).
 * Cloud Run answers with every region where it is available to the project; the emulator answers
 * with the regions the project's fleet uses (its services, worker pools and regional quota pools),
 * sorted, so that a governor listing each region does not call forty empty ones.
 */
export function locationsHandlers(ctx: EmulatorContext): Handlers {
  return {
    ListLocations: (request) => {
      const name = text(request, 'name');
      const m = PROJECT_NAME.exec(name);
      if (!m) throw invalid(`name must look like projects/{project}, got "${shown(name)}"`);
      const [, id = ''] = m;
      checkSegment('project', 'the project of name', id);
      const project = ctx.model.fleet.projects.find((p) => p.id === id);
      if (!project) throw permissionDenied('run.locations.list', name);
      if (text(request, 'filter') !== '') throw notEmulated('ListLocations filter');
      const regions = fleetRegions(project, ctx.model.listServices(id));
      const { page, nextPageToken } = paginate(
        regions,
        listPaging(request, ctx, ['ListLocations', id]),
      );
      return {
        locations: page.map((region) => ({
          name: `projects/${id}/locations/${region}`,
          location_id: region,
          display_name: region,
          labels: { 'cloud.googleapis.com/region': region },
        })),
        next_page_token: nextPageToken,
      };
    },
  };
}
