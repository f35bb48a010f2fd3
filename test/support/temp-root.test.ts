import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import setup from './temp-root.global.js';

describe("the run's temporary directory (temp-root.global.ts)", () => {
  it('is where every scratch directory of a test goes, so the run removes them all', () => {
    expect(basename(tmpdir())).toMatch(/^governor-tests-/);
    expect(basename(dirname(tmpdir()))).not.toMatch(/^governor-tests-/);
  });

  it('is shared by both projects and removed when the last one ends, TMPDIR restored', () => {
    const outer = process.env.TMPDIR;
    const unit = setup();
    const root = tmpdir();
    const integration = setup();
    try {
      expect(root).not.toBe(outer);
      expect(tmpdir()).toBe(root);
      unit();
      expect(existsSync(root)).toBe(true);
      expect(tmpdir()).toBe(root);
      integration();
      expect(existsSync(root)).toBe(false);
      expect(process.env.TMPDIR).toBe(outer);
    } finally {
      process.env.TMPDIR = outer;
    }
  });
});
