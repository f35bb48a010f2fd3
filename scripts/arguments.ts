/**
 * The command-line arguments of the project's `npm run` scripts. Each script takes a few flags and
 * at most a few paths: anything else is refused before the script reads or writes a file, with one
 * line naming the argument and the script's usage (exit 2). An argument a script ignored did
 * harm: `terraform-docs.js --chek` rewrote the READMEs it was asked to check, and
 * `package.js --help` wrote the archive to a file named `--help`.
 */

export interface ScriptUsage {
  /** The script's name, as its messages begin. */
  name: string;
  /** The flags it takes, such as `--check`. */
  flags?: readonly string[];
  /** How many arguments other than flags it takes at most. */
  positionals?: number;
  /** The usage line printed with `--help` and after a refusal. */
  text: string;
}

export type ScriptArguments =
  { flags: ReadonlySet<string>; positionals: string[] } | { help: string } | { error: string };

/** What `args` (the arguments after the script's path) ask of a script of `usage`. */
export function scriptArguments(args: readonly string[], usage: ScriptUsage): ScriptArguments {
  const known = new Set(usage.flags ?? []);
  const flags = new Set<string>();
  const positionals: string[] = [];
  let onlyPositionals = false;
  for (const arg of args) {
    if (!onlyPositionals && arg === '--') {
      onlyPositionals = true;
    } else if (!onlyPositionals && (arg === '--help' || arg === '-h')) {
      return { help: `usage: ${usage.text}` };
    } else if (!onlyPositionals && arg.startsWith('-') && arg !== '-') {
      if (!known.has(arg)) return refusal(usage, `unknown option ${JSON.stringify(arg)}`);
      flags.add(arg);
    } else {
      positionals.push(arg);
    }
  }
  const most = usage.positionals ?? 0;
  if (positionals.length > most) {
    return refusal(usage, `unexpected argument ${JSON.stringify(positionals[most])}`);
  }
  return { flags, positionals };
}

function refusal(usage: ScriptUsage, what: string): { error: string } {
  return { error: `${usage.name}: ${what}; usage: ${usage.text}` };
}

/**
 * The script's arguments; on `--help`, its usage and exit 0; on anything it does not take, one
 * line on stderr and exit 2.
 */
export function argumentsOrExit(
  usage: ScriptUsage,
  args: readonly string[] = process.argv.slice(2),
): { flags: ReadonlySet<string>; positionals: string[] } {
  const parsed = scriptArguments(args, usage);
  if ('help' in parsed) {
    process.stdout.write(`${parsed.help}\n`);
    process.exit(0);
  }
  if ('error' in parsed) {
    process.stderr.write(`${parsed.error}\n`);
    process.exit(2);
  }
  return parsed;
}
