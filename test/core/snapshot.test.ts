import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSnapshotText } from '../../src/core/snapshot.js';
import { InputError } from '../../src/errors.js';

describe('snapshot', () => {
  it('refuses a __proto__ label key with its path rather than dropping it', () => {
    const example = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      services: { labels?: Record<string, string> }[];
    };
    const text = JSON.stringify(example).replace('"labels":{', '"labels":{"__proto__":"x",');
    expect(text).toContain('"__proto__":"x"');
    let faults: string[] = [];
    try {
      parseSnapshotText(text);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      faults = e.faults.map((f) => `${f.path}: ${f.message}`);
    }
    expect(faults.join('\n')).toMatch(
      /^services\[\d+\]\.labels\.__proto__: "__proto__" cannot be/m,
    );
  });
});
