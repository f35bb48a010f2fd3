import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { assetHandlers } from './asset-api.js';
import { checkPortFree, portInUse } from './listen.js';
import { MAX_LOGGED_REQUEST_BYTES, type CallRecord, type EmulatorContext } from './context.js';
import { iamPolicyHandlers, permissionDenial } from './iam.js';
import { monitoringHandlers } from './monitoring-api.js';
import { afterCall, beforeCall, concurrentChange } from './other-actor.js';
import { retryInfoStatus, serviceDefinition, SERVICES, type ServiceName } from './protos.js';
import { publisherHandlers } from './pubsub-api.js';
import { quotasHandlers } from './quotas-api.js';
import { quotaPreferenceHandlers } from './quota-preferences.js';
import { RpcError, answeredMessage, isMessage, type Handlers, type Message } from './rpc.js';
import {
  locationsHandlers,
  operationsHandlers,
  runExecutionsHandlers,
  runJobsHandlers,
  runRevisionsHandlers,
  runServicesHandlers,
  runWorkerPoolsHandlers,
} from './run-api.js';
import { errorMessage } from '../core/errors.js';

/**
 * One gRPC server for every emulated API. Each RPC: the model is brought up to the clock, the call
 * is logged, the fault hook may answer it, then its handler does; methods without a handler answer
 * UNIMPLEMENTED (and are logged too, so a test can fail on them).
 */

function statusName(code: number): string {
  const entry = Object.entries(status).find(([, v]) => v === code);
  return entry ? entry[0] : String(code);
}

/** Bytes fields longer than this are logged as their length only (a publish carries up to 10 MB). */
const LOGGED_BYTES = 64 * 1024;
/**
 * Strings (and map keys) longer than this are logged cut, with a marker saying how long they were:
 * a page token or a name of megabytes is not worth keeping, and kept it filled the emulator's memory.
 */
export const LOGGED_TEXT = 2048;

/** A logged string: cut past LOGGED_TEXT, saying how long it was. */
function loggedText(text: string): string {
  return text.length > LOGGED_TEXT
    ? `${text.slice(0, LOGGED_TEXT)}…(cut: ${text.length} characters in all)`
    : text;
}

/**
 * Request fields worth keeping in the call log (JSON-safe: Buffers as base64), with its size as
 * JSON. Long strings and bytes are cut (above); a request still over MAX_LOGGED_REQUEST_BYTES
 * (thousands of fields) is kept as its size only.
 */
function summarize(request: unknown): { request: unknown; bytes: number } {
  const json = JSON.stringify(request, function (this: unknown, key: string, value: unknown) {
    // `this[key]` is the value before its toJSON: a Buffer, not a { type, data } array.
    const original = isMessage(this) || Array.isArray(this) ? (this as Message)[key] : undefined;
    if (Buffer.isBuffer(original)) {
      return original.length > LOGGED_BYTES
        ? `(${original.length} bytes)`
        : original.toString('base64');
    }
    if (typeof value === 'string') return loggedText(value);
    if (isMessage(value) && Object.keys(value).some((k) => k.length > LOGGED_TEXT)) {
      // A map's keys are the client's too (labels, annotations, attributes).
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [loggedText(k), v]));
    }
    return value;
  });
  if (json.length > MAX_LOGGED_REQUEST_BYTES) {
    const note = `(request of ${json.length} characters as JSON: over the ${MAX_LOGGED_REQUEST_BYTES} the call log keeps of one call)`;
    return { request: note, bytes: note.length };
  }
  return { request: JSON.parse(json) as unknown, bytes: json.length };
}

function implementation(
  ctx: EmulatorContext,
  service: ServiceName,
  handlers: Handlers,
): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const [method, def] of Object.entries(serviceDefinition(service))) {
    const fullName = `${service}/${method}`;
    if (def.requestStream || def.responseStream) {
      throw new Error(`${fullName} is streaming: the emulator serves unary methods only`);
    }
    const handler = handlers[method];
    impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const request: Message = isMessage(call.request) ? call.request : {};
      ctx.sync();
      const logged = summarize(request);
      const record: CallRecord = {
        seq: ctx.nextSeq(),
        method: fullName,
        request: logged.request,
        at: ctx.nowIso(),
        wallTime: new Date(ctx.wallNow()).toISOString(),
        code: 'PENDING',
      };
      ctx.calls.add(record, logged.bytes);
      const run = async (): Promise<unknown> => {
        beforeCall(ctx, fullName, request);
        const fault = await ctx.faults?.({ method: fullName, request });
        if (fault) throw fault;
        const injected = await ctx.injector.hook({ method: fullName, request });
        if (injected) throw injected;
        // The fleet's IAM: a call that needs a permission the fleet denies is refused.
        const denied = permissionDenial(ctx.model.fleet, fullName, request);
        if (denied) throw denied;
        if (fullName.endsWith('/GetService') || fullName.endsWith('/ListServices')) {
          const change = ctx.injector.concurrentChange();
          if (change) {
            ctx.sync();
            concurrentChange(ctx, change);
          }
        }
        if (!handler)
          throw new RpcError(
            status.UNIMPLEMENTED,
            `${fullName} is not implemented by the governor's emulator`,
          );
        const response = await handler(request);
        afterCall(ctx, fullName, request, response);
        return response;
      };
      run().then(
        (response) => {
          record.code = 'OK';
          callback(null, response);
        },
        (error: unknown) => {
          const rpc =
            error instanceof RpcError
              ? error
              : new RpcError(
                  status.INTERNAL,
                  `emulator bug in ${fullName}: ${errorMessage(error)}`,
                );
          // Bounded whatever the handler put in it: a grpc-message trailer over about 64 KiB is
          // never sent, and the client's channel stalls.
          const message = answeredMessage(rpc.message);
          record.code = statusName(rpc.code);
          record.message = message;
          if (rpc.retryDelayMs === undefined) {
            callback({ code: rpc.code, details: message });
            return;
          }
          const metadata = new Metadata();
          metadata.set(
            'grpc-status-details-bin',
            retryInfoStatus(rpc.code, message, rpc.retryDelayMs),
          );
          callback({ code: rpc.code, details: message, metadata });
        },
      );
    };
  }
  return impl;
}

interface GrpcServer {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startGrpcServer(ctx: EmulatorContext, port = 0): Promise<GrpcServer> {
  // Pub/Sub takes publish requests of up to 10 MB (checked in pubsub-api.ts, answered like Pub/Sub);
  // gRPC's default 4 MiB would refuse them first, with another code.
  const server = new Server({ 'grpc.max_receive_message_length': 16 << 20 });
  const apis: [ServiceName, Handlers][] = [
    [SERVICES.runServices, runServicesHandlers(ctx)],
    [SERVICES.runRevisions, runRevisionsHandlers(ctx)],
    [SERVICES.runWorkerPools, runWorkerPoolsHandlers(ctx)],
    [SERVICES.runJobs, runJobsHandlers(ctx)],
    [SERVICES.runExecutions, runExecutionsHandlers(ctx)],
    [SERVICES.operations, operationsHandlers(ctx)],
    [SERVICES.locations, locationsHandlers(ctx)],
    [SERVICES.metrics, monitoringHandlers(ctx)],
    [SERVICES.quotas, { ...quotasHandlers(ctx), ...quotaPreferenceHandlers(ctx) }],
    [SERVICES.publisher, publisherHandlers(ctx)],
    [SERVICES.iamPolicy, iamPolicyHandlers(ctx.model.fleet, (t) => ctx.pubsub.hasTopic(t))],
    [SERVICES.assets, assetHandlers(ctx)],
  ];
  for (const [name, handlers] of apis)
    server.addService(serviceDefinition(name), implementation(ctx, name, handlers));
  await checkPortFree(port, '--port');
  const bound = await new Promise<number>((resolvePort, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error, actual) => {
      if (error) reject(portInUse(error, port, '--port') ?? error);
      else resolvePort(actual);
    });
  });
  return {
    port: bound,
    stop: () =>
      new Promise<void>((resolveStop) => {
        // Clients keep channels open: give in-flight calls a moment, then close everything.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolveStop();
        }, 500);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolveStop();
        });
      }),
  };
}
