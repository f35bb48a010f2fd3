/**
 * The narrow interfaces between the governor and the outside systems it observes and changes, one
 * file per system: Cloud Run (`cloud-run.ts`), Cloud Monitoring (`monitoring.ts`), Cloud Quotas
 * (`quotas.ts`), the alert sink (`alerts.ts`), the state store (`state.ts`) and the clock
 * (`clock.ts`). Adapters (src/adapters) implement them, on Google's official clients or in
 * memory. Nothing here imports a Google library, an adapter or the emulator; ports import only
 * the core (its errors among it).
 *
 * Every method either returns what it read or throws one of the typed errors of src/core/errors.ts
 * (ConflictError, NotFoundError, QuotaRejectedError, RateLimitedError, UnavailableError,
 * PermissionError, or UpstreamError for anything else), with the original error as `cause`.
 */
import type { CloudRunPort } from './cloud-run.js';
import type { MonitoringPort } from './monitoring.js';
import type { QuotaPort } from './quotas.js';

export * from './alerts.js';
export type * from './clock.js';
export type * from './cloud-run.js';
export type * from './discovery.js';
export type * from './monitoring.js';
export type * from './quotas.js';
export type * from './quota-requests.js';
export * from './state.js';

/** The ports observation reads through: one observation of the fleet needs all three. */
export interface ObservePorts {
  run: CloudRunPort;
  monitoring: MonitoringPort;
  quotas: QuotaPort;
}
