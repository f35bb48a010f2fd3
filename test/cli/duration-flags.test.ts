import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { runReplay } from '../../src/cli/simulate-command.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';

/**
 * A duration given on the command line is read as a policy's is: a unit repeated or out of order
 * (`1m1m`, `30s5m`) is a typo, and the message says what a duration must look like.
 */
describe('durations on the command line', () => {
  for (const [flag, value] of [
    ['--tick', '1m1m'],
    ['--lag', '30s2m'],
  ] as const) {
    it(`simulate ${flag} ${value} is bad usage naming the rule`, async () => {
      let err = '';
      const code = await main(
        [
          'simulate',
          '--policy',
          'examples/sim-policy.yaml',
          '--fleet',
          'examples/sim-traces.yaml',
          flag,
          value,
        ],
        {
          stdout: { write: () => undefined },
          stderr: { write: (t: string) => (err += t) },
          env: {},
        },
      );
      expect(code).toBe(2);
      expect(err).toBe(`error: ${flag} "${value}": each unit once, largest first, e.g. "1h30m"\n`);
    });
  }

  it('replay --since 1d1d is refused naming the rule, before anything is read', async () => {
    const io = { stdout: { write: () => undefined }, stderr: { write: () => undefined } };
    await expect(
      runReplay({ policy: 'examples/policy.yaml', since: '1d1d' }, io, parseRuntimeOptions({})),
    ).rejects.toThrow('--since "1d1d": each unit once, largest first, e.g. "1h30m"');
  });

  it('a value that is no duration at all keeps its example', async () => {
    const io = { stdout: { write: () => undefined }, stderr: { write: () => undefined } };
    await expect(
      runReplay({ policy: 'examples/policy.yaml', since: 'a week' }, io, parseRuntimeOptions({})),
    ).rejects.toThrow('--since "a week": expected a duration such as "7d" or "24h"');
  });
});
