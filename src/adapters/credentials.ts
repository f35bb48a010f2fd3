import { GoogleAuth } from 'google-auth-library';
import type { Endpoint } from './client-config.js';
import { UpstreamError } from '../core/errors.js';

/**
 * Checks that Application Default Credentials can be found before any Google client is built.
 * Without it, each client's channel would fail on its own, some of them (the clients' operation
 * and location helpers) where no one is listening; with it, the run stops at once with one clear
 * message. Against the emulator no credentials are needed.
 */
export async function assertCredentials(endpoint: Endpoint): Promise<void> {
  if (endpoint.emulatorHost) return;
  try {
    await new GoogleAuth({
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    }).getClient();
  } catch (e) {
    throw new UpstreamError(
      `no Google credentials: ${e instanceof Error ? e.message.split('. ')[0] : String(e)}. Run \`gcloud auth application-default login\`, or point the governor at the emulator (GOVERNOR_EMULATOR_HOST, see \`governor emulator\`).`,
      { cause: e },
    );
  }
}
