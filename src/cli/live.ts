import { fileURLToPath } from 'node:url';
import { assertCredentials } from '../adapters/credentials.js';
import { createGooglePorts } from '../adapters/index.js';
import { GovernorError, UpstreamError } from '../errors.js';
import { clockFromEnv } from '../adapters/clock.js';
import type { Policy } from '../core/policy.js';
import { observe, type Observation } from '../observe/observe.js';

/** Observes the project(s) of a policy through Google's clients (or the emulator the env names). */
export async function observeLive(policy: Policy, env: NodeJS.ProcessEnv): Promise<Observation> {
  await assertCredentials(env);
  const now = await clockFromEnv(env)();
  const ports = createGooglePorts(env);
  try {
    return await observe(policy, ports, now);
  } catch (e) {
    if (e instanceof GovernorError) throw e;
    // Most often: no Application Default Credentials, or no network to Google.
    throw new UpstreamError(
      `could not observe ${policy.projects.join(', ')}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  } finally {
    await ports.close();
  }
}

/** A file shipped with the package (examples/…), wherever the package is installed. */
export function packagedFile(relative: string): string {
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}
