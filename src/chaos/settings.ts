/**
 * Whole-number settings of the tools beside the product (the chaos runs, the benchmarks, the
 * property, fuzz and crash tests), read from environment variables: a value is written in digits
 * and within its bounds, or refused before anything runs with one line naming the variable and
 * what it accepts (rather than read as NaN, 0 or a fraction that runs something else than asked).
 */

/** The largest seed: seeds are taken modulo 2^32, so a larger one would repeat a smaller one's runs. */
export const MAX_SEED = 2 ** 32 - 1;

/** A refused setting: the one line that says so. */
interface SettingError {
  error: string;
}

/** `env[name]` as a whole number from `min` to `max`; unset or blank: `fallback`. */
export function wholeNumberSetting(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number | SettingError {
  return numberSetting(env, name, fallback, min, max, /^\d+$/, 'a whole number');
}

/** `env[name]` as a number in decimals (as 0.25) from `min` to `max`; unset or blank: `fallback`. */
export function decimalSetting(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number | SettingError {
  return numberSetting(env, name, fallback, min, max, /^\d+(\.\d+)?$/, 'a number');
}

function numberSetting(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
  written: RegExp,
  what: string,
): number | SettingError {
  const raw = env[name]?.trim() ?? '';
  if (raw === '') return fallback;
  const n = Number(raw);
  if (!written.test(raw) || n < min || n > max)
    return {
      error: `${name} must be ${what} from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}, not ${JSON.stringify(env[name])}`,
    };
  return n;
}

/** For a tool run as a command: the setting, or its line on stderr and exit code 2. */
export function settingOrExit<T>(value: T | SettingError): T {
  if (typeof value === 'object' && value !== null && 'error' in value) {
    console.error(value.error);
    process.exit(2);
  }
  return value;
}

/** For a test file: the setting, or an error with its line (the file fails before any test runs). */
export function settingOrThrow<T>(value: T | SettingError): T {
  if (typeof value === 'object' && value !== null && 'error' in value) throw new Error(value.error);
  return value;
}
