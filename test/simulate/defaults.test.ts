import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_METRICS_LAG_MS } from '../../src/emulator/index.js';
import { MINUTE_MS } from '../../src/emulator/model.js';
import { DEFAULT_LAG_MINUTES, DEFAULT_TICK_MINUTES } from '../../src/simulate/result.js';
import { loadConfig } from '../terraform/hcl.js';

/**
 * The simulation's defaults stand for facts stated elsewhere: the governor's tick is the
 * Terraform module's schedule, Monitoring's lag the emulator's. Each is one constant, read by
 * the simulator, `simulate`, `replay`, `demo` and chaos; these hold the copies that cannot import
 * it (the emulator's default, the module's cron, the docs) to it.
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
      new RegExp(`^\\| \`--lag D\` .*\\(default \`${DEFAULT_LAG_MINUTES}m\`\\)`, 'm'),
    );
  });
});
