import { createGooglePorts } from '../adapters/index.js';
import { GovernorError, UpstreamError, errorMessage } from '../core/errors.js';
import { createClock } from '../adapters/clock.js';
import type { Policy } from '../core/policy.js';
import { observe, type Observation } from '../observe/observe.js';
import type { RuntimeOptions } from '../runtime-options.js';
import { emulatorGoneHint } from './hints.js';
import { closeOrWarn, type Streams } from './io.js';
import { assertReadyToRead } from './ready.js';

/**
 * Observes the project(s) of a policy through Google's clients (or the emulator the options name).
 * A failure to close the clients afterwards is a warning on `io.stderr`: the observation, or its
 * own error, is the outcome.
 */
export async function observeLive(
  policy: Policy,
  options: Pick<
    RuntimeOptions,
    'emulatorHost' | 'emulatorAdmin' | 'pubsubEmulatorHost' | 'firestoreEmulatorHost' | 'stateStore'
  >,
  io: Pick<Streams, 'stderr'>,
): Promise<Observation> {
  await assertReadyToRead(options);
  const now = await createClock(options)();
  const ports = createGooglePorts(options);
  let observation: Observation;
  try {
    observation = await observe(policy, ports, now);
  } catch (e) {
    if (e instanceof GovernorError) throw e;
    // Most often: no Application Default Credentials, or no network to Google.
    throw new UpstreamError(`could not observe ${policy.projects.join(', ')}: ${errorMessage(e)}`, {
      cause: e,
    });
  } finally {
    await closeOrWarn(() => ports.close(), "Google's clients", io);
  }
  // Not one region could be listed: an empty snapshot would pass for an empty project.
  const first = observation.problems.find((p) => p.subject === 'services');
  if (observation.regionsListed === 0 && first) {
    // An emulator that is not there is no missing permission: main gives that hint instead.
    const hint = emulatorGoneHint(first.error, options)
      ? ''
      : ' (governor check --policy P lists each permission a run needs)';
    throw new UpstreamError(
      `nothing could be read in ${policy.projects.join(', ')}: ${first.error}${hint}`,
    );
  }
  return observation;
}
