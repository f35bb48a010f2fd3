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
    const said = e instanceof Error ? (e.message.split('. ')[0] ?? '') : String(e);
    // ADC reads GOOGLE_APPLICATION_CREDENTIALS first, before the file `gcloud auth
    // application-default login` writes ("Search order",
    // https://cloud.google.com/docs/authentication/application-default-credentials): a file it
    // names that cannot be read is not mended by logging in, only by mending or unsetting it.
    const fix = /GOOGLE_APPLICATION_CREDENTIALS/.test(said)
      ? 'Fix the file GOOGLE_APPLICATION_CREDENTIALS names, or unset it'
      : 'Run `gcloud auth application-default login`';
    throw new UpstreamError(
      `no Google credentials: ${said}. ${fix}, or point the governor at the emulator (GOVERNOR_EMULATOR_HOST, see \`governor emulator\`).`,
      { cause: e },
    );
  }
}
