import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { parsePolicy, parsePolicyText } from '../../src/core/policy.js';

/** The policy's `quotaRequests` section: opt-in, bounded, and every fault named with its path. */

const base = { version: 1, projects: ['p'] };

function faults(raw: unknown): string[] {
  try {
    parsePolicy(raw);
    return [];
  } catch (e) {
    if (e instanceof InputError) return e.faults.map((f) => `${f.path}: ${f.message}`);
    throw e;
  }
}

describe('policy quotaRequests', () => {
  it('is absent (off) unless the policy sets it, and takes defaults', () => {
    expect(parsePolicy(base).quotaRequests).toBeUndefined();
    const p = parsePolicy({
      ...base,
      quotaRequests: { enabled: true, contactEmail: 'gpu-team@example.com' },
    });
    expect(p.quotaRequests).toEqual({
      enabled: true,
      maxIncrease: 4,
      contactEmail: 'gpu-team@example.com',
    });
    expect(parsePolicy({ ...base, quotaRequests: {} }).quotaRequests?.enabled).toBe(false);
  });

  it('requires a contact email when enabled, as Google does for an increase', () => {
    expect(faults({ ...base, quotaRequests: { enabled: true } })).toEqual([
      'quotaRequests.contactEmail: required when quotaRequests.enabled is true: Google requires a contact email for a quota increase',
    ]);
    expect(faults({ ...base, quotaRequests: { enabled: false } })).toEqual([]);
  });

  it('rejects a malformed email, out-of-range increases, unknown keys and wrong types, with their paths', () => {
    const f = faults({
      ...base,
      quotaRequests: {
        enabled: 'yes',
        maxIncrease: 0,
        contactEmail: 'not an email',
        justification: '',
        extra: 1,
      },
    });
    expect(f.some((x) => x.startsWith('quotaRequests.enabled:'))).toBe(true);
    expect(f.some((x) => x.startsWith('quotaRequests.maxIncrease:'))).toBe(true);
    expect(f.some((x) => x.startsWith('quotaRequests.contactEmail: expected an email'))).toBe(true);
    expect(f.some((x) => x.startsWith('quotaRequests.justification:'))).toBe(true);
    expect(f.some((x) => x.includes('extra'))).toBe(true);
    expect(faults({ ...base, quotaRequests: { maxIncrease: 10_001 } })[0]).toMatch(
      /^quotaRequests\.maxIncrease:/,
    );
    expect(faults({ ...base, quotaRequests: { maxIncrease: 1.5 } })[0]).toMatch(
      /^quotaRequests\.maxIncrease:/,
    );
    expect(faults({ ...base, quotaRequests: [] })[0]).toMatch(/^quotaRequests:/);
  });

  it('rejects hostile and oversized values', () => {
    const long = 'x'.repeat(501);
    expect(faults({ ...base, quotaRequests: { justification: long } })[0]).toMatch(
      /^quotaRequests\.justification:/,
    );
    expect(faults({ ...base, quotaRequests: { justification: 'line one\nline two' } })[0]).toMatch(
      /^quotaRequests\.justification: must be one line/,
    );
    expect(
      faults({ ...base, quotaRequests: { contactEmail: `${'a'.repeat(250)}@example.com` } })[0],
    ).toMatch(/^quotaRequests\.contactEmail:/);
    expect(
      faults({ ...base, quotaRequests: { contactEmail: 'a@b.com\r\nBcc: x@y.com' } })[0],
    ).toMatch(/^quotaRequests\.contactEmail:/);
  });

  it('reads from YAML like every other section', () => {
    const p = parsePolicyText(
      'version: 1\nprojects: [p]\nquotaRequests:\n  enabled: true\n  maxIncrease: 2\n  justification: Inference for search.\n  contactEmail: ops@example.com\n',
    );
    expect(p.quotaRequests?.maxIncrease).toBe(2);
    expect(p.quotaRequests?.justification).toBe('Inference for search.');
  });
});
