import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cutText } from '../../src/core/errors.js';
import {
  cutUtf8,
  hasUnshown,
  listOnOneLine,
  oneLine,
  plural,
  printedJson,
  quotedText,
  utf8Length,
} from '../../src/core/text.js';
import { fcParams } from '../support/fleet-arbitrary.js';

describe('listOnOneLine', () => {
  it('puts a message and its list of faults on one line, no stray separator after the colon', () => {
    expect(
      listOnOneLine('Unreadable state file s.json:\n  - project: missing\n  - runs: missing'),
    ).toBe('Unreadable state file s.json: project: missing; runs: missing');
  });

  it('joins other lines with "; " and leaves a single line as it is', () => {
    expect(listOnOneLine('first\n  second')).toBe('first; second');
    expect(listOnOneLine('one line: with a colon')).toBe('one line: with a colon');
  });
});

describe('oneLine', () => {
  it('shows control characters as one space a run, and trims', () => {
    expect(oneLine('\x1b[2Jgone\r\n\tnow ')).toBe('[2Jgone now');
  });

  it('shows line separators and bidirectional controls as spaces, so the text reads as stored', () => {
    // A right-to-left override would show "gpu-governor" written backwards after it.
    expect(oneLine('holder\u202Erongevog-upg\u202C')).toBe('holder rongevog-upg');
    expect(oneLine('a\u2028b\u2029c')).toBe('a b c');
    expect(oneLine('x\u2066y\u2069z')).toBe('x y z');
  });

  it('keeps the joiners and selectors of emoji, and text in other scripts', () => {
    const family = '\u{1F469}\u200D\u{1F469}\u200D\u{1F467}';
    expect(oneLine(`${family} \u2764\uFE0F עברית`)).toBe(`${family} \u2764\uFE0F עברית`);
  });
});

describe('plural', () => {
  it('is singular for exactly one, plural for everything else (0, fractions, many)', () => {
    expect(plural(1, 'GPU')).toBe('1 GPU');
    expect(plural(0, 'GPU')).toBe('0 GPUs');
    expect(plural(2, 'firing condition')).toBe('2 firing conditions');
    expect(plural(0.5, 'day')).toBe('0.5 days');
  });
});

describe('cutText', () => {
  it('cuts to at most max characters ending in …, never between the halves of a pair', () => {
    expect(cutText('abcdef', 10)).toBe('abcdef');
    expect(cutText('abcdef', 4)).toBe('abc…');
    // '😀' is two UTF-16 units: a cut that would keep one half keeps neither.
    expect(cutText('a😀b', 3)).toBe('a…');
    expect(cutText('😀😀😀', 4)).toBe('😀…');
    expect(cutText('x', 0)).toBe('…');
  });
});

describe('cutUtf8', () => {
  const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

  it('leaves a text that fits as it is, at exactly the bound too', () => {
    expect(cutUtf8('abc', 3)).toBe('abc');
    expect(cutUtf8('é'.repeat(512), 1024)).toBe('é'.repeat(512));
  });

  it('cuts to at most maxBytes of UTF-8 ending in …, never inside a character', () => {
    // 'é' is 2 bytes: 1,021 bytes of room before the 3 of '…' hold 510 of them, not 510 and a half.
    expect(cutUtf8('é'.repeat(600), 1024)).toBe(`${'é'.repeat(510)}…`);
    // '😀' is 4 bytes and two UTF-16 units. After 'ab', the room holds 254 of them (1,018 bytes);
    // counted by units, 339 halves would fit, the last a high surrogate alone (no text).
    expect(cutUtf8(`ab${'😀'.repeat(400)}`, 1024)).toBe(`ab${'😀'.repeat(254)}…`);
    expect(cutUtf8('a😀b', 5)).toBe('a…');
  });

  it('is within the bound, a prefix of the text, and no half of a pair at the cut, whatever the text', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.integer({ min: 3, max: 400 }),
        (text, max) => {
          const cut = cutUtf8(text, max);
          expect(utf8Length(cut)).toBe(bytes(cut));
          expect(bytes(cut)).toBeLessThanOrEqual(max);
          if (cut === text) return;
          const kept = cut.slice(0, -1);
          expect(cut.endsWith('…')).toBe(true);
          expect(text.startsWith(kept)).toBe(true);
          // The cut never falls between a high surrogate and the low one after it.
          const last = kept.charCodeAt(kept.length - 1);
          const next = text.charCodeAt(kept.length);
          expect(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff).toBe(false);
        },
      ),
      fcParams(300),
    );
  });
});

describe('hasUnshown, quotedText and printedJson', () => {
  // One class of characters for all: what oneLine shows as a space is what the others escape.
  const unshown = ['\u0000', '\u001b', '\n', '\u007f', '\u0085', '\u009b', '\u2028', '\u2029'];
  const bidi = ['\u202a', '\u202e', '\u2066', '\u2069'];

  it('agree with oneLine on every character it shows as a space, and only those', () => {
    for (const c of [...unshown, ...bidi]) {
      expect(oneLine(`a${c}b`), JSON.stringify(c)).toBe('a b');
      expect(hasUnshown(`a${c}b`), JSON.stringify(c)).toBe(true);
      expect(quotedText(`a${c}b`), JSON.stringify(c)).toMatch(/^"a\\(u[0-9a-f]{4}|n)b"$/);
    }
    for (const plain of ['équipe', '👩‍💻', 'a\u200db', 'x\ufe0f']) {
      expect(hasUnshown(plain), plain).toBe(false);
      expect(quotedText(plain)).toBe(JSON.stringify(plain));
    }
  });

  it('printedJson keeps the layout, escapes the rest, and reads back the same value', () => {
    const value = { note: [...unshown, ...bidi].join('x'), list: [1, 2] };
    const text = printedJson(value);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(JSON.stringify(value, null, 2).split('\n').length + 1);
    expect(hasUnshown(text.replace(/\n/g, ''))).toBe(false);
    expect(JSON.parse(text)).toEqual(value);
  });
});
