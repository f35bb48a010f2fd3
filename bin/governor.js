#!/usr/bin/env node
import { interruptPrompts, main, mustFinishRunning } from '../dist/src/cli/main.js';

// A client library's background failure must reach the user as one line, never a stack trace.
const oneLine = (e) => (e instanceof Error ? e.message.split('\n')[0] : String(e));
// google-auth-library warns (MetadataLookupWarning) when it looks for the GCE metadata server and
// finds none, which is every laptop without credentials: the one-line error says what matters.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'MetadataLookupWarning') process.stderr.write(`warning: ${oneLine(w)}\n`);
});
// A reader that stops early (`governor plan | head`) closes the pipe: what was asked for has been
// read, so the process ends quietly instead of reporting a failed write to stdout. Unless a run
// that holds leases and writes is under way (`governor apply --yes | head`: src/cli/finishing.ts):
// then stdout goes quiet and the run ends as it would have (lease released, run recorded). So
// does it when stdout cannot be written at all (`> /dev/full`, a full disk: ENOSPC, EIO): the run
// is not cut short holding its lease, but the output is lost, which is said once and exits 1.
let stdoutLost = false;
process.stdout.on('error', (e) => {
  if (mustFinishRunning()) {
    process.stdout.write = () => true;
    if (e.code !== 'EPIPE' && !stdoutLost) {
      stdoutLost = true;
      process.stderr.write(
        `error: cannot write to standard output (${oneLine(e)}): the run goes on to its end, its output lost\n`,
      );
    }
    return;
  }
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  process.stderr.write(`error: cannot write to standard output: ${oneLine(e)}\n`);
  process.exit(1);
});
// A stderr that cannot be written (its reader gone, `2>&1 | head`; a full disk, `2>/dev/full`):
// nothing can be told there any more, so it goes quiet and the command goes on as it would have,
// with its own exit code. Before, its first warning was an uncaught error that ended the process,
// `apply` included, mid-run with its lease held.
process.stderr.on('error', () => {
  process.stderr.write = () => true;
});
// Ctrl-C (or SIGTERM, or SIGHUP: the terminal or the ssh session gone) while a run that holds
// leases is writing: stopping there would leave the lease held until it expires and the run
// unrecorded, so the first signal lets the run end (it is bounded by its deadline) and says so; a
// second one stops at once. Otherwise at once, unless
// the command handles the signal itself (`governor emulator` stops its servers first).
// Stopping is dying of the signal itself (the shell's $? is 130, 143 or 129), not process.exit: Node's
// exit waits for every file call in flight, so a read blocked for good (a named pipe no one
// writes, `--policy fifo`) made Ctrl-C do nothing at all.
const dieOf = (signal) => {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
};
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (!mustFinishRunning()) {
      if (process.listenerCount(signal) > 1) return;
      dieOf(signal);
      return;
    }
    if (interrupted) {
      process.stderr.write(
        `\n${signal} again: stopped during the run; its lease stays held until it expires (governor unlock breaks it once no run is under way)\n`,
      );
      dieOf(signal);
      return;
    }
    interrupted = true;
    // At a confirmation prompt the signal answers it no: at the plan's, nothing is written yet
    // and the run ends as a declined one does (its lease released); at a quota request's, the
    // request is not filed and the run goes on to its end. The prompt says which.
    const declined = interruptPrompts();
    if (declined !== null) {
      process.stderr.write(`\n${signal}: ${declined}; ${signal} again stops at once\n`);
      return;
    }
    process.stderr.write(
      `\n${signal}: finishing the run first (the writes it planned, its record, its lease); ${signal} again stops at once\n`,
    );
  });
}
process.on('uncaughtException', (e) => {
  process.stderr.write(`error: ${oneLine(e)}\n`);
  process.exit(1);
});
// A failure nobody awaited fails the command, even when it comes while main runs: main's exit
// code, set once it returns, must not turn it back into a success.
let backgroundFailed = false;
process.on('unhandledRejection', (e) => {
  process.stderr.write(`error: ${oneLine(e)}\n`);
  backgroundFailed = true;
  process.exitCode = 1;
});

const code = await main(process.argv.slice(2));
process.exitCode = (stdoutLost || backgroundFailed) && code === 0 ? 1 : code;
