import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

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

export function loadProtos(): PackageDefinition {
  cached ??= loadSync(
    [
      'google/cloud/run/v2/service.proto',
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

/** The field names (snake_case) of a message type of the loaded protos, e.g. `google.cloud.run.v2.Service`. */
export function messageFields(typeName: string): ReadonlySet<string> {
  const def: unknown = loadProtos()[typeName];
  const type: unknown = typeof def === 'object' && def !== null && 'type' in def ? def.type : null;
  const fields: unknown =
    typeof type === 'object' && type !== null && 'field' in type ? type.field : null;
  if (!Array.isArray(fields)) throw new Error(`${typeName} is not a message in the loaded protos`);
  return new Set(
    fields.flatMap((f: unknown) =>
      typeof f === 'object' && f !== null && 'name' in f && typeof f.name === 'string'
        ? [f.name]
        : [],
    ),
  );
}
