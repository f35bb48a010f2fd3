import type { ObservePorts } from '../ports/index.js';
import { createCloudRunAdapter } from './cloud-run.js';
import { createMonitoringAdapter } from './monitoring.js';
import { createQuotaAdapter } from './quotas.js';

/**
 * The Google side of the observation ports, built from the environment: Google's endpoints with
 * Application Default Credentials, or the emulator when GOVERNOR_EMULATOR_HOST is set.
 */
export interface GooglePorts extends ObservePorts {
  close(): Promise<void>;
}

export function createGooglePorts(env: NodeJS.ProcessEnv = process.env): GooglePorts {
  const run = createCloudRunAdapter({ env });
  const monitoring = createMonitoringAdapter({ env });
  const quotas = createQuotaAdapter({ env });
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
