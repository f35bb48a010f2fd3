import { describe, expect, it } from 'vitest';
import { packagedFile } from '../../src/cli/files.js';
import { main } from '../../src/cli/main.js';

/** What a person sees when asking for help: no file of this machine. */

async function governor(
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  });
  return { code, stdout, stderr };
}

describe('help', () => {
  it.each([
    ['emulator', 'examples/fleet.yaml'],
    ['demo', 'examples/demo-fleet.yaml'],
    ['demo', 'examples/demo-policy.yaml'],
  ])(
    '%s --help names its default %s as shipped, not by its path on this machine',
    async (command, file) => {
      const r = await governor(command, '--help');
      expect(r.code).toBe(0);
      const help = r.stdout.replace(/\s+/g, ' ');
      expect(help).toContain(`(default: ${file}, shipped with the governor)`);
      expect(help).not.toContain(packagedFile(file));
    },
  );
});
