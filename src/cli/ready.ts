import { assertCredentials } from '../adapters/credentials.js';
import { checkRunOptions } from '../runtime.js';
import type { RuntimeOptions } from '../runtime-options.js';

/**
 * What every command that reads Google checks first, each failing in one line: options a run can
 * start with (runtime.ts checkRunOptions: the emulator's host and admin URL together), then
 * credentials (none needed against the emulator).
 */
export async function assertReadyToRead(
  options: Pick<RuntimeOptions, 'emulatorHost' | 'emulatorAdmin'>,
): Promise<void> {
  checkRunOptions(options);
  await assertCredentials(options);
}
