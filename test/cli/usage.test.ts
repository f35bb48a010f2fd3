import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shippedPath } from '../../src/read-capped.js';
import { main } from '../../src/cli/main.js';
import type { Plan } from '../../src/core/plan.js';

/** What a person sees when asking for help or mistyping an option: no file of this machine, the real fault. */

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
      expect(help).not.toContain(shippedPath(file));
    },
  );

  it('--help names every variable the emulator needs, as `governor emulator` prints them', async () => {
    // The governor refuses GOVERNOR_EMULATOR_HOST without GOVERNOR_EMULATOR_ADMIN (its clock) and
    // PUBSUB_EMULATOR_HOST (so nothing built from the emulator's data reaches Google's Pub/Sub).
    const r = await governor('--help');
    expect(r.code).toBe(0);
    for (const name of [
      'GOVERNOR_EMULATOR_HOST',
      'GOVERNOR_EMULATOR_ADMIN',
      'PUBSUB_EMULATOR_HOST',
    ])
      expect(r.stdout).toContain(name);
  });
});

describe('the files shipped with the governor', () => {
  it('are found from the package root, built or run from the sources', () => {
    // The tests run the sources (src/cli), the command line the build (dist/src/cli): one
    // folder apart. Both resolve to the package's own examples.
    const root = fileURLToPath(new URL('../../', import.meta.url));
    expect(shippedPath('examples/fleet.yaml')).toBe(join(root, 'examples', 'fleet.yaml'));
    expect(existsSync(shippedPath('examples/demo-policy.yaml'))).toBe(true);
  });
});

describe('a misspelt required option', () => {
  it.each([
    [['plan', '--polcy', 'examples/policy.yaml'], '--polcy'],
    [['quota', 'recommend', '--polcy', 'p.yaml'], '--polcy'],
    [['simulate', '--policy', 'p.yaml', '--fleat', 'f.yaml'], '--fleat'],
    [['replay', '--policy', 'p.yaml', '--snice', '7d'], '--snice'],
  ])('%j is named as unknown, not reported as a missing option; exit 2', async (argv, typo) => {
    const r = await governor(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: unknown option '${typo}'`);
    expect(r.stderr).not.toContain('required option');
    expect(r.stdout).toBe('');
  });

  it.each([
    [['plan'], '--policy <file>'],
    [['simulate', '--policy', 'p.yaml'], '--fleet <file>'],
    [['replay', '--policy', 'p.yaml'], '--since <duration>'],
  ])('%j without the option still says it is required; exit 2', async (argv, flags) => {
    const r = await governor(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: required option '${flags}' not specified`);
    expect(r.stdout).toBe('');
  });
});

describe('an option given twice', () => {
  it.each([
    [
      ['validate', '--policy', 'examples/policy.yaml', '--policy', 'examples/demo-policy.yaml'],
      '--policy',
    ],
    [['plan', '--policy', 'p.yaml', '--snapshot', 'a.json', '--snapshot=b.json'], '--snapshot'],
    [['quota', 'recommend', '--policy', 'p.yaml', '--days', '3', '--days', '5'], '--days'],
    [['simulate', '--policy', 'p.yaml', '--fleet', 'a.yaml', '--fleet', 'b.yaml'], '--fleet'],
  ])('%j is refused naming it, not read as its last value; exit 2', async (argv, flag) => {
    const r = await governor(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: option '${flag}`);
    expect(r.stderr).toContain('given more than once');
    expect(r.stdout).toBe('');
  });

  it('a flag without a value given twice is the flag; exit 0', async () => {
    const twice = await governor(
      'plan',
      ...['--policy', 'examples/policy.yaml'],
      ...['--snapshot', 'examples/snapshot.json'],
      '--json',
      '--json',
    );
    expect(twice.code, twice.stderr).toBe(0);
    expect(JSON.parse(twice.stdout)).toHaveProperty('changes');
  });
});

describe('an option the command would ignore', () => {
  it('status --state-dir without --org is refused, not silently dropped; exit 2', async () => {
    const r = await governor(
      'status',
      '--policy',
      'examples/policy.yaml',
      '--snapshot',
      'examples/snapshot.json',
      '--state-dir',
      'somewhere',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --state-dir is read with --org only: add --org, or drop it\n');
    expect(r.stdout).toBe('');
  });

  it('status --state-dir "" without --org is refused as well, not read as no flag; exit 2', async () => {
    const r = await governor(
      ...['status', '--policy', 'examples/policy.yaml', '--snapshot', 'examples/snapshot.json'],
      ...['--state-dir', ''],
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --state-dir is read with --org only: add --org, or drop it\n');
    expect(r.stdout).toBe('');
  });

  it.each([[['plan']], [['status']], [['plan', '--json']]])(
    '%j --snapshot "" is refused, not read as no flag (a live observation); exit 2',
    async (argv) => {
      const r = await governor(...argv, '--policy', 'examples/policy.yaml', '--snapshot', '');
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('error: --snapshot "": name the snapshot file to read\n');
      expect(r.stdout).toBe('');
    },
  );

  it('status --org --snapshot "" is refused as --snapshot is; exit 2', async () => {
    const r = await governor(
      ...['status', '--org', '--policy', 'examples/policy.yaml', '--snapshot', ''],
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --org reads the state store: drop --snapshot\n');
    expect(r.stdout).toBe('');
  });

  it('status --org --state-dir reads that store; exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-org-'));
    try {
      const r = await governor(
        'status',
        '--org',
        '--json',
        '--policy',
        'examples/policy.yaml',
        '--state-dir',
        dir,
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBeTypeOf('object');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [
      ['plan', '--json'],
      '--all lists every row of the text; --json lists every service already: drop one',
    ],
    [
      ['status', '--json'],
      '--all lists every row of the text; --json lists every service already: drop one',
    ],
    [['status', '--org'], '--all lists the services of a plan: drop it with --org'],
  ])('%j with --all is refused, not silently dropped; exit 2', async (argv, message) => {
    const [command = 'plan', ...rest] = argv;
    const r = await governor(command, '--policy', 'examples/policy.yaml', ...rest, '--all');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: ${message}\n`);
    expect(r.stdout).toBe('');
  });

  it('plan and status --all on a small fleet print what they print without it', async () => {
    for (const command of ['plan', 'status']) {
      const args = [
        command,
        '--policy',
        'examples/policy.yaml',
        '--snapshot',
        'examples/snapshot.json',
      ];
      const all = await governor(...args, '--all');
      expect(all.code).toBe(0);
      expect(all.stdout).toBe((await governor(...args)).stdout);
    }
  });
});

describe('plan --at past the years an ISO 8601 time can write', () => {
  it.each(['9999-12-31T23:59:59-12:00', '0000-01-01T00:30:00+01:00'])(
    '%s: one line naming --at, exit 2, no plan (its UTC time is outside 0000–9999)',
    async (at) => {
      const r = await governor(
        ...['plan', '--policy', 'examples/policy.yaml', '--snapshot', 'examples/snapshot.json'],
        ...['--json', '--at', at],
      );
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^error: --at "${at.replace('+', '\\+')}" [^\\n]*\\n$`));
      expect(r.code).toBe(2);
    },
  );

  it('the first and last instants those years hold still plan, their time written as given', async () => {
    for (const at of ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z']) {
      const r = await governor(
        ...['plan', '--policy', 'examples/policy.yaml', '--snapshot', 'examples/snapshot.json'],
        ...['--json', '--at', at],
      );
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { at: string }).at).toBe(at.replace(/(:\d\d)Z$/, '$1.000Z'));
    }
  });
});

describe('plan --snapshot with a usage older than staleAfter at takenAt', () => {
  it('holds that service as usage unknown (fail static) rather than lowering it on a week-old sample', async () => {
    // An observation never holds a sample older than staleAfter (it reads such a service as
    // unknown, or as stopped when its project's metrics go on): a snapshot that does was edited
    // by hand or made by another tool, and its old figures are not what the service uses now.
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      services: { name: string; usage: { sampledAt: string } | null }[];
    };
    const embeddings = doc.services.find((s) => s.name === 'embeddings');
    if (!embeddings?.usage) throw new Error('the example has no measured embeddings');
    const args = ['plan', '--policy', 'examples/policy.yaml', '--json', '--snapshot'];
    const fresh = await governor(...args, 'examples/snapshot.json');
    const row = (out: string) =>
      (
        JSON.parse(out) as {
          services: { name: string; from: number; to: number; reason: string }[];
        }
      ).services.find((s) => s.name === 'embeddings');
    expect(row(fresh.stdout)).toMatchObject({ from: 3, to: 2 });

    embeddings.usage.sampledAt = '2026-11-20T14:57:00Z';
    const dir = mkdtempSync(join(tmpdir(), 'stale-'));
    try {
      const file = join(dir, 'snapshot.json');
      writeFileSync(file, JSON.stringify(doc));
      const r = await governor(...args, file);
      expect(r.code, r.stderr).toBe(0);
      expect(row(r.stdout)).toMatchObject({
        from: 3,
        to: 3,
        reason: expect.stringMatching(
          /^usage unknown \(latest sample 2026-11-20T14:57:00\.000Z is older than 10m at the snapshot's takenAt\): held at 3 \(fail static\)/,
        ) as unknown,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('plan --snapshot with a region whose job executions could not be listed', () => {
  it('raises nothing in its pools, as its warning says and the live plan did, though its pools do not say so', async () => {
    // An observation marks each pool of such a region budget unknown; a snapshot whose problems
    // say so but whose pools do not (written by hand, or by another tool) is read the same way.
    const doc = JSON.parse(readFileSync('examples/snapshot.json', 'utf8')) as {
      problems?: unknown[];
      pools: { budgetUnknown?: string }[];
    };
    expect(doc.pools.every((p) => p.budgetUnknown === undefined)).toBe(true);
    const args = ['plan', '--policy', 'examples/policy.yaml', '--json', '--snapshot'];
    const raises = (out: string) =>
      (JSON.parse(out) as Plan).changes.filter((c) => c.to > c.from).map((c) => c.name);
    expect(raises((await governor(...args, 'examples/snapshot.json')).stdout)).toEqual([
      'llm-chat',
    ]);

    doc.problems = [
      {
        project: 'my-project',
        region: 'us-central1',
        pool: null,
        subject: 'jobs',
        error: 'PERMISSION_DENIED: run.executions.list\n\u001b[2J denied',
      },
    ];
    const dir = mkdtempSync(join(tmpdir(), 'unread-'));
    try {
      const file = join(dir, 'snapshot.json');
      writeFileSync(file, JSON.stringify(doc));
      const r = await governor(...args, file);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('nothing there is raised');
      // The problem's error, anyone's text in a file, on one line without its control characters.
      expect(r.stderr).toContain('raised: PERMISSION_DENIED: run.executions.list [2J denied\n');
      expect(r.stderr.replaceAll('\n', '')).not.toMatch(/\p{Cc}/u);
      const out = JSON.parse(r.stdout) as Plan;
      expect(raises(r.stdout)).toEqual([]);
      expect(out.services.find((s) => s.name === 'llm-chat')?.reason).toContain(
        'pool budget unknown (us-central1: its job executions could not be listed): not raised (fail static)',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('governor help <command>', () => {
  it('names a command that does not exist, with a suggestion, exit 2', async () => {
    const r = await governor('help', 'plna');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown command 'plna'");
    expect(r.stderr).toContain('Did you mean plan?');
    // The error, not the whole help with no word about the name typed.
    expect(r.stderr).not.toContain('Commands:');
    expect(r.stdout).toBe('');
  });

  it('help help is the help, on stdout, exit 0', async () => {
    const r = await governor('help', 'help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: governor [options] [command]');
    expect(r.stderr).toBe('');
  });

  it("shows a command's own help, exit 0", async () => {
    const r = await governor('help', 'plan');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: governor plan [options]');
  });
});

describe('--help marks the options a command cannot run without', () => {
  it.each([
    ['plan', '--policy <file>'],
    ['apply', '--policy <file>'],
    ['simulate', '--fleet <file>'],
    ['replay', '--since <duration>'],
  ])('%s --help says %s is required', async (command, flags) => {
    const r = await governor(command, '--help');
    expect(r.code).toBe(0);
    // One entry per option, its wrapped description joined.
    const entry = r.stdout
      .split(/\n(?= {2}-)/)
      .map((e) => e.replace(/\s+/g, ' ').trim())
      .find((e) => e.startsWith(flags));
    expect(entry).toMatch(/\(required\)$/);
  });

  it('an option with a default is not marked', async () => {
    const r = await governor('demo', '--help');
    expect(r.stdout).not.toContain('(required)');
  });
});

describe('demo --help', () => {
  it('gives the range --hours and --every accept, as their errors do', async () => {
    const help = (await governor('demo', '--help')).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--hours <n> virtual hours to play, 1 to 48 (default: 24)');
    expect(help).toContain('--every <minutes> virtual minutes between governor runs, 1 to 60');
    const refused = await governor('demo', '--hours', '49');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('from 1 to 48');
  });
});

describe('a policy that quotes terminal escapes', () => {
  it('the error lists every fault on its line, control characters as spaces, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'governor-escapes-'));
    try {
      const policy = join(dir, 'policy.yaml');
      // An OSC 52 clipboard write, a bell and a carriage return in a glob; a clear-screen in a label.
      writeFileSync(
        policy,
        'version: 1\nprojects: [p]\nservices:\n' +
          '  - match: { name: "zz\\e]52;c;SGk=\\a\\r[" }\n' +
          '  - match: { labels: { team: "a\\e[2Jb" } }\n',
      );
      const r = await governor('validate', '--policy', policy);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('services[0].match.name: invalid glob "zz ]52;c;SGk= ["');
      expect(r.stderr).toContain('services[1].match.labels.team: "a [2Jb" cannot be');
      expect(r.stderr.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(2);
      expect(r.stderr).not.toMatch(/(?!\n)\p{Cc}/u);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an unexpected failure (a bug to report)', () => {
  /** `validate` on a valid policy, its stdout failing with an error (`message`) that is no governor error. */
  async function failing(env: Record<string, string>, message = 'the output broke') {
    let stderr = '';
    const code = await main(['validate', '--policy', 'examples/policy.yaml'], {
      stdout: {
        write: () => {
          throw new Error(message);
        },
      },
      stderr: { write: (s: string) => (stderr += s) },
      env,
    });
    return { code, stderr };
  }

  it('is one error line and exit 1, never exit 0 and never a stack trace', async () => {
    const r = await failing({});
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: unexpected failure: the output broke\n');
  });

  it('an error of several lines: its first line only, still one line and exit 1', async () => {
    const r = await failing(
      {},
      'the output broke\n    at write (stream.js:1:1)\n    at main (cli.js:2:2)',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: unexpected failure: the output broke\n');
  });

  it('GOVERNOR_DEBUG=1 adds its stack trace after that line, still exit 1', async () => {
    const r = await failing({ GOVERNOR_DEBUG: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: unexpected failure: the output broke\nError: the output broke\n\s+at /,
    );
  });

  it('GOVERNOR_DEBUG of anything but 1 (0, yes) adds no stack trace', async () => {
    for (const value of ['0', 'yes']) {
      const r = await failing({ GOVERNOR_DEBUG: value });
      expect(r.code, value).toBe(1);
      expect(r.stderr, value).toBe('error: unexpected failure: the output broke\n');
    }
  });
});

describe('emulator --port, --admin-port and --speed out of range', () => {
  it.each([
    ['--port', '65536', 'is not a port (0–65535)'],
    ['--admin-port', '99999', 'is not a port (0–65535)'],
    ['--port', '1e3', 'is not a port (0–65535)'],
    ['--speed', '0', ': expected a positive number or "manual"'],
    ['--speed', 'fast', ': expected a positive number or "manual"'],
    // Written as a decimal number, as the whole-number flags are written in digits: no hex,
    // exponent or blanks that Number() would read.
    ['--speed', '0x10', ': expected a positive number or "manual"'],
    ['--speed', '1e3', ': expected a positive number or "manual"'],
    ['--speed', ' 5', ': expected a positive number or "manual"'],
    ['--speed', '5.', ': expected a positive number or "manual"'],
  ])(
    '%s %s is refused naming the flag, before anything starts; exit 2',
    async (flag, value, why) => {
      const r = await governor('emulator', flag, value);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`error: ${flag} "${value}"${why.startsWith(':') ? '' : ' '}${why}\n`);
      expect(r.stdout).toBe('');
    },
  );
});
