import { describe, expect, it } from 'vitest';
import { cutText } from '../../src/core/errors.js';
import { listOnOneLine, oneLine, plural } from '../../src/core/text.js';

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
