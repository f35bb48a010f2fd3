/**
 * Work the process must finish even when its reader has gone: a run that holds leases and writes
 * (`apply`, `restore`) or breaks them (`unlock`). `governor apply --yes | head` closes the pipe
 * while the run is writing; ending the process then (as a reader that stops early otherwise ends
 * it, bin/governor.js) would leave the project's lease held until it expires, the run unrecorded
 * and its events unpublished. While such work runs, bin/governor.js silences stdout instead, and
 * the command ends as it would have, with its exit code.
 */
let running = 0;

/** Runs `work` as work the process must finish (see above). */
export async function mustFinish<T>(work: () => Promise<T>): Promise<T> {
  running += 1;
  try {
    return await work();
  } finally {
    running -= 1;
  }
}

/** Whether work the process must finish is running. */
export function mustFinishRunning(): boolean {
  return running > 0;
}
