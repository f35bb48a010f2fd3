import { Command, CommanderError, Option } from 'commander';
import { isInputError, GovernorError, UsageError } from '../core/errors.js';
import { plan } from '../core/planner.js';
import type { Policy } from '../core/policy.js';
import { durationMs, OffsetTime, UNWRITABLE_INSTANT, writableInstant } from '../core/duration.js';
import { fleetOfSnapshot, policyWarnings } from '../core/policy-fit.js';
import { fleetFullySeen, renderProblem, type ObservationProblem } from '../core/problems.js';
import { oneLine, printedJson } from '../core/text.js';
import {
  withStaleUsageUnknown,
  withUnreadListingsUnknown,
  type Snapshot,
} from '../core/snapshot.js';
import { parseRuntimeOptions, type RuntimeOptions } from '../runtime-options.js';
import { orgView, renderOrgView } from '../org/view.js';
import { createClock } from '../adapters/clock.js';
import { openCliStore } from '../runtime.js';
import { shippedPath } from '../read-capped.js';
import { loadPolicy, loadSnapshot, writeSnapshot } from './files.js';
import { failureLine } from './hints.js';
import { closeOrWarn, processIo, type Io, type Streams } from './io.js';
import { ALIKE_LISTED } from './alike.js';
import { colorsFor, renderPlan, renderStatus } from './render.js';
import { DEFAULT_LAG_MINUTES, DEFAULT_TICK_MINUTES } from '../simulate/result.js';
import type { DemoFlags } from './demo-command.js';
import type { RecommendFlags } from './quota-command.js';
import type { ReplayFlags, SimulateFlags } from './simulate-command.js';

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Options a command cannot run without. Commander checks its own mandatory options before it
 * rejects unknown ones, so a misspelt `--polcy` would be reported as a missing `--policy`; these
 * are checked by the program's preAction hook instead, after the unknown option has been named.
 */
const REQUIRED = new WeakSet<Option>();
function required(option: Option): Option {
  REQUIRED.add(option);
  // --help said nothing of it: every option of `plan --help` read as optional.
  option.description = `${option.description} (required)`;
  return option;
}

/** A file shipped with the governor, shown in help by its name in the package, not its path here. */
function packagedDefault(option: Option, relative: string): Option {
  return option.default(shippedPath(relative), `${relative}, shipped with the governor`);
}

/** `--policy`, the same on every command: required, unless the command has a default file. */
function policyOption(fallback?: string): Option {
  const option = new Option('--policy <file>', 'policy file (YAML or JSON)');
  return fallback === undefined ? required(option) : packagedDefault(option, fallback);
}

/**
 * `--at`: a time with its offset (`Z` or `+01:00`) and a real date, as the snapshot's `takenAt`
 * (core/duration.ts OffsetTime, then writableInstant, each with its own message). `Date.parse`
 * alone would read a time without an offset in the machine's own zone (the same command planning
 * for another hour on another laptop) and roll 2026-02-30 over to March 2.
 */
const AtTime = OffsetTime;

/**
 * Whether `text` is a time of AtTime's form but for a 60th second (`2016-12-31T23:59:60Z`): ISO
 * 8601 and RFC 3339 (section 5.6, time-second "00-58, 00-59, 00-60 based on leap second rules") allow
 * it, but a JavaScript time counts no leap seconds (ECMA-262, "Time Values and Time Range"), so
 * it has no instant to plan for. Told apart so the error names what is wrong.
 */
function leapSecond(text: string): boolean {
  const seconds = 'YYYY-MM-DDTHH:MM:'.length;
  return (
    text.slice(seconds, seconds + 2) === '60' &&
    AtTime.safeParse(`${text.slice(0, seconds)}59${text.slice(seconds + 2)}`).success
  );
}

function parseAt(text: string): string {
  if (leapSecond(text)) {
    throw new UsageError(
      `--at ${JSON.stringify(text)} is a leap second (second 60), which the governor cannot represent: use the second before or after it`,
    );
  }
  if (!AtTime.safeParse(text).success) {
    throw new UsageError(
      `--at ${JSON.stringify(text)} is not an ISO 8601 time with its offset, such as 2026-11-27T10:00:00Z`,
    );
  }
  if (!writableInstant(text))
    throw new UsageError(`--at ${JSON.stringify(text)} ${UNWRITABLE_INSTANT}`);
  return new Date(Date.parse(text)).toISOString();
}

/** Digits only: `Number` would also take "1e3", "0x50", " 8 " and "" (0). */
const DIGITS = /^\d{1,9}$/;
/** The same, with a fraction if any (60, 0.5). */
const DECIMAL = /^\d{1,9}(\.\d{1,9})?$/;

function parsePort(text: string, flag: string): number {
  const n = DIGITS.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not a port (0–65535)`);
  return n;
}

function parseCount(text: string, flag: string, max = 1000): number {
  const n = DIGITS.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: expected a whole number from 1 to ${max}`,
    );
  return n;
}

function parseSpeed(text: string): number | 'manual' {
  if (text === 'manual') return 'manual';
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--speed ${JSON.stringify(text)}: expected a positive number or "manual"`);
  return n;
}

/**
 * The snapshot to plan from: a file, or the project observed now. `complete`: every listing of
 * the fleet was read (a region skipped, or its worker pools or jobs unread, leaves it partial).
 */
async function snapshotFor(
  policy: Policy,
  file: string | undefined,
  io: Streams,
  options: RuntimeOptions,
): Promise<{ snapshot: Snapshot; complete: boolean }> {
  if (file !== undefined) {
    // A usage older than staleAfter is what an observation reads as unknown: so is it here.
    const staleAfterMs = durationMs(policy.defaults.staleAfter);
    // A region whose worker pools or jobs were not listed raises nothing, as live.
    const snapshot = withUnreadListingsUnknown(
      withStaleUsageUnknown(await loadSnapshot(file), staleAfterMs),
    );
    // What the observation could not read, as it warned then (absent in older snapshots).
    const problems = snapshot.problems ?? [];
    warnProblems(io, problems);
    return { snapshot, complete: fleetFullySeen(problems) };
  }
  // Google's client libraries take most of the start-up: loaded only by the commands that call.
  const { observeLive } = await import('./live.js');
  const observation = await observeLive(policy, options, io);
  warnProblems(io, observation.problems);
  return {
    snapshot: { ...observation.snapshot, problems: observation.problems },
    complete: fleetFullySeen(observation.problems),
  };
}

/** Each problem of an observation on stderr, one line each (a snapshot file is anyone's text). */
function warnProblems(io: Streams, problems: readonly ObservationProblem[]): void {
  for (const problem of problems) io.stderr.write(`warning: ${oneLine(renderProblem(problem))}\n`);
}

/**
 * The policy's warnings (core/policy-fit.ts) on stderr, so that `--json` output stays one
 * document: with the fleet's fit when the snapshot saw all of it.
 */
function warnPolicy(
  io: Streams,
  policy: Policy,
  seen?: { snapshot: Snapshot; complete: boolean },
): void {
  const fleet = seen?.complete ? fleetOfSnapshot(seen.snapshot) : undefined;
  for (const w of policyWarnings(policy, fleet))
    io.stderr.write(`warning: policy ${w.path}: ${w.message}\n`);
}

/**
 * `--snapshot` of `plan` and `status`: the file to read, or undefined to observe live. An empty
 * name is refused: read as no flag, it observed the project live where a file was asked for.
 */
function snapshotFlag(file: string | undefined): string | undefined {
  if (file !== undefined && file.trim() === '')
    throw new UsageError(`--snapshot ${JSON.stringify(file)}: name the snapshot file to read`);
  return file;
}

/** `--all` of `plan` and `status`: past ALIKE_LISTED alike in a pool, quiet services are counted. */
const ALL_HELP = `list every service, those with nothing to report too (else counted per pool past ${ALIKE_LISTED} alike)`;

/** `--all` is for the text: refused beside `--json`, which lists every service already. */
function refuseAllWithJson(opts: { all?: boolean; json?: boolean }): void {
  if (opts.all && opts.json)
    throw new UsageError(
      '--all lists every row of the text; --json lists every service already: drop one',
    );
}

/**
 * The command line. Every command returns its exit code, which the program hands to `exit` (main
 * returns it); a failure that stops a command is thrown, and main alone turns it into a message
 * and an exit code.
 */
export function buildProgram(
  io: Streams,
  options: RuntimeOptions,
  exit: (code: number) => void,
): Command {
  const run =
    <A extends unknown[]>(command: (...args: A) => Promise<number>) =>
    async (...args: A): Promise<void> => {
      exit(await command(...args));
    };
  const program = new Command('governor')
    .description('Keeps the GPU services of Cloud Run projects within their regional GPU quota.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(run governor --help for usage)')
    .hook('preAction', (_program, command) => {
      for (const option of command.options)
        if (REQUIRED.has(option) && command.getOptionValue(option.attributeName()) === undefined)
          command.error(`error: required option '${option.flags}' not specified`, {
            code: 'commander.missingMandatoryOptionValue',
          });
    })
    .addHelpText(
      'after',
      '\nEnvironment: Google endpoints with Application Default Credentials, or the emulator with the\nthree variables `governor emulator` prints (GOVERNOR_EMULATOR_HOST, GOVERNOR_EMULATOR_ADMIN and\nPUBSUB_EMULATOR_HOST); PUBSUB_EMULATOR_HOST alone for a Pub/Sub emulator.\nExit codes: 0 success, 1 a run failed (API, publish), 2 bad usage or bad input.',
    );

  program
    .command('plan')
    .description('Show what the governor would change, and why.')
    .addOption(policyOption())
    .option(
      '--snapshot <file>',
      'plan offline from a snapshot file instead of observing the project',
    )
    .addOption(new Option('--at <iso>', "the time to plan for (default: the snapshot's takenAt)"))
    .option('--json', 'print the plan as JSON only')
    .option('--all', ALL_HELP)
    .action(
      run(
        async (opts: {
          policy: string;
          snapshot?: string;
          at?: string;
          json?: boolean;
          all?: boolean;
        }) => {
          refuseAllWithJson(opts);
          const file = snapshotFlag(opts.snapshot);
          const policy = await loadPolicy(
            opts.policy,
            file !== undefined ? {} : { forProjects: 'plan' },
          );
          const at = opts.at !== undefined ? parseAt(opts.at) : undefined;
          const seen = await snapshotFor(policy, file, io, options);
          const { snapshot } = seen;
          warnPolicy(io, policy, seen);
          const result = plan(snapshot, policy, at ?? snapshot.takenAt);
          io.stdout.write(
            opts.json
              ? printedJson(result)
              : renderPlan(result, colorsFor(io.stdout, options), { all: opts.all }),
          );
          return EXIT.ok;
        },
      ),
    );

  program
    .command('snapshot')
    .description('Observe the project(s) of the policy and print the snapshot (JSON).')
    .addOption(policyOption())
    .action(
      run(async (opts: { policy: string }) => {
        const policy = await loadPolicy(opts.policy, { forProjects: 'snapshot' });
        const { snapshot } = await snapshotFor(policy, undefined, io, options);
        writeSnapshot(io, snapshot);
        return EXIT.ok;
      }),
    );

  program
    .command('status')
    .description("Each pool's quota, caps, use and demand, at a glance.")
    .addOption(policyOption())
    .option('--snapshot <file>', 'from a snapshot file instead of observing the project')
    .option('--json', 'print the plan as JSON')
    .option('--all', ALL_HELP)
    .option('--org', 'every unit of the organisation, from the state store (docs/organization.md)')
    .option('--state-dir <dir>', 'the local state store, with --org (default .governor/state)')
    .action(
      run(
        async (opts: {
          policy: string;
          snapshot?: string;
          json?: boolean;
          all?: boolean;
          org?: boolean;
          stateDir?: string;
        }) => {
          refuseAllWithJson(opts);
          if (!opts.org && opts.stateDir !== undefined)
            throw new UsageError('--state-dir is read with --org only: add --org, or drop it');
          const file = opts.org ? opts.snapshot : snapshotFlag(opts.snapshot);
          const policy = await loadPolicy(opts.policy, opts.org ? {} : { forProjects: 'status' });
          if (opts.org) {
            if (file !== undefined)
              throw new UsageError('--org reads the state store: drop --snapshot');
            if (opts.all)
              throw new UsageError('--all lists the services of a plan: drop it with --org');
            const store = await openCliStore(options.stateStore, opts.stateDir, 'read');
            try {
              // The runs' clock, as `governor status` takes its time from what it observes: the
              // emulator's virtual clock against the emulator, else the wall clock.
              const view = await orgView(policy, store, {
                nowMs: await createClock(options)(),
                wallMs: Date.now(),
                clock: options.emulatorAdmin ? 'emulator' : 'wall',
              });
              io.stdout.write(
                opts.json ? printedJson(view) : renderOrgView(view, policy.alerts.pressure),
              );
              // Shown with the others, and a failure all the same: no run of them can succeed.
              // Each in the one line any command prints for it, the hint after it.
              const unreadable = view.units.flatMap((u) => u.unreadable ?? []);
              for (const why of unreadable.slice(0, 10)) io.stderr.write(failureLine(why, options));
              if (unreadable.length > 10)
                io.stderr.write(
                  `error: and ${unreadable.length - 10} more unit(s) whose state cannot be read (--json)\n`,
                );
              if (unreadable.length > 0) return EXIT.failed;
            } finally {
              await closeOrWarn(() => store.close(), 'the state store', io);
            }
            return EXIT.ok;
          }
          const seen = await snapshotFor(policy, file, io, options);
          const { snapshot } = seen;
          warnPolicy(io, policy, seen);
          const result = plan(snapshot, policy, snapshot.takenAt);
          io.stdout.write(
            opts.json
              ? printedJson(result)
              : renderStatus(result, colorsFor(io.stdout, options), { all: opts.all }),
          );
          return EXIT.ok;
        },
      ),
    );

  program
    .command('validate')
    .description('Check a policy file; lists every problem at once.')
    .addOption(policyOption())
    .action(
      run(async (opts: { policy: string }) => {
        const policy = await loadPolicy(opts.policy);
        warnPolicy(io, policy);
        io.stdout.write(
          `${oneLine(opts.policy)}: valid (version ${policy.version}, ${policy.projects.length} project(s), ${policy.services.length} rule(s), ${policy.pools.length} pool setting(s), mode ${policy.mode})\n`,
        );
        return EXIT.ok;
      }),
    );

  program
    .command('check')
    .description(
      'Check every permission a run of the policy needs (exit 1 when one is missing or its check failed); writes nothing.',
    )
    .addOption(policyOption())
    .option('--json', 'print the check report as JSON only')
    .action(
      run(async (opts: { policy: string; json?: boolean }) => {
        const { runCheck } = await import('./check-command.js');
        return runCheck(opts, io, options);
      }),
    );

  program
    .command('apply')
    .description('Observe, plan, write the caps and publish the alerts (asks first on a terminal).')
    .addOption(policyOption())
    .option('--yes', 'write without asking')
    .option('--dry-run', 'plan and alert, write nothing (as mode: dry-run)')
    .option('--state-dir <dir>', 'the local state store (default .governor/state)')
    .action(
      run(async (opts: { policy: string; yes?: boolean; dryRun?: boolean; stateDir?: string }) => {
        const { runApply } = await import('./apply-command.js');
        return runApply(opts, io, options);
      }),
    );

  program
    .command('restore')
    .description(
      'Put governed services back to their max from before the governor, within the quota.',
    )
    .addOption(policyOption())
    .option('--yes', 'write without asking')
    .option('--dry-run', 'show what would be restored, write nothing')
    .option('--state-dir <dir>', 'the local state store (default .governor/state)')
    .action(
      run(async (opts: { policy: string; yes?: boolean; dryRun?: boolean; stateDir?: string }) => {
        const { runApply } = await import('./apply-command.js');
        return runApply(opts, io, options, true);
      }),
    );

  program
    .command('unlock')
    .description(
      "Show the projects' writer lease and break it, once no other governor is running (asks first on a terminal).",
    )
    .addOption(policyOption())
    .option('--yes', 'break it without asking')
    .option('--state-dir <dir>', 'the local state store (default .governor/state)')
    .action(
      run(async (opts: { policy: string; yes?: boolean; stateDir?: string }) => {
        const { runUnlock } = await import('./unlock-command.js');
        return runUnlock(opts, io, options);
      }),
    );

  program
    .command('quota')
    .description('Quota per pool from sustained pressure (docs/quota-requests.md).')
    .command('recommend')
    .description(
      "Recommend a quota per pool from the runs' pressure history, with the evidence (files nothing).",
    )
    .addOption(policyOption())
    .option('--json', 'print the recommendations as JSON only')
    .option('--days <n>', 'days of history to look at (1-14, default 7)', (t) =>
      parseCount(t, '--days', 14),
    )
    .option(
      '--at <iso>',
      "judge as of this time instead of now (the emulator's clock against the emulator)",
      parseAt,
    )
    .option('--state-dir <dir>', 'the local state store (default .governor/state)')
    .action(
      run(async (opts: RecommendFlags) => {
        const { runQuotaRecommend } = await import('./quota-command.js');
        return runQuotaRecommend(opts, io, options);
      }),
    );

  program
    .command('audit')
    .description(
      "Check every GPU service against Cloud Run's GPU requirements (exit 1 when a required rule fails or some services could not be listed).",
    )
    .addOption(policyOption())
    .option('--json', 'print the audit report as JSON only')
    .action(
      run(async (opts: { policy: string; json?: boolean }) => {
        const { runAudit } = await import('./audit-command.js');
        return runAudit(opts, io, options);
      }),
    );

  program
    .command('simulate')
    .description(
      'Simulate the policy minute by minute against a fleet, beside the baselines, on the same demand.',
    )
    .addOption(policyOption())
    .addOption(
      required(new Option('--fleet <file>', 'scenario file (scenario: 1) or emulator fleet file')),
    )
    .option('--hours <n>', "simulated hours (default: the scenario's, else 24)")
    .option('--report <file>', 'write the HTML report')
    .option('--json', 'print the results as JSON')
    .option('--via-emulator', 'run the governor through the gRPC emulator and Google clients')
    .option('--tick <duration>', 'virtual time between governor runs', `${DEFAULT_TICK_MINUTES}m`)
    .option('--lag <duration>', 'how far Monitoring is behind', `${DEFAULT_LAG_MINUTES}m`)
    .action(
      run(async (opts: SimulateFlags) => {
        const { runSimulate } = await import('./simulate-command.js');
        return runSimulate(opts, io);
      }),
    );

  program
    .command('replay')
    .description(
      "Simulate the policy on the project's Monitoring history: what the governor would have done.",
    )
    .addOption(policyOption())
    .addOption(required(new Option('--since <duration>', 'window to replay, e.g. 7d')))
    .option('--report <file>', 'write the HTML report')
    .option('--json', 'print the results as JSON')
    .option('--tick <duration>', 'virtual time between governor runs', `${DEFAULT_TICK_MINUTES}m`)
    .option('--lag <duration>', 'how far Monitoring is behind', `${DEFAULT_LAG_MINUTES}m`)
    .action(
      run(async (opts: ReplayFlags) => {
        const { runReplay } = await import('./simulate-command.js');
        return runReplay(opts, io, options);
      }),
    );

  program
    .command('emulator')
    .description(
      'Run the local emulator of Cloud Run, Cloud Monitoring, Cloud Quotas, Cloud Asset Inventory and Pub/Sub (publisher) until interrupted.',
    )
    .addOption(
      packagedDefault(
        new Option('--fleet <file>', 'fleet file (YAML or JSON)'),
        'examples/fleet.yaml',
      ),
    )
    .option('--port <n>', 'gRPC port on 127.0.0.1 (default: a free port)', (t) =>
      parsePort(t, '--port'),
    )
    .option('--admin-port <n>', 'HTTP admin port on 127.0.0.1 (default: a free port)', (t) =>
      parsePort(t, '--admin-port'),
    )
    .option(
      '--speed <n>',
      'virtual seconds per second, or "manual" (time moves only via the admin endpoint)',
      parseSpeed,
      1,
    )
    .action(
      run(
        async (opts: {
          fleet: string;
          port?: number;
          adminPort?: number;
          speed: number | 'manual';
        }) => {
          const { runEmulatorCommand } = await import('./emulator-command.js');
          return runEmulatorCommand(opts, io);
        },
      ),
    );

  program
    .command('demo')
    .description(
      'A simulated day of a GPU fleet: the governor on the embedded emulator beside static caps and over-commit. No Google account needed.',
    )
    .addOption(
      packagedDefault(new Option('--fleet <file>', 'fleet file'), 'examples/demo-fleet.yaml'),
    )
    .addOption(policyOption('examples/demo-policy.yaml'))
    .option(
      '--hours <n>',
      'virtual hours to play, 1 to 48',
      (v) => parseCount(v, '--hours', 48),
      24,
    )
    .option(
      '--every <minutes>',
      'virtual minutes between governor runs, 1 to 60',
      (v) => parseCount(v, '--every', 60),
      DEFAULT_TICK_MINUTES,
    )
    .action(
      run(async (opts: DemoFlags) => {
        const { runDemo } = await import('./demo-command.js');
        return runDemo(opts, io, options);
      }),
    );

  refuseRepeatedValues(program);
  return program;
}

/**
 * An option that takes one value, given twice (`--policy a.yaml ... --policy b.yaml`), is refused
 * by name. Commander keeps the last value without a word: a `--policy` added by a script after the
 * one written first replaced it, and `apply` wrote by a policy no one meant.
 */
function refuseRepeatedValues(command: Command): void {
  for (const option of command.options) {
    if (!(option.required || option.optional) || option.variadic) continue;
    let given = 0;
    command.on(`option:${option.name()}`, () => {
      given += 1;
      if (given > 1)
        command.error(`error: option '${option.flags}' given more than once: give it once`, {
          code: 'commander.optionRepeated',
        });
    });
  }
  for (const sub of command.commands) refuseRepeatedValues(sub);
}

export { interruptPrompts, mustFinishRunning } from './finishing.js';

/**
 * `governor help X` where X is no command: commander printed the whole help on stderr, with no word
 * about X. Parsed as `governor X` instead, it is the error a mistyped command gets: "unknown
 * command 'X'", with the nearest name. `governor help help` (commander: the help as an error, exit
 * 2) is `governor help`.
 */
function helpTarget(program: Command, argv: string[]): string[] {
  const [first, name] = argv;
  if (first !== 'help' || name === undefined || name.startsWith('-')) return argv;
  if (name === 'help') return ['help'];
  const known = program.commands.some((c) => c.name() === name || c.aliases().includes(name));
  return known ? argv : [name];
}

/**
 * An input error's message as the terminal shows it: its faults a line each, as listed, and what
 * a fault quotes of the input (a glob, a label value, a key) with each run of control characters
 * as a space, so that a terminal escape or a carriage return in a policy or a snapshot file does
 * not act on the terminal that shows the error.
 */
function shownLines(message: string): string {
  return message
    .split('\n')
    .map((line) => {
      const indent = /^ *(?:- )?/.exec(line)?.[0] ?? '';
      return indent + oneLine(line.slice(indent.length));
    })
    .join('\n');
}

/**
 * Runs the command line; returns the exit code. The environment is parsed here, once; errors are
 * reported here and only here.
 */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  let options: RuntimeOptions | null = null;
  try {
    options = parseRuntimeOptions(io.env);
    let exitCode: number = EXIT.ok;
    const program = buildProgram(io, options, (code) => {
      exitCode = code;
    });
    await program.parseAsync(helpTarget(program, argv), { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; every other commander error is a usage error.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (isInputError(e)) {
      io.stderr.write(`error: ${shownLines(e.message)}\n`);
      return EXIT.usage;
    }
    if (e instanceof GovernorError) {
      io.stderr.write(failureLine(e.message, options ?? null));
      return EXIT.failed;
    }
    // Never a stack trace: one line, what failed (GOVERNOR_DEBUG=1 adds it, for a bug report).
    io.stderr.write(
      `error: unexpected failure: ${oneLine(e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e))}\n`,
    );
    if (options?.debug && e instanceof Error && e.stack) {
      io.stderr.write(`${e.stack}\n`);
    }
    return EXIT.failed;
  }
}
