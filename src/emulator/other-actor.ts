import {
  applyConcurrentChange,
  applyOtherActor,
  type EmulatorContext,
  type ModelPool,
} from './context.js';
import type { ConcurrentChange } from './faults.js';
import { gpuQuotaId } from './quotas-api.js';
import { isMessage, type Message } from './rpc.js';

/**
 * What the emulator tells its invariant monitor about each call, so that a raise taken over the
 * quota by another writer inside Cloud Run's window is told apart from a governor's error (see
 * invariants.ts), and where the other writer of the fault injection acts: right after the
 * governor's read of a pool (ListServices, GetQuotaInfo) or its applied write (UpdateService).
 */

const PARENT = /^projects\/([^/]+)\/locations\/([^/]+)$/;
const SERVICE = /^projects\/([^/]+)\/locations\/([^/]+)\/services\/([^/]+)$/;
const QUOTA_INFO = /^projects\/([^/]+)\/locations\/global\/services\/[^/]+\/quotaInfos\/([^/]+)$/;

/** The written service of an UpdateService request, or null. */
function writtenService(
  request: Message,
): { project: string; region: string; name: string } | null {
  const service = request['service'];
  const name = isMessage(service) && typeof service['name'] === 'string' ? service['name'] : '';
  const m = SERVICE.exec(name);
  return m ? { project: m[1] ?? '', region: m[2] ?? '', name: m[3] ?? '' } : null;
}

/** Before the call is handled: a governor look or write attempt is noted, whatever its answer. */
export function beforeCall(ctx: EmulatorContext, method: string, request: Message): void {
  if (method.endsWith('/ListServices')) {
    const m = PARENT.exec(typeof request['parent'] === 'string' ? request['parent'] : '');
    if (m) ctx.monitor.listAttempt(m[1] ?? '', m[2] ?? '');
  }
  if (method.endsWith('/GetQuotaInfo')) {
    const m = QUOTA_INFO.exec(typeof request['name'] === 'string' ? request['name'] : '');
    const [, project = '', id = ''] = m ?? [];
    if (m)
      for (const p of ctx.model.pools(project))
        if (gpuQuotaId(p.accelerator, p.zonalRedundancy) === id) ctx.monitor.quotaAttempt(p);
  }
  if (!method.endsWith('/UpdateService')) return;
  const key = writtenService(request);
  if (key) ctx.monitor.writeAttempt(key);
}

/** A concurrent change just before a read (the `concurrent` faults), noted as another writer's. */
export function concurrentChange(ctx: EmulatorContext, change: ConcurrentChange): void {
  if (applyConcurrentChange(ctx.model, change, ctx.monitor))
    ctx.injector.count(`concurrent-${change.kind}`);
}

/**
 * After the call was answered successfully: the read is noted, then the other writer may act. An
 * UpdateService it follows only when the write was applied: a `validate_only` one changed nothing,
 * nor did one whose operation fails.
 */
export function afterCall(
  ctx: EmulatorContext,
  method: string,
  request: Message,
  response: unknown,
): void {
  if (method.endsWith('/UpdateService') && !applied(ctx, request, response)) return;
  const pools = poolsOfCall(ctx, method, request);
  if (pools.length === 0) return;
  const change = ctx.injector.otherActorChange();
  if (!change) return;
  const pool = pools[Math.floor(change.where * pools.length)];
  if (!pool) return;
  ctx.sync();
  const what = applyOtherActor(ctx.model, pool, change);
  if (!what) return;
  ctx.injector.count(`other-actor-${change.kind}`);
  ctx.monitor.otherActed(pool, what);
}

/** Whether an answered UpdateService changed the service: not validate_only, its operation not failed. */
function applied(ctx: EmulatorContext, request: Message, response: unknown): boolean {
  if (request['validate_only'] === true) return false;
  const name = isMessage(response) && typeof response['name'] === 'string' ? response['name'] : '';
  return ctx.operations.get(name)?.error === undefined;
}

/** The pools a call read or wrote, after noting the reads with the monitor. */
function poolsOfCall(ctx: EmulatorContext, method: string, request: Message): ModelPool[] {
  if (method.endsWith('/ListServices')) {
    const m = PARENT.exec(typeof request['parent'] === 'string' ? request['parent'] : '');
    if (!m) return [];
    const [, project = '', region = ''] = m;
    ctx.monitor.listed(project, region);
    return ctx.model.pools(project).filter((p) => p.region === region);
  }
  if (method.endsWith('/GetQuotaInfo')) {
    const m = QUOTA_INFO.exec(typeof request['name'] === 'string' ? request['name'] : '');
    if (!m) return [];
    const [, project = '', id = ''] = m;
    const read = ctx.model
      .pools(project)
      .filter((p) => gpuQuotaId(p.accelerator, p.zonalRedundancy) === id);
    for (const p of read) ctx.monitor.quotaRead(p);
    return read;
  }
  if (method.endsWith('/UpdateService')) {
    const key = writtenService(request);
    const s = key ? ctx.model.getService(key) : undefined;
    const pool = s ? ctx.model.poolOf(s) : undefined;
    const usage = pool ? ctx.model.pool(pool) : undefined;
    return usage ? [usage] : [];
  }
  return [];
}
