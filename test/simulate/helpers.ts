import { parsePolicy, type Policy } from '../../src/core/policy.js';
import {
  buildScenario,
  parseScenario,
  type ScenarioInput,
  type SimulationInput,
} from '../../src/simulate/scenario.js';
import { TRACE_DIR } from '../../src/simulate/scenarios.js';

/** A scenario of constant-demand services in one pool (no warm-up noise, instant start-up). */
export async function constantFleet(
  quota: number,
  services: { name: string; cap: number; demand: number }[],
  hours = 1,
): Promise<SimulationInput> {
  const scenario: ScenarioInput = {
    scenario: 1,
    start: '2026-11-24T00:00:00Z',
    hours,
    quota,
    startupSeconds: 0,
    idleMinutes: 0,
    warmupMinutes: 0,
    services: services.map((s) => ({
      name: s.name,
      maxInstances: s.cap,
      demand: { shape: { kind: 'constant', value: s.demand } },
    })),
  };
  return buildScenario(parseScenario(scenario), TRACE_DIR);
}

export function governAll(extra: Record<string, unknown> = {}): Policy {
  return parsePolicy({
    version: 1,
    projects: ['sim-project'],
    services: [{ match: {} }],
    ...extra,
  });
}
