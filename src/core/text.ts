/**
 * Text from elsewhere (Google's answers, published messages, a policy's free text) shown to a
 * person or sent to Google: control characters (Unicode category Cc: C0, DEL and C1, newlines and
 * terminal escapes among them) never pass through as they are.
 */

/** One control character. */
export const CONTROL = /\p{Cc}/u;

/**
 * What `oneLine` shows as a space besides the control characters: the line and paragraph
 * separators (U+2028, U+2029), which start a new line in many terminals and editors, and the
 * bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make a
 * terminal show the characters after them in another order than they are (CVE-2021-42574,
 * "Trojan Source"). Other format characters stay: the zero-width joiner and variation selectors
 * are part of emoji.
 */
const UNSHOWN = String.raw`[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]`;
const NOT_ON_ONE_LINE = new RegExp(`${UNSHOWN}+`, 'gu');

/** One character `oneLine` would show as a space: the same class, one at a time. */
const NOT_SHOWN = new RegExp(UNSHOWN, 'gu');

/**
 * Whether `text` holds a character `oneLine` would show as a space: one a terminal would act on,
 * or that would start a line or turn the text around.
 */
export function hasUnshown(text: string): boolean {
  return text.search(NOT_SHOWN) !== -1;
}

/**
 * `text` as a JSON string literal whose every such character is an escape (`\u001b`, `\n`,
 * `\u202e`): where a name must be shown exactly (a key of a document) and its characters would
 * otherwise act on the terminal, or start a line of their own.
 */
export function quotedText(text: string): string {
  return escapedJson(JSON.stringify(text));
}

/**
 * JSON text with each such character left in it written as its escape: JSON.stringify escapes
 * the C0 controls only, and leaves DEL, the C1 controls (U+009B is a whole CSI to a terminal
 * that reads them), the line separators and the bidirectional controls as they are. Outside a
 * string JSON holds none of them but the newlines of its layout, which are kept: the text stays
 * the same JSON, read back to the same value.
 */
export function escapedJson(json: string): string {
  // A newline is the layout of indented JSON: JSON.stringify writes the one of a string as `\n`.
  return json.replace(NOT_SHOWN, (c) =>
    c === '\n' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A command's `--json` answer: indented two spaces as JSON.stringify does, each character a
 * terminal would act on escaped ({@link escapedJson}); names and notes may be anyone's text (a
 * snapshot file's, an error in Google's words).
 */
export function printedJson(value: unknown): string {
  return `${escapedJson(JSON.stringify(value, null, 2))}\n`;
}

/**
 * The text on one line: each run of control characters, line separators and bidirectional
 * controls as one space, trimmed.
 */
export function oneLine(text: string): string {
  return text.replace(NOT_ON_ONE_LINE, ' ').trim();
}

/**
 * One of the governor's own messages of several lines on one line, its list kept readable:
 * "Unreadable X:\n  - a\n  - b" becomes "Unreadable X: a; b" (for a log or a terminal line).
 */
export function listOnOneLine(text: string): string {
  return text.replace(/:\s*\n\s*-\s+/g, ': ').replace(/\s*\n\s*(?:-\s+)?/g, '; ');
}

/** `1 minute`, `2 minutes`, `0.5 days`: a count and its noun, singular only for exactly one. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * The first `max` items, comma-separated, and how many more there are: a list that grows with the
 * fleet, in a line that must stay short (a Cloud Logging entry is at most 256 KiB:
 * https://cloud.google.com/logging/quotas).
 */
export function someOf(items: readonly string[], max: number): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** The bytes of `text` in UTF-8 (core has no Buffer): what a store or a message counts. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A surrogate pair is one code point of 4 bytes; a lone surrogate is written as U+FFFD (3).
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i += 1;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8, ending in `…` (3 bytes) when cut; never between
 * the two halves of a surrogate pair (an emoji), whose half left would be no text.
 */
export function cutUtf8(text: string, maxBytes: number): string {
  if (utf8Length(text) <= maxBytes) return text;
  const room = Math.max(0, maxBytes - utf8Length('…'));
  let end = 0;
  let bytes = 0;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    const pair = c >= 0xd800 && c <= 0xdbff && end + 1 < text.length;
    const width = pair ? 2 : 1;
    const size = utf8Length(text.slice(end, end + width));
    if (bytes + size > room) break;
    bytes += size;
    end += width;
  }
  return `${text.slice(0, end)}…`;
}
