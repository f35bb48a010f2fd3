import { describe, expect, it } from 'vitest';

import { allPages } from '../../src/adapters/paging.js';
import { UpstreamError } from '../../src/core/errors.js';

/**
 * allPages against a list method answered page by page from an array: the bounds every adapter's
 * listings keep, at their edges. The adapters' odd-answer tests (cloud-run-odd, assets-odd) run
 * the same through the real client libraries.
 */

type Page = [string[], unknown, { nextPageToken: string }];

/** A list method whose page n holds `items[n]` and offers page n + 1 until the last. */
function lister(items: readonly string[][]): (token: string) => Promise<Page> {
  return (token) => {
    const n = token === '' ? 0 : Number(token);
    const next = n + 1 < items.length ? String(n + 1) : '';
    return Promise.resolve([items[n] ?? [], null, { nextPageToken: next }]);
  };
}

describe('allPages', () => {
  it('reads 99 empty pages in a row, then the rest; and a listing whose 100th empty page ends it', async () => {
    const pages = [...Array.from({ length: 99 }, (): string[] => []), ['a'], ['b']];
    expect(await allPages(lister(pages), 'listing')).toEqual(['a', 'b']);
    // The 100th empty page in a row offers no other: the listing ended, it is not endless.
    const ending = [['a'], ...Array.from({ length: 100 }, (): string[] => [])];
    expect(await allPages(lister(ending), 'listing')).toEqual(['a']);
  });

  it('counts empty pages in a row only: a page with items starts the count again', async () => {
    const empties = (): string[][] => Array.from({ length: 60 }, (): string[] => []);
    const pages = [...empties(), ['a'], ...empties(), ['b']];
    expect(await allPages(lister(pages), 'listing')).toEqual(['a', 'b']);
  });

  it('refuses a page token offered twice at once, rather than read the same page again', async () => {
    let calls = 0;
    const again = (): Promise<Page> => {
      calls++;
      return Promise.resolve([['a'], null, { nextPageToken: 'again' }]);
    };
    await expect(allPages(again, 'listing', 50)).rejects.toThrow(
      new UpstreamError('listing: the page token "again" came back twice'),
    );
    expect(calls).toBe(2);
  });

  it('stops at the 100th empty page in a row that offers another', async () => {
    const pages = [['a'], ...Array.from({ length: 100 }, (): string[] => []), ['b']];
    await expect(allPages(lister(pages), 'listing')).rejects.toThrow(
      new UpstreamError(
        'listing: the listing did not end (100 pages in a row held nothing, and another was offered)',
      ),
    );
  });

  it('reads up to maxPages pages and refuses a listing with more', async () => {
    const pages = [['a'], ['b'], ['c']];
    expect(await allPages(lister(pages), 'listing', 3)).toEqual(['a', 'b', 'c']);
    await expect(allPages(lister(pages), 'listing', 2)).rejects.toThrow(
      /more than 2 pages, the most one listing reads/,
    );
  });
});
