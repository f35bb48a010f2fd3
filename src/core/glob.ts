import picomatch from 'picomatch';

/** How a rule's `match.name` glob is read: by the rules (core/rules.ts) and by the policy's checks. */

/**
 * A name glob as a test of one name: what `picomatch(glob)(name)` answers (an empty name never
 * matches; the glob itself always does; otherwise its RegExp decides), without the result objects
 * picomatch's matcher builds on every call.
 */
export function nameMatcher(glob: string): (name: string) => boolean {
  // A literal name matches itself alone (literalName, below): no RegExp to build. A policy that
  // names each service by its name holds thousands of them, and building each RegExp cost more
  // than every test of it.
  if (literalName.test(glob)) return (name) => name === glob;
  const re = picomatch.makeRe(glob);
  return (name) => name !== '' && (name === glob || re.test(name));
}

/**
 * A name glob that only ever matches itself: letters, digits, `-` and `_` are no glob syntax for
 * picomatch, so the glob's RegExp accepts exactly the one name (what `bounded-matching.test.ts`
 * checks against picomatch).
 */
export const literalName = /^[A-Za-z0-9_-]+$/;
