import { z } from 'zod';

/**
 * Where the fleet's projects sit in a resource hierarchy (an organisation, folders), for the
 * emulated Cloud Asset Inventory search (asset-api.ts). Optional: a fleet without it has no
 * organisation, and every search of one is refused as Google refuses a scope the caller cannot
 * search.
 */

const Number_ = z.string().regex(/^[1-9]\d{0,24}$/, 'expected a number such as "123456"');
const Parent = z
  .string()
  .regex(/^(organizations|folders)\/[1-9]\d{0,24}$/, 'expected "organizations/N" or "folders/N"');

export const FleetHierarchy = z
  .strictObject({
    organization: Number_.describe('The organisation number.'),
    folders: z
      .array(z.strictObject({ id: Number_, parent: Parent.optional() }))
      .default([])
      .describe('Folders; a folder without parent sits under the organisation.'),
    projects: z
      .record(z.string(), Parent)
      .default({})
      .describe('Parent of a project by id; a project not listed sits under the organisation.'),
    searchDenied: z
      .array(Parent)
      .default([])
      .describe('Scopes on which the caller lacks cloudasset.assets.searchAllResources.'),
  })
  .describe('The organisation and folders of the fleet (Cloud Asset Inventory search).');
export type FleetHierarchy = z.infer<typeof FleetHierarchy>;

/** The folders (nearest first) and the organisation above a project. */
export function ancestry(
  h: FleetHierarchy,
  project: string,
): { folders: string[]; organization: string } {
  const parentOf = new Map(h.folders.map((f) => [`folders/${f.id}`, f.parent]));
  const folders: string[] = [];
  let at: string | undefined = h.projects[project] ?? `organizations/${h.organization}`;
  // Bounded: a cycle of folders in a hand-written fleet must not hang the emulator.
  for (let i = 0; at?.startsWith('folders/') && i < 64; i++) {
    if (folders.includes(at)) break;
    folders.push(at);
    at = parentOf.get(at) ?? `organizations/${h.organization}`;
  }
  return { folders, organization: `organizations/${h.organization}` };
}

/** A stable project number for an emulated project id (a search result carries numbers). */
export function projectNumber(project: string): string {
  let h = 0;
  for (const c of project) h = (h * 31 + c.charCodeAt(0)) % 900_000_000_000;
  return String(100_000_000_000 + h);
}
