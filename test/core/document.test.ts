import { describe, expect, it } from 'vitest';
import { expectedFormat, parseDocument } from '../../src/core/document.js';
import { parsePolicyText } from '../../src/core/policy.js';
import { parseSnapshotText } from '../../src/core/snapshot.js';
import { InputError } from '../../src/errors.js';

function caught(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('reading a document', () => {
  it('expects JSON from a *.json name or a text that opens like JSON, YAML otherwise', () => {
    expect(expectedFormat('{"a": 1}')).toBe('JSON');
    expect(expectedFormat('  [1, 2]')).toBe('JSON');
    expect(expectedFormat('a: 1', 'policy p.json')).toBe('JSON');
    expect(expectedFormat('a: 1', 'policy p.yaml')).toBe('YAML');
  });

  it('reports truncated JSON as a JSON error, at the line where it ends', () => {
    const e = caught(() =>
      parseSnapshotText('{\n  "version": 1,\n  "takenAt": "2026-11-27T10', 'snapshot s.json'),
    );
    expect(e.message).toBe(
      'snapshot s.json is not valid JSON:\n  - line 3, column 28: the JSON ends before it is complete (unterminated string)',
    );
    const cut = caught(() => parsePolicyText('{"version": 1, "projects": ["p"]', 'policy p.json'));
    expect(cut.message).toMatch(/^policy p\.json is not valid JSON:\n {2}- line 1, column \d+: /);
    expect(cut.message).not.toMatch(/YAML/);
  });

  it('reports a YAML syntax error as YAML', () => {
    const e = caught(() => parsePolicyText('version: 1\nprojects: [p\n', 'policy p.yaml'));
    expect(e.message).toMatch(/^policy p\.yaml is not valid YAML:\n {2}- line \d+, column \d+: /);
  });

  it('names an empty document instead of "expected object, received null"', () => {
    for (const text of ['', '\n', '# only a comment\n']) {
      const e = caught(() => parsePolicyText(text, 'policy p.yaml'));
      expect(e.message).toBe('policy p.yaml is empty: expected a YAML document');
    }
    expect(caught(() => parseSnapshotText('', 'snapshot s.json')).message).toBe(
      'snapshot s.json is empty: expected a JSON document',
    );
    expect(() => parseDocument('a: 1', 'x')).not.toThrow();
  });

  it('names a key written twice in JSON', () => {
    const e = caught(() => parseDocument('{"a": 1, "a": 2}', 'policy p.json'));
    expect(e.message).toMatch(/^policy p\.json is not valid JSON:/);
  });
});
