/** Reading a Google list method page by page, with the bounds every adapter keeps. */
import { UpstreamError } from '../core/errors.js';
import { translateGrpcError } from './grpc-errors.js';

/**
 * Empty pages in a row after which a listing that offers another is taken as endless (allPages,
 * and the listings that follow their tokens themselves: monitoring.ts).
 */
export const MAX_EMPTY_PAGES = 100;

/** The refusal of a listing whose `empty` pages in a row held nothing and offered another. */
export function endlessListing(what: string, empty: number): UpstreamError {
  return new UpstreamError(
    `${what}: the listing did not end (${empty} pages in a row held nothing, and another was offered)`,
  );
}

/**
 * Every item of a list (a failure on any page translated), page after page until the
 * next_page_token is empty: "If the end of the collection has been reached, the next_page_token field must be empty. This is the only way to
 * communicate end-of-collection", and a page may hold "fewer results than the number requested
 * (including zero results), even if not at the end of the collection" (AIP-158,
 * https://google.aip.dev/158). Not google-gax's async iterators (`list...Async`): they end the
 * list after ten empty pages in a row whatever the token says (`maxAttemptsEmptyResponse` in
 * google-gax's pageDescriptor.js), which would read a region's services as fewer than they are.
 * A token that comes back twice would loop for ever: an UpstreamError. So would fresh tokens on
 * empty pages without end: AIP-158 bounds neither, so more than `MAX_EMPTY_PAGES` empty pages in a
 * row (ten times what google-gax's iterators allow) are taken as a listing that does not end, an
 * UpstreamError rather than a run that never finishes. `maxPages`, when given, bounds the pages
 * read whatever they hold (an UpstreamError past it).
 */
export async function allPages<T>(
  page: (
    pageToken: string,
  ) => Promise<[T[], unknown, { nextPageToken?: string | null } | null | undefined]>,
  what: string,
  maxPages = Infinity,
): Promise<T[]> {
  const all: T[] = [];
  const seen = new Set<string>();
  let pageToken = '';
  let empty = 0;
  let read = 0;
  do {
    if (read++ >= maxPages)
      throw new UpstreamError(`${what}: more than ${maxPages} pages, the most one listing reads`);
    let answer: Awaited<ReturnType<typeof page>>;
    try {
      answer = await page(pageToken);
    } catch (error) {
      throw translateGrpcError(error, what);
    }
    const [items, , response] = answer;
    all.push(...items);
    empty = items.length === 0 ? empty + 1 : 0;
    pageToken = response?.nextPageToken ?? '';
    if (pageToken !== '' && empty >= MAX_EMPTY_PAGES) throw endlessListing(what, empty);
    if (seen.has(pageToken))
      throw new UpstreamError(`${what}: the page token "${pageToken}" came back twice`);
    seen.add(pageToken);
  } while (pageToken !== '');
  return all;
}
