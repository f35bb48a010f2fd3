import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

describe("the run's temporary directory (temp-root.global.ts)", () => {
  it('is where every scratch directory of a test goes, so the run removes them all', () => {
    expect(basename(tmpdir())).toMatch(/^governor-tests-/);
    expect(basename(dirname(tmpdir()))).not.toMatch(/^governor-tests-/);
  });
});
