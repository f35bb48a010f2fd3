import { assertCredentials } from '../adapters/credentials.js';
import { checkRunOptions } from '../runtime.js';

/**
 * What every command that reads Google checks first, each failing in one line: options a run can
 * start with (runtime.ts checkRunOptions: the emulator's host and admin URL together, and beside
 * emulators of Pub/Sub and Firestore), then
 * credentials (none needed against the emulator).
 */
export async function assertReadyToRead(
  options: Parameters<typeof checkRunOptions>[0],
): Promise<void> {
  checkRunOptions(options);
  await assertCredentials(options);
}
