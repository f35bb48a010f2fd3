import { describe, expect, it } from 'vitest';
import {
  duplicateKey,
  expectedFormat,
  jsonErrorText,
  MAX_POLICY_BYTES,
  parseDocument,
} from '../../src/core/document.js';
import { parsePolicyText } from '../../src/core/policy.js';
import { parseSnapshotText } from '../../src/core/snapshot.js';
import { InputError } from '../../src/core/errors.js';

function caught(f: () => unknown): InputError {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

/** A snapshot of 40,000 services as JSON text (14 MB). */
function largeSnapshot(): string {
  const service = {
    project: 'p',
    region: 'us-central1',
    accelerator: 'nvidia-l4',
    zonalRedundancy: true,
    gpusPerInstance: 1,
    labels: { team: 'search' },
    maxInstances: 2,
    minInstances: 0,
    reconciling: false,
    etag: '"e-1"',
    lastChangedAt: null,
    usage: { current: 1, peak: 1, sampledAt: '2026-11-27T14:57:00Z' },
  };
  return JSON.stringify({
    version: 1,
    takenAt: '2026-11-27T15:00:00Z',
    pools: [],
    services: Array.from({ length: 40_000 }, (_, i) => ({ ...service, name: `s-${i}` })),
    unmanagedUsage: [],
  });
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

  it('refuses a document nested deeper than ours ever are before parsing it, quickly', () => {
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    const cases: [string, string, RegExp][] = [
      [deep, 'snapshot s.json', /line 1, column 101: brackets nested more than 100 deep/],
      [`a: ${deep}`, 'policy p.yaml', /line 1, column 104: brackets nested more than 100 deep/],
      [`a: ${'{b: '.repeat(200)}1${'}'.repeat(200)}`, 'policy p.yaml', /more than 100 deep/],
      [
        `${'- '.repeat(200_000)}x`,
        'snapshot s.yaml',
        /line 1, column 25\d: indented or nested more than 256/,
      ],
      [
        Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'),
        'policy p.yaml',
        /line 258, column \d+: indented or nested more than 256 columns deep/,
      ],
    ];
    for (const [text, what, why] of cases) {
      const began = Date.now();
      const e = caught(() => parseDocument(text, what));
      expect(e.message, what).toMatch(why);
      // Refused by the scan, not by the parser running out of stack.
      expect(e.message).not.toContain('call stack');
      expect(Date.now() - began).toBeLessThan(5_000);
    }
  });

  it('counts no bracket inside quotes or comments, and reads deep-but-sane documents', () => {
    const brackets = '['.repeat(300);
    const text = [
      `a: "${brackets}"`,
      `b: '${brackets}'`,
      `c: 1 # ${brackets}`,
      `d: ${'['.repeat(50)}1${']'.repeat(50)}`,
    ].join('\n');
    const value = parseDocument(text, 'policy p.yaml') as Record<string, unknown>;
    expect(value.a).toBe(brackets);
    expect(value.b).toBe(brackets);
    expect(value.c).toBe(1);
    expect(JSON.stringify(value.d)).toBe(`${'['.repeat(50)}1${']'.repeat(50)}`);
    const escaped = { s: `x\\"${brackets}` };
    expect(parseDocument(JSON.stringify(escaped), 's.json')).toEqual(escaped);
  });

  it('reports a YAML syntax error as YAML', () => {
    const e = caught(() => parsePolicyText('version: 1\nprojects: [p\n', 'policy p.yaml'));
    expect(e.message).toMatch(/^policy p\.yaml is not valid YAML:\n {2}- line \d+, column \d+: /);
  });

  it('gives the position of a YAML error once, in its path', () => {
    const e = caught(() => parsePolicyText('version: 1\nprojects: [p]\n  x: 1\n', 'policy p.yaml'));
    expect(e.faults).toHaveLength(1);
    expect(e.faults[0]?.path).toBe('line 3, column 1');
    expect(e.faults[0]?.message).toBe('All mapping items must start at the same column');
  });

  it('names a key left out as missing, not "received undefined"', () => {
    const e = caught(() =>
      parsePolicyText('version: 1\nprojects: [p]\nservices:\n  - {}\n', 'policy p.yaml'),
    );
    expect(e.faults).toEqual([{ path: 'services[0].match', message: 'missing (expected object)' }]);
  });

  it("says a file holds two YAML documents in a reader's words", () => {
    const e = caught(() =>
      parsePolicyText('version: 1\nprojects: [p]\n---\nversion: 1\n', 'policy p.yaml'),
    );
    expect(e.faults).toEqual([
      {
        path: 'line 3, column 1',
        message: 'a second document starts here (a line "---"): the file must hold one',
      },
    ]);
  });

  it('tells a fixed value left out from a wrong one', () => {
    const missing = caught(() => parsePolicyText('projects: [p]\n', 'policy p.yaml'));
    expect(missing.faults).toEqual([{ path: 'version', message: 'missing (expected 1)' }]);
    const wrong = caught(() => parsePolicyText('version: 2\nprojects: [p]\n', 'policy p.yaml'));
    expect(wrong.faults).toEqual([{ path: 'version', message: 'Invalid input: expected 1' }]);
  });

  it('names an empty key where it is, quoted', () => {
    const e = caught(() => parsePolicyText('version: 1\nprojects: [p]\n~: 1\n', 'policy p.yaml'));
    expect(e.faults).toEqual([{ path: '[""]', message: 'unknown key' }]);
    const nested = caught(() =>
      parsePolicyText('version: 1\nprojects: [p]\ndefaults:\n  "": 1\n', 'policy p.yaml'),
    );
    expect(nested.faults).toEqual([{ path: 'defaults[""]', message: 'unknown key' }]);
  });

  it('names a key of control characters, line separators or bidirectional controls quoted, each escaped', () => {
    // The key was shown as it was: a state file's lease key "k\u001b]0;title\u0007\nforged" put
    // a terminal escape on the terminal of `governor unlock`, and its newline made a second line.
    const key = 'k\u001b[31m\u0007\r\nforged\u0085\u2028\u202e.x';
    const e = caught(() =>
      parsePolicyText(JSON.stringify({ version: 1, projects: ['p'], defaults: { [key]: 1 } }), 'p'),
    );
    expect(e.faults).toEqual([
      {
        path: 'defaults["k\\u001b[31m\\u0007\\r\\nforged\\u0085\\u2028\\u202e.x"]',
        message: 'unknown key',
      },
    ]);
    // A plain key, emoji and international letters included, is shown as it is.
    const plain = caught(() =>
      parsePolicyText(JSON.stringify({ version: 1, projects: ['p'], 'équipe👩‍💻': 1 }), 'p'),
    );
    expect(plain.faults).toEqual([{ path: 'équipe👩‍💻', message: 'unknown key' }]);
  });

  it('says a duration written as a bare number needs its unit', () => {
    const e = caught(() =>
      parsePolicyText('version: 1\nprojects: [p]\ndefaults:\n  lookback: 30\n', 'policy p.yaml'),
    );
    expect(e.faults).toEqual([
      {
        path: 'defaults.lookback',
        message: 'expected a duration with its unit, such as "30m" or "30s", not the number 30',
      },
    ]);
  });

  it('says once what is wrong with a whole number too large, naming the bound that matters', () => {
    // 1e300 is a whole number past 2^53: the check that a number is an int (safe) failed beside
    // the key's own bound, and its bound, 9007199254740991, is one no policy author set.
    const policy = caught(() =>
      parsePolicyText(
        'version: 1\nprojects: [p]\ndefaults: {min: 1e300, priority: -1e300}\n',
        'policy p.yaml',
      ),
    );
    expect(policy.faults).toEqual([
      { path: 'defaults.min', message: 'Too big: expected number to be <=100000' },
      { path: 'defaults.priority', message: 'Too small: expected number to be >=-1000000' },
    ]);
    const snapshot = caught(() =>
      parseSnapshotText(
        JSON.stringify({
          version: 1,
          takenAt: '2026-11-27T15:00:00Z',
          pools: [
            {
              project: 'p',
              region: 'us-central1',
              accelerator: 'nvidia-l4',
              zonalRedundancy: true,
              quota: 1e300,
              quotaSource: 'cloudquotas',
            },
          ],
          services: [],
        }),
        'snapshot s.json',
      ),
    );
    expect(snapshot.faults.map((f) => f.path)).toEqual(['pools[0].quota']);
    expect(JSON.stringify(snapshot.faults)).not.toContain('9007199254740991');
  });

  it('tells why JSON was refused without quoting the text', () => {
    const refusal = (text: string): unknown => {
      try {
        JSON.parse(text);
      } catch (e) {
        return e;
      }
      return null;
    };
    const told = jsonErrorText(refusal('root:x:0:0:root:/root:/bin/bash\n'));
    expect(told).not.toContain('root:x');
    expect(told).toMatch(/^Unexpected token/);
    expect(jsonErrorText(refusal('{"a": 1'))).not.toContain('"a"');
    // From the middle of a longer text Node's excerpt starts with "...".
    const middle = jsonErrorText(refusal('{"schema":1,"project":"secret-project","apikey":nul\n'));
    expect(middle).toBe("Unexpected token '\n'");
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
    // Where and which, however it is spelled, at any depth.
    expect(
      caught(() => parseDocument('{"x": [{"a:b": 1,\n "a\\u003ab": 2}]}', 's.json')).message,
    ).toBe(
      's.json is not valid JSON:\n  - line 2, column 2: the key "a:b" is written twice in one object',
    );
    // The same key in two objects, as a value, or in an array is no duplicate.
    expect(
      duplicateKey('{"a": {"a": "a"}, "b": ["a", "a", {"a": 1}], "c": {"a": [1]}}'),
    ).toBeNull();
    expect(duplicateKey('[{"a": 1}, {"a": 2}]')).toBeNull();
    expect(duplicateKey('{"k\\"": 1, "b": {"q": 1, "q": 2}}')).toEqual({ key: 'q', offset: 25 });
  });

  it('reads a large JSON document with JSON.parse, never the YAML parser (seconds and gigabytes)', () => {
    // A snapshot of 40,000 services (14 MB) took 9 s and over 1 GB through the YAML parser; one
    // near the 64 MiB limit ran out of memory. Which parser read it is what this test holds (how
    // long it takes is a bench figure, not a unit test's).
    const text = largeSnapshot();
    expect(parseSnapshotText(text, 'snapshot s.json').services).toHaveLength(40_000);
    // Only the JSON reading names a key written twice this way (the YAML parser says "Map keys
    // must be unique"): the same 14 MB with one key twice at its end shows which reader read it.
    const twice = `${text.slice(0, -1)},"version":1}`;
    expect(caught(() => parseSnapshotText(twice, 'snapshot s.json')).faults).toEqual([
      expect.objectContaining({ message: 'the key "version" is written twice in one object' }),
    ]);
    // Reading and checking 14 MB twice takes seconds, and on a loaded 2-core machine more than
    // the 20 s a unit test is given: a guard against a hang, not a bound on the time taken.
  }, 90_000);

  it('tells a large document meant to be JSON that JSON.parse refuses in JSON words, without the YAML parser', () => {
    // A snapshot cut short (a full disk, an interrupted pipe) or edited by hand was handed to the
    // YAML parser after JSON.parse refused it: 23 s and 1.1 GB for 15 MB, 143 s and 4.3 GB for
    // 60 MB, before the same error. A trailing comma, which YAML reads and JSON does not, shows
    // which reader read it.
    const text = largeSnapshot();
    const e = caught(() => parseSnapshotText(`${text.slice(0, -1)},}`, 'snapshot s.json'));
    expect(e.message).toMatch(/^snapshot s\.json is not valid JSON:\n {2}- line 1, column \d+: /);
    // A small one is still read as YAML too (a policy written `{version: 1, ...}`).
    expect(parseDocument('{"version": 1, "projects": [p],}', 'policy p.json')).toEqual({
      version: 1,
      projects: ['p'],
    });
    // Seconds for 14 MB, more on a loaded machine: a guard against a hang (see the test above).
  }, 90_000);

  it('refuses a YAML document over 4 MiB, before the YAML parser, and reads it written as JSON', () => {
    // The YAML parser takes about 200 bytes of memory for each byte it reads: a fleet file of 8 MB
    // took 20 s and 1.7 GB, one of 60 MB (under the 64 MiB a fleet may have) exhausted the heap
    // after 4 minutes and failed the process with V8's own trace.
    const big = `a: ${'x'.repeat(MAX_POLICY_BYTES)}\n`;
    const e = caught(() => parseDocument(big, 'fleet f.yaml'));
    expect(e.message).toBe(
      `fleet f.yaml is too large for YAML: ${big.length} characters, over the 4 MiB read as YAML (its parser takes about 200 bytes of memory for each); write it as JSON`,
    );
    // The same document as JSON is read.
    expect(
      parseDocument(JSON.stringify({ a: 'x'.repeat(MAX_POLICY_BYTES) }), 'fleet f.json'),
    ).toEqual({
      a: 'x'.repeat(MAX_POLICY_BYTES),
    });
  });
});
