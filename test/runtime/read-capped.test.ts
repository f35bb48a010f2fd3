import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { readCapped, readCappedSync, readInputText, sizeText } from '../../src/read-capped.js';

const dir = mkdtempSync(join(tmpdir(), 'governor-read-capped-'));
const file = (name: string, bytes: number): string => {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(bytes, 'a'));
  return path;
};

describe('reading a named file, never more than a limit', () => {
  it('reads a file of exactly the limit whole, and refuses one byte more (async and sync)', async () => {
    // Across the 64 KiB chunk, so the limit is counted over chunks.
    const limit = 150_000;
    const exact = file('exact', limit);
    const over = file('over', limit + 1);
    expect((await readCapped(exact, limit))?.length).toBe(limit);
    expect(await readCapped(over, limit)).toBeNull();
    for (const [path, length] of [
      [exact, limit],
      [over, null],
    ] as const) {
      const fd = openSync(path, 'r');
      try {
        expect(readCappedSync(fd, limit)?.length ?? null).toBe(length);
      } finally {
        closeSync(fd);
      }
    }
    expect((await readCapped(file('empty', 0), limit))?.length).toBe(0);
  });

  it('stops an endless device at the limit', async () => {
    expect(await readCapped('/dev/zero', 1 << 20)).toBeNull();
  });

  it('names the file and the fault as bad input', async () => {
    const cases: [string, string][] = [
      [join(dir, 'missing'), 'no such file'],
      [dir, 'is a directory'],
      [file('big', 2048), 'over 1 KiB, the most a policy file may have'],
    ];
    for (const [path, why] of cases) {
      const error: unknown = await readInputText(path, 'policy', 1024).catch((e: unknown) => e);
      expect(error, path).toBeInstanceOf(InputError);
      expect((error as Error).message).toBe(`cannot read the policy file ${path}: ${why}`);
    }
    expect(await readInputText(file('small', 3), 'policy', 1024)).toBe('aaa');
  });

  it('refuses bytes that are not UTF-8, naming the line, rather than reading U+FFFD', async () => {
    const latin1 = join(dir, 'latin1.yaml');
    writeFileSync(latin1, Buffer.from('version: 1\nprojects: [caf\xe9]\n', 'latin1'));
    const error: unknown = await readInputText(latin1, 'policy', 1024).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      `cannot read the policy file ${latin1}: line 2 is not UTF-8 text`,
    );
    const utf8 = join(dir, 'utf8.yaml');
    writeFileSync(utf8, '\ufeffname: café ✓\n');
    expect(await readInputText(utf8, 'policy', 1024)).toBe('name: café ✓\n');
  });

  it('writes a limit in MiB, KiB or bytes', () => {
    expect(sizeText(64 << 20)).toBe('64 MiB');
    expect(sizeText(4 << 10)).toBe('4 KiB');
    expect(sizeText(1000)).toBe('1000 bytes');
  });
});
