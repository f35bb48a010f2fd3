/**
 * How error messages quote the client's input (rpc.ts, shown) and how long an answered message
 * may be (answeredMessage): cut with cutText (src/core/errors.ts), control characters as spaces.
 */
import { describe, expect, it } from 'vitest';
import {
  answeredMessage,
  MAX_ERROR_MESSAGE,
  permissionDenied,
  SHOWN_INPUT,
  shown,
} from '../../src/emulator/rpc.js';

describe('shown', () => {
  it('quotes input of up to SHOWN_INPUT characters whole', () => {
    const input = 'a'.repeat(SHOWN_INPUT);
    expect(shown(input)).toBe(input);
  });

  it('cuts longer input to SHOWN_INPUT characters, "…" included', () => {
    const quoted = shown('b'.repeat(SHOWN_INPUT + 1));
    expect(quoted).toHaveLength(SHOWN_INPUT);
    expect(quoted).toBe(`${'b'.repeat(SHOWN_INPUT - 1)}…`);
    expect(shown('c'.repeat(1_000_000))).toHaveLength(SHOWN_INPUT);
  });

  it('shows each control character as a space', () => {
    expect(shown('a\nb\r\n\u0000c\u009bd')).toBe('a b   c d');
  });
});

describe('answeredMessage', () => {
  it('keeps a message of up to MAX_ERROR_MESSAGE characters, on one line', () => {
    expect(answeredMessage('line one\nline two')).toBe('line one line two');
    const full = 'm'.repeat(MAX_ERROR_MESSAGE);
    expect(answeredMessage(full)).toBe(full);
  });

  it('cuts a longer one to MAX_ERROR_MESSAGE characters, "…" included', () => {
    const answered = answeredMessage('m'.repeat(MAX_ERROR_MESSAGE + 1));
    expect(answered).toHaveLength(MAX_ERROR_MESSAGE);
    expect(answered.endsWith('m…')).toBe(true);
  });
});

describe('permissionDenied', () => {
  it('names the permission and the resource, the resource quoted cut', () => {
    expect(permissionDenied('run.services.get', 'projects/p/locations/r/services/s').message).toBe(
      "Permission 'run.services.get' denied on resource 'projects/p/locations/r/services/s' (or resource may not exist).",
    );
    const long = permissionDenied('run.services.list', `projects/${'x'.repeat(5000)}`);
    expect(long.message.length).toBeLessThan(SHOWN_INPUT + 100);
  });
});
