import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * The quickstart's inventory of examples/fleet.yaml is the fleet's: its pools' quotas, its GPU
 * services (the one the policy leaves alone among them), its services without a GPU and its
 * worker pools.
 */

interface FleetFile {
  projects: {
    id: string;
    pools: { zonalRedundancy?: boolean; quota: number }[];
    services: { name: string; gpu?: unknown }[];
    workerPools?: unknown[];
  }[];
}

const WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const word = (n: number) => WORDS[n] ?? String(n);
const article = (n: number, noun: string) => (n === 1 ? `a ${noun}` : `${word(n)} ${noun}s`);

describe('docs/quickstart.md', () => {
  it('describes examples/fleet.yaml as it is', () => {
    const fleet = parse(readFileSync('examples/fleet.yaml', 'utf8')) as FleetFile;
    expect(fleet.projects).toHaveLength(1);
    const project = fleet.projects[0];
    if (project === undefined) throw new Error('examples/fleet.yaml has no project');
    const gpu = project.services.filter((s) => s.gpu !== undefined);
    const noGpu = project.services.length - gpu.length;
    const zonal = project.pools.find((p) => p.zonalRedundancy !== false)?.quota;
    const nonZonal = project.pools.find((p) => p.zonalRedundancy === false)?.quota;
    // The policy leaves the fleet's render-* services alone (examples/demo-policy.yaml).
    const left = gpu.filter((s) => s.name.startsWith('render-')).map((s) => `\`${s.name}\``);
    expect(left).toHaveLength(1);

    const text = readFileSync('docs/quickstart.md', 'utf8').replace(/\s*\n\s*/g, ' ');
    const sentence = text.slice(text.indexOf('It loads [`examples/fleet.yaml`]'));
    expect(sentence).toContain(
      `one project, \`${project.id}\`, with ${word(project.pools.length)} L4 pools in us-central1 (${zonal} GPUs with zonal redundancy, ${nonZonal} without), ${word(gpu.length)} GPU services (`,
    );
    expect(sentence).toContain(`${left[0]}, deployed by hand, which the policy leaves alone)`);
    expect(sentence).toContain(
      `), ${article(noGpu, 'service')} without a GPU, and ${article(project.workerPools?.length ?? 0, 'worker pool')}.`,
    );
  });

  it('describes the services of examples/sim-mixed.yaml, the simulation of step 6, as they are', () => {
    const scenario = parse(readFileSync('examples/sim-mixed.yaml', 'utf8')) as {
      services: { name: string; demand: { trace?: unknown } }[];
    };
    const traced = scenario.services.filter((s) => s.demand.trace !== undefined);
    expect(traced.length).toBeGreaterThan(0);
    const text = readFileSync('docs/quickstart.md', 'utf8').replace(/\s*\n\s*/g, ' ');
    expect(text).toContain(
      `against ${word(scenario.services.length)} services, ${word(traced.length)} of whose demand comes from real LLM inference traces (the other ${word(scenario.services.length - traced.length)} are`,
    );
  });
});
