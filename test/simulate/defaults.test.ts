import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_METRICS_LAG_MS, MINUTE_MS } from '../../src/emulator/model.js';
import { DEFAULT_LAG_MINUTES, DEFAULT_TICK_MINUTES } from '../../src/simulate/result.js';
import { DEFAULT_SIMULATED_HOURS, MAX_SIMULATED_HOURS } from '../../src/simulate/scenario.js';
import { main } from '../../src/cli/main.js';
import { runReplay } from '../../src/cli/simulate-command.js';
import { parseRuntimeOptions } from '../../src/runtime-options.js';
import { loadConfig } from '../terraform/hcl.js';

/**
 * The simulation's defaults and bounds, each one constant read by the simulator, `simulate`,
 * `replay`, `demo` and chaos. Some stand for facts stated elsewhere: the governor's tick is the
 * Terraform module's schedule, Monitoring's lag the emulator's. These hold the copies that cannot
 * import the constant (the emulator's default, the module's cron, the help, the docs) to it.
 */
describe('the simulation defaults', () => {
  it('lag Monitoring as the emulator does when not told (metricsLagMs)', () => {
    expect(DEFAULT_LAG_MINUTES * MINUTE_MS).toBe(DEFAULT_METRICS_LAG_MS);
    const emulatorDoc = readFileSync('docs/emulator.md', 'utf8');
    expect(emulatorDoc).toMatch(
      new RegExp(`^\\| \`metricsLagMs\` +\\| \`${DEFAULT_METRICS_LAG_MS}\` +\\|`, 'm'),
    );
  });

  it("tick as the Terraform module's default schedule runs the governor", async () => {
    const module = await loadConfig('terraform');
    expect(module.variables.get('schedule')?.['default']).toBe(`*/${DEFAULT_TICK_MINUTES} * * * *`);
  });

  it('are the ones docs/simulation.md states', () => {
    const page = readFileSync('docs/simulation.md', 'utf8');
    expect(page).toMatch(
      new RegExp(`^\\| \`--tick D\` .*\\(default \`${DEFAULT_TICK_MINUTES}m\`\\)`, 'm'),
    );
    expect(page).toMatch(
      new RegExp(`^\\| \`--lag D\` .*\\(default \`${DEFAULT_LAG_MINUTES}m\`[;)]`, 'm'),
    );
  });

  it('simulate at most 31 days, 24 hours unless told: the scenario, --hours, replay --since', async () => {
    expect(MAX_SIMULATED_HOURS).toBe(31 * 24);
    const page = readFileSync('docs/simulation.md', 'utf8');
    expect(page).toMatch(
      new RegExp(
        `^\\| \`--hours N\` .*else ${DEFAULT_SIMULATED_HOURS}; at most ${MAX_SIMULATED_HOURS}\\)`,
        'm',
      ),
    );
    expect(page).toMatch(
      new RegExp(`^\\| \`--since D\` .*\`1h\` to \`${MAX_SIMULATED_HOURS / 24}d\``, 'm'),
    );
    let help = '';
    const code = await main(['simulate', '--help'], {
      stdout: { write: (t: string) => (help += t) },
      stderr: { write: () => undefined },
      env: {},
    });
    expect(code).toBe(0);
    expect(help.replace(/\s+/g, ' ')).toContain(`else ${DEFAULT_SIMULATED_HOURS})`);
    // replay's window is the simulated hours: refused past them, before anything is read.
    const io = { stdout: { write: () => undefined }, stderr: { write: () => undefined } };
    for (const since of ['59m', `${MAX_SIMULATED_HOURS + 1}h`, '32d'])
      await expect(
        runReplay({ policy: 'examples/policy.yaml', since }, io, parseRuntimeOptions({})),
        since,
      ).rejects.toThrow(`--since ${since}: expected between 1h and 31d`);
  });
});
