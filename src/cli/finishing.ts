import { createInterface } from 'node:readline/promises';

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

/**
 * The confirmation prompts waiting for an answer (askYes), each stopped by its controller, with
 * what answering it no means, as a signal's line says it (interruptPrompts).
 */
const prompts = new Map<AbortController, string>();

/** What a no at the plan's prompt means: nothing is written yet. */
const PLAN_DECLINED = 'not confirmed, nothing written; the run ends (its record, its lease)';

/**
 * Asks `question` on the terminal: true only for "yes". Ctrl-C typed at the prompt, or Ctrl-C or
 * SIGTERM sent to the process while it waits (bin/governor.js calls interruptPrompts), is a no,
 * instead of waiting for an answer the one who stopped it will not give: at the plan's prompt
 * nothing is written yet, and the run that asked (holding its lease) ends as a declined one does,
 * its lease released. `declined` is what that no means, as the signal's line says it: a prompt
 * asked after writes (a quota request's) must not say nothing was written.
 */
export async function askYes(
  question: string,
  declined: string = PLAN_DECLINED,
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const rl = createInterface({ input, output });
  const controller = new AbortController();
  prompts.set(controller, declined);
  try {
    const answer = await rl.question(question, { signal: controller.signal });
    return answer.trim() === 'yes';
  } catch (e) {
    // readline's AbortError: Ctrl-C typed at the prompt closes it, an abort stops it.
    if (!(e instanceof Error && e.name === 'AbortError')) throw e;
    output.write('\n');
    return false;
  } finally {
    prompts.delete(controller);
    rl.close();
  }
}

/**
 * Answers every waiting prompt (askYes) no; what that no means (the first prompt's, as askYes was
 * told), or null when none was waiting.
 */
export function interruptPrompts(): string | null {
  const [first] = prompts.values();
  for (const c of prompts.keys()) c.abort();
  return first ?? null;
}
