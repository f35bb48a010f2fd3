import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createPubSubAlertSink } from '../../src/adapters/pubsub.js';
import { CredentialsError } from '../../src/core/errors.js';

/**
 * The alert sink against Google's Pub/Sub on a machine with no Google credentials: its check
 * before a run (canPublish) fails in one line that says what to do, not the client's own error.
 * The command line reaches it no more with the emulator's services (GOVERNOR_EMULATOR_HOST
 * without PUBSUB_EMULATOR_HOST is refused first, runtime.ts checkEmulatorMix), so it is held here.
 */

const config = mkdtempSync(join(tmpdir(), 'governor-no-adc-'));

afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(config, { recursive: true, force: true });
});

describe('createPubSubAlertSink without credentials', () => {
  it('canPublish names the topic and what to do, in one line', async () => {
    // Application Default Credentials' places, all empty: the variable, gcloud's folder, the
    // metadata server.
    vi.stubEnv('PUBSUB_EMULATOR_HOST', '');
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
    vi.stubEnv('CLOUDSDK_CONFIG', config);
    vi.stubEnv('HOME', config);
    vi.stubEnv('METADATA_SERVER_DETECTION', 'none');
    const sink = createPubSubAlertSink({ topic: 'projects/no-adc/topics/alerts' });
    try {
      const error = await sink.canPublish().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CredentialsError);
      expect((error as Error).message).toBe(
        'no Google credentials to publish to projects/no-adc/topics/alerts: run `gcloud auth application-default login`, or set PUBSUB_EMULATOR_HOST to a Pub/Sub emulator (`governor emulator` prints it)',
      );
    } finally {
      await sink.close();
    }
  });
});
