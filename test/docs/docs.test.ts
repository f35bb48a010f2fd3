import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The documentation stands on its own: every relative link opens a file of the repository, no
 * page leans on a document or an issue a reader cannot open, and every environment variable the
 * code reads is in the README's table.
 */

const PAGES = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe('the docs', () => {
  it('link only to files that exist', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const text = readFileSync(page, 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] ?? '';
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(dirname(page), target))) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('refer to the rules in the repository, not to a document or an issue outside it', () => {
    const files = [...PAGES, ...walk('src'), ...walk('test'), ...walk('bench')].filter((f) =>
      /\.(md|ts)$/.test(f),
    );
    const outside = files.filter((f) => {
      const text = readFileSync(f, 'utf8');
      return /\bSPEC\b(?!IFIED)|SPEC\.md|the project's issue \d+/.test(
        text.replace(/UNSPECIFIED/g, ''),
      );
    });
    expect(outside.filter((f) => f !== join('test', 'docs', 'docs.test.ts'))).toEqual([]);
    expect(existsSync('docs/rules.md')).toBe(true);
  });

  it('list every environment variable the code reads in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const table = readme.slice(readme.indexOf('## Environment variables'));
    const read = new Set<string>();
    for (const file of walk('src').filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/env(?:\.|\[')([A-Z][A-Z0-9_]+)/g)) read.add(m[1] ?? '');
      for (const m of text.matchAll(/'((?:GOVERNOR|PUBSUB|FIRESTORE)_[A-Z_]+)'/g))
        read.add(m[1] ?? '');
    }
    expect(read.size).toBeGreaterThan(8);
    const missing = [...read].filter(
      (name) => !table.includes(`\`${name}\``) && !table.includes(`${name}=`),
    );
    expect(missing).toEqual([]);
  });
});
