import { handleUnitPush } from '../src/function/org.js';
import type { Logger } from '../src/log.js';
import { errorMessage } from '../src/core/errors.js';

/**
 * One worker process of the organisation bench (bench/org-procs.ts): a stand-in for a few
 * instances of the unit function. Its parent sends Pub/Sub push requests over IPC; each is
 * answered by the function's own entry (`handleUnitPush`, what `governorUnit` runs for a push),
 * with the variables the function would have (the policy, the state store, the emulator's host).
 * Asked for it, it reports the CPU it has spent (process.cpuUsage) and its peak memory.
 *
 *   { kind: 'unit', id, body }  →  { kind: 'done', id, status, ms }
 *   { kind: 'cpu' }             →  { kind: 'cpu', userUs, systemUs, maxRssKb }
 */

type Request = { kind: 'unit'; id: number; body: unknown } | { kind: 'cpu' };

// The bench counts and times; a unit's own log lines are the function's, not the bench's.
let errors = 0;
const log: Logger = {
  log: (severity, message) => {
    if (severity === 'ERROR' && errors++ < 3) process.stderr.write(`org worker: ${message}\n`);
  },
};

// A parent gone (the bench stopped) is no one to answer: the worker exits on 'disconnect'.
const send = (m: unknown) => {
  if (process.connected) process.send?.(m);
};

process.on('message', (m: Request) => {
  if (m.kind === 'cpu') {
    const { user, system } = process.cpuUsage();
    send({ kind: 'cpu', userUs: user, systemUs: system, maxRssKb: process.resourceUsage().maxRSS });
    return;
  }
  const t0 = performance.now();
  handleUnitPush(m.body, process.env, log).then(
    (answer) => send({ kind: 'done', id: m.id, status: answer.status, ms: performance.now() - t0 }),
    (e: unknown) => {
      // A bug, not a failed run (a failed run answers 500): the parent stops the bench.
      const message = errorMessage(e);
      send({ kind: 'done', id: m.id, status: 0, ms: performance.now() - t0, error: message });
    },
  );
});
// The parent holds the IPC channel: when it goes, so does this worker.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready' });
