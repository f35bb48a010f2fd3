import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/**
 * The .proto files shipped inside Google's npm packages, loaded once. Field names are kept as in
 * the protos (snake_case), enums travel as their names and int64 values as strings.
 */

const require = createRequire(import.meta.url);

/** `node_modules/<pkg>/build/protos`, found from the package's entry point (`build/src/index.js`). */
function protosOf(pkg: string): string {
  return join(dirname(require.resolve(pkg)), '..', 'protos');
}

export const SERVICES = {
  runServices: 'google.cloud.run.v2.Services',
  runRevisions: 'google.cloud.run.v2.Revisions',
  runWorkerPools: 'google.cloud.run.v2.WorkerPools',
  runJobs: 'google.cloud.run.v2.Jobs',
  runExecutions: 'google.cloud.run.v2.Executions',
  operations: 'google.longrunning.Operations',
  locations: 'google.cloud.location.Locations',
  metrics: 'google.monitoring.v3.MetricService',
  quotas: 'google.api.cloudquotas.v1.CloudQuotas',
  publisher: 'google.pubsub.v1.Publisher',
  iamPolicy: 'google.iam.v1.IAMPolicy',
  // Organisation scale: Cloud Asset Inventory (asset-api.ts).
  assets: 'google.cloud.asset.v1.AssetService',
} as const;
export type ServiceName = (typeof SERVICES)[keyof typeof SERVICES];

let cached: PackageDefinition | undefined;

function loadProtos(): PackageDefinition {
  cached ??= loadSync(
    [
      'google/cloud/run/v2/service.proto',
      'google/cloud/run/v2/revision.proto',
      'google/cloud/run/v2/worker_pool.proto',
      'google/cloud/run/v2/job.proto',
      'google/cloud/run/v2/execution.proto',
      'google/longrunning/operations.proto',
      'google/cloud/location/locations.proto',
      'google/monitoring/v3/metric_service.proto',
      'google/api/cloudquotas/v1/cloudquotas.proto',
      'google/pubsub/v1/pubsub.proto',
      'google/iam/v1/iam_policy.proto',
      'google/cloud/asset/v1/asset_service.proto',
    ],
    {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: false,
      oneofs: true,
      includeDirs: [
        protosOf('@google-cloud/run'),
        protosOf('@google-cloud/monitoring'),
        protosOf('@google-cloud/cloudquotas'),
        protosOf('@google-cloud/pubsub'),
        protosOf('@google-cloud/asset'),
        protosOf('google-gax'),
      ],
    },
  );
  return cached;
}

function isServiceDefinition(value: unknown): value is ServiceDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const first: unknown = Object.values(value)[0];
  return (
    typeof first === 'object' && first !== null && 'path' in first && 'requestDeserialize' in first
  );
}

export function serviceDefinition(name: ServiceName): ServiceDefinition {
  const def: unknown = loadProtos()[name];
  if (!isServiceDefinition(def)) throw new Error(`${name} is not a service in the loaded protos`);
  return def;
}

/** Encodes a message with the serializer of a method that returns it (for `google.protobuf.Any`). */
export function encodeWith(service: ServiceName, method: string, message: unknown): Buffer {
  const def: MethodDefinition<unknown, unknown> | undefined = serviceDefinition(service)[method];
  if (!def) throw new Error(`${service}/${method} is not in the loaded protos`);
  return def.responseSerialize(message);
}

/**
 * The fields of a message that its .proto marks `(google.api.field_behavior) = OUTPUT_ONLY`, read
 * by protobufjs from the proto file shipped in `pkg` (`file` under its `build/protos`): the
 * definitions proto-loader makes keep no custom options. google/api/field_behavior.proto says of
 * them: "including the field in a request does nothing (the server *must* ignore it and *must
 * not* throw an error as a result of the field's presence)". Fields of nested messages are not
 * listed.
 */
export function outputOnlyFields(pkg: string, file: string, message: string): ReadonlySet<string> {
  const dirs = [protosOf(pkg), protosOf('google-gax')];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    dirs.map((dir) => join(dir, target)).find((path) => existsSync(path)) ?? target;
  const found = root.loadSync(file, { keepCase: true }).lookup(message);
  // The message of that name declared in `file` itself, not one of a file it imports.
  if (!(found instanceof protobuf.Type) || !found.filename?.endsWith(file))
    throw new Error(`message ${message} is not in ${file}`);
  return new Set(
    found.fieldsArray
      .filter((f) => {
        // Declared options in order, one object each (typed loosely by protobufjs).
        const declared = (f.parsedOptions ?? []) as unknown as readonly Record<string, unknown>[];
        return declared.some((o) =>
          [o['(google.api.field_behavior)']].flat().includes('OUTPUT_ONLY'),
        );
      })
      .map((f) => f.name),
  );
}

/** A message type declared in `file` of `pkg`'s shipped protos, resolved by protobufjs. */
function shippedType(pkg: string, file: string, message: string): protobuf.Type {
  const dirs = [protosOf(pkg), protosOf('google-gax')];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    dirs.map((dir) => join(dir, target)).find((path) => existsSync(path)) ?? target;
  const found = root.loadSync(file, { keepCase: true }).lookup(message);
  if (!(found instanceof protobuf.Type)) throw new Error(`message ${message} is not in ${file}`);
  found.root.resolveAll();
  return found;
}

/** A field name or mask segment in camelCase (as some clients send them) in snake_case. */
export function camelToSnake(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Whether a field mask path (segments in snake_case) maps to a field of `type`, as
 * google/protobuf/field_mask.proto defines paths: each segment a field of the message the one
 * before it names, and "a repeated field is not allowed except at the last position of a paths
 * string". A map field may be followed by one key (AIP-161, https://google.aip.dev/161: masks "may
 * permit the specification of specific fields in a map"), which is not refused as unmappable.
 */
export function maskPathMaps(type: protobuf.Type, segments: readonly string[]): boolean {
  const [head, ...rest] = segments;
  const f = head === undefined ? undefined : type.fields[head];
  if (!f) return false;
  if (rest.length === 0) return true;
  if (f instanceof protobuf.MapField) return rest.length === 1;
  if (f.repeated || !(f.resolvedType instanceof protobuf.Type)) return false;
  return maskPathMaps(f.resolvedType, rest);
}

let cachedRunService: protobuf.Type | undefined;
/** google.cloud.run.v2.Service from the shipped service.proto, for its update masks. */
export function runServiceType(): protobuf.Type {
  cachedRunService ??= shippedType(
    '@google-cloud/run',
    'google/cloud/run/v2/service.proto',
    'google.cloud.run.v2.Service',
  );
  return cachedRunService;
}

let cachedAssetResult: protobuf.Type | undefined;
/**
 * google.cloud.asset.v1.ResourceSearchResult from the shipped assets.proto, for the read masks of
 * SearchAllResources.
 */
export function assetSearchResultType(): protobuf.Type {
  cachedAssetResult ??= shippedType(
    '@google-cloud/asset',
    'google/cloud/asset/v1/assets.proto',
    'google.cloud.asset.v1.ResourceSearchResult',
  );
  return cachedAssetResult;
}

let rpcStatusRoot: protobuf.Root | undefined;

/**
 * The `grpc-status-details-bin` trailer of an error carrying a `google.rpc.RetryInfo`: a
 * `google.rpc.Status` (code, message, details) whose one detail is the RetryInfo, packed in a
 * `google.protobuf.Any`, as Google's APIs send their error details over gRPC and as google-gax
 * decodes them (into the error's `statusDetails`). Types from google-gax's own `status.json`.
 */
export function retryInfoStatus(code: number, message: string, retryDelayMs: number): Buffer {
  rpcStatusRoot ??= protobuf.Root.fromJSON(
    require(join(protosOf('google-gax'), 'status.json')) as protobuf.INamespace,
  );
  const retryInfo = rpcStatusRoot.lookupType('google.rpc.RetryInfo');
  const rpcStatus = rpcStatusRoot.lookupType('google.rpc.Status');
  const ms = Math.max(0, Math.round(retryDelayMs));
  const value = retryInfo
    .encode(
      retryInfo.fromObject({
        retryDelay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 },
      }),
    )
    .finish();
  const encoded = rpcStatus
    .encode(
      rpcStatus.fromObject({
        code,
        message,
        details: [{ type_url: 'type.googleapis.com/google.rpc.RetryInfo', value }],
      }),
    )
    .finish();
  return Buffer.from(encoded);
}
