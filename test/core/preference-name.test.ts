import { describe, expect, it } from 'vitest';
import { samePreference } from '../../src/core/preference-name.js';

const named = (project: string, id = 'gpu-governor-us-central1') =>
  `projects/${project}/locations/global/quotaPreferences/${id}`;

describe('whether two names are the same preference', () => {
  it('takes the project number Google answers for the project id asked with', () => {
    expect(samePreference(named('my-project'), named('123456'))).toBe(true);
    expect(samePreference(named('123456'), named('my-project'))).toBe(true);
    expect(samePreference(named('123456'), named('123456'))).toBe(true);
  });

  it('refuses another id, another project id, or another project number', () => {
    expect(samePreference(named('my-project'), named('my-project', 'someone-elses'))).toBe(false);
    expect(samePreference(named('my-project'), named('other-project'))).toBe(false);
    // Two numbers are two projects: neither stands for the other.
    expect(samePreference(named('123456'), named('654321'))).toBe(false);
  });
});
