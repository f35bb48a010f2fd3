import { Command, CommanderError, Option } from 'commander';
import { isInputError, GovernorError, UsageError } from '../errors.js';
import { plan } from '../core/planner.js';
import { loadPolicy, loadSnapshot } from './io.js';
import { colorsFor, renderPlan } from './render.js';

/** Where a command writes; the real process streams, or buffers in tests. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function parseAt(text: string): string {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(ms)) {
    throw new UsageError(
      `--at ${JSON.stringify(text)} is not an ISO 8601 time such as 2026-11-27T10:00:00Z`,
    );
  }
  return new Date(ms).toISOString();
}

export function buildProgram(io: Io): Command {
  const program = new Command('governor')
    .description('Keeps the GPU services of Cloud Run projects within their regional GPU quota.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError('(run governor --help for usage)');

  program
    .command('plan')
    .description('Show what the governor would change, and why.')
    .requiredOption('--policy <file>', 'policy file (YAML or JSON)')
    .option(
      '--snapshot <file>',
      'plan offline from a snapshot file instead of observing the project',
    )
    .addOption(new Option('--at <iso>', "the time to plan for (default: the snapshot's takenAt)"))
    .option('--json', 'print the plan as JSON only')
    .action(async (opts: { policy: string; snapshot?: string; at?: string; json?: boolean }) => {
      const policy = await loadPolicy(opts.policy);
      if (!opts.snapshot) {
        throw new UsageError(
          'live observation is not available in this version: pass --snapshot FILE',
        );
      }
      const snapshot = await loadSnapshot(opts.snapshot);
      const at = opts.at ? parseAt(opts.at) : snapshot.takenAt;
      const result = plan(snapshot, policy, at);
      io.stdout.write(
        opts.json
          ? JSON.stringify(result, null, 2) + '\n'
          : renderPlan(result, colorsFor(io.stdout, io.env)),
      );
    });

  program
    .command('validate')
    .description('Check a policy file; lists every problem at once.')
    .requiredOption('--policy <file>', 'policy file (YAML or JSON)')
    .action(async (opts: { policy: string }) => {
      const policy = await loadPolicy(opts.policy);
      io.stdout.write(
        `${opts.policy}: valid (version ${policy.version}, ${policy.projects.length} project(s), ${policy.services.length} rule(s), ${policy.pools.length} pool setting(s), mode ${policy.mode})\n`,
      );
    });

  return program;
}

/** Runs the command line; returns the exit code. Errors are reported here and only here. */
export async function main(
  argv: string[],
  io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; every other commander error is a usage error.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (isInputError(e)) {
      io.stderr.write(`error: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof GovernorError) {
      io.stderr.write(`error: ${e.message}\n`);
      return EXIT.failed;
    }
    io.stderr.write(
      `error: unexpected failure: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return EXIT.failed;
  }
}
