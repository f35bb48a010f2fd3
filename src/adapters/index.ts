import type { ObservePorts } from '../ports/index.js';
import type { Endpoint } from './client-config.js';
import { createCloudRunAdapter } from './cloud-run.js';
import { createMonitoringAdapter } from './monitoring.js';
import { createQuotaAdapter } from './quotas.js';

/**
 * The Google side of the observation ports: Google's endpoints with Application Default
 * Credentials, or the emulator when given its address (GOVERNOR_EMULATOR_HOST).
 */
export interface GooglePorts extends ObservePorts {
  close(): Promise<void>;
}

export function createGooglePorts(
  endpoint: Endpoint & {
    /**
     * With the emulator only: a write polls its operation from this many ms rather than the
     * default 1 s (GOVERNOR_EMULATOR_OPERATION_POLL). Ignored against Google.
     */
    emulatorOperationPollMs?: number | null;
  },
): GooglePorts {
  const { emulatorHost } = endpoint;
  const poll = endpoint.emulatorOperationPollMs;
  const run = createCloudRunAdapter({
    emulatorHost,
    ...(emulatorHost && poll ? { operationPolling: { initialDelayMs: poll } } : {}),
  });
  const monitoring = createMonitoringAdapter({ emulatorHost });
  const quotas = createQuotaAdapter({ emulatorHost });
  return {
    run,
    monitoring,
    quotas,
    // Closing must not fail the run: a client whose channel never came up (no credentials, say)
    // rejects its close with the error the run has already reported.
    close: async () => {
      await Promise.allSettled([run.close(), monitoring.close(), quotas.close()]);
    },
  };
}
