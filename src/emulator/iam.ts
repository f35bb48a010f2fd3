import { status } from '@grpc/grpc-js';
import type { Fleet } from './fleet.js';
import { checkTopicName } from './pubsub-store.js';
import { runtimeServiceAccount } from './resources.js';
import {
  checkSegment,
  field,
  invalid,
  permissionDenied,
  RpcError,
  strings,
  text,
  type Handlers,
  type Message,
  shown,
} from './rpc.js';

/**
 * IAM, as far as the governor can tell: the fleet file lists permissions the caller lacks
 * (`iam.denied`, per project or per service), and then
 *
 * - every call that needs one of them answers PERMISSION_DENIED, naming the permission and the
 *   resource, as Google does (`Permission 'run.services.update' denied on resource '...' (or
 *   resource may not exist).`; Pub/Sub answers `User not authorized to perform this action.`);
 * - `TestIamPermissions` (Cloud Run's `google.cloud.run.v2.Services`, and the
 *   `google.iam.v1.IAMPolicy` mixin that the Pub/Sub client calls for `topic.iam.testPermissions`)
 *   answers the requested permissions minus the denied ones.
 *
 * What TestIamPermissions does, from Google's own texts:
 * - it needs no permission ("There are no permissions required for making this API call",
 *   https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/testIamPermissions);
 * - it answers "A subset of `TestPermissionsRequest.permissions` that the caller is allowed", and
 *   for a resource that does not exist "an empty set of permissions, not a `NOT_FOUND` error"
 *   (google/iam/v1/iam_policy.proto, shipped in google-gax);
 * - "Permissions with wildcards (such as '*' or 'storage.*') are not allowed" (the same proto):
 *   INVALID_ARGUMENT here;
 * - a permission that does not apply to the resource's type is refused with 400 INVALID_ARGUMENT
 *   (as Resource Manager does for permissions of another resource type, googleapis/google-cloud-java#722):
 *   on a Cloud Run service only `run.services.*` and `run.routes.invoke`; on a topic only
 *   `pubsub.topics.*`. So `iam.serviceAccounts.actAs`, which is held on the runtime service
 *   account, cannot be tested on the service.
 */

/** A call and the permission it needs on which resource. */
interface Need {
  permission: string;
  /** The resource name the permission is checked on (for the error text). */
  resource: string;
  project: string;
  /** Set when the resource is one service: its own `iam.denied` applies too. */
  service?: { region: string; name: string };
  /** Set for actAs: the runtime service account the permission is held on, named in the denial. */
  serviceAccount?: string;
}

const PROJECT_OF = /^projects\/([^/]+)/;
const SERVICE = /^projects\/([^/]+)\/locations\/([^/]+)\/services\/([^/]+)$/;

function projectOf(name: string): string {
  return PROJECT_OF.exec(name)?.[1] ?? '';
}

/** A revision's name: the permission is checked on it, and its service's `iam.denied` applies. */
const REVISION = /^(projects\/[^/]+\/locations\/[^/]+\/services\/[^/]+)\/revisions\/[^/]+$/;

function onResource(permission: string, resource: string): Need {
  const service = SERVICE.exec(REVISION.exec(resource)?.[1] ?? resource);
  if (service) {
    const [, project = '', region = '', name = ''] = service;
    return { permission, resource, project, service: { region, name } };
  }
  return { permission, resource, project: projectOf(resource) };
}

/** Which permissions each method needs, on what (the terraform module's table, and Google's). */
const NEEDS: Readonly<Record<string, (request: Message) => Need[]>> = {
  'google.cloud.run.v2.Services/ListServices': (r) => [
    onResource('run.services.list', text(r, 'parent')),
  ],
  'google.cloud.run.v2.Services/GetService': (r) => [
    onResource('run.services.get', text(r, 'name')),
  ],
  // Google documents actAs on the runtime account for creating or updating a service
  // (https://cloud.google.com/run/docs/securing/service-identity); the emulator asks for it too.
  // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/get
  'google.cloud.run.v2.Revisions/GetRevision': (r) => [
    onResource('run.revisions.get', text(r, 'name')),
  ],
  // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/delete
  'google.cloud.run.v2.Revisions/DeleteRevision': (r) => [
    onResource('run.revisions.delete', text(r, 'name')),
  ],
  // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services.revisions/list
  'google.cloud.run.v2.Revisions/ListRevisions': (r) => [
    onResource('run.revisions.list', text(r, 'parent')),
  ],
  'google.cloud.run.v2.Services/UpdateService': (r) => {
    const name = text(field(r, 'service'), 'name');
    const actAs = onResource('iam.serviceAccounts.actAs', name);
    return [
      onResource('run.services.update', name),
      { ...actAs, serviceAccount: runtimeServiceAccount(actAs.project) },
    ];
  },
  'google.cloud.run.v2.WorkerPools/ListWorkerPools': (r) => [
    onResource('run.workerpools.list', text(r, 'parent')),
  ],
  'google.cloud.run.v2.Jobs/ListJobs': (r) => [onResource('run.jobs.list', text(r, 'parent'))],
  'google.cloud.run.v2.Executions/ListExecutions': (r) => [
    onResource('run.executions.list', text(r, 'parent')),
  ],
  'google.longrunning.Operations/GetOperation': (r) => [
    onResource('run.operations.get', text(r, 'name')),
  ],
  'google.longrunning.Operations/ListOperations': (r) => [
    onResource('run.operations.list', text(r, 'name')),
  ],
  'google.cloud.location.Locations/ListLocations': (r) => [
    onResource('run.locations.list', text(r, 'name')),
  ],
  'google.monitoring.v3.MetricService/ListTimeSeries': (r) => [
    onResource('monitoring.timeSeries.list', text(r, 'name')),
  ],
  'google.monitoring.v3.MetricService/CreateTimeSeries': (r) => [
    onResource('monitoring.timeSeries.create', text(r, 'name')),
  ],
  'google.api.cloudquotas.v1.CloudQuotas/GetQuotaInfo': (r) => [
    onResource('cloudquotas.quotas.get', text(r, 'name')),
  ],
  'google.api.cloudquotas.v1.CloudQuotas/ListQuotaInfos': (r) => [
    onResource('cloudquotas.quotas.get', text(r, 'parent')),
  ],
  // Quota preferences: `cloudquotas.quotas.get` to read, `cloudquotas.quotas.update` to create
  // or change (the methods' "IAM Permissions", e.g.
  // https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences/create).
  'google.api.cloudquotas.v1.CloudQuotas/ListQuotaPreferences': (r) => [
    onResource('cloudquotas.quotas.get', text(r, 'parent')),
  ],
  'google.api.cloudquotas.v1.CloudQuotas/GetQuotaPreference': (r) => [
    onResource('cloudquotas.quotas.get', text(r, 'name')),
  ],
  'google.api.cloudquotas.v1.CloudQuotas/CreateQuotaPreference': (r) => [
    onResource('cloudquotas.quotas.update', text(r, 'parent')),
  ],
  'google.api.cloudquotas.v1.CloudQuotas/UpdateQuotaPreference': (r) => [
    onResource('cloudquotas.quotas.update', text(field(r, 'quota_preference'), 'name')),
  ],
  'google.pubsub.v1.Publisher/Publish': (r) => [
    onResource('pubsub.topics.publish', text(r, 'topic')),
  ],
  'google.pubsub.v1.Publisher/GetTopic': (r) => [onResource('pubsub.topics.get', text(r, 'topic'))],
  'google.pubsub.v1.Publisher/CreateTopic': (r) => [
    onResource('pubsub.topics.create', text(r, 'name')),
  ],
  'google.pubsub.v1.Publisher/ListTopics': (r) => [
    onResource('pubsub.topics.list', text(r, 'project')),
  ],
};

/** The permissions denied on a resource: its project's, and the service's own. */
function deniedOn(
  fleet: Fleet,
  project: string,
  service?: { region: string; name: string },
): Set<string> {
  const p = fleet.projects.find((x) => x.id === project);
  const denied = new Set(p?.iam?.denied ?? []);
  if (p && service) {
    const s = p.services.find((x) => x.region === service.region && x.name === service.name);
    for (const d of s?.iam?.denied ?? []) denied.add(d);
  }
  return denied;
}

/** PERMISSION_DENIED for a call that needs a denied permission; undefined when it may go on. */
export function permissionDenial(
  fleet: Fleet,
  method: string,
  request: Message,
): RpcError | undefined {
  const needs = NEEDS[method]?.(request) ?? [];
  for (const need of needs) {
    if (!deniedOn(fleet, need.project, need.service).has(need.permission)) continue;
    if (method.startsWith('google.pubsub.')) {
      return new RpcError(status.PERMISSION_DENIED, 'User not authorized to perform this action.');
    }
    if (need.serviceAccount !== undefined) {
      // Cloud Run names the account, in its own words and casing: "Permission
      // 'iam.serviceaccounts.actAs' denied on service account X (or it may not exist)." (seen in
      // GoogleCloudPlatform/cloud-run-release-manager#81 and google/keyword_factory#22).
      return new RpcError(
        status.PERMISSION_DENIED,
        `Permission 'iam.serviceaccounts.actAs' denied on service account ${need.serviceAccount} (or it may not exist).`,
      );
    }
    return permissionDenied(need.permission, need.resource);
  }
  return undefined;
}

const TOPIC = /^projects\/([^/]+)\/topics\/([^/]+)$/;

/** The permissions of a TestIamPermissions request, refusing wildcards and other types' ones. */
function requested(request: Message, applies: (p: string) => boolean, kind: string): string[] {
  const permissions = strings(request, 'permissions');
  for (const p of permissions) {
    if (p.includes('*')) {
      throw invalid(
        `Permissions with wildcards (such as '*' or 'storage.*') are not allowed: ${shown(p)}`,
      );
    }
    if (!applies(p)) throw invalid(`Permission ${shown(p)} is not valid for a ${kind}.`);
  }
  return permissions;
}

/** `Services.TestIamPermissions` on `projects/P/locations/R/services/S`. */
export function testServicePermissions(
  fleet: Fleet,
  request: Message,
  exists: (project: string, region: string, name: string) => boolean,
): Message {
  const resource = text(request, 'resource');
  const m = SERVICE.exec(resource);
  if (!m) {
    throw invalid(
      `resource must look like projects/{project}/locations/{location}/services/{service}, got "${shown(resource)}"`,
    );
  }
  const [, project = '', region = '', name = ''] = m;
  // Resource ids checked before anything is looked up, as every Cloud Run name is (rpc.ts).
  checkSegment('project', 'the project of resource', project);
  checkSegment('id', 'the location of resource', region);
  checkSegment('service', 'the service id of resource', name);
  const permissions = requested(
    request,
    (p) => p.startsWith('run.services.') || p === 'run.routes.invoke',
    'Cloud Run service',
  );
  if (!exists(project, region, name)) return { permissions: [] };
  const denied = deniedOn(fleet, project, { region, name });
  return { permissions: permissions.filter((p) => !denied.has(p)) };
}

/**
 * `google.iam.v1.IAMPolicy` on the emulator's port: what the Pub/Sub client calls for a topic's
 * IAM (`topic.iam.testPermissions`). Only topics are served.
 */
export function iamPolicyHandlers(fleet: Fleet, topicExists: (name: string) => boolean): Handlers {
  return {
    TestIamPermissions: (request) => {
      const resource = text(request, 'resource');
      const m = TOPIC.exec(resource);
      if (!m) {
        throw new RpcError(
          status.UNIMPLEMENTED,
          `TestIamPermissions on "${shown(resource)}" is not emulated: only Pub/Sub topics (projects/P/topics/T)`,
        );
      }
      // The topic's name is checked as every topic call checks it (Topic.name's rules in
      // google/pubsub/v1/pubsub.proto; pubsub-store.ts): a name no topic can have is
      // INVALID_ARGUMENT, not an empty set of permissions as if the topic were merely missing.
      checkTopicName(resource);
      const permissions = requested(request, (p) => p.startsWith('pubsub.topics.'), 'topic');
      if (!topicExists(resource)) return { permissions: [] };
      const denied = deniedOn(fleet, m[1] ?? '');
      return { permissions: permissions.filter((p) => !denied.has(p)) };
    },
  };
}
