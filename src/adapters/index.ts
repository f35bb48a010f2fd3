import type { ObservePorts } from '../observe/observe.js';
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
    close: async () => {
      await Promise.all([run.close(), monitoring.close(), quotas.close()]);
    },
  };
}
