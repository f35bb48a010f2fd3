import { closeSync, mkdtempSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
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
    const loop = join(dir, 'loop');
    symlinkSync(loop, loop);
    const cases: [string, string][] = [
      [join(dir, 'missing'), 'no such file'],
      [dir, 'is a directory'],
      [file('big', 2048), 'over 1 KiB, the most a policy file may have'],
      // Named once: Node's own message repeated the whole name, twice the line for a long one.
      [join(dir, 'n'.repeat(300)), 'its name is too long for the file system'],
      [join(dir, 'a'.repeat(5000)), 'its name is too long for the file system'],
      [loop, 'too many symbolic links to follow (a loop?)'],
    ];
    for (const [path, why] of cases) {
      const error: unknown = await readInputText(path, 'policy', 1024).catch((e: unknown) => e);
      expect(error, path).toBeInstanceOf(InputError);
      expect((error as Error).message).toBe(`cannot read the policy file ${path}: ${why}`);
    }
    expect(await readInputText(file('small', 3), 'policy', 1024)).toBe('aaa');
  });

  it('refuses an empty name as such, not as a file that is missing', async () => {
    // `--policy=` or `--fleet "$UNSET"`: "cannot read the policy file : no such file" named no file.
    for (const path of ['', '  ']) {
      const error: unknown = await readInputText(path, 'fleet', 1024).catch((e: unknown) => e);
      expect(error, JSON.stringify(path)).toBeInstanceOf(InputError);
      expect((error as Error).message).toBe(
        `cannot read the fleet file ${JSON.stringify(path)}: its name is empty; name the file to read`,
      );
    }
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

  it('refuses a NUL byte, naming its line, as binary data or UTF-16 rather than a policy', async () => {
    // A NUL is valid UTF-8 but neither YAML nor JSON text: read on, a NUL before `version`
    // was reported as "version: missing", and a file of zeros as "expected object".
    const cases: [string, Buffer, number][] = [
      ['nul-first.yaml', Buffer.from('\0version: 1\nprojects: [p]\n'), 1],
      ['nul-third.yaml', Buffer.from('version: 1\nprojects: [p]\nmode: \0enforce\n'), 3],
      ['utf16.json', Buffer.from('{"version": 1}\n', 'utf16le'), 1],
      ['zeros', Buffer.alloc(64), 1],
    ];
    for (const [name, bytes, line] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const error: unknown = await readInputText(path, 'snapshot', 1024).catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(InputError);
      expect((error as Error).message, name).toBe(
        `cannot read the snapshot file ${path}: line ${line} holds a NUL byte: binary data or UTF-16, not UTF-8 text`,
      );
    }
  });

  it('writes a limit in MiB, KiB or bytes', () => {
    expect(sizeText(64 << 20)).toBe('64 MiB');
    expect(sizeText(4 << 10)).toBe('4 KiB');
    expect(sizeText(1000)).toBe('1000 bytes');
  });
});
