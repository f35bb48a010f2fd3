import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FaultConfig } from '../../src/emulator/faults.js';
import { Demand, Fleet, parseFleet } from '../../src/emulator/fleet.js';
import { buildScenario, parseScenario } from '../../src/simulate/scenario.js';
import { parse } from 'yaml';

/**
 * docs/emulator.md's examples are ones the emulator takes (and docs/simulation.md's scenario file
 * one the simulator takes): the fleet file that shows every key,
 * each form of the demand table, and the fault configuration `POST /faults` is shown with.
 * Parsed only (no server): a reader copies them into a fleet file or a request body.
 */

const PAGE = readFileSync('docs/emulator.md', 'utf8');

/** The body of the first fenced block of `lang` after `heading`. */
function blockAfter(heading: string, lang: string): string {
  const at = PAGE.indexOf(heading);
  expect(at, heading).toBeGreaterThanOrEqual(0);
  const body = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(PAGE.slice(at))?.[1];
  expect(body, `a ${lang} block after ${heading}`).toBeDefined();
  return body ?? '';
}

describe('docs/emulator.md', () => {
  it('shows a fleet file the emulator reads, every key of it', () => {
    const fleet = parseFleet(blockAfter('## The fleet file', 'yaml'), 'docs/emulator.md');
    const project = fleet.projects[0];
    expect(project?.services[0]?.name).toBe('llm-chat');
    expect(project?.workerPools).toHaveLength(1);
    expect(project?.jobs).toHaveLength(1);
  });

  it('shows every key the fleet file takes, at every level', () => {
    // The keys of the fleet's schema, by path; a demand's forms are the table under "Demand".
    const keys: string[] = [];
    const walk = (node: unknown, path: string[]): void => {
      if (Array.isArray(node)) return node.forEach((n) => walk(n, path));
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      for (const [key, value] of Object.entries((n.properties ?? {}) as Record<string, unknown>)) {
        keys.push([...path, key].join('.'));
        if (key !== 'demand') walk(value, [...path, key]);
      }
      for (const k of ['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties'])
        walk(n[k], path);
    };
    walk(z.toJSONSchema(Fleet, { io: 'input', unrepresentable: 'any' }), []);
    expect(keys.length).toBeGreaterThan(50);
    const block = blockAfter('## The fleet file', 'yaml');
    const missing = keys.filter((k) => !new RegExp(`\\b${k.split('.').pop()}:`).test(block));
    expect(missing).toEqual([]);
  });

  it('lists demand forms the fleet file takes', () => {
    const section = PAGE.slice(PAGE.indexOf('### Demand'), PAGE.indexOf('A trace file is'));
    const forms = [...section.matchAll(/^\| `([^`]+)`/gm)].map((m) => m[1] ?? '');
    // `demand: 3` or `{ constant: 3 }`: the first row shows both.
    const values = forms.map((f) => f.replace(/^demand: /, ''));
    expect(values.length).toBeGreaterThan(4);
    for (const value of values) {
      const fleet = `projects:\n  - id: my-project\n    services:\n      - { name: s, region: us-central1, demand: ${value} }\n`;
      expect(() => parseFleet(fleet), value).not.toThrow();
    }
    expect(Demand.safeParse({ constant: 3 }).success).toBe(true);
  });

  it('shows a fault configuration POST /faults takes', () => {
    const config = FaultConfig.parse(
      JSON.parse(blockAfter('## Fault injection and the invariant monitor', 'json')),
    );
    expect(config.seed).toBe(7);
    expect(config.errors.map((e) => e.method)).toEqual(['UpdateService']);
  });
});

describe('docs/simulation.md', () => {
  it('shows a scenario file the simulator reads, its trace among the shipped ones', async () => {
    const page = readFileSync('docs/simulation.md', 'utf8');
    const at = page.indexOf('### Scenario files');
    expect(at).toBeGreaterThanOrEqual(0);
    const block = /```yaml\n([\s\S]*?)```/.exec(page.slice(at))?.[1] ?? '';
    const scenario = parseScenario(parse(block), 'docs/simulation.md');
    expect(scenario.services.map((s) => s.name)).toEqual(['chat-nyc']);
    // Its trace path is relative to the scenario file, as in examples/sim-mixed.yaml.
    const input = await buildScenario(scenario, 'examples', 'docs/simulation.md');
    expect(input.fleet.projects[0]?.services).toHaveLength(1);
  });
});
