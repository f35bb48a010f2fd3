import type { FleetInput } from '../../src/emulator/fleet.js';

/**
 * An organisation for the fan-out tests: `projects` projects of `services` GPU services each
 * (one pool of `quota` L4 GPUs in us-central1), spread over three folders, plus one project
 * without Cloud Run resources and one outside the organisation's folders.
 */
export const ORG = '123456789012';
export const FOLDERS = ['1001', '1002', '1003'] as const;

export function orgProjectId(i: number): string {
  return `gpu-proj-${String(i).padStart(4, '0')}`;
}

export function orgFleet(
  opts: { projects?: number; services?: number; quota?: number; searchDenied?: string[] } = {},
): FleetInput {
  const n = opts.projects ?? 6;
  const perProject = opts.services ?? 2;
  const quota = opts.quota ?? perProject * 2;
  const projects: FleetInput['projects'] = [];
  const parents: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const id = orgProjectId(i);
    parents[id] = `folders/${FOLDERS[i % FOLDERS.length]}`;
    projects.push({
      id,
      pools: [{ region: 'us-central1', quota }],
      services: Array.from({ length: perProject }, (_, s) => ({
        name: `llm-${s}`,
        region: 'us-central1',
        gpu: {},
        maxInstances: 1,
        demand: 1,
        labels: { team: i % 2 === 0 ? 'search' : 'ads' },
      })),
    });
  }
  projects.push({ id: 'no-run-project', pools: [] });
  return {
    start: '2026-11-27T12:00:00Z',
    startupSeconds: 30,
    idleMinutes: 0,
    warmupMinutes: 30,
    projects,
    topics: [],
    hierarchy: {
      organization: ORG,
      folders: [
        { id: FOLDERS[0] },
        { id: FOLDERS[1] },
        { id: FOLDERS[2], parent: `folders/${FOLDERS[1]}` },
      ],
      projects: parents,
      searchDenied: opts.searchDenied ?? [],
    },
  };
}
