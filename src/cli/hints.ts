import { governorPermission, howToGrant, permissionsNamedIn } from '../core/permissions.js';
import { listOnOneLine, oneLine } from '../core/text.js';
import type { RuntimeOptions } from '../runtime-options.js';

/**
 * The hint for a call refused at an emulator's address: the emulator the environment names is not
 * listening there (stopped, or started again on new ports), which no permission would change.
 * Null when the failure names no emulator address of the environment.
 */
export function emulatorGoneHint(
  text: string,
  options: Pick<RuntimeOptions, 'emulatorHost' | 'emulatorAdmin' | 'pubsubEmulatorHost'>,
): string | null {
  const admin = hostOf(options.emulatorAdmin);
  const hosts = [options.emulatorHost, options.pubsubEmulatorHost, admin].filter(
    (h): h is string => typeof h === 'string' && h !== '',
  );
  if (!hosts.some((h) => text.includes(`ECONNREFUSED ${h}`))) return null;
  return 'is `governor emulator` still running? Each start prints new addresses to export; unset GOVERNOR_EMULATOR_HOST, GOVERNOR_EMULATOR_ADMIN and PUBSUB_EMULATOR_HOST to use Google instead';
}

/**
 * The hint for a state file or Firestore document the governor cannot read: every run fails on it
 * until a person acts, and what moving it aside or deleting it costs is in the runbook. Null when
 * the failure is not that.
 */
function corruptStateHint(text: string): string | null {
  // The kept discovery: a file, or Firestore's `%discovery` (firestore-store.ts); only a cache.
  if (
    text.includes('Unreadable discovery cache ') ||
    /Unreadable document \S*\/%discovery:/.test(text)
  )
    return 'every command that reads it fails on it until the next dispatch searches again and replaces it, or it is mended or removed (removed, nothing is lost)';
  if (text.includes('Unreadable state file '))
    return 'every run fails on it until it is mended or moved aside (the next run then starts a new one, and what it held is lost: docs/alerts.md, "When an alert fires")';
  // A Firestore document (firestore-store.ts names each so); the governor id's error says already
  // how to mend it (ports/state.ts governorIdFix).
  if (text.includes('Unreadable document ') && !text.includes('No run starts until'))
    return 'every run that reads it fails on it until it is mended or deleted (what a deleted document held is lost: docs/alerts.md, "When an alert fires")';
  return null;
}

/**
 * The hint for a permission Google denied that a run needs: the role that holds it and how the
 * Terraform module grants it, from the one table (core/permissions.ts). A command runs as the
 * credentials it finds (a person's, or the function's account), so it names no account. Null when
 * the failure names no such permission.
 */
function permissionHint(text: string): string | null {
  const needed = permissionsNamedIn(text)
    .map(governorPermission)
    .filter((p) => p !== null);
  if (needed.length === 0) return null;
  return [...new Set(needed)]
    .map((p) => `the identity this ran as lacks ${p}: ${howToGrant(p)}`)
    .join('; ');
}

/**
 * The one line a failed command prints on stderr: the error, and a hint if one applies. An error
 * that lists its faults a line each (a state file that does not parse) is put on one line
 * (listOnOneLine), the hint after all of them; a control character an error quotes (a name from
 * the state store or from Google) is a space, so nothing in it acts on the terminal.
 */
export function failureLine(
  message: string,
  options: Pick<RuntimeOptions, 'emulatorHost' | 'emulatorAdmin' | 'pubsubEmulatorHost'> | null,
): string {
  const line = oneLine(listOnOneLine(message));
  const hint =
    (options ? emulatorGoneHint(line, options) : null) ??
    corruptStateHint(line) ??
    permissionHint(line);
  return `error: ${line}${hint ? ` — ${hint}` : ''}\n`;
}

function hostOf(url: string | null): string | undefined {
  try {
    return url ? new URL(url).host : undefined;
  } catch {
    return undefined;
  }
}
